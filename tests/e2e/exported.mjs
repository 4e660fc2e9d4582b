// Proves that every architecture exported by `models/export.py --all-random` loads and runs in
// tract *in wasm, in Chromium*, matching PyTorch's output (rel err = ||a−b||₂/||b||₂ ≤ 1e-3),
// and records each one's load and run time. Not a product test: it drives the product's wasm
// (`Net` from dist/site/pkg-relaxed, the build Chromium runs) through a fixture page (tests/e2e/exported/) in Web Workers, one
// fresh worker per architecture (terminated after, to free its wasm heap).
//
//   node tests/e2e/exported.mjs       ARCHS=gpen-bfr-512,rrdbnet-x4  UNBLUR_SITE=dir  EXPORT_DIR=dir
//                                     CHROMIUM=path  ARCH_TIMEOUT_S=1200  RUNS=2
//
// "run s" is the first run, which includes tract building and optimising its plan for the input
// shape (what the page pays for the first face or tile); with RUNS ≥ 2 (the default) "again s" is
// the fastest later run on the same input, the inference alone. "heap" is the wasm memory's peak.
// Builds the site first (bash web/build.sh dev) if dist/site/pkg/unblur_web_bg.wasm is missing.
// Writes bench/out/exported-wasm.json. Prints "N passed, M failed" last; exits non-zero on any
// failure.

import { readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { serveStatic, launchChromium } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const exported = path.resolve(process.env.EXPORT_DIR || path.join(repo, 'models/build/export'));
const fixture = path.join(here, 'exported');
const outFile = path.join(repo, 'bench/out/exported-wasm.json');
// `pth:ARCH`: the random-weight checkpoint in upstream's layout (models/checkpoints.py), converted
// by the product's Rust converter in wasm (fp32), against PyTorch on the same file.
// `gemm-kernels`: every wasm GEMM kernel against a plain reference (src/engine/gemm_check.rs), in the
// bench build of the engine (dist/bench-pkg: UNBLUR_BENCH_BUILDS=relaxed bash web/build.sh dev).
const ALL = ['gemm-kernels', 'gfpgan', 'codeformer', 'gpen-bfr-512', 'restoreformer++', 'rrdbnet-x4', 'rrdbnet-x2', 'pth:gfpgan', 'pth:codeformer'];
const benchPkg = path.resolve(process.env.BENCH_PKG || path.join(repo, 'dist/bench-pkg'));
const checkpoints = path.resolve(process.env.CHECKPOINT_DIR || path.join(repo, 'models/build/checkpoints'));
const archs = process.env.ARCHS ? process.env.ARCHS.split(',').map((s) => s.trim()).filter(Boolean) : ALL;
const ARCH_TIMEOUT = (+process.env.ARCH_TIMEOUT_S || 1200) * 1000;
const RUNS = Math.max(1, +(process.env.RUNS ?? 2) || 1);
const t00 = Date.now();

// ---------- the site (built if missing) ----------

const wasmFile = path.join(site, 'pkg-relaxed/unblur_web_bg.wasm');
if (!(await stat(wasmFile).catch(() => null))) {
  console.log(`${path.relative(repo, wasmFile)} is missing: bash web/build.sh dev (several minutes)`);
  const b = spawnSync('bash', ['web/build.sh', 'dev'], { cwd: repo, stdio: 'inherit' });
  if (b.status !== 0) {
    console.log(`FAIL setup: web/build.sh dev exited with ${b.status}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

// ---------- a static server: / → the site, /export/ → the exports, /test/ → the fixture ----------

const { server, origin } = await serveStatic([['/export/', exported], ['/checkpoints/', checkpoints], ['/bench-pkg/', benchPkg], ['/test/', fixture], ['/', site]]);

// ---------- run ----------

const fmt = (v, d) => (v == null || Number.isNaN(v) ? '—' : v.toFixed(d));
const results = [];
let passed = 0;
let failed = 0;
let browser, page;
const browserLogs = [];

async function openPage() {
  page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && browserLogs.push(m.text()));
  page.on('pageerror', (e) => browserLogs.push(`pageerror: ${e.message}`));
  page.on('crash', () => browserLogs.push('the page crashed'));
  await page.goto(`${origin}/test/`);
  await page.waitForFunction(() => typeof window.runArch === 'function');
}

try {
  browser = await launchChromium();
  console.log(`Chromium ${browser.version()}; wasm ${path.relative(repo, wasmFile)}; exports ${path.relative(repo, exported)}; ${os.cpus().length} cores`);
  await openPage();
  for (const arch of archs) {
    const t0 = Date.now();
    let r;
    const metaFile = arch.startsWith('pth:') ? path.join(checkpoints, `${arch.slice(4)}.json`) : path.join(exported, `${arch}.json`);
    const meta = arch === 'gemm-kernels' ? {} : await readFile(metaFile, 'utf8').then(JSON.parse).catch((e) => e);
    if (meta instanceof Error) {
      r = { arch, ok: false, error: `no export for '${arch}': ${meta.message}` };
    } else {
      try {
        r = await page.evaluate(([a, t, n]) => window.runArch(a, t, n), [arch, ARCH_TIMEOUT, RUNS]);
      } catch (e) {
        // The renderer died (a crash, or the OS killed it for memory): note it and start again.
        r = { arch, ok: false, error: `the page died: ${e.message.split('\n')[0]}` };
        await page.close().catch(() => {});
        await openPage();
      }
    }
    r.wall_s = (Date.now() - t0) / 1000;
    if (r.rerun_ms?.length) r.again_ms = Math.min(...r.rerun_ms);
    if (r.bytes == null) r.bytes = await stat(path.join(exported, `${arch}.onnx`)).then((s) => s.size).catch(() => null);
    results.push(r);
    if (r.ok) passed++;
    else failed++;
    const mb = r.bytes == null ? '—' : (r.bytes / 1e6).toFixed(1);
    const conv = r.convert_ms != null ? `convert ${fmt(r.convert_ms / 1e3, 2)} s, ` : '';
    const fids = r.fidelities?.length > 1
      ? ` [${r.fidelities.map((f) => `w=${f.w}: ${f.rel_err.toExponential(2)}`).join(', ')}]`
      : r.kernels
        ? ` [${r.kernels.map((k) => `${k.name}: ${k.worst.toExponential(1)}${k.used ? '' : ' (not used)'}`).join(', ')}]`
        : '';
    const what = r.ok
      ? `rel err ${r.rel_err.toExponential(2)}${fids}`
      : `${r.stage ? `[${r.stage}] ` : ''}${r.error}${r.heap_at_error_mib ? ` (wasm heap ${r.heap_at_error_mib} MiB)` : ''}`;
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${arch}: ${mb} MB, ${conv}load ${fmt(r.load_ms / 1e3, 2)} s, run ${fmt(r.run_ms / 1e3, 2)} s, again ${fmt(r.again_ms / 1e3, 2)} s, heap ${r.heap_peak_mib ?? r.heap_after_run_mib ?? r.heap_after_load_mib ?? '—'} MiB — ${what} (${r.wall_s.toFixed(1)} s)`);
    if (!r.ok && r.logs?.length) console.log(`     worker console:\n       ${r.logs.slice(-15).join('\n       ')}`);
    if (!r.ok && r.stack) console.log(`     stack:\n       ${r.stack.split('\n').slice(0, 6).join('\n       ')}`);
  }
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.message}`);
} finally {
  await browser?.close().catch(() => {});
  server.close();
}

// ---------- the table and the JSON ----------

const rows = [['arch', 'onnx MB', 'load s', 'run s', 'again s', 'heap MiB', 'rel err', 'result']].concat(
  results.map((r) => [
    r.arch,
    r.bytes == null ? '—' : (r.bytes / 1e6).toFixed(1),
    fmt(r.load_ms / 1e3, 2),
    fmt(r.run_ms / 1e3, 2),
    fmt(r.again_ms / 1e3, 2),
    String(r.heap_peak_mib ?? r.heap_at_error_mib ?? '—'),
    r.rel_err == null ? '—' : r.rel_err.toExponential(2),
    r.ok ? 'ok' : `FAIL: ${r.error}`,
  ]),
);
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
console.log('');
for (const [i, row] of rows.entries()) {
  console.log(row.map((c, j) => (j === 0 || j === row.length - 1 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ').trimEnd());
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
const total_s = (Date.now() - t00) / 1000;
console.log(`total ${total_s.toFixed(1)} s`);
if (browserLogs.length) console.log(`browser console errors:\n  ${browserLogs.slice(0, 20).join('\n  ')}`);

await mkdir(path.dirname(outFile), { recursive: true });
await writeFile(
  outFile,
  JSON.stringify(
    {
      what: 'exported architectures (models/export.py --all-random) in tract, in wasm, in Chromium; one fresh Web Worker each',
      when: new Date().toISOString(),
      chromium: browser?.version?.() ?? null,
      wasm: path.relative(repo, wasmFile),
      cores: os.cpus().length,
      tolerance: 1e-3,
      runs: RUNS,
      notes: 'run_s: the first run, including tract building and optimising its plan for the shape; again_s: the fastest later run (inference alone); heap_peak_mib: the wasm memory at the end (it never shrinks)',
      total_s,
      passed,
      failed,
      results: results.map(({ logs, ...r }) => ({ ...r, onnx_mb: r.bytes == null ? null : r.bytes / 1e6, load_s: r.load_ms == null ? null : r.load_ms / 1e3, run_s: r.run_ms == null ? null : r.run_ms / 1e3, again_s: r.again_ms == null ? null : r.again_ms / 1e3, ...(logs?.length ? { logs } : {}) })),
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${path.relative(repo, outFile)}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
