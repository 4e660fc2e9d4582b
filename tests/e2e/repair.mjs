// End-to-end tests of old-photo repair in the page (issue 31), in headless Chromium: a cracked
// print (the dev `scratched_a.png`) dropped in gets the suggestion ("This photo looks scratched —
// repair it?"), its bands found on the inference workers side by side as on one; the found mask
// is corrected with the brush and the eraser (scripted pointer events) and one undo; the photo restored with it is downloaded, changed where the mask is, and
// the same as the CLI's with that mask within a level. A clean photo gets no suggestion, "Mark
// damage" opens the mask to paint on, and "Don't repair" leaves the photo unrepaired. A mask
// painted over the whole photo is refused with the reason, and the photo stays shown with its
// mask, to correct and restore again.
//
//   node tests/e2e/repair.mjs        UNBLUR_SITE=dir  CHROMIUM=path  E2E_ONLY=name,name
//
// Needs dist/site (bash web/build.sh dev) with the `unblur-repair` model, and for the CLI
// comparison target/release/unblur. The photos are judged in Python (PIL, numpy).

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { serveStatic, python, maxDiff, openPage, waitState, runSuite } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const outRoot = path.join(repo, 'tests/out/e2e-repair');
const CLI = path.join(repo, 'target/release/unblur');
const CRACKED = path.resolve(repo, '../shared/data/dev/old-photos/scratched_a.png');
// A clean photo no Unblur network trained on (models/deblur/holdout.txt), cut small. (A photo
// made of thin lines, such as kodim08's shutters, can draw a suggestion: see the detector's card.)
const SOURCE = path.resolve(repo, '../shared/data/photos/kodak/kodim11.avif');
const CLEAN = path.join(outRoot, 'clean.png');
const TIMEOUT = 300_000;
const QUERY = '?scale=1&faces=off&deblur=off&denoise=0.5&format=png';

const { server, origin } = await serveStatic([['/', site]]);
const assert = (c, msg) => {
  if (!c) throw new Error(msg);
};
let context, page, out;

const item = () => page.evaluate(() => /** @type {any} */ (window).unblur.items[0]);

async function addPhoto(file) {
  await page.setInputFiles('#file', file);
  await waitState(page, 'ready', 60_000);
}

/** Drags the pointer across the mask layer from (x0, y0) to (x1, y1), fractions of the photo. */
async function drag([x0, y0], [x1, y1]) {
  const b = await page.locator('#mask-canvas').boundingBox();
  await page.mouse.move(b.x + x0 * b.width, b.y + y0 * b.height);
  await page.mouse.down();
  for (let s = 1; s <= 12; s++) await page.mouse.move(b.x + (x0 + ((x1 - x0) * s) / 12) * b.width, b.y + (y0 + ((y1 - y0) * s) / 12) * b.height);
  await page.mouse.up();
}

async function restoreAndDownload(name) {
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  await page.click('#restore');
  await waitState(page, ['done', 'error'], TIMEOUT);
  const st = await page.evaluate(() => document.body.dataset.state);
  if (st !== 'done') throw new Error(`restore ended in ${st}: ${await page.textContent('#view-error')}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = path.join(out, name);
  await download.saveAs(file);
  return file;
}

/** Pixels changed between two photos of one size: the count, and how many lie where `mask`
 *  (a PNG, nonzero = damaged) widened by `near` px is not. */
function changed(a, b, mask, near) {
  return JSON.parse(
    python(
      `
import sys, json, numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation
a, b = (np.asarray(Image.open(p).convert('RGB'), np.int16) for p in sys.argv[1:3])
m = np.asarray(Image.open(sys.argv[3]).convert('L')) > 0
d = np.abs(a - b).max(2) > 2
far = ~binary_dilation(m, iterations=int(sys.argv[4]))
print(json.dumps({'changed': int(d.sum()), 'far': int((d & far).sum()), 'masked': int(m.sum())}))
`,
      a,
      b,
      mask,
      String(near),
    ),
  );
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('a cracked print: suggested, the mask corrected with brush, eraser and undo, restored as the CLI restores it with that mask', async () => {
  await openPage(page, `${origin}/${QUERY}`);
  await addPhoto(CRACKED);
  const found = (await item()).damage;
  assert(found?.worth, `the detector found ${JSON.stringify(found)} on the cracked print`);
  assert((await page.getAttribute('#repair-bar', 'data-mode')) === 'suggest', 'no suggestion on the cracked print');
  // The bands ran on the inference workers side by side: the print cut for one worker (by size:
  // one band) and for five (on the workers there are; the 624-row print has room for 4 bands of
  // twice the context) gives the same mask, bit for bit.
  const hook = (n) => page.evaluate((k) => /** @type {any} */ (window).unblur.findDamage(0, k), n);
  const [one, five] = [await hook(1), await hook(5)];
  console.log(`  the suggestion: ${found.bands} bands in ${found.ms.toFixed(0)} ms as added; ${one.bands} in ${one.ms.toFixed(0)} ms for one worker; ${five.bands} in ${five.ms.toFixed(0)} ms for five`);
  assert(found.bands >= 2 && five.bands >= 3 && one.bands < five.bands, `bands: ${found.bands} as added, ${one.bands} for one worker, ${five.bands} for five`);
  assert(five.hash === one.hash && five.coverage === found.coverage && one.worth, `one worker found ${JSON.stringify(one)}, five ${JSON.stringify(five)}`);
  const text = (await page.textContent('#repair-text')).trim();
  assert(/looks scratched/.test(text), `the suggestion says "${text}"`);
  await page.screenshot({ path: path.join(out, 'suggested.png') });

  await page.click('#repair-yes');
  assert((await page.getAttribute('#repair-bar', 'data-mode')) === 'editing', 'Repair it did not open the mask');
  assert(await page.isVisible('#mask-canvas'), 'the mask is not shown');
  const start = (await item()).repair.marked;
  assert(start === Math.round(found.coverage * found.width * found.height), `the mask starts with ${start} pixels, the detector found ${found.coverage}`);
  // The brush adds a stroke across the curtain; the eraser takes part of it away; undo puts it back.
  await page.click('#repair-brush');
  await drag([0.1, 0.3], [0.3, 0.35]);
  const brushed = (await item()).repair.marked;
  assert(brushed > start + 200, `the brush marked ${brushed - start} pixels`);
  await page.click('#repair-eraser');
  await drag([0.15, 0.25], [0.15, 0.45]);
  const erased = (await item()).repair.marked;
  assert(erased < brushed - 50, `the eraser removed ${brushed - erased} pixels`);
  await page.click('#repair-undo');
  assert((await item()).repair.marked === brushed, 'undo did not bring the erased pixels back');
  await page.click('#repair-eraser');
  await drag([0.15, 0.25], [0.15, 0.45]); // the mask to restore with: found + brushed − erased
  const marked = (await item()).repair.marked;
  await page.screenshot({ path: path.join(out, 'editing.png') });

  const mask = path.join(out, 'mask.png');
  const b64 = await page.evaluate(() => /** @type {any} */ (window).unblur.mask(0));
  const raw = path.join(out, 'mask.raw');
  await writeFile(raw, Buffer.from(b64, 'base64'));
  python(
    `
import sys, numpy as np
from PIL import Image
w, h = int(sys.argv[2]), int(sys.argv[3])
m = np.frombuffer(open(sys.argv[1], 'rb').read(), np.uint8).reshape(h, w)
Image.fromarray(np.where(m > 0, 255, 0).astype(np.uint8)).save(sys.argv[4])
`,
    raw,
    String(found.width),
    String(found.height),
    mask,
  );
  const file = await restoreAndDownload('page-repaired.png');
  const result = (await item()).result;
  assert(result.repaired, 'the result does not say it was repaired');

  let cli = 'no CLI';
  if (existsSync(CLI)) {
    const dir = path.join(out, 'cli');
    await mkdir(dir, { recursive: true });
    const run = (repair, sub) => {
      execFileSync(CLI, ['restore', CRACKED, '--out', path.join(dir, sub), '--scale', '1', '--faces', 'off', '--deblur', 'off', '--denoise', '0.5', '--tile', '256', '--repair', repair], { encoding: 'utf8' });
      return path.join(dir, sub, 'scratched_a-unblur-x1.png');
    };
    const withMask = run(mask, 'mask');
    const d = maxDiff(file, withMask);
    assert(d !== null && d <= 1, `page vs CLI with the same mask: max ${d} levels`);
    // The repair changed the photo, and only near the mask (the ×1 SR pass sees ~35 px around it).
    const c = changed(file, run('off', 'off'), mask, 40);
    assert(c.changed > c.masked / 2 && c.far === 0, `against --repair off: ${JSON.stringify(c)}`);
    cli = `page vs CLI max ${d} level(s); ${c.changed} px changed by the repair`;
  } else if (process.env.E2E_NEED_CLI) throw new Error(`${CLI} is missing`);
  return `found ${(100 * found.coverage).toFixed(2)} %, brush +${brushed - start}, eraser −${brushed - marked}; ${cli}`;
});

test('a clean photo: no suggestion; Mark damage opens the mask to paint; Don’t repair restores it unrepaired', async () => {
  await openPage(page, `${origin}/${QUERY}`);
  await addPhoto(CLEAN);
  const found = (await item()).damage;
  assert(found && !found.worth, `the detector calls the clean photo worth repairing: ${JSON.stringify(found)}`);
  assert((await page.getAttribute('#repair-bar', 'data-mode')) === 'offer', 'the clean photo has a suggestion');
  assert((await page.textContent('#repair-yes')).trim() === 'Mark damage', 'no Mark damage button');
  // Mark damage opens the mask with what the detector found (too little to suggest), to add to.
  await page.click('#repair-yes');
  const start = (await item()).repair.marked;
  assert(start === Math.round(found.coverage * found.width * found.height), `Mark damage starts with ${start} pixels, the detector found ${found.coverage}`);
  await drag([0.2, 0.2], [0.8, 0.8]);
  assert((await item()).repair.marked > start + 100, 'the brush painted nothing');
  await page.click('#repair-no');
  assert((await item()).repair === null, 'Don’t repair kept the mask');
  await restoreAndDownload('page-clean.png');
  assert(!(await item()).result.repaired, 'a photo whose repair was declined says it was repaired');
  return `found ${(100 * found.coverage).toFixed(3)} % on the clean photo`;
});

test('a mask over the whole photo: the restore says why, the photo and its mask stay, and with a stroke erased it restores', async () => {
  await openPage(page, `${origin}/${QUERY}`);
  await addPhoto(CLEAN);
  const { width, height } = (await item()).damage;
  await page.click('#repair-yes'); // Mark damage
  await page.evaluate(() => {
    const size = /** @type {HTMLInputElement} */ (document.querySelector('#repair-size'));
    size.value = size.max;
    size.dispatchEvent(new Event('input'));
  });
  for (let y = 0; y <= 1.0001; y += 0.08) await drag([0, y], [1, y]);
  assert((await item()).repair.marked === width * height, `the brush marked ${(await item()).repair.marked} of ${width * height} pixels`);
  await page.click('#restore');
  const st = await waitState(page, ['done', 'error'], TIMEOUT);
  const said = st === 'error' ? (await page.textContent('#view-error')).trim() : '';
  assert(st === 'error' && /whole photo/.test(said) && /mark only the damage/.test(said), `restoring with every pixel marked ended in ${st}: "${said}"`);
  await page.screenshot({ path: path.join(out, 'refused.png') });
  // Nothing is lost: the photo is still shown with its mask, to correct and restore again.
  assert((await item()).repair.marked === width * height, 'the mask was lost with the error');
  assert(await page.isVisible('#before'), 'the photo is no longer shown');
  assert((await page.getAttribute('#repair-bar', 'data-mode')) === 'editing' && !(await page.isDisabled('#restore')), 'the mask cannot be corrected, or the photo restored again');
  await page.click('#repair-eraser');
  await drag([0.3, 0.5], [0.7, 0.5]);
  const marked = (await item()).repair.marked;
  assert(marked < width * height, 'the eraser took nothing away');
  await restoreAndDownload('page-fixed.png');
  assert((await item()).result.repaired, 'the photo restored after the correction does not say it was repaired');
  return `"${said}"; then ${width * height - marked} px erased and restored`;
});

// ---------- run ----------

await rm(outRoot, { recursive: true, force: true });
await mkdir(outRoot, { recursive: true });
python(
  `
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
w, h = im.size
im.crop(((w - 320) // 2, (h - 224) // 2, (w - 320) // 2 + 320, (h - 224) // 2 + 224)).save(sys.argv[2])
`,
  SOURCE,
  CLEAN,
);
await runSuite(tests, { outRoot, server, bind: (t) => ({ context, page, out } = t) });
