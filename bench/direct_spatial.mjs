// Measures tract's direct spatial convolution against im2col + GEMM in wasm: the knob
// TRACT_DISABLE_DIRECT_SPATIAL, which the core sets for every front end (src/engine.rs), decided
// on this measurement and bench/native.py's. tract takes the direct path for a convolution whose
// output rows reach 128 points: SR tiles from 128², the face crops and every 512² face model.
// Side by side in one run, each case with the knob off then on, in the bench build of the engine
// (dist/bench-pkg/pkg-relaxed, web/build.sh with UNBLUR_BENCH_BUILDS), one thread (Node, relaxed
// SIMD behind its flag). Prints a table and writes bench/out/direct-spatial.json.
//
//   node --experimental-wasm-relaxed-simd bench/direct_spatial.mjs      RUNS=2

import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const pkg = path.join(repo, 'dist/bench-pkg/pkg-relaxed');
const RUNS = Math.max(1, +(process.env.RUNS || 2));
const glue = await import(path.join(pkg, 'unblur_web.js'));
await glue.default({ module_or_path: await readFile(path.join(pkg, 'unblur_web_bg.wasm')) });

const build = (f) => path.join(repo, 'models/build', f);
const cases = [
  { name: 'SR realesr-general-x4v3 (fp16), 96² tile', file: build('realesr-general-x4v3.fp16.onnx'), side: 96 },
  { name: 'SR realesr-general-x4v3 (fp16), 128² tile', file: build('realesr-general-x4v3.fp16.onnx'), side: 128 },
  { name: 'SR realesr-general-x4v3 (fp16), 256² crop', file: build('realesr-general-x4v3.fp16.onnx'), side: 256 },
  { name: 'GFPGAN layout (random weights), 512² face', file: build('export/gfpgan.onnx'), side: 512, face: true },
];

const rows = [];
for (const c of cases) {
  const bytes = new Uint8Array(await readFile(c.file));
  const x = new Float32Array(3 * c.side * c.side).map((_, i) => Math.sin(i * 0.001) * 0.5);
  const row = { name: c.name, side: c.side };
  // Both plans are built first (the knob is read when a plan is optimised), then the runs
  // alternate between them, so that neither gets the machine's quieter moments.
  const nets = {};
  for (const disabled of [false, true]) {
    if (!glue.set_tract_knob('TRACT_DISABLE_DIRECT_SPATIAL', String(disabled))) throw new Error('no such knob');
    nets[disabled] = c.face ? glue.Net.face(bytes, undefined) : new glue.Net(bytes);
    nets[disabled].run(x, c.side, c.side).free();
  }
  const times = { false: [], true: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const disabled of r % 2 ? [true, false] : [false, true]) {
      const t0 = performance.now();
      nets[disabled].run(x, c.side, c.side).free();
      times[disabled].push(performance.now() - t0);
    }
  }
  nets[false].free();
  nets[true].free();
  row.direct_ms = Math.min(...times.false);
  row.im2col_ms = Math.min(...times.true);
  row.ratio = row.direct_ms / row.im2col_ms;
  rows.push(row);
  console.log(`${c.name}: direct ${row.direct_ms.toFixed(0)} ms, im2col ${row.im2col_ms.toFixed(0)} ms (direct/im2col ${row.ratio.toFixed(2)})`);
}
glue.set_tract_knob('TRACT_DISABLE_DIRECT_SPATIAL', undefined);

const table = ['| case (wasm, relaxed SIMD, 1 thread) | direct spatial (ms) | im2col + GEMM (ms) | direct / im2col |', '|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.direct_ms.toFixed(0)} | ${r.im2col_ms.toFixed(0)} | ${r.ratio.toFixed(2)} |`)].join('\n');
console.log(`\n${table}`);
await mkdir(path.join(repo, 'bench/out'), { recursive: true });
await writeFile(path.join(repo, 'bench/out/direct-spatial.json'), JSON.stringify({ when: new Date().toISOString(), node: process.version, runs: RUNS, rows, markdown: table }, null, 1) + '\n');
