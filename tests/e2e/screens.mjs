// Screenshots of the page's states for a human look (not a test): tests/out/screen-*.png.
//   node tests/e2e/screens.mjs   (after bash web/build.sh dev)
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { serveStatic, launchChromium } from './harness.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const site = path.join(repo, 'dist/site');
const out = path.join(repo, 'tests/out');
const photo = path.resolve(repo, '../shared/data/dev/codeformer/whole_imgs/01.jpg');
const { server, origin } = await serveStatic([['/', site]]);
await mkdir(out, { recursive: true });
const browser = await launchChromium();
for (const scheme of (process.env.SCHEMES || 'light,dark').split(',')) {
  const page = await browser.newPage({ viewport: { width: +(process.env.W || 1360), height: +(process.env.H || 900) }, colorScheme: scheme });
  const shot = (n) => page.screenshot({ path: path.join(out, `screen-${scheme}-${n}.png`) });
  await page.goto(`${origin}/?scale=${process.env.SCALE || 2}`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120000 });
  await shot('1-empty');
  await page.setInputFiles('#file', photo);
  await page.waitForFunction(() => document.body.dataset.state === 'ready');
  await page.waitForTimeout(300);
  await shot('2-preview');
  await page.click('#restore');
  // Mid-job: a tile done (a small photo at ×2 is only a few of the page's 256² tiles, so it may
  // finish first; then there is no progress state to show).
  await page.waitForFunction(() => {
    const done = Number((document.querySelector('#progress').dataset.tiles || '0/0').split('/')[0]);
    return done >= 1 || document.body.dataset.state === 'done';
  }, null, { timeout: 120000 });
  if (await page.evaluate(() => document.body.dataset.state !== 'done')) await shot('3-progress');
  await page.waitForFunction(() => document.body.dataset.state === 'done', null, { timeout: 240000 });
  await page.waitForTimeout(500);
  await shot('4-done');
  await page.click('#zoom-in');
  await page.click('#zoom-in');
  await shot('5-zoom');
  await page.close();
}
await browser.close();
server.close();
