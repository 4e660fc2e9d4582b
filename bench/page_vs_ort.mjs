// The whole ×4 job in the browser, as a new user times it, against onnxruntime-web at its best:
// the page (drop the photo → download link ready, faces off, the default denoise) at its own
// tile and at others (`?tile=`), and onnxruntime-web running the same network in fp32 over the
// same photo, load + tiles + PNG (bench/web/ort-job.js), with one thread on a static host and
// with threads on a cross-origin-isolated one. Same Chromium; runners alternate round by round,
// each in a fresh context (an empty cache). Prints a table and writes bench/out/page_vs_ort.json.
//
//   node bench/page_vs_ort.mjs [ROUNDS=2]    (UNBLUR_SITE: the site, dist/site by default;
//                                            BENCH_TILES: page tiles besides its own, "96,192";
//                                            BENCH_ORT_TILES: onnxruntime-web tiles, "256")
import path from 'node:path';
import os from 'node:os';
import { writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { serveStatic, launchChromium } from '../tests/e2e/harness.mjs';
import { pageRun } from './page_run.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = +(process.argv[2] || 2);
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const photo = path.resolve(repo, '../shared/data/dev/gfpgan/whole_imgs/Blake_Lively.jpg');
const pageTiles = (process.env.BENCH_TILES ?? '96,192').split(',').filter(Boolean).map(Number);
const ortTiles = (process.env.BENCH_ORT_TILES ?? '256').split(',').filter(Boolean).map(Number);
// The fp32 network the page's default denoise strength runs as int8: the same weights.
const srId = 'realesr-general-x4v3-dn50';
const fp32 = path.join(repo, 'models/build', `${srId}.fp32.onnx`);
const mounts = [['/ort/', path.join(repo, 'node_modules/onnxruntime-web/dist')], ['/photo.jpg', photo], ['/model.onnx', fp32], ['/', path.join(repo, 'bench/web')]];
const isolation = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
const hosts = {
  unblur: await serveStatic([['/', site]]),
  ortStatic: await serveStatic(mounts),
  ortIsolated: await serveStatic(mounts, { headers: isolation }),
};
const threads = os.availableParallelism();
const log = (...a) => console.error('[page_vs_ort]', ...a);

async function unblur(browser, tile, extra = '') {
  const t = await pageRun(browser, hosts.unblur.origin, `scale=4&faces=off${tile ? `&tile=${tile}` : ''}${extra}`, photo);
  return { ms: t.done - t.ready };
}

async function ortJob(browser, host, n, tile) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${host.origin}/index.html`);
    const r = await page.evaluate(({ n, tile }) => new Promise((resolve) => {
      const w = new Worker('/ort-job.js', { type: 'module' });
      w.onmessage = ({ data }) => resolve(data);
      w.onerror = (e) => resolve({ error: e.message });
      w.postMessage({ photo: '/photo.jpg', model: '/model.onnx', threads: n, tile, pad: 10 });
    }), { n, tile });
    if (r.error) throw new Error(`onnxruntime-web job: ${r.error}`);
    if (n > 1 && !r.isolated) throw new Error('the threaded onnxruntime-web page is not cross-origin isolated');
    return r;
  } finally {
    await context.close();
  }
}

const runners = [
  { key: 'unblur', label: "Unblur page, its own tile (static host)", run: (b) => unblur(b) },
  // The onnxruntime-web job only upscales; the page's default job first looks whether the photo
  // is blurred (deblur `auto`: on this 0.3 MP photo its network runs over the whole photo, then
  // leaves it as it is). This row does the same work as onnxruntime-web's.
  { key: 'unblur-deblur-off', label: "Unblur page, its own tile, ?deblur=off (static host)", run: (b) => unblur(b, 0, '&deblur=off') },
  ...pageTiles.map((t) => ({ key: `unblur-${t}`, label: `Unblur page, ?tile=${t} (static host)`, run: (b) => unblur(b, t) })),
  ...ortTiles.map((t) => ({ key: `ort-1-${t}`, label: `onnxruntime-web fp32, 1 thread, ${t}² tiles (static host)`, run: (b) => ortJob(b, hosts.ortStatic, 1, t) })),
  ...ortTiles.map((t) => ({ key: `ort-${threads}-${t}`, label: `onnxruntime-web fp32, ${threads} threads, ${t}² tiles (isolated host)`, run: (b) => ortJob(b, hosts.ortIsolated, threads, t) })),
];
const browser = await launchChromium();
const res = Object.fromEntries(runners.map((r) => [r.key, { label: r.label, runs: [] }]));
try {
  for (let i = 0; i < rounds; i++)
    for (const r of i % 2 ? [...runners].reverse() : runners) {
      const out = await r.run(browser);
      res[r.key].runs.push(out);
      log(`${r.label}: ${(out.ms / 1000).toFixed(2)} s${out.loadMs ? ` (load ${Math.round(out.loadMs)} ms, tiles ${Math.round(out.runMs)} ms, PNG ${Math.round(out.encodeMs)} ms)` : ''}`);
    }
} finally {
  await browser.close();
  for (const h of Object.values(hosts)) h.server.close();
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
for (const r of Object.values(res)) r.median_ms = median(r.runs.map((x) => x.ms));
const best = (prefix) => Math.min(...Object.entries(res).filter(([k]) => k.startsWith(prefix)).map(([, r]) => r.median_ms));
const own = res.unblur.median_ms;
const ratios = {
  vs_ort_single_thread: best('ort-1-') / own,
  vs_ort_threaded: best(`ort-${threads}-`) / own,
  // Like for like: the page without deblur `auto`'s look, which onnxruntime-web's job does not make.
  deblur_off_vs_ort_threaded: best(`ort-${threads}-`) / res['unblur-deblur-off'].median_ms,
};
const lines = [`Blake_Lively.jpg (700×464) ×4, faces off; ${rounds} alternating rounds, each in a fresh context; Chromium ${browser.version()}, ${threads} CPUs.`, '',
  '| runner | median (s) | time ÷ Unblur (own tile) |', '|---|---:|---:|',
  ...Object.values(res).map((r) => `| ${r.label} | ${(r.median_ms / 1000).toFixed(2)} | ${(r.median_ms / own).toFixed(2)}× |`), '',
  `Against onnxruntime-web at its best tile: ${ratios.vs_ort_single_thread.toFixed(2)}× its single-thread time (aim ≥ 1.5×), ${ratios.vs_ort_threaded.toFixed(2)}× its threaded time (aim ≥ 1×); `
  + `with deblur off (the same work as onnxruntime-web's job: no look for blur), ${ratios.deblur_off_vs_ort_threaded.toFixed(2)}× its threaded time.`];
console.log(lines.join('\n'));
await mkdir(path.join(repo, 'bench/out'), { recursive: true });
await writeFile(path.join(repo, 'bench/out/page_vs_ort.json'), JSON.stringify({ rounds, threads, runners: res, ratios, table: lines.join('\n') }, null, 1));
