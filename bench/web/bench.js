// The bench fixture's page code. bench/browser.mjs drives it through `window.bench`:
//   await bench.setup()                       decodes the photo, compiles Unblur's wasm once
//   await bench.open(name, spec)              starts a runner (workers, model loaded, warmed)
//   await bench.batch(name, count)            times `count` tiles through it
//   await bench.close(name)
// A runner is Unblur's pool (N workers, each its own wasm instance and Net; tiles handed to
// whichever worker is free) or onnxruntime-web in one worker (its own threads, if any).

const PHOTO = '/photo.png';
let rgba = null; // {data, width, height}
const wasmModules = {}; // build dir ('pkg' | 'pkg-relaxed') → compiled module
const runners = {};
const kept = {}; // name → first output (for the cross-check)

function worker(url) {
  const w = new Worker(new URL(url, import.meta.url), { type: 'module' });
  let next = 0;
  const waiting = new Map();
  w.onmessage = ({ data }) => {
    const p = waiting.get(data.id);
    waiting.delete(data.id);
    if (data.ok) p.resolve(data);
    else p.reject(new Error(data.error));
  };
  w.onerror = (e) => {
    for (const p of waiting.values()) p.reject(new Error(`worker error: ${e.message}`));
    waiting.clear();
  };
  w.call = (type, msg = {}, transfer = []) =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      w.postMessage({ id, type, ...msg }, transfer);
    });
  return w;
}

async function setup() {
  const blob = await (await fetch(PHOTO)).blob();
  const bmp = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const img = ctx.getImageData(0, 0, bmp.width, bmp.height);
  rgba = { data: img.data, width: img.width, height: img.height };
  // Both builds; the page itself runs the one web/engine.js picks (relaxed SIMD in Chromium).
  const { engineBuild } = await import('/engine.js');
  for (const dir of ['pkg', 'pkg-relaxed'])
    wasmModules[dir] = await WebAssembly.compileStreaming(fetch(`/${dir}/unblur_web_bg.wasm`)).catch(() => null);
  return {
    pageBuild: engineBuild().dir,
    builds: Object.keys(wasmModules).filter((d) => wasmModules[d]),
    photo: [rgba.width, rgba.height],
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: self.crossOriginIsolated,
    userAgent: navigator.userAgent,
  };
}

// A planar [1,3,h,w] crop at (x, y): RGB in 0..1 ('rgb01'), BGR in 0..255 ('bgr255', YuNet) or
// RGB in -1..1 ('rgbpm1', face models).
function crop(x, y, w, h, kind = 'rgb01') {
  const out = new Float32Array(3 * w * h);
  const plane = w * h;
  for (let j = 0; j < h; j++)
    for (let i = 0; i < w; i++) {
      const s = 4 * ((y + j) * rgba.width + (x + i));
      const p = j * w + i;
      const r = rgba.data[s], g = rgba.data[s + 1], b = rgba.data[s + 2];
      if (kind === 'bgr255') (out[p] = b), (out[plane + p] = g), (out[2 * plane + p] = r);
      else if (kind === 'rgbpm1')
        (out[p] = r / 127.5 - 1), (out[plane + p] = g / 127.5 - 1), (out[2 * plane + p] = b / 127.5 - 1);
      else (out[p] = r / 255), (out[plane + p] = g / 255), (out[2 * plane + p] = b / 255);
    }
  return out;
}

// The photo's whole side×side tiles, row by row (the same list for every runner).
function tiles(side) {
  const list = [];
  for (let y = 0; y + side <= rgba.height; y += side)
    for (let x = 0; x + side <= rgba.width; x += side) list.push(crop(x, y, side, side));
  return list;
}

async function open(name, spec) {
  const { kind, model, workers = 1, threads = 1, side, input = 'tiles', warm = true, build = 'pkg-relaxed', kernel } = spec;
  const data = input === 'tiles' ? tiles(side) : [crop(0, 0, side, side, input)];
  if (!data.length) throw new Error(`the photo has no ${side}² tile`);
  const r = { spec, data, cursor: 0, workers: [] };
  const t0 = performance.now();
  const loads = [];
  if (kind === 'unblur') {
    for (let i = 0; i < workers; i++) r.workers.push(worker('./unblur-worker.js'));
    if (!wasmModules[build]) throw new Error(`no ${build} build`);
    await Promise.all(r.workers.map((w) => w.call('init', { module: wasmModules[build], build })));
    for (const w of r.workers) loads.push(await w.call('load', { url: model, kernel })); // one at a time: fair memory peak
  } else {
    r.workers.push(worker('./ort-worker.js'));
    loads.push(await r.workers[0].call('load', { url: model, threads }));
  }
  r.openMs = performance.now() - t0;
  runners[name] = r;
  // Warm-up: every worker runs the first tile once (tract builds its plan for the shape here;
  // onnxruntime allocates its arenas). Not counted in the batches.
  const first = [];
  if (warm)
    await Promise.all(
      r.workers.map(async (w, i) => {
        const res = await w.call('run', { data: data[0].slice().buffer, h: side, w: side, keep: i === 0 }, []);
        if (res.out) kept[name] = new Float32Array(res.out);
        first.push(res.ms);
      }),
    );
  return { openMs: r.openMs, loads, firstMs: first, tilesAvailable: data.length };
}

// Times `count` tiles (taken round-robin from the list) through the runner: all its workers
// pull from one queue. Returns wall time and each run's in-worker time.
async function batch(name, count) {
  const r = runners[name];
  const side = r.spec.side;
  const queue = [];
  for (let k = 0; k < count; k++) queue.push(r.data[r.cursor++ % r.data.length]);
  const runs = [];
  let outPixels = 0;
  const t0 = performance.now();
  await Promise.all(
    r.workers.map(async (w) => {
      while (queue.length) {
        const d = queue.shift().slice();
        const res = await w.call('run', { data: d.buffer, h: side, w: side, keep: false }, [d.buffer]);
        runs.push(res.ms);
        outPixels += res.outLen / 3;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  return { count, wallMs, runs, outPixels };
}

async function close(name) {
  for (const w of runners[name]?.workers || []) w.terminate();
  delete runners[name];
}

// Where one tile's time goes: tract's plan timed node by node (Net.profile) in the runner's
// first worker, summed per operator kind.
async function profile(name) {
  const r = runners[name];
  const side = r.spec.side;
  const d = r.data[0].slice();
  return (await r.workers[0].call('profile', { data: d.buffer, h: side, w: side }, [d.buffer])).ops;
}

function compare(a, b) {
  const x = kept[a], y = kept[b];
  if (!x || !y) return null;
  if (x.length !== y.length) return { error: `lengths differ: ${x.length} vs ${y.length}` };
  let max = 0, sum = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (d > max) max = d;
    sum += d;
  }
  return { maxAbs: max, meanAbs: sum / x.length };
}

window.bench = { setup, open, batch, close, compare, profile };
window.benchReady = true;
