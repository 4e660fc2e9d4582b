// One inference worker of the bench's pool: its own wasm instance and its own Net, like the
// page's inference workers (web/worker.js), minus the protocol's extras.
import { serve } from './serve.js';
let glue = null; // the wasm-bindgen glue of the build under test ('pkg' or 'pkg-relaxed')
let net = null;
const handlers = {
  async init({ module, build }) {
    glue = await import(`/${build}/unblur_web.js`);
    await glue.default({ module_or_path: module });
    return { gemm: JSON.parse(glue.gemm_kernels()) };
  },
  // kernel: 'tract' for tract's own GEMM kernel, else the build's default (src/engine/gemm_wasm.rs).
  async load({ url, kernel }) {
    if (!glue.select_gemm_kernel(kernel || JSON.parse(glue.gemm_kernels()).kernels[0])) throw new Error(`no kernel ${kernel}`);
    const t0 = performance.now();
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const t1 = performance.now();
    net?.free();
    net = new glue.Net(bytes);
    return { fetchMs: t1 - t0, loadMs: performance.now() - t1, bytes: bytes.length };
  },
  profile({ data, h, w }) {
    return { ops: JSON.parse(net.profile(new Float32Array(data), h, w)) };
  },
  run({ data, h, w, keep }) {
    const t0 = performance.now();
    const o = net.run(new Float32Array(data), h, w);
    const out = o.data();
    o.free();
    const ms = performance.now() - t0;
    const reply = { ms, outLen: out.length };
    if (keep) reply.out = out.buffer;
    return reply;
  },
};

serve(handlers);
