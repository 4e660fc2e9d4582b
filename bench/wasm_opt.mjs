// Which wasm-opt level the site's wasm gets (web/build.sh): each level's time, its size as gzip,
// and how fast the networks run in it, side by side in one process (node, V8 as in Chromium).
//
//   node --experimental-wasm-relaxed-simd bench/wasm_opt.mjs [simd128|relaxed] [model.onnx:side ...]
//
// Needs the fat-LTO wasm (`make serve` builds it in target-wasm/…/dist) and the built models.
// Prints a table; writes bench/out/wasm_opt-<build>.json.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, mkdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = process.argv[2] || 'simd128';
const crate = { simd128: 'unblur_web', relaxed: 'unblur_web_relaxed' }[build];
if (!crate) throw new Error(`unknown build ${build}: simd128 or relaxed`);
const nets = process.argv.length > 3 ? process.argv.slice(3) : ['realesr-general-x4v3.int8.onnx:128', 'realesr-general-x4v3.fp16.onnx:128', 'unblur-deblur.int8.onnx:288'];
const linked = path.join(repo, 'target-wasm/wasm32-unknown-unknown/dist', `${crate}.wasm`);
const wasmOpt = path.join(repo, 'node_modules/.bin/wasm-opt');
const flags = ['--enable-simd', ...(build === 'relaxed' ? ['--enable-relaxed-simd'] : []), '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals'];
const dir = mkdtempSync(path.join(tmpdir(), 'wasm-opt-'));
execFileSync('wasm-bindgen', ['--target', 'web', '--no-typescript', '--out-name', 'unblur_web', '--out-dir', dir, linked]);

const levels = ['none', '-O1', '-O2', '-O3'];
const rows = {};
for (const level of levels) {
  const sub = path.join(dir, level);
  mkdirSync(sub);
  copyFileSync(path.join(dir, 'unblur_web.js'), path.join(sub, 'unblur_web.js'));
  const out = path.join(sub, 'unblur_web_bg.wasm');
  const t0 = performance.now();
  if (level === 'none') copyFileSync(path.join(dir, 'unblur_web_bg.wasm'), out);
  else execFileSync(wasmOpt, [level, ...flags, path.join(dir, 'unblur_web_bg.wasm'), '-o', out]);
  const bytes = readFileSync(out);
  rows[level] = { optSeconds: (performance.now() - t0) / 1000, bytes: statSync(out).size, gzip: gzipSync(bytes, { level: 9 }).length, runMs: {} };
  const m = await import(path.join(sub, 'unblur_web.js'));
  m.initSync({ module: bytes });
  rows[level].module = m;
}
for (const [file, side] of nets.map((s) => s.split(':'))) {
  const model = readFileSync(path.join(repo, 'models/build', file));
  const n = +side;
  const input = new Float32Array(3 * n * n).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  const loaded = levels.map((l) => new rows[l].module.Net(model));
  loaded.forEach((net) => net.run(input, n, n)); // tract's plan, built once per shape
  const times = levels.map(() => []);
  // Round-robin, so the machine's background load falls on every level alike; the best of 4.
  for (let r = 0; r < 4; r++)
    loaded.forEach((net, k) => {
      const t = performance.now();
      net.run(input, n, n);
      times[k].push(performance.now() - t);
    });
  levels.forEach((l, k) => (rows[l].runMs[`${file} ${n}²`] = Math.min(...times[k])));
}
const out = Object.fromEntries(levels.map((l) => [l, { ...rows[l], module: undefined }]));
console.log(`| ${build} | wasm-opt s | MB | MB gzip | ${nets.join(' ms | ')} ms |`);
console.log(`|---|---:|---:|---:|${nets.map(() => '---:').join('|')}|`);
for (const l of levels) {
  const r = out[l];
  console.log(`| ${l} | ${r.optSeconds.toFixed(0)} | ${(r.bytes / 1e6).toFixed(2)} | ${(r.gzip / 1e6).toFixed(2)} | ${Object.values(r.runMs).map((v) => v.toFixed(0)).join(' | ')} |`);
}
mkdirSync(path.join(repo, 'bench/out'), { recursive: true });
writeFileSync(path.join(repo, `bench/out/wasm_opt-${build}.json`), JSON.stringify(out, null, 1));
