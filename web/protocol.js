// Every message between the page and its workers (worker.js), named once. A request is
// `{id, type, ...fields}`; its reply is `{id, ok: true, ...result}` or
// `{id, ok: false, error, fatal}` (`fatal`: the wasm instance trapped, the worker is done for).
// Pixels, model bytes and downloads travel as transferable buffers. `make lint` type-checks the
// page's modules and the worker against these types (tsc --checkJs, web/tsconfig*.json).
//
// Who sends what: every worker takes `init`; the coordinating worker `probe`, `upscaler`, `detect`, `job`,
// `input`, `accept`, `finish`, `encode`, `facePair` and a `net` for the detector; the inference
// workers and the face worker `net` and `run`; the face model worker `recv*` and `addFile`.

/** @typedef {'sr' | 'face' | 'detect'} Slot */
/** @typedef {'tile' | 'face'} ItemKind */

/**
 * @typedef {{type: 'init', module: WebAssembly.Module, build: string}} Init
 *   Loads the wasm-bindgen glue of `build` ('pkg' or 'pkg-relaxed') with the compiled engine;
 *   replies `{formats: [{id, label, mime}], scales: {min, max}}`, the core's output formats and
 *   the scales a restoration offers.
 * @typedef {{type: 'probe', bytes: Uint8Array}} Probe
 *   A photo's header: `{info: {format, width, height, max_scale}}` (upright, after EXIF
 *   orientation; `max_scale`: the largest scale whose result this device holds).
 * @typedef {{type: 'upscaler', manifest: string, model: string, denoise: number}} UpscalerModels
 *   Which models make upscaler `model` at `denoise` by the core's rule (a preset of that strength,
 *   else the model and its partner), from the built manifest's JSON: `{models: string[], denoise}`.
 * @typedef {{type: 'net', slot: Slot, key: string, a?: Uint8Array, b?: Uint8Array, denoise?: number,
 *   stored?: string, fidelity?: number | null}} LoadNet
 *   Loads a network into a slot unless `key` is already there: from bytes `a` (the upscaler at
 *   `denoise`, mixed with its partner `b` by the core's rule), or a face model from the store by
 *   its `stored` name. Replies `{srScale}` for 'sr', `{faceSide}` for 'face'.
 * @typedef {{type: 'detect', bytes: Uint8Array}} Detect
 *   `{faces: Face[]}` in a photo's bytes.
 * @typedef {{type: 'run', slot: Slot, data: Float32Array, h: number, w: number}} Run
 *   `{data, shape}`: the network's first output, planar, and its NCHW shape.
 * @typedef {{type: 'job', bytes: Uint8Array, options: object, srScale: number, faceSide: number,
 *   select?: number[]}} StartJob
 *   Decodes the photo, plans the tiles and finds the faces (only the `select`ed ones are kept):
 *   `{width, height, outWidth, outHeight, tiles, tileShape, faces, faceShapes}`.
 * @typedef {{type: 'input', kind: ItemKind, i: number}} Input
 *   `{data}`: tile or face `i`'s network input.
 * @typedef {{type: 'accept', kind: ItemKind, i: number, data: Float32Array, h: number, w: number}} Accept
 *   Takes an output back; a tile's reply has `{window, rgba}` to draw.
 * @typedef {{type: 'finish' | 'encode', format: string, quality: number, stem: string}} Finish
 *   `{bytes, name, mime}`: the restored photo (`finish` pastes the faces first).
 * @typedef {{type: 'facePair', i: number}} FacePair
 *   `{rgba}`: face `i` before and after, two 512×512 RGBA images.
 * @typedef {{type: 'recvBegin', sha256: string, total: number}} RecvBegin
 *   Starts (or resumes, for the same file) receiving a download: `{have}` bytes already.
 * @typedef {{type: 'recvChunk', data: Uint8Array}} RecvChunk
 *   The next bytes of the download, hashed as they arrive.
 * @typedef {{type: 'recvEnd'}} RecvEnd
 *   Checks the sha256, converts and stores: a StoredModel.
 * @typedef {{type: 'recvDrop'}} RecvDrop
 *   Forgets a partial download.
 * @typedef {{type: 'addFile', file: File}} AddFile
 *   A face model file from the user's device, hashed, converted and stored: a StoredModel.
 */

/**
 * @typedef {Init | Probe | UpscalerModels | LoadNet | Detect | Run | StartJob | Input | Accept | Finish | FacePair |
 *   RecvBegin | RecvChunk | RecvEnd | RecvDrop | AddFile} Request
 */

/**
 * A face model in the store: its file `name` there, the source's `sha256`, the stored `bytes`.
 * @typedef {{arch: string, side: number, converted: boolean, name: string, sha256: string, bytes: number}} StoredModel
 */

/** Every request type a worker answers. */
export const REQUEST_TYPES = Object.freeze(
  /** @type {const} */ ([
    'init', 'probe', 'upscaler', 'net', 'detect', 'run', 'job', 'input', 'accept', 'finish', 'encode', 'facePair',
    'recvBegin', 'recvChunk', 'recvEnd', 'recvDrop', 'addFile',
  ]),
);
