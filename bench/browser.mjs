// Browser benchmark: Unblur's wasm (a pool of workers, each its own Net) against
// onnxruntime-web's wasm backend on the same ONNX and the same tiles of a real photo,
// in headless Chromium (Debian's /usr/bin/chromium via playwright-core).
//
//   node bench/browser.mjs            (after `bash web/build.sh dev` and `npm install --no-save onnxruntime-web`)
//
// Environment: BENCH_ROUNDS (3), BENCH_SIDE (96: the CLI's tile, upscale::TILE natively; the page's
// 256² tiles are timed in its whole job by bench/page_vs_ort.mjs), BENCH_POOL_PER_WORKER (2 tiles per worker
// per round), BENCH_ORT_TILES (2 per round), BENCH_FACE (1: GFPGAN once; 0: skip),
// BENCH_YUNET_RUNS (3), BENCH_SINGLES_ONLY (0; 1: only the one-network rows), BENCH_OUT (bench/out/browser.json), UNBLUR_SITE, CHROMIUM.
//
// Two servers on 127.0.0.1 serve the same files: a plain static one (what a static host gives:
// no SharedArrayBuffer, so onnxruntime-web gets one thread) and a cross-origin-isolated one
// (COOP same-origin + COEP require-corp on every response) for onnxruntime-web's threads.
// Both pages are open at once and the runners' batches alternate round by round, so the
// machine's background load falls on all of them alike.

import { createServer } from 'node:http';
import { readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const env = (k, d) => (process.env[k] !== undefined ? process.env[k] : d);
const SITE = path.resolve(env('UNBLUR_SITE', path.join(repo, 'dist/site')));
const ROUNDS = +env('BENCH_ROUNDS', 3);
const SIDE = +env('BENCH_SIDE', 96);
const POOL_PER_WORKER = +env('BENCH_POOL_PER_WORKER', 2);
const ORT_TILES = +env('BENCH_ORT_TILES', 2);
const FACE = env('BENCH_FACE', '1') !== '0';
// Only the one-network rows (YuNet, the face models): a quick measurement of the face stage.
const SINGLES_ONLY = env('BENCH_SINGLES_ONLY', '0') === '1';
const YUNET_RUNS = +env('BENCH_YUNET_RUNS', 3);
const OUT = path.resolve(env('BENCH_OUT', path.join(repo, 'bench/out/browser.json')));
const PHOTO = path.resolve(repo, '../shared/data/dev/codeformer/whole_imgs/02.png');

// The bench builds of the engine (web/build.sh with UNBLUR_BENCH_BUILDS): the site's engine plus
// the profiler and the switch between GEMM kernels.
const BENCH_PKG = path.resolve(env('BENCH_PKG', path.join(repo, 'dist/bench-pkg')));
const ROOTS = [
  ['/pkg/', path.join(BENCH_PKG, 'pkg')],
  ['/pkg-relaxed/', path.join(BENCH_PKG, 'pkg-relaxed')],
  ['/engine.js', path.join(SITE, 'engine.js')],
  ['/models/', path.join(repo, 'models/build')],
  ['/ort/', path.join(repo, 'node_modules/onnxruntime-web/dist')],
  ['/', path.join(here, 'web')],
];
const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', '.onnx': 'application/octet-stream', '.png': 'image/png', '.json': 'application/json',
};

function serve(isolated) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    let p = null;
    if (url.pathname === '/photo.png') p = PHOTO;
    else
      for (const [prefix, dir] of ROOTS)
        if (url.pathname.startsWith(prefix)) {
          p = path.join(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
          if (!p.startsWith(dir)) return res.writeHead(403).end();
          break;
        }
    const headers = { 'cache-control': 'no-cache' };
    if (isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    try {
      if ((await stat(p)).isDirectory()) p = path.join(p, 'index.html');
      const body = await readFile(p);
      res.writeHead(200, { ...headers, 'content-type': MIME[path.extname(p)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

const log = (...a) => console.error('[browser]', ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function flops(model, h, w) {
  try {
    return JSON.parse(execFileSync('python3', [path.join(here, 'flops.py'), path.join(repo, model), String(h), String(w)], { encoding: 'utf8' })).flops;
  } catch (e) {
    log(`no FLOP count for ${model}: ${e.message}`);
    return null;
  }
}

const servers = [await serve(false), await serve(true)];
const origin = (s) => `http://127.0.0.1:${s.address().port}/`;
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-renderer-backgrounding',
    '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows'],
});
const context = await browser.newContext();
const result = { chromium: browser.version(), rounds: ROUNDS, side: SIDE, runners: {}, checks: {} };
try {
  const pages = {};
  for (const [key, s] of [['static', servers[0]], ['isolated', servers[1]]]) {
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && log(`${key} console: ${m.text()}`));
    page.on('pageerror', (e) => log(`${key} page error: ${e.message}`));
    await page.goto(origin(s));
    await page.waitForFunction(() => window.benchReady, null, { timeout: 30_000 });
    pages[key] = { page, info: await page.evaluate(() => window.bench.setup()) };
    log(key, JSON.stringify(pages[key].info));
  }
  if (!pages.isolated.info.crossOriginIsolated) throw new Error('the isolated page is not crossOriginIsolated');
  if (pages.static.info.crossOriginIsolated) throw new Error('the static page is crossOriginIsolated');
  const N = pages.static.info.hardwareConcurrency;
  result.hardwareConcurrency = N;
  result.userAgent = pages.static.info.userAgent;
  result.photo = pages.static.info.photo;

  const SR = 'realesr-general-x4v3';
  const srFlops = flops(`models/build/${SR}.fp32.onnx`, SIDE, SIDE);
  // Unblur runs the build the page picks (pkg-relaxed in Chromium) unless a row says otherwise;
  // the 1-worker rows below the pool show what each of the product's choices won.
  const st = pages.static.page;
  if (!SINGLES_ONLY) {
    const one = (name, label, extra) => ({ name, page: 'static', kind: 'unblur', model: `/models/${SR}.fp16.onnx`, workers: 1, per: ORT_TILES, label, ...extra });
    const specs = [
      { name: 'unblur-pool-fp32', page: 'static', kind: 'unblur', model: `/models/${SR}.fp32.onnx`, workers: N, per: N * POOL_PER_WORKER, label: `Unblur wasm, pool of ${N} workers, fp32 file` },
      { name: 'unblur-pool-fp16', page: 'static', kind: 'unblur', model: `/models/${SR}.fp16.onnx`, workers: N, per: N * POOL_PER_WORKER, label: `Unblur wasm, pool of ${N} workers, fp16 file (shipped)` },
      one('unblur-1w-fp16', 'Unblur wasm, 1 worker, fp16 file'),
      { name: 'ort-st-fp32', page: 'static', kind: 'ort', model: `/models/${SR}.fp32.onnx`, threads: 1, per: ORT_TILES, label: 'ort-web wasm SIMD, 1 thread (static host), fp32' },
      { name: 'ort-st-fp16', page: 'static', kind: 'ort', model: `/models/${SR}.fp16.onnx`, threads: 1, per: ORT_TILES, label: 'ort-web wasm SIMD, 1 thread (static host), fp16 file' },
      { name: 'ort-mt-fp32', page: 'isolated', kind: 'ort', model: `/models/${SR}.fp32.onnx`, threads: N, per: ORT_TILES, label: `ort-web wasm SIMD, ${N} threads (COOP/COEP), fp32` },
      { name: 'unblur-pool-iso-fp16', page: 'isolated', kind: 'unblur', model: `/models/${SR}.fp16.onnx`, workers: N, per: N * POOL_PER_WORKER, label: `Unblur wasm, pool of ${N}, fp16, on the isolated page` },
      one('unblur-1w-simd128', '1 worker, SIMD128 build (no relaxed SIMD), Unblur 4×8 kernel', { build: 'pkg', choice: true }),
      one('unblur-1w-tract', "1 worker, relaxed build, tract's own 8×8 GEMM kernel", { kernel: 'tract', choice: true }),
      one('unblur-1w-simd128-tract', "1 worker, SIMD128 build, tract's own 8×8 kernel (tract as shipped)", { build: 'pkg', kernel: 'tract', choice: true }),
      one('unblur-1w-2x16', '1 worker, relaxed build, 2×16 kernel (MLAS-like)', { kernel: 'unblur_f32_2x16', choice: true }),
      one('unblur-1w-8x4', '1 worker, relaxed build, 8×4 kernel', { kernel: 'unblur_f32_8x4', choice: true }),
      one('unblur-1w-8x8', '1 worker, relaxed build, 8×8 kernel (splat loads)', { kernel: 'unblur_f32_8x8', choice: true }),
    ];
    for (const s of specs) {
      const t = Date.now();
      const r = await pages[s.page].page.evaluate(([n, sp]) => window.bench.open(n, sp), [s.name, { ...s, side: SIDE }]);
      result.runners[s.name] = { label: s.label, model: s.model, kind: s.kind, build: s.kind === 'unblur' ? s.build || 'pkg-relaxed' : null, kernel: s.kernel || null, choice: !!s.choice, workers: s.workers || 1, threads: s.threads || 1, flopsPerTile: srFlops, open: r, batches: [] };
      log(`${s.name}: open ${(Date.now() - t) / 1e3}s, first run ${r.firstMs.map((x) => x.toFixed(0)).join('/')} ms`);
    }
    for (let round = 0; round < ROUNDS; round++)
      for (const s of specs) {
        const b = await pages[s.page].page.evaluate(([n, c]) => window.bench.batch(n, c), [s.name, s.per]);
        result.runners[s.name].batches.push(b);
        log(`round ${round + 1} ${s.name}: ${b.count} tiles in ${b.wallMs.toFixed(0)} ms (${(b.wallMs / b.count).toFixed(0)} ms/tile)`);
      }
    result.checks['unblur-fp32 vs ort-fp32 (tile 0)'] = await st.evaluate(() => window.bench.compare('unblur-pool-fp32', 'ort-st-fp32'));
    result.checks['unblur-fp16 vs unblur-fp32 (tile 0)'] = await st.evaluate(() => window.bench.compare('unblur-pool-fp16', 'unblur-pool-fp32'));
    result.checks['ort-threads vs ort-1 (tile 0)'] = null; // different pages; same library
    // Where a tile's time goes, with Unblur's kernel and with tract's own.
    result.profile = {};
    for (const n of ['unblur-1w-fp16', 'unblur-1w-tract'])
      result.profile[n] = { label: result.runners[n].label, ops: await st.evaluate((k) => window.bench.profile(k), n) };
    result.checks["unblur 4×8 kernel vs tract's kernel (tract, tile 0)"] = await st.evaluate(() => window.bench.compare('unblur-1w-fp16', 'unblur-1w-tract'));
    result.checks['SIMD128 build vs relaxed build (tile 0)'] = await st.evaluate(() => window.bench.compare('unblur-1w-simd128', 'unblur-1w-fp16'));
    for (const s of specs) await pages[s.page].page.evaluate((n) => window.bench.close(n), s.name);

    // Summaries: ms per tile from the total wall time of all rounds.
    for (const [, r] of Object.entries(result.runners)) {
      const count = r.batches.reduce((a, b) => a + b.count, 0);
      const wall = r.batches.reduce((a, b) => a + b.wallMs, 0);
      const px = r.batches.reduce((a, b) => a + b.outPixels, 0);
      const runs = r.batches.flatMap((b) => b.runs);
      r.tiles = count;
      r.msPerTile = wall / count;
      r.outMpps = px / wall / 1e3;
      r.medianRunMs = median(runs);
      r.bestBatchMsPerTile = Math.min(...r.batches.map((b) => b.wallMs / b.count));
      r.gflops = srFlops ? srFlops / r.msPerTile / 1e6 : null;
    }

  }

  // YuNet at 640×640 (the shipped int8 file, folded to f32 by Unblur) and GFPGAN at 512×512.
  const single = async (name, spec, runs, label, flopsModel) => {
    const t = Date.now();
    const open = await st.evaluate(([n, sp]) => window.bench.open(n, sp), [name, spec]);
    const batches = [];
    for (let i = 0; i < runs; i++) batches.push(await st.evaluate((n) => window.bench.batch(n, 1), name));
    await st.evaluate((n) => window.bench.close(n), name);
    const elapsed = (Date.now() - t) / 1e3;
    const f = flops(flopsModel, spec.side, spec.side);
    const ms = runs ? median(batches.map((b) => b.runs[0])) : open.firstMs[0];
    result.runners[name] = { label, model: spec.model, kind: spec.kind, open, batches, msPerRun: ms, flops: f, gflops: f ? f / ms / 1e6 : null };
    log(`${name}: ${elapsed}s in all; ${ms.toFixed(0)} ms per run`);
  };
  const yunet = { model: '/models/yunet.int8.onnx', side: 640, input: 'bgr255' };
  await single('unblur-yunet', { ...yunet, kind: 'unblur' }, YUNET_RUNS, 'Unblur wasm, YuNet 640×640 (int8 file)', 'models/build/yunet.int8.onnx');
  await single('ort-st-yunet', { ...yunet, kind: 'ort', threads: 1 }, YUNET_RUNS, 'ort-web 1 thread, YuNet 640×640 (int8 file)', 'models/build/yunet.int8.onnx');
  // Unblur's own face model in the form the page ships, on one aligned 256² face: the time the
  // page spends per face with it (a warm-up run, then YUNET_RUNS runs).
  const built = JSON.parse(await readFile(path.join(SITE, 'models/manifest.json'), 'utf8'));
  const own = built.models.find((m) => m.id === 'unblur-face' && m.ship);
  if (own) {
    const file = own.artifacts[own.ship].file;
    await single('unblur-face', { kind: 'unblur', model: `/models/${file}`, side: 256, input: 'rgbpm1' }, YUNET_RUNS,
      `Unblur wasm, Unblur's face model 256×256 (${own.ship} file)`, `models/build/${file}`);
    // Beside it, the SR fallback on the crop it runs for a 128-px face (the shipped SR form).
    const sr = built.models.find((m) => m.default && m.task === 'super-resolution');
    const srFile = sr.artifacts[sr.ship].file;
    await single('unblur-sr-face128', { kind: 'unblur', model: `/models/${srFile}`, side: 128, input: 'rgb01' }, YUNET_RUNS,
      `Unblur wasm, SR fallback on a 128×128 face crop (${sr.ship} file)`, `models/build/${srFile}`);
  }
  // The 512² face model of issue 29 (not shipped; bench/face.py exports it there), fp32, on the
  // same aligned 256² face: its output is the 512² template face.
  if (await stat(path.join(repo, 'models/build/unblur-face-512-candidate.onnx')).catch(() => null))
    await single('unblur-face-512', { kind: 'unblur', model: '/models/unblur-face-512-candidate.onnx', side: 256, input: 'rgbpm1' }, YUNET_RUNS,
      'Unblur wasm, the 512² face model candidate 256×256 → 512×512 (fp32 file)', 'models/build/unblur-face-512-candidate.onnx');
  // The whole-photo stages' networks in the forms the site ships: the deblurring network on one of
  // its 288² tiles (256² owned + 16 px of context each side), the damage detector on 640² (the photo
  // is 645 px high; the core runs it on a copy of up to 1 MP, in bands of up to 768 rows seen with
  // 64 rows of context: a 640-row window is one band of 512 owned rows).
  for (const [id, side, what] of [['unblur-deblur', 288, 'one deblur tile 288×288'], ['unblur-repair', 640, 'the damage detector on 640×640 (0.41 MP)']]) {
    const m = built.models.find((e) => e.id === id && e.ship);
    if (!m) continue;
    const file = m.artifacts[m.ship].file;
    await single(id, { kind: 'unblur', model: `/models/${file}`, side, input: 'rgb01' }, YUNET_RUNS, `Unblur wasm, ${what} (${m.ship} file)`, `models/build/${file}`);
  }
  if (FACE)
    // Once: the first run builds tract's plan and runs it (no separate warm-up: it is big).
    await single('unblur-gfpgan', { kind: 'unblur', model: '/models/export/gfpgan.onnx', side: 512, input: 'rgbpm1' }, 0,
      'Unblur wasm, GFPGAN architecture 512×512 (first run, incl. plan)', 'models/build/export/gfpgan.onnx');
} finally {
  await browser.close();
  for (const s of servers) s.close();
}

await mkdir(path.dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 1));
log(`wrote ${OUT}`);
