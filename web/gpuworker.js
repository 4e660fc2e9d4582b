// The GPU worker: owns the page's one WebGPU device (the core's GPU engine, pkg-gpu/) and runs
// the upscaler and the face model on it, beside the CPU pool. It answers the same protocol as
// worker.js for what it does (`init`, `net`, `run`), plus `loseDevice`, the tests' way to lose the
// GPU in the middle of a job. A run returns a promise (a readback completes only as this
// worker's event loop turns), so messages may arrive while one is in flight.

/** @typedef {import('./protocol.js').GpuRequest} GpuRequest */

let glue = null;
const nets = {}; // slot ('sr' | 'face') → { key, net }

function take(slot) {
  const n = nets[slot];
  if (!n) throw new Error(`no ${slot} network loaded on the GPU`);
  return n.net;
}

const u8 = (b) => (b instanceof Uint8Array ? b : new Uint8Array(b));
const f32 = (b) => (b instanceof Float32Array ? b : new Float32Array(b));

/**
 * One handler per GPU request type of protocol.js.
 * @type {{[K in GpuRequest['type']]: (msg: Extract<GpuRequest, {type: K}>) => any}}
 */
const handlers = {
  // Loads the glue with the compiled engine and opens the device; replies `{adapter}`.
  async init({ module, build }) {
    if (build !== 'pkg-gpu') throw new Error(`unknown GPU engine build ${build}`);
    glue = await import(`./${build}/unblur_web_gpu.js`);
    await glue.default({ module_or_path: module });
    return { adapter: await glue.open_device(false) };
  },

  // As worker.js's: the upscaler from `a` (with its partner `b` at `denoise`), or the build's own
  // face model from `a`. (A stored, published face model is heavy: it keeps its own CPU face
  // worker and never comes here.) A network the GPU engine cannot run is refused here.
  net({ slot, key, a, b, denoise }) {
    if (nets[slot]?.key !== key) {
      const net = denoise != null ? glue.Net.upscaler(u8(a), b ? u8(b) : undefined, denoise) : new glue.Net(u8(a));
      nets[slot]?.net.free();
      nets[slot] = { key, net };
    }
    const net = nets[slot].net;
    const out = {};
    if (slot === 'sr') out.srScale = net.sr_scale();
    if (slot === 'face') out.faceSide = net.face_side();
    return out;
  },

  async run({ slot, data, h, w }) {
    const o = await take(slot).run(f32(data), h, w);
    const shape = Array.from(o.shape());
    const out = o.data();
    o.free();
    return { data: out, shape, transfer: [out.buffer] };
  },

  loseDevice() {
    glue.lose_device();
    return {};
  },
};

self.onmessage = async ({ data: msg }) => {
  const { id, type } = msg;
  try {
    const h = Object.hasOwn(handlers, type) ? handlers[type] : null;
    if (!h) throw new Error(`the GPU worker does not answer ${type}`);
    const { transfer = [], ...result } = (await h(msg)) || {};
    self.postMessage({ id, ok: true, ...result }, transfer);
  } catch (e) {
    // A trap leaves the wasm instance unusable; a GPU error (a lost device) is not fatal here:
    // the pool stops using this worker either way.
    const fatal = e instanceof WebAssembly.RuntimeError;
    self.postMessage({ id, ok: false, error: String(e?.message ?? e), fatal });
  }
};
