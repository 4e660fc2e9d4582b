// One Web Worker: its own wasm instance, the networks it was given, and (in the coordinating
// worker) the photo's Job. Everything heavy happens here, never on the page's main thread.
//
// The protocol is request/response: every message is {id, type, ...}; every reply is
// {id, ok: true, ...result} or {id, ok: false, error, fatal}. Pixels travel as transferable
// ArrayBuffers. `fatal` means the wasm instance trapped (a panic, or out of memory): the pool
// throws this worker away and starts a fresh one.
//
// A face model worker also receives a download as it arrives (hashing it with the core's sha2:
// SubtleCrypto cannot hash a stream), converts it and writes it to the model store; a face worker
// reads it back from there. The store is the Origin Private File System, under `unblur/`
// (one origin holds all of a user's GitHub Pages projects).

import { REQUEST_TYPES } from './protocol.js';
import { storeDir } from './store.js';

/** @typedef {import('./protocol.js').Request} Request */

// The wasm-bindgen glue of the build the pool chose (engine.js), loaded by `init`.
let Net, Job, DamageSearch, probe, upscalerModels, mimeType, Sha256, prepareFaceModel, storedName;

async function storeRead(name) {
  const dir = await storeDir();
  const fh = await dir.getFileHandle(name).catch(() => {
    throw new Error('the stored face model is gone (the browser may have cleared its storage); choose it again to download it');
  });
  return new Uint8Array(await (await fh.getFile()).arrayBuffer());
}
async function storeWrite(name, bytes) {
  const dir = await storeDir();
  const fh = await dir.getFileHandle(name, { create: true });
  const h = await fh.createSyncAccessHandle();
  try {
    h.truncate(0);
    for (let at = 0; at < bytes.length; ) at += h.write(bytes.subarray(at, at + (64 << 20)), { at });
    h.flush();
  } catch (e) {
    h.close();
    await dir.removeEntry(name).catch(() => {});
    if (e?.name === 'QuotaExceededError') throw new Error(`there is not enough storage space for the face model (${Math.round(bytes.length / 1e6)} MB)`);
    throw e;
  }
  h.close();
}

// The download being received: its bytes so far and their hash (kept across an interruption,
// so that a resumed download continues where it stopped).
let incoming = null;

const nets = {}; // slot ('sr' | 'face' | 'detect' | 'deblur' | 'repair') → { key, net }
let job = null;
/** The damage detector's search in progress (the coordinating worker): {id, search}, or null. */
let damageRun = null;

/** The search in progress if it is search `id`; else a search that has ended, refused. */
function damageSearch(id) {
  if (!damageRun || damageRun.id !== id) throw new Error('this damage search has ended');
  return damageRun.search;
}

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

/** Intersection over union of two boxes [x, y, w, h]. @param {number[]} a @param {number[]} b */
function iou(a, b) {
  const [ax, ay, aw, ah] = a;
  const [bx, by, bw, bh] = b;
  const iw = Math.max(0, Math.min(ax + aw, bx + bw) - Math.max(ax, bx));
  const ih = Math.max(0, Math.min(ay + ah, by + bh) - Math.max(ay, by));
  const i = iw * ih;
  return i > 0 ? i / (aw * ah + bw * bh - i) : 0;
}

const u8 = (b) => (b instanceof Uint8Array ? b : new Uint8Array(b));
const f32 = (b) => (b instanceof Float32Array ? b : new Float32Array(b));

/**
 * One handler per request type of protocol.js (tsc checks that none is missing or extra).
 * @type {{[K in Request['type']]: (msg: Extract<Request, {type: K}>) => any}}
 */
const handlers = {
  async init({ module, build }) {
    if (!/^pkg(-relaxed)?$/.test(build)) throw new Error(`unknown engine build ${build}`);
    const glue = await import(`./${build}/unblur_web.js`);
    await glue.default({ module_or_path: module });
    ({ Net, Job, DamageSearch, probe, upscaler_models: upscalerModels, mime_type: mimeType, Sha256, prepare_face_model: prepareFaceModel, stored_name: storedName } = glue);
    return { formats: JSON.parse(glue.output_formats()), scales: JSON.parse(glue.scales()) };
  },

  probe({ bytes }) {
    const memory = /** @type {any} */ (navigator).deviceMemory; // GB; Chromium only
    return { info: JSON.parse(probe(u8(bytes), memory ?? undefined)) };
  },

  upscaler({ manifest, model, denoise }) {
    return JSON.parse(upscalerModels(manifest, model, denoise));
  },

  // Loads a network into a slot. `a` are model bytes (for the upscaler, with its denoise partner
  // `b` and the `denoise` strength); a face model
  // from the store comes as its `stored` name instead, with CodeFormer's `fidelity`.
  async net({ slot, key, a, b, denoise, stored, fidelity }) {
    if (stored && nets[slot]?.key !== key) a = await storeRead(stored);
    const make = () => (stored ? Net.face(u8(a), fidelity ?? undefined) : denoise != null ? Net.upscaler(u8(a), b ? u8(b) : undefined, denoise) : new Net(u8(a)));
    const net = setNet(slot, key, make);
    a = null;
    const out = {};
    if (slot === 'sr') out.srScale = net.sr_scale();
    if (slot === 'face') out.faceSide = net.face_side();
    if (slot === 'repair') net.check_damage_detector();
    return out;
  },

  // --- the face model worker: a download, checked and converted, into the store ---

  // Starts (or, for the same sha256, resumes) receiving a download of `total` bytes; says how
  // many bytes it already has.
  recvBegin({ sha256, total }) {
    if (incoming?.sha256 !== sha256 || incoming.total !== total) {
      incoming?.hash.free();
      incoming = { sha256, total, buf: new Uint8Array(total), got: 0, hash: new Sha256() };
    }
    return { have: incoming.got };
  },

  recvChunk({ data }) {
    const c = u8(data);
    if (incoming.got + c.length > incoming.total) throw new Error('the server sent more bytes than the file has');
    incoming.buf.set(c, incoming.got);
    incoming.got += c.length;
    incoming.hash.update(c);
    return {};
  },

  // Checks the hash, converts (a checkpoint) or checks (ONNX) and stores; the bytes are dropped
  // either way, so a bad file is never kept.
  async recvEnd() {
    const { buf, got, total, sha256, hash } = incoming;
    incoming = null;
    const hex = hash.hex();
    hash.free();
    if (got !== total) throw new Error(`the download ended after ${got} of ${total} bytes`);
    if (hex !== sha256) throw new Error(`the downloaded file does not match its published checksum (sha256 ${hex.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…): it was not stored`);
    return store(buf, hex);
  },

  recvDrop() {
    incoming?.hash.free();
    incoming = null;
    return {};
  },

  // A face model the user picked from their device (a File): hashed, converted, stored.
  async addFile({ file }) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const h = new Sha256();
    h.update(bytes);
    const hex = h.hex();
    h.free();
    return store(bytes, hex);
  },

  detect({ bytes }) {
    return { faces: JSON.parse(take('detect').detect(u8(bytes))) };
  },

  // The damage detector's bands for the inference workers (`input`/`accept` of kind 'damage'),
  // then what they found (`damageEnd`). One photo at a time, beside the photo being restored.
  damage({ bytes, workers, search: id }) {
    damageRun?.search.free();
    damageRun = null;
    const search = new DamageSearch(u8(bytes), workers);
    damageRun = { id, search };
    return { bands: search.band_count(), shape: Array.from(search.band_shape()) };
  },

  damageEnd({ search: id }) {
    const s = damageSearch(id);
    damageRun = null;
    const d = s.finish();
    const out = { width: d.width(), height: d.height(), coverage: d.coverage(), worth: d.worth(), mask: d.mask() };
    d.free();
    return { ...out, transfer: [out.mask.buffer] };
  },

  run({ slot, data, h, w }) {
    const o = take(slot).run(f32(data), h, w);
    const shape = Array.from(o.shape());
    const out = o.data();
    o.free();
    return { data: out, shape, transfer: [out.buffer] };
  },

  // --- the coordinating worker: one photo's Job ---
  // Decodes and plans; the deblur stage (if any) runs next, then `faces`, then tiles and faces.
  job({ bytes, options, srScale, faceSide, mask }) {
    dropJob();
    job = new Job(u8(bytes), JSON.stringify(options), srScale, faceSide);
    if (mask) job.repair(u8(mask));
    job.plan_deblur();
    const n = job.deblur_tile_count();
    return {
      width: job.width(),
      height: job.height(),
      outWidth: job.out_width(),
      outHeight: job.out_height(),
      tiles: job.tile_count(),
      tileShape: Array.from(job.tile_shape()),
      deblur: n ? { tiles: n, tileShape: Array.from(job.deblur_tile_shape()), first: Array.from(job.deblur_first()) } : null,
    };
  },

  deblurDecide() {
    return { rest: Array.from(job.decide_deblur()) };
  },

  deblurEnd({ skip }) {
    const v = job.end_deblur(!!skip);
    return { verdict: v ? JSON.parse(v) : null };
  },

  // Found in the photo as it is now (deblurred, if it was), so a face is matched to a box the
  // user left out (`skip`, from the photo as added) by overlap, not by its place in the list.
  faces({ skip }) {
    let faces = job.restores_faces() ? JSON.parse(job.detect(take('detect'))) : [];
    if (skip?.length) {
      faces = faces.filter((f) => !skip.some((b) => iou(f.bbox, b) >= 0.5));
      job.set_faces(JSON.stringify(faces));
    }
    return { faces, faceShapes: faces.map((_, i) => Array.from(job.face_shape(i))) };
  },

  input({ kind, i, search }) {
    const data = kind === 'damage' ? damageSearch(search).band_input(i) : kind === 'tile' ? job.tile_input(i) : kind === 'deblur' ? job.deblur_tile_input(i) : job.face_input(i);
    return { data, transfer: [data.buffer] };
  },

  accept({ kind, i, data, h, w, search }) {
    if (kind === 'damage') {
      damageSearch(search).accept(i, f32(data), h, w);
      return {};
    }
    if (kind === 'deblur') {
      job.accept_deblur_tile(i, f32(data));
      return {};
    }
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

/** Converts or checks a face model and writes it to the store, named by its source's sha256 (and
 *  the converter's version, for a conversion). */
async function store(bytes, sha256) {
  const p = prepareFaceModel(bytes, true);
  bytes = null;
  const out = p.bytes();
  const info = { arch: p.arch(), side: p.side(), converted: p.converted() };
  p.free();
  const name = info.converted ? storedName(sha256) : `${sha256}.onnx`;
  await storeWrite(name, out);
  return { ...info, name, sha256, bytes: out.length };
}

self.onmessage = async ({ data: msg }) => {
  const { id, type } = msg;
  try {
    if (!REQUEST_TYPES.includes(type)) throw new Error(`unknown message ${type}`);
    const h = handlers[type];
    const { transfer = [], ...result } = (await h(msg)) || {};
    self.postMessage({ id, ok: true, ...result }, transfer);
  } catch (e) {
    // A trap (RuntimeError) leaves the wasm instance unusable: say so, so the pool replaces us.
    const fatal = e instanceof WebAssembly.RuntimeError;
    const error = fatal ? `the engine stopped (${e.message}); most likely it ran out of memory` : String(e?.message ?? e);
    self.postMessage({ id, ok: false, error, fatal });
  }
};
