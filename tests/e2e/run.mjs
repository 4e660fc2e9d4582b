// End-to-end tests of Unblur's page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core). Serves dist/site (built by `bash web/build.sh dev`) on 127.0.0.1 itself.
//
//   node tests/e2e/run.mjs            UNBLUR_SITE=dir  CHROMIUM=path  E2E_ONLY=name,name
//
// Each test stands alone: a fresh browser context (its own storage, caches and service worker),
// its own output folder under tests/out/e2e/, and its own record of requests, which must all go
// to the page's origin. Prints "N passed, M failed" last; exits non-zero on any failure.

import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { serveStatic, launchChromium, python } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const outRoot = path.join(repo, 'tests/out/e2e');
let out = outRoot; // the running test's own folder
const photos = path.resolve(repo, '../shared/data/dev/codeformer/whole_imgs');
const PHOTO = path.join(photos, '01.jpg');
const RESTORE_TIMEOUT = 240_000;

// ---------- a static server ----------

const served = [];
let serverOffline = false; // the network is "down": every connection is dropped
const { server, origin } = await serveStatic([['/', site]], {
  onRequest: (p) => served.push(`${serverOffline ? 'offline ' : ''}${p}`),
  offline: () => serverOffline,
});
const base = `${origin}/`;

// ---------- helpers ----------

function pngSize(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('the download is not a PNG');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}
function jpegSize(buf) {
  let i = 2;
  while (i < buf.length) {
    const m = buf[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return [buf.readUInt16BE(i + 7), buf.readUInt16BE(i + 5)];
    i += 2 + buf.readUInt16BE(i + 2);
  }
  throw new Error('no JPEG frame header');
}
const assert = (c, msg) => {
  if (!c) throw new Error(msg);
};

let offOrigin = []; // the running test's requests that left the origin
function watch(context) {
  const record = (where) => (req) => {
    const u = req.url();
    if (u.startsWith('blob:') || u.startsWith('data:')) return;
    if (new URL(u).origin !== origin) offOrigin.push(`${where}: ${u}`);
  };
  context.on('request', record('request'));
  context.on('serviceworker', (sw) => sw.on?.('request', record('service worker')));
  // Anything that would leave the origin is stopped and recorded (never actually sent).
  context.route(
    (u) => !u.href.startsWith(origin) && !u.href.startsWith('blob:') && !u.href.startsWith('data:'),
    (route) => {
      offOrigin.push(`route: ${route.request().url()}`);
      return route.abort();
    },
  );
}

async function waitState(page, states, timeout = RESTORE_TIMEOUT) {
  states = [].concat(states);
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout, polling: 200 });
  return page.evaluate(() => document.body.dataset.state);
}

async function chooseFiles(page, files) {
  // Use whichever file input is visible: the drop zone's before any photo, the queue's after.
  const queueShown = await page.isVisible('#queue-panel');
  await page.setInputFiles(queueShown ? '#file-more' : '#file', files);
}

/** Opens the page with a query and waits for the engine. */
async function open(p, query = '') {
  await p.goto(`${base}${query}`);
  await p.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
}

async function restoreAndDownload(page, name) {
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  await page.evaluate(() => (window.__longtasks.length = 0, (window.__restoring = true)));
  await page.click('#restore');
  const state = await waitState(page, ['done', 'error']);
  const longtasks = await page.evaluate(() => ((window.__restoring = false), window.__longtasks.slice()));
  if (state !== 'done') throw new Error(`restore ended in ${state}: ${await page.textContent('#view-error')}`);
  const href = await page.getAttribute('#download', 'href');
  const dl = await page.getAttribute('#download', 'download');
  assert(href?.startsWith('blob:'), `download href is not a blob: URL (${href})`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = path.join(out, name || download.suggestedFilename());
  await download.saveAs(file);
  const bytes = await readFile(file);
  const size = bytes[0] === 0x89 ? pngSize(bytes) : jpegSize(bytes);
  return { size, dl, longtasks, faces: +(await page.getAttribute('#done', 'data-faces-restored')) };
}

// ---------- the tests ----------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const only = process.env.E2E_ONLY?.split(',');

let browser, context, page;
const photoSize = [248, 189];

test('restore 01.jpg at x2 through the UI', async () => {
  await page.goto(`${base}?scale=2&faces=on&denoise=0.5`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
  assert((await page.inputValue('#scale')) === '2', 'the scale control does not show ?scale=2');
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const r = await restoreAndDownload(page);
  assert(r.dl === '01-unblur-x2.png', `download is named ${r.dl}`);
  assert(r.size[0] === photoSize[0] * 2 && r.size[1] === photoSize[1] * 2, `result is ${r.size.join('×')}, expected ${photoSize[0] * 2}×${photoSize[1] * 2}`);
  assert(r.faces >= 1, `faces restored: ${r.faces}`);
  await page.waitForFunction(() => document.querySelectorAll('#face-list .face').length > 0, null, { timeout: 10_000 });
  await page.screenshot({ path: path.join(out, 'result.png') });
  // Another format re-encodes the same result: the core names it and gives its MIME type.
  await page.selectOption('#out-format', 'jpg');
  await page.waitForFunction(() => document.querySelector('#download').download.endsWith('.jpg'), null, { timeout: 30_000 });
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const jpg = await readFile(await dl.path());
  assert(dl.suggestedFilename() === '01-unblur-x2.jpg', `re-encoded as ${dl.suggestedFilename()}`);
  const size = jpegSize(jpg);
  assert(size[0] === photoSize[0] * 2 && size[1] === photoSize[1] * 2, `the JPEG is ${size.join('×')}`);
  await page.selectOption('#out-format', 'png');
  return `${r.size.join('×')}, ${r.faces} face(s); re-encoded as ${dl.suggestedFilename()}`;
});

test("Unblur's own face model: chosen in the settings, fetched then, shows its license, restores the faces", async () => {
  await page.goto(`${base}?scale=2&faces=on&faceModel=sr`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
  const own = (await page.$$eval('#face-model option', (os) => os.map((o) => o.value))).find((v) => v.startsWith('model:'));
  assert(own, 'the face model list offers no model of the build');
  await page.selectOption('#face-model', own);
  const hint = await page.textContent('#face-model-hint');
  assert(/non-commercial/i.test(hint), `the license is not shown where the model is chosen: "${hint}"`);
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const r = await restoreAndDownload(page, '01-own-face-model.png');
  assert(r.size[0] === photoSize[0] * 2 && r.size[1] === photoSize[1] * 2, `result is ${r.size.join('×')}`);
  assert(r.faces >= 1, `faces restored: ${r.faces}`);
  await page.waitForFunction(() => document.querySelectorAll('#face-list .face').length > 0, null, { timeout: 10_000 });
  await page.screenshot({ path: path.join(out, 'own-face-model.png') });
  return `${r.faces} face(s) with ${own}`;
});

test('relaxed SIMD is chosen; the SIMD128 build (?engine=simd128) restores the same photo', async () => {
  await open(page, '?scale=2&faces=on&denoise=0.5');
  assert((await page.textContent('#engine-text')).includes('relaxed SIMD'), `the engine says: ${await page.textContent('#engine-text')}`);
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  await restoreAndDownload(page, 'relaxed.png');
  const first = path.join(out, 'relaxed.png');
  const p2 = await context.newPage();
  try {
    await p2.goto(`${base}?scale=2&faces=on&denoise=0.5&engine=simd128`);
    await p2.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
    const text = await p2.textContent('#engine-text');
    assert(text.includes('SIMD128'), `with ?engine=simd128 the engine says: ${text}`);
    await chooseFiles(p2, PHOTO);
    await waitState(p2, 'ready', 60_000);
    const r = await restoreAndDownload(p2, 'simd128.png');
    assert(r.size[0] === photoSize[0] * 2, `SIMD128 result is ${r.size.join('×')}`);
    // Pixels of both downloads, decoded by the browser: fused and unfused multiply-adds round
    // differently, so a level or two of difference is expected, never more.
    const [a, b] = await Promise.all([readFile(first), readFile(path.join(out, 'simd128.png'))]);
    const d = await p2.evaluate(async ([a, b]) => {
      const px = async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
        const c = new OffscreenCanvas(bmp.width, bmp.height).getContext('2d');
        c.drawImage(bmp, 0, 0);
        return c.getImageData(0, 0, bmp.width, bmp.height).data;
      };
      const [x, y] = await Promise.all([px(a), px(b)]);
      let max = 0, sum = 0;
      for (let i = 0; i < x.length; i++) {
        const e = Math.abs(x[i] - y[i]);
        max = Math.max(max, e);
        sum += e;
      }
      return { max, mean: sum / x.length, n: x.length };
    }, [a.toString('base64'), b.toString('base64')]);
    assert(d.n === photoSize[0] * photoSize[1] * 16, `decoded ${d.n} samples`);
    assert(d.max <= 3 && d.mean < 0.05, `the two builds differ: max ${d.max}, mean ${d.mean.toFixed(4)} levels`);
    return `${text}; pixels differ by at most ${d.max} level(s), mean ${d.mean.toFixed(4)}`;
  } finally {
    await p2.close();
  }
});

test('the page and the CLI give the same photo (faces, alpha, EXIF orientation 6)', async () => {
  const dir = out;
  await mkdir(path.join(dir, 'cli'), { recursive: true });
  // A phone-style JPEG stored sideways with EXIF orientation 6, and a PNG with an alpha gradient.
  python(`
import sys
from PIL import Image
src, d = sys.argv[1], sys.argv[2]
im = Image.open(src).convert('RGB')
ex = Image.Exif(); ex[0x0112] = 6
im.transpose(Image.Transpose.ROTATE_90).save(d + '/exif6.jpg', quality=92, exif=ex)
a = im.copy(); a.putalpha(Image.linear_gradient('L').resize(im.size))
a.save(d + '/alpha.png')
`, PHOTO, dir);
  const cli = path.join(repo, 'target/release/unblur');
  execFileSync(cli, ['restore', path.join(dir, 'exif6.jpg'), path.join(dir, 'alpha.png'), '--out', path.join(dir, 'cli'),
    // The page's tile side (upscale::TILE on wasm32), so that both blend the same tiles.
    '--scale', '2', '--denoise', '0.5', '--face-model', 'sr', '--tile', '256', '--json'], { encoding: 'utf8' });
  await page.goto(`${base}?scale=2&faces=on&denoise=0.5&strength=1&faceModel=sr&format=png`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
  const notes = [];
  for (const name of ['exif6', 'alpha']) {
    const file = path.join(dir, `${name}.${name === 'exif6' ? 'jpg' : 'png'}`);
    await chooseFiles(page, file);
    await waitState(page, 'ready', 60_000);
    const meta = await page.textContent('#photo-meta');
    assert(meta.startsWith(`${photoSize[0]}×${photoSize[1]}`), `${name}: the page shows "${meta}", not the upright ${photoSize.join('×')}`);
    if (name === 'exif6') {
      // The face boxes sit on the faces: each box's centre on the detector's face, in the upright photo.
      const boxes = await page.$$eval('#faces-overlay rect', (rs) => rs.map((r) => [+r.getAttribute('x'), +r.getAttribute('y'), +r.getAttribute('width'), +r.getAttribute('height')]));
      const faces = JSON.parse(execFileSync(cli, ['detect', PHOTO], { encoding: 'utf8' }).trim().split('\n')[0]).faces;
      assert(boxes.length === faces.length && boxes.length > 0, `${boxes.length} boxes for ${faces.length} faces`);
      for (const f of faces) {
        const [cx, cy] = [f.bbox[0] + f.bbox[2] / 2, f.bbox[1] + f.bbox[3] / 2];
        assert(boxes.some(([x, y, w, h]) => cx > x && cx < x + w && cy > y && cy < y + h), `no box on the face at ${cx.toFixed(0)},${cy.toFixed(0)}`);
      }
      await page.screenshot({ path: path.join(dir, 'exif6-boxes.png') });
    }
    const r = await restoreAndDownload(page, `page-${name}.png`);
    const cmp = JSON.parse(python(`
import json, sys, numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert('RGBA'), np.float64) for p in sys.argv[1:3])
if a.shape != b.shape: print(json.dumps({'shape': [a.shape, b.shape]})); sys.exit()
mse = ((a - b) ** 2).mean()
print(json.dumps({'shape': a.shape, 'identical': bool((a == b).all()), 'max': float(abs(a - b).max()),
                  'psnr': 99.0 if mse == 0 else float(10 * np.log10(255 ** 2 / mse)), 'alpha_min': float(a[..., 3].min())}))
`, path.join(out, `page-${name}.png`), path.join(dir, 'cli', `${name}-unblur-x2.png`)));
    assert(cmp.psnr !== undefined, `${name}: page and CLI sizes differ: ${JSON.stringify(cmp.shape)}`);
    assert(cmp.psnr >= 60, `${name}: page vs CLI ${cmp.psnr.toFixed(1)} dB (max ${cmp.max} levels)`);
    if (name === 'alpha') assert(cmp.alpha_min < 50, 'the alpha gradient did not survive');
    notes.push(`${name}: ${r.faces} face(s), ${cmp.identical ? 'byte-identical pixels' : `${cmp.psnr.toFixed(1)} dB, max ${cmp.max} level(s)`}`);
  }
  return notes.join('; ');
});

test('×5 and ×6: the slider reaches the core\'s ×6, exact sizes, and the CLI\'s photo at ×6 (faces on)', async () => {
  const dir = out;
  await page.goto(`${base}?scale=5&faces=off&format=png`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
  const slider = await page.$eval('#scale', (e) => [e.min, e.max]);
  const ticks = await page.$$eval('#scale-ticks span', (ss) => ss.map((s) => s.textContent));
  assert(slider[0] === '1' && slider[1] === '6', `the slider runs ${slider.join('…')}`);
  assert(ticks.at(-1) === '×6' && ticks.length === 6, `the slider's labels are ${ticks.join(' ')}`);
  assert((await page.inputValue('#scale')) === '5', 'the scale control does not show ?scale=5');
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const five = await restoreAndDownload(page);
  assert(five.dl === '01-unblur-x5.png', `download is named ${five.dl}`);
  assert(five.size[0] === photoSize[0] * 5 && five.size[1] === photoSize[1] * 5, `×5 result is ${five.size.join('×')}`);

  // ×6 with faces, against the CLI at the page's tile side: the faces are pasted at ×6.
  await mkdir(path.join(dir, 'cli'), { recursive: true });
  const cli = path.join(repo, 'target/release/unblur');
  execFileSync(cli, ['restore', PHOTO, '--out', path.join(dir, 'cli'), '--scale', '6', '--denoise', '0.5', '--face-model', 'sr', '--tile', '256', '--json'], { encoding: 'utf8' });
  await page.goto(`${base}?scale=6&faces=on&denoise=0.5&strength=1&faceModel=sr&format=png`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const six = await restoreAndDownload(page, 'page-x6.png');
  assert(six.size[0] === photoSize[0] * 6 && six.size[1] === photoSize[1] * 6, `×6 result is ${six.size.join('×')}`);
  assert(six.faces >= 1, `faces restored at ×6: ${six.faces}`);
  const cmp = JSON.parse(python(`
import json, sys, numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert('RGB'), np.int16) for p in sys.argv[1:3])
print(json.dumps({'shape': [a.shape, b.shape], 'max': int(abs(a - b).max()) if a.shape == b.shape else None}))
`, path.join(dir, 'page-x6.png'), path.join(dir, 'cli', '01-unblur-x6.png')));
  assert(cmp.max !== null, `page and CLI sizes differ at ×6: ${JSON.stringify(cmp.shape)}`);
  assert(cmp.max <= 1, `page vs CLI at ×6: max ${cmp.max} levels`);
  return `×5 ${five.size.join('×')}; ×6 ${six.size.join('×')} with ${six.faces} face(s), page vs CLI max ${cmp.max} level(s)`;
});

test('cancel mid-way, then restore again', async () => {
  // 02.png at ×2 is 15 tiles of 256² (faces off, so tiles start at once): after the first
  // tile it is certainly still running, and the test checks that it was when Cancel was pressed.
  await open(page, '?scale=2&faces=off&denoise=0.5');
  await chooseFiles(page, path.join(photos, '02.png'));
  await waitState(page, 'ready', 60_000);
  await page.click('#restore');
  await page.waitForFunction(() => {
    const t = document.querySelector('#progress')?.dataset.tiles;
    return t && !t.startsWith('0/');
  }, null, { timeout: RESTORE_TIMEOUT, polling: 100 });
  const at = await page.getAttribute('#progress', 'data-tiles');
  const [doneTiles, allTiles] = at.split('/').map(Number);
  assert(doneTiles < allTiles, `the restoration had finished (${at}) before Cancel`);
  await page.click('#cancel');
  const st = await waitState(page, ['cancelled', 'done', 'error'], 30_000);
  assert(st === 'cancelled', `after Cancel the photo is ${st}`);
  // The same page goes on: with the cancelled photo removed (Restore would take it up again),
  // a small photo restores in full.
  await page.click('#queue li:first-child .q-remove');
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const r = await restoreAndDownload(page, 'after-cancel.png');
  assert(r.size[0] === photoSize[0] * 2 && r.size[1] === photoSize[1] * 2, `result after cancel is ${r.size.join('×')}`);
  return `cancelled at ${at} tiles; then restored ${r.size.join('×')}`;
});

test('bad files show an error; the next good file works', async () => {
  await open(page, '?scale=2&faces=on');
  const text = path.join(out, 'not-a-photo.jpg');
  await writeFile(text, 'This is a text file, not a photo.\n');
  const full = await readFile(path.join(photos, '02.png'));
  const truncated = path.join(out, 'truncated.png');
  await writeFile(truncated, full.subarray(0, Math.floor(full.length / 3)));
  const seen = [];
  for (const f of [text, truncated]) {
    await chooseFiles(page, f);
    await waitState(page, 'error', 60_000);
    const msg = (await page.textContent('#view-error')).trim();
    assert(msg.length > 10 && (await page.isVisible('#view-error')), `no visible error for ${path.basename(f)}`);
    seen.push(`${path.basename(f)}: "${msg}"`);
    await page.screenshot({ path: path.join(out, `bad-file-${seen.length}.png`) });
  }
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const r = await restoreAndDownload(page, 'after-bad.png');
  assert(r.size[0] === photoSize[0] * 2, `result is ${r.size.join('×')}`);
  return seen.join('; ');
});

test('first visit: one upscaler file at the default strength, the rest once idle (for offline use)', async () => {
  served.length = 0;
  const manifest = JSON.parse(await readFile(path.join(site, 'models/manifest.json'), 'utf8')).models;
  const byId = Object.fromEntries(manifest.map((m) => [m.id, m]));
  const preset = manifest.find((m) => m.preset && m.ship);
  assert(preset, 'the build ships no denoise preset');
  const file = (m) => m.artifacts[m.ship].file;
  const partners = [preset.preset.of, byId[preset.preset.of].denoise_partner].map((id) => file(byId[id]));
  const fetched = (f) => served.some((p) => p.split('?')[0].endsWith(`/models/${f}`));
  await open(page, `?scale=2&faces=on&denoise=${preset.preset.denoise}`);
  const engineReady = Date.now();
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  // Restore just before the page's 10 s idle fallback, so that it ends during the restoration:
  // the rest must still wait for the restoration, and 3 s after it.
  await page.waitForTimeout(Math.max(0, engineReady + 9_000 - Date.now()));
  await page.click('#restore');
  assert((await waitState(page, ['done', 'error'])) === 'done', `the restoration failed: ${await page.textContent('#view-error')}`);
  await page.waitForTimeout(1_000); // within the 3 s the page waits after a restoration
  const before = served.slice();
  assert(fetched(file(preset)), `the preset ${file(preset)} was not fetched for the first photo`);
  assert(!partners.some(fetched), `fetched before the first photo was done: ${partners.filter(fetched).join(', ')}`);
  // Then, idle, the page keeps every shipped model for offline use, and says it works offline.
  await page.waitForFunction(() => document.body.dataset.offline === 'ready', null, { timeout: 120_000 });
  const later = manifest.filter((m) => m.ship && !fetched(file(m))).map(file);
  assert(!later.length, `not fetched for offline use: ${later.join(', ')}`);
  assert(/works offline/.test(await page.textContent('#engine-text')), 'the page does not say it works offline');
  const first = [...new Set(before.filter((p) => /\/models\/[^/?]+\.onnx/.test(p)).map((p) => p.split('/').pop().split('?')[0]))];
  return `before the first photo: ${first.join(', ')}; once idle: the other ${manifest.filter((m) => m.ship).length - first.length}`;
});

test('offline: the service worker serves the app and models, and a photo restores', async () => {
  // The first visit, online: the page caches the models and the service worker the rest.
  await open(page, '?scale=2&faces=on&denoise=0.5');
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  await page.evaluate(() => navigator.serviceWorker.ready);
  // The page says so once the service worker holds the wasm build it runs.
  await page.waitForFunction(() => document.body.dataset.offline === 'ready', null, { timeout: 60_000 });
  await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 }).catch(async () => {
    await page.reload();
  });
  await context.setOffline(true);
  serverOffline = true; // the browser's own service-worker update check ignores setOffline
  const before = served.length;
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
  assert(await page.evaluate(() => !!navigator.serviceWorker.controller), 'the page is not controlled by the service worker');
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const r = await restoreAndDownload(page, 'offline.png');
  assert(r.size[0] === photoSize[0] * 2, `offline result is ${r.size.join('×')}`);
  // Another denoise strength needs the two partner models, kept at idle on the first visit.
  await open(page, '?scale=2&faces=on&denoise=0.2');
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const r2 = await restoreAndDownload(page, 'offline-denoise-0.2.png');
  assert(r2.size[0] === photoSize[0] * 2, `offline result at denoise 0.2 is ${r2.size.join('×')}`);
  const tried = served.slice(before).map((p) => p.replace('offline ', ''));
  serverOffline = false;
  await context.setOffline(false);
  assert(tried.every((p) => p.endsWith('/sw.js')), `the page needed the network while offline: ${tried.join(', ')}`);
  return `restored offline at denoise 0.5 and 0.2, ${r.faces} face(s)${tried.length ? ` (only the browser's service-worker update check tried the network: ${tried.length}×)` : ''}`;
});

test('no main-thread task over 200 ms while restoring', async () => {
  await open(page, '?scale=2&faces=on&denoise=0.5');
  // The observer itself works: a deliberate 250 ms task is seen.
  await page.evaluate(() => (window.__restoring = true));
  // (A page task: work run by the test driver's evaluate is not attributed as one.)
  await page.evaluate(() =>
    setTimeout(() => {
      const t = performance.now();
      while (performance.now() - t < 250);
    }, 0),
  );
  await page.waitForTimeout(600);
  const probe = await page.evaluate(() => ((window.__restoring = false), window.__longtasks.splice(0).length));
  assert(probe >= 1, 'the long-task observer saw nothing (is PerformanceObserver longtask supported?)');
  // A photo with faces, restored then re-encoded, with the observer on throughout.
  await chooseFiles(page, PHOTO);
  await waitState(page, 'ready', 60_000);
  const { longtasks } = await restoreAndDownload(page, 'watched.png');
  const long = longtasks.filter((t) => t.duration > 200);
  const worst = Math.round(Math.max(0, ...longtasks.map((t) => t.duration)));
  assert(!long.length, `tasks over 200 ms: ${long.map((t) => Math.round(t.duration)).join(', ')} ms`);
  return `${longtasks.length} tasks over 50 ms during the restoration, the longest ${worst} ms`;
});

test('on a phone (412 px, Pixel 7 emulation) the page fits its width, with a photo loaded', async () => {
  const phone = await browser.newContext({ viewport: { width: 412, height: 915 }, deviceScaleFactor: 2.625, isMobile: true, hasTouch: true });
  watch(phone);
  const p = await phone.newPage();
  try {
    await p.goto(`${base}?scale=2`);
    await p.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
    await p.setInputFiles('#file', PHOTO);
    await p.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 60_000 });
    const fit = await p.evaluate((device) => {
      const w = innerWidth;
      const over = [...document.querySelectorAll('body *')]
        .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > device + 0.5)
        .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : ''} → ${Math.round(e.getBoundingClientRect().right)}`);
      return { w, scroll: document.documentElement.scrollWidth, over: over.slice(0, 12) };
    }, 412);
    await p.screenshot({ path: path.join(out, 'phone.png'), fullPage: true });
    assert(fit.w === 412 && fit.scroll <= fit.w && !fit.over.length,
      `laid out ${fit.w} px wide (scroll ${fit.scroll}) on a 412 px phone: ${fit.over.join(', ')}`);
    return `innerWidth ${fit.w}, nothing past it`;
  } finally {
    await phone.close();
  }
});


// ---------- run ----------

await rm(outRoot, { recursive: true, force: true });
let passed = 0;
let failed = 0;
const logs = [];
const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
try {
  browser = await launchChromium();
  for (const t of tests) {
    if (only && !only.some((o) => t.name.includes(o))) continue;
    const t0 = Date.now();
    out = path.join(outRoot, slug(t.name));
    await mkdir(out, { recursive: true });
    offOrigin = [];
    served.length = 0;
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
    watch(context);
    await context.addInitScript(() => {
      window.__longtasks = [];
      try {
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) if (window.__restoring) window.__longtasks.push({ start: e.startTime, duration: e.duration });
        }).observe({ type: 'longtask', buffered: true });
      } catch {}
    });
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && logs.push(`${t.name}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`${t.name}: pageerror: ${e.message}`));
    try {
      const note = await t.fn();
      // Every test: nothing it did went anywhere but the page's origin.
      assert(offOrigin.length === 0, `requests outside ${origin}: ${offOrigin.join(', ')}`);
      passed++;
      console.log(`ok   ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ` — ${note}` : ''}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${e.message.split('\n')[0]}`);
      await page.screenshot({ path: path.join(out, 'fail.png') }).catch((err) => console.log(`     (no screenshot: ${err.message.split('\n')[0]})`));
    } finally {
      await context.close();
    }
  }
  if (logs.length) console.log(`browser console errors:\n  ${logs.slice(0, 20).join('\n  ')}`);
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.message}`);
} finally {
  await browser?.close().catch(() => {});
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
