// The whole ×4 job on the GPU in the browser (issue 30), side by side in one run on the same
// adapter: the page with ?gpu=on (its GPU worker runs the tiles) and onnxruntime-web's WebGPU
// build running the same fp32 network over the same photo at each of its tiles, load + tiles +
// PNG (bench/web/ort-job.js with ep 'webgpu'); the page's CPU pool (?gpu=off) beside them.
// Runners alternate round by round, each in a fresh context. Prints a table and writes
// bench/out/page_vs_ort_gpu.json.
//
// With no GPU here, the adapter is Chromium's SwiftShader (WebGPU on the CPU), which runs the
// ×4 network at well under a GMAC/s: the photo is a crop of the page benchmark's (BENCH_GPU_CROP,
// 192×128 by default), and the figures say how the two GPU paths compare on one adapter, not
// what a GPU does. On a real GPU: GPU_FLAGS='' (the browser's own adapter) and the whole photo
// (BENCH_GPU_CROP=0).
//
//   node bench/page_vs_ort_gpu.mjs [ROUNDS=1]   (BENCH_ORT_TILES: onnxruntime-web tiles, "64,128")
import path from 'node:path';
import os from 'node:os';
import { writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { serveStatic, launchChromium, python } from '../tests/e2e/harness.mjs';
import { pageRun } from './page_run.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = +(process.argv[2] || 1);
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const source = path.resolve(repo, '../shared/data/dev/gfpgan/whole_imgs/Blake_Lively.jpg');
const crop = (process.env.BENCH_GPU_CROP ?? '192x128').split('x').map(Number);
const ortTiles = (process.env.BENCH_ORT_TILES ?? '64,128').split(',').filter(Boolean).map(Number);
const flags = (process.env.GPU_FLAGS ?? '--enable-unsafe-webgpu --use-webgpu-adapter=swiftshader --enable-features=Vulkan').split(' ').filter(Boolean);
// The photo: the centre crop (lossless PNG), or the whole photo.
await mkdir(path.join(repo, 'bench/out'), { recursive: true });
const photo = crop[0] ? path.join(os.tmpdir(), `unblur-gpu-bench-${crop.join('x')}.png`) : source;
if (crop[0])
  python(
    `
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
w, h = im.size
cw, ch = int(sys.argv[3]), int(sys.argv[4])
im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)).save(sys.argv[2])
`,
    source,
    photo,
    String(crop[0]),
    String(crop[1]),
  );
// The fp32 network the page's default denoise strength runs as int8: the same weights.
const fp32 = path.join(repo, 'models/build', 'realesr-general-x4v3-dn50.fp32.onnx');
const mounts = [['/ort/', path.join(repo, 'node_modules/onnxruntime-web/dist')], ['/photo.jpg', photo], ['/model.onnx', fp32], ['/', path.join(repo, 'bench/web')]];
const hosts = { unblur: await serveStatic([['/', site]]), ort: await serveStatic(mounts) };
const log = (...a) => console.error('[page_vs_ort_gpu]', ...a);

async function unblur(browser, gpu) {
  const t = await pageRun(browser, hosts.unblur.origin, `scale=4&faces=off&deblur=off&gpu=${gpu}`, photo, async (page) => {
    // The GPU worker starts beside the page; the job waits for it, so the timing starts once it has.
    await page.waitForFunction(() => /** @type {any} */ (window).unblur?.gpu?.reason !== 'not started', null, { timeout: 120_000 });
    const g = await page.evaluate(() => /** @type {any} */ (window).unblur.gpu);
    if (gpu === 'on' && !g.active) throw new Error(`the page's GPU did not start: ${g.reason}`);
  });
  return { ms: t.done - t.ready };
}

async function ortJob(browser, tile) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${hosts.ort.origin}/index.html`);
    const r = await page.evaluate(({ tile }) => new Promise((resolve) => {
      const w = new Worker('/ort-job.js', { type: 'module' });
      w.onmessage = ({ data }) => resolve(data);
      w.onerror = (e) => resolve({ error: e.message });
      w.postMessage({ photo: '/photo.jpg', model: '/model.onnx', threads: 1, tile, pad: 10, ep: 'webgpu' });
    }), { tile });
    if (r.error) throw new Error(`onnxruntime-web WebGPU job: ${r.error}`);
    return r;
  } finally {
    await context.close();
  }
}

const runners = [
  { key: 'unblur-gpu', label: 'Unblur page, ?gpu=on (its own tile)', run: (b) => unblur(b, 'on') },
  ...ortTiles.map((t) => ({ key: `ort-webgpu-${t}`, label: `onnxruntime-web WebGPU fp32, ${t}² tiles`, run: (b) => ortJob(b, t) })),
  { key: 'unblur-cpu', label: 'Unblur page, ?gpu=off (the CPU pool)', run: (b) => unblur(b, 'off') },
];
const browser = await launchChromium(flags);
const res = Object.fromEntries(runners.map((r) => [r.key, { label: r.label, runs: [] }]));
let adapter = '?';
try {
  const p = await browser.newPage();
  await p.goto(`${hosts.ort.origin}/index.html`);
  adapter = await p.evaluate(async () => {
    const a = await /** @type {any} */ (navigator).gpu?.requestAdapter();
    return a ? `${a.info.vendor} ${a.info.architecture}${a.info.isFallbackAdapter ? ' (fallback adapter)' : ''}` : 'none';
  });
  await p.close();
  for (let i = 0; i < rounds; i++)
    for (const r of i % 2 ? [...runners].reverse() : runners) {
      try {
        const out = await r.run(browser);
        res[r.key].runs.push(out);
        log(`${r.label}: ${(out.ms / 1000).toFixed(2)} s${out.loadMs ? ` (load ${Math.round(out.loadMs)} ms, tiles ${Math.round(out.runMs)} ms, PNG ${Math.round(out.encodeMs)} ms)` : ''}`);
      } catch (e) {
        res[r.key].error = String(e.message).split('\n')[0].slice(0, 300);
        log(`${r.label}: FAILED ${res[r.key].error}`);
      }
    }
} finally {
  await browser.close();
  for (const h of Object.values(hosts)) h.server.close();
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null; };
for (const r of Object.values(res)) r.median_ms = median(r.runs.map((x) => x.ms));
const own = res['unblur-gpu'].median_ms;
const cell = (r) => (r.median_ms == null ? `failed: ${r.error}` : (r.median_ms / 1000).toFixed(2));
const lines = [`Blake_Lively.jpg ${crop[0] ? `(centre ${crop.join('×')} crop)` : '(700×464)'} ×4, faces off; ${rounds} round(s), each runner in a fresh context; Chromium ${browser.version()}, adapter: ${adapter}.`, '',
  '| runner | median (s) | time ÷ Unblur GPU |', '|---|---:|---:|',
  ...Object.values(res).map((r) => `| ${r.label} | ${cell(r)} | ${own && r.median_ms ? `${(r.median_ms / own).toFixed(2)}×` : '–'} |`)];
console.log(lines.join('\n'));
await writeFile(path.join(repo, 'bench/out/page_vs_ort_gpu.json'), JSON.stringify({ rounds, crop, adapter, runners: res, table: lines.join('\n') }, null, 1));
