// One inference worker of the bench's pool: its own wasm instance and its own Net, like the
// page's inference workers (web/worker.js), minus the protocol's extras.
import init, { Net } from '/pkg/unblur_web.js';

let net = null;
const handlers = {
  async init({ module }) {
    await init({ module_or_path: module });
    return {};
  },
  async load({ url }) {
    const t0 = performance.now();
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const t1 = performance.now();
    net?.free();
    net = new Net(bytes);
    return { fetchMs: t1 - t0, loadMs: performance.now() - t1, bytes: bytes.length };
  },
  run({ data, h, w, keep }) {
    const t0 = performance.now();
    const out = net.run(new Float32Array(data), h, w);
    const ms = performance.now() - t0;
    const reply = { ms, outLen: out.length };
    if (keep) reply.out = out.buffer;
    return reply;
  },
};

self.onmessage = async ({ data: msg }) => {
  try {
    const r = await handlers[msg.type](msg);
    self.postMessage({ id: msg.id, ok: true, ...r }, r.out ? [r.out] : []);
  } catch (e) {
    self.postMessage({ id: msg.id, ok: false, error: String(e?.message || e) });
  }
};
