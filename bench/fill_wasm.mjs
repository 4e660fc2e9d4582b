// The repair fill in the page's wasm (the relaxed-SIMD bench build, dist/bench-pkg), in node:
// bench/stages.py runs it on the same photo and masks as its native rows.
//
//   node --experimental-wasm-relaxed-simd bench/fill_wasm.mjs PHOTO MASK REPS
//
// Prints the wasm's JSON `{pixels, masked, runs_ms}` (bench_fill in web/wasm).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = path.resolve(process.env.BENCH_PKG || path.join(repo, 'dist/bench-pkg'), 'pkg-relaxed');
const [photo, mask, reps] = process.argv.slice(2);
const glue = await import(path.join(pkg, 'unblur_web.js'));
glue.initSync({ module: readFileSync(path.join(pkg, 'unblur_web_bg.wasm')) });
console.log(glue.bench_fill(readFileSync(photo), readFileSync(mask), +reps));
