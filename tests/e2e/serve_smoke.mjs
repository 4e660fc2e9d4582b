// The README's first command, checked as a newcomer would use it: the page that `make serve`
// serves (not a test server of our own) restores one photo in headless Chromium, and the download
// is the photo at ×2. `.ci/run` starts `make serve` and runs this against it.
//
//   node tests/e2e/serve_smoke.mjs http://127.0.0.1:PORT/
//
// Prints "1 passed, 0 failed" (or "0 passed, 1 failed" with the reason) and exits accordingly.

import { readFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { launchChromium, python } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const url = process.argv[2];
if (!url) {
  console.error('usage: node tests/e2e/serve_smoke.mjs http://127.0.0.1:PORT/');
  process.exit(2);
}
const photo = path.resolve(repo, '../shared/data/dev/codeformer/whole_imgs/01.jpg');
const out = path.join(repo, 'tests/out/serve-smoke');
await mkdir(out, { recursive: true });

const browser = await launchChromium();
let ok = false;
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${url}?scale=2&faces=on`);
  await page.waitForFunction(() => ['ready', 'failed'].includes(document.body.dataset.engine), null, { timeout: 180_000 });
  const engine = await page.evaluate(() => document.body.dataset.engine);
  if (engine !== 'ready') throw new Error(`the engine did not start: ${await page.textContent('#engine-text')} ${errors.join('; ')}`);
  await page.setInputFiles('#file', photo);
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  await page.click('#restore');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 600_000, polling: 500 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'done') throw new Error(`the restoration ended in ${state}: ${await page.textContent('#toast')}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = path.join(out, download.suggestedFilename());
  await download.saveAs(file);
  // The download is judged outside the page: decoded by Pillow, against the input's size.
  const [got, want] = python(
    'import sys; from PIL import Image; a=Image.open(sys.argv[1]); b=Image.open(sys.argv[2]); print(a.size, (b.width*2, b.height*2))',
    file,
    photo,
  )
    .trim()
    .split(') (');
  if (`${got})` !== `(${want}`) throw new Error(`the download is ${got}), expected (${want}`);
  const bytes = (await readFile(file)).length;
  console.log(`serve smoke: ${url} restored ${path.basename(photo)} at ×2 into ${path.basename(file)} (${bytes} bytes)`);
  ok = true;
} catch (e) {
  console.error(`serve smoke: ${e.message}`);
} finally {
  await browser.close();
}
console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
process.exit(ok ? 0 : 1);
