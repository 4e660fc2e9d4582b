// One Web Worker: its own wasm instance, the networks it was given, and (in the coordinating
// worker) the photo's Job. Everything heavy happens here, never on the page's main thread.
//
// The protocol is request/response: every message is {id, type, ...}; every reply is
// {id, ok: true, ...result} or {id, ok: false, error, fatal}. Pixels travel as transferable
// ArrayBuffers. `fatal` means the wasm instance trapped (a panic, or out of memory): the pool
// throws this worker away and starts a fresh one.

// The wasm-bindgen glue of the build the pool chose (engine.js), loaded by `init`.
let Net, Job, probe, mimeType;

const nets = {}; // slot ('sr' | 'face' | 'detect') → { key, net }
let job = null;

function take(slot) {
  const n = nets[slot];
  if (!n) throw new Error(`no ${slot} network loaded in this worker`);
  return n.net;
}

function setNet(slot, key, make) {
  if (nets[slot]?.key === key) return nets[slot].net;
  nets[slot]?.net.free();
  delete nets[slot];
  const net = make();
  nets[slot] = { key, net };
  return net;
}

function dropJob() {
  if (job) job.free();
  job = null;
}

const u8 = (b) => (b instanceof Uint8Array ? b : new Uint8Array(b));
const f32 = (b) => (b instanceof Float32Array ? b : new Float32Array(b));

const handlers = {
  async init({ module, build }) {
    if (!/^pkg(-relaxed)?$/.test(build)) throw new Error(`unknown engine build ${build}`);
    const glue = await import(`./${build}/unblur_web.js`);
    await glue.default({ module_or_path: module });
    ({ Net, Job, probe, mime_type: mimeType } = glue);
    return {};
  },

  probe({ bytes }) {
    return { info: JSON.parse(probe(u8(bytes))) };
  },

  // Loads a network into a slot. `a` (and `b`, `t` to interpolate) are model bytes.
  net({ slot, key, a, b, t }) {
    const net = setNet(slot, key, () => (b ? Net.interpolated(u8(a), u8(b), t) : new Net(u8(a))));
    const out = {};
    if (slot === 'sr') out.srScale = net.sr_scale();
    if (slot === 'face') out.faceSide = net.face_side();
    return out;
  },

  // Checks that a model is a face model (without keeping it).
  faceSide({ a }) {
    const net = new Net(u8(a));
    try {
      return { faceSide: net.face_side() };
    } finally {
      net.free();
    }
  },

  detect({ bytes }) {
    return { faces: JSON.parse(take('detect').detect(u8(bytes))) };
  },

  run({ slot, data, h, w }) {
    const o = take(slot).run(f32(data), h, w);
    const shape = Array.from(o.shape());
    const out = o.data();
    o.free();
    return { data: out, shape, transfer: [out.buffer] };
  },

  // --- the coordinating worker: one photo's Job ---
  job({ bytes, options, srScale, faceSide }) {
    dropJob();
    job = new Job(u8(bytes), JSON.stringify(options), srScale, faceSide);
    const faces = options.faces ? JSON.parse(job.detect(take('detect'))) : [];
    const faceShapes = faces.map((_, i) => Array.from(job.face_shape(i)));
    return {
      width: job.width(),
      height: job.height(),
      outWidth: job.out_width(),
      outHeight: job.out_height(),
      tiles: job.tile_count(),
      tileShape: Array.from(job.tile_shape()),
      faces,
      faceShapes,
    };
  },

  input({ kind, i }) {
    const data = kind === 'tile' ? job.tile_input(i) : job.face_input(i);
    return { data, transfer: [data.buffer] };
  },

  accept({ kind, i, data, h, w }) {
    if (kind === 'face') {
      job.accept_face(i, f32(data), h, w);
      return {};
    }
    const [x, y, ww, hh] = job.accept_tile(i, f32(data));
    const rgba = job.preview(x, y, ww, hh);
    return { window: [x, y, ww, hh], rgba, transfer: [rgba.buffer] };
  },

  // The file: its bytes, its name and its MIME type, all by the core's rules.
  finish({ format, quality, stem }) {
    const bytes = job.finish(format, quality);
    return { bytes, name: job.output_name(stem, format), mime: mimeType(format), transfer: [bytes.buffer] };
  },

  encode({ format, quality, stem }) {
    const bytes = job.encode(format, quality);
    return { bytes, name: job.output_name(stem, format), mime: mimeType(format), transfer: [bytes.buffer] };
  },

  facePair({ i }) {
    const rgba = job.face_pair(i);
    return { rgba, transfer: [rgba.buffer] };
  },
};

self.onmessage = async ({ data: msg }) => {
  const { id, type } = msg;
  try {
    const h = handlers[type];
    if (!h) throw new Error(`unknown message ${type}`);
    const { transfer = [], ...result } = (await h(msg)) || {};
    self.postMessage({ id, ok: true, ...result }, transfer);
  } catch (e) {
    // A trap (RuntimeError) leaves the wasm instance unusable: say so, so the pool replaces us.
    const fatal = e instanceof WebAssembly.RuntimeError;
    const error = fatal ? `the engine stopped (${e.message}); most likely it ran out of memory` : String(e?.message ?? e);
    self.postMessage({ id, ok: false, error, fatal });
  }
};
