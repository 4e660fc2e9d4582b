// The repair suggestion's wait in the page: the damage detector on a photo as it is added (its
// ≤ 1 MP copy in bands), the bands on one inference worker against all of them side by side, in
// headless Chromium, the same photo, alternating round by round.
//
//   node bench/suggestion.mjs     (after `bash web/build.sh dev` or `dist`; BENCH_ROUNDS (5),
//                                  BENCH_PHOTO (the cracked dev print), UNBLUR_SITE, CHROMIUM)
//
// Prints a table; writes bench/out/suggestion.json. Each time is from the photo's bytes to the
// mask at its size (decode, the copy, the bands, the mask brought back), as the page waits for it.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic, launchChromium, openPage, waitState } from '../tests/e2e/harness.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SITE = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const PHOTO = path.resolve(process.env.BENCH_PHOTO || path.join(repo, '../shared/data/dev/old-photos/scratched_a.png'));
const ROUNDS = +(process.env.BENCH_ROUNDS || 5);

const { server, origin } = await serveStatic([['/', SITE]]);
const browser = await launchChromium();
const page = await (await browser.newContext()).newPage();
await openPage(page, `${origin}/?scale=1&faces=off&deblur=off`);
await page.setInputFiles('#file', PHOTO);
await waitState(page, 'ready', 120_000);
const all = Math.max(2, await page.evaluate(() => navigator.hardwareConcurrency));
const runs = { 1: [], [all]: [] };
let info = null;
for (let r = 0; r < ROUNDS; r++) {
  for (const workers of [1, all]) {
    const d = await page.evaluate((n) => /** @type {any} */ (window).unblur.findDamage(0, n), workers);
    runs[workers].push(d.ms);
    info ??= d;
    if (d.coverage !== info.coverage) throw new Error(`${workers} worker(s) found ${d.coverage}, not ${info.coverage}`);
    runs[workers].bands = d.bands;
  }
}
await browser.close();
server.close();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const mp = (info.width * info.height) / 1e6;
console.log(`${path.basename(PHOTO)}: ${info.width}×${info.height} (${mp.toFixed(1)} MP), damage found on ${(info.coverage * 100).toFixed(2)} %; ${ROUNDS} rounds, Chromium, ${all} cores`);
console.log('| inference workers | bands | median ms | best ms |');
console.log('|---:|---:|---:|---:|');
for (const w of [1, all]) console.log(`| ${w} | ${runs[w].bands} | ${median(runs[w]).toFixed(0)} | ${Math.min(...runs[w]).toFixed(0)} |`);
await mkdir(path.join(repo, 'bench/out'), { recursive: true });
await writeFile(
  path.join(repo, 'bench/out/suggestion.json'),
  JSON.stringify({ photo: path.basename(PHOTO), width: info.width, height: info.height, cores: all, runs: Object.fromEntries(Object.entries(runs).map(([w, a]) => [w, { bands: a.bands, ms: [...a] }])) }, null, 1),
);
