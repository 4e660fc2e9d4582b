// A test fixture (not part of the product): loads one exported architecture's ONNX into the
// product's wasm (`Net`), runs it on the exporter's input and compares with PyTorch's output.
// The first run's time includes tract's plan building (it optimises per input shape on first
// use); with runs > 1 the later runs (rerun_ms) time the inference alone.
// Posts {progress} as it goes, {log} for console output, and one final result object.
//
// `pth:ARCH` instead converts a random-weight checkpoint in upstream's layout (models/checkpoints.py)
// with the product's Rust converter, in wasm, to its fp32 graph, and compares that with PyTorch on
// the same file, at each of the checkpoint's fidelities (CodeFormer's w) in turn.

// The wasm build the page would choose here (relaxed SIMD in Chromium).
import { engineBuild } from '/engine.js';
const build = engineBuild().dir;

let lastError = null; // the last console.error: a Rust panic's message (console_error_panic_hook)
for (const level of ['log', 'warn', 'error']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    orig(...args);
    const text = args.map(String).join(' ');
    if (level === 'error') lastError = text;
    postMessage({ log: `${level}: ${text}` });
  };
}

const MiB = 1024 * 1024;
/** A network's output values (the wasm `Output` is freed once they are out). */
const output = (o) => {
  const data = o.data();
  o.free();
  return data;
};

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

function compare(got, want) {
  let num = 0, den = 0, maxAbs = 0, nonFinite = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    if (!Number.isFinite(got[i])) nonFinite++;
    num += d * d;
    den += want[i] * want[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  const r = { rel_err: Math.sqrt(num) / Math.sqrt(den), max_abs_err: maxAbs, non_finite: nonFinite, tolerance: 1e-3 };
  r.ok = nonFinite === 0 && r.rel_err <= r.tolerance;
  if (!r.ok) r.error = nonFinite ? `${nonFinite} non-finite outputs` : `rel err ${r.rel_err.toExponential(3)} > ${r.tolerance}`;
  return r;
}

/** A checkpoint converted in wasm (fp32), run at each fidelity, against PyTorch's outputs. */
async function runCheckpoint(arch, r, { Net, prepareFaceModel, step, heap, runs }) {
  step('fetch');
  const meta = await (await fetch(`/checkpoints/${arch}.json`)).json();
  let [pth, input] = await Promise.all([fetchBytes(`/checkpoints/${meta.pth}`), fetchBytes(`/checkpoints/${meta.input}`)]);
  r.bytes = pth.byteLength;
  step('convert');
  const t0 = performance.now();
  const p = prepareFaceModel(new Uint8Array(pth), false);
  pth = null;
  const onnx = p.bytes();
  r.converted_arch = p.arch();
  p.free();
  r.convert_ms = performance.now() - t0;
  const x = new Float32Array(input);
  r.fidelities = [];
  for (const [w, file] of Object.entries(meta.expected)) {
    const want = new Float32Array(await fetchBytes(`/checkpoints/${file}`));
    const fidelity = w === 'none' ? undefined : +w;
    step(`load w=${w}`);
    const t1 = performance.now();
    const net = Net.face(onnx, fidelity);
    const load_ms = performance.now() - t1;
    step(`run w=${w}`);
    const t2 = performance.now();
    const got = output(net.run(x, 512, 512));
    const run_ms = performance.now() - t2;
    const rerun_ms = [];
    for (let i = 1; i < runs; i++) {
      const t3 = performance.now();
      output(net.run(x, 512, 512));
      rerun_ms.push(performance.now() - t3);
    }
    net.free();
    if (got.length !== want.length) throw new Error(`output has ${got.length} floats, PyTorch's ${want.length}`);
    r.fidelities.push({ w, load_ms, run_ms, rerun_ms, ...compare(got, want) });
  }
  // The row shows the worst fidelity; each is in `fidelities`.
  const worst = r.fidelities.reduce((a, b) => (b.rel_err > a.rel_err ? b : a));
  Object.assign(r, { rel_err: worst.rel_err, max_abs_err: worst.max_abs_err, tolerance: 1e-3, ok: r.fidelities.every((f) => f.ok) });
  if (!r.ok) r.error = `w=${worst.w}: ${worst.error}`;
  r.load_ms = r.fidelities[0].load_ms;
  r.run_ms = r.fidelities[0].run_ms;
  if (r.fidelities[0].rerun_ms.length) r.rerun_ms = r.fidelities[0].rerun_ms;
  r.heap_peak_mib = heap();
}

onmessage = async ({ data: { arch, runs = 1 } }) => {
  let stage = 'init';
  let wasm = null;
  const heap = () => (wasm ? Math.round(wasm.memory.buffer.byteLength / MiB) : null);
  const r = { arch, ok: false };
  const step = (s) => {
    stage = s;
    postMessage({ progress: s });
  };
  try {
    step('init');
    const { default: init, Net, prepare_face_model: prepareFaceModel } = await import(`/${build}/unblur_web.js`);
    wasm = await init({ module_or_path: `/${build}/unblur_web_bg.wasm` });
    r.build = build;
    if (arch === 'gemm-kernels') {
      const bench = await import(`/bench-pkg/${build}/unblur_web.js`);
      wasm = await bench.default({ module_or_path: `/bench-pkg/${build}/unblur_web_bg.wasm` });
      step('check');
      const t0 = performance.now();
      const c = JSON.parse(bench.gemm_check());
      r.run_ms = performance.now() - t0;
      r.kernels = c.kernels.map(({ name, ok, worst, used }) => ({ name, ok, worst, used }));
      r.rel_err = Math.max(...c.kernels.map((k) => k.worst));
      r.tolerance = c.tolerance;
      r.ok = c.ok;
      if (!r.ok) r.error = c.kernels.filter((k) => !k.ok).map((k) => `${k.name}: ${k.used ? `rel err ${k.worst.toExponential(2)}` : 'not used by the plan'}${k.cases.find((x) => x.error)?.error ? ` (${k.cases.find((x) => x.error).error})` : ''}`).join('; ');
      postMessage(r);
      return;
    }
    if (arch.startsWith('pth:')) {
      await runCheckpoint(arch.slice(4), r, { Net, prepareFaceModel, step, heap, runs });
      postMessage(r);
      return;
    }
    step('fetch');
    const e = encodeURIComponent(arch);
    const t0 = performance.now();
    const meta = await (await fetch(`/export/${e}.json`)).json();
    let [onnx, input, expected] = await Promise.all([
      fetchBytes(`/export/${e}.onnx`),
      fetchBytes(`/export/${e}.input.bin`),
      fetchBytes(`/export/${e}.expected.bin`),
    ]);
    r.fetch_ms = performance.now() - t0;
    r.bytes = onnx.byteLength;
    r.input_shape = meta.input.shape;
    r.expected_shape = meta.expected.shape;
    const [, c, h, w] = meta.input.shape;
    const x = new Float32Array(input);
    const want = new Float32Array(expected);
    if (c !== 3 || x.length !== c * h * w) throw new Error(`input is ${x.length} floats, not ${meta.input.shape}`);

    step('load');
    const t1 = performance.now();
    const net = new Net(new Uint8Array(onnx));
    r.load_ms = performance.now() - t1;
    onnx = null; // the wasm heap has its own copy
    r.heap_after_load_mib = heap();

    step('run');
    const t2 = performance.now();
    const got = output(net.run(x, h, w));
    r.run_ms = performance.now() - t2;
    r.heap_after_run_mib = heap();
    r.output_len = got.length;
    if (got.length !== want.length) throw new Error(`output has ${got.length} floats, PyTorch's ${want.length} (${meta.expected.shape})`);

    Object.assign(r, compare(got, want));
    // Again on the same input: tract builds and optimises its plan on the first run, so the
    // later runs time the inference alone.
    for (let i = 1; i < runs; i++) {
      step(`run ${i + 1}`);
      const t3 = performance.now();
      const again = output(net.run(x, h, w));
      (r.rerun_ms ??= []).push(performance.now() - t3);
      if (again.length !== got.length || again.some((v, j) => v !== got[j])) r.rerun_differs = true;
    }
    if (r.ok && r.rerun_differs) Object.assign(r, { ok: false, error: 'a later run on the same input gave a different output' });
    r.heap_peak_mib = heap(); // wasm memory never shrinks: this is the peak
    net.free();
  } catch (err) {
    r.stage = stage;
    r.error = `${err?.name || 'Error'}: ${err?.message || err}`;
    r.stack = String(err?.stack || '').split('\n').slice(0, 8).join('\n');
    r.heap_at_error_mib = heap();
    // A trap (RuntimeError: unreachable) follows a Rust panic or a failed allocation: say which.
    if ((err instanceof WebAssembly.RuntimeError || err instanceof RangeError) && lastError) r.error += ` — after: ${lastError.split('\n')[0]}`;
    if (/alloc|out of memory|memory\.grow|Maximum memory/i.test(r.error) || (r.heap_at_error_mib ?? 0) > 3584) {
      r.oom = true;
      r.error = `OUT OF MEMORY (wasm heap at ${r.heap_at_error_mib} MiB of wasm32's 4096 MiB): ${r.error}`;
    }
  }
  postMessage(r);
};
