// Every message between the page and its workers (worker.js), named once. A request is
// `{id, type, ...fields}`; its reply is `{id, ok: true, ...result}` or
// `{id, ok: false, error, fatal}` (`fatal`: the wasm instance trapped, the worker is done for).
// Pixels, model bytes and downloads travel as transferable buffers. `make lint` type-checks the
// page's modules and the worker against these types (tsc --checkJs, web/tsconfig*.json).
//
// Who sends what: every worker takes `init`; the coordinating worker `probe`, `upscaler`, `detect`, `damage`, `damageEnd`, `job`,
// `deblurDecide`, `deblurEnd`, `faces`, `input`, `accept`, `finish`, `encode`, `facePair` and a
// `net` for the face detector; the inference workers (the damage detector among their nets) and the face worker `net` and `run`; the face
// model worker `recv*` and `addFile`; the GPU worker (gpuworker.js) `init`, `net`, `run` and `loseDevice` (GpuRequest).
//
// One photo, in the coordinating worker: `job` (decode, repair where its mask says, plan the deblur stage) → the deblur
// tiles it names first (`input`/`accept` of kind 'deblur', run on the inference workers) →
// `deblurDecide` (the rest to run, none for a sharp photo) → those → `deblurEnd` (the photo is
// now the deblurred one, if applied) → `faces` (detect on that photo) → SR tiles and faces
// (`input`/`accept` of kind 'tile' and 'face') → `finish`.
// One photo's damage, beside that: `damage` (decode, cut the copy into bands) → each band
// (`input`/`accept` of kind 'damage', run on the inference workers' damage detector) → `damageEnd`.

/** @typedef {'sr' | 'face' | 'detect' | 'deblur' | 'repair'} Slot */
/** @typedef {'tile' | 'face' | 'deblur' | 'damage'} ItemKind */
/**
 * The deblur stage's verdict (the core's `Verdict`): whether the deblurred photo was kept and how
 * much of the network's change it took (`strength`, 0…1: `auto` sharpens a photo it barely calls
 * blurred only in part), the kind of blur found ('motion' | 'defocus' | 'blur', with its words
 * in `label`), the estimate's figures, `auto`'s looks before the network (`crisp`, `periodic`,
 * and `screened`: which of them decided, if one did), and what to say of it (`summary`, the
 * core's sentence: "Sharpened: blur (40 %)", or why a soft photo was left alone; absent when
 * there is nothing to say).
 * @typedef {{applied: boolean, strength: number, kind: string, label: string, summary?: string, residual: number, anisotropy: number, crisp: number | null, periodic: number | null, screened: 'crisp' | 'periodic' | null}} Verdict
 */

/**
 * @typedef {{type: 'init', module: WebAssembly.Module, build: string}} Init
 *   Loads the wasm-bindgen glue of `build` ('pkg' or 'pkg-relaxed') with the compiled engine;
 *   replies `{formats: [{id, label, mime}], scales: {min, max}}`, the core's output formats and
 *   the scales a restoration offers. In the GPU worker (`build` 'pkg-gpu'), it also opens the
 *   device and replies `{adapter}`, the adapter in words.
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
 *   its `stored` name. Replies `{srScale}` for 'sr', `{faceSide}` for 'face'; for 'repair' it
 *   fails unless the network can be a damage detector.
 * @typedef {{type: 'detect', bytes: Uint8Array}} Detect
 *   `{faces: Face[]}` in a photo's bytes.
 * @typedef {{type: 'damage', bytes: Uint8Array, workers: number, search: number}} FindDamage
 *   Starts damage search `search` (an id) on a photo: its ≤ 1 MP copy cut into bands for
 *   `workers` workers, each a run of the damage detector (slot 'repair'): `{bands, shape}`, their
 *   count and their one NCHW input shape. A new `damage` ends the one before; `input`, `accept`
 *   and `damageEnd` name the search they are for, and one for an ended search is refused.
 * @typedef {{type: 'damageEnd', search: number}} DamageEnd
 *   Once every band is accepted: `{width, height, coverage, worth, mask}`, the mask one byte a
 *   pixel (255 = damaged) at the upright photo's size, the share it covers, and whether that is
 *   worth repairing (the core's policy).
 * @typedef {{type: 'run', slot: Slot, data: Float32Array, h: number, w: number}} Run
 *   `{data, shape}`: the network's first output, planar, and its NCHW shape.
 * @typedef {{type: 'job', bytes: Uint8Array, options: object, srScale: number, faceSide: number, mask?: Uint8Array | null}} StartJob
 *   Decodes the photo, repairs it where `mask` (as `damage` gives it, perhaps corrected) marks
 *   damage, plans its tiles and its deblur stage (by `options.deblur`: 'auto', 'on'
 *   or 'off'): `{width, height, outWidth, outHeight, tiles, tileShape, deblur}`, `deblur` being
 *   `{tiles, tileShape, first}` (the deblur tiles' count, their one padded input shape, and
 *   the indices to run first: a sample to decide on for 'auto', all for 'on') or null when off.
 * @typedef {{type: 'deblurDecide'}} DeblurDecide
 *   After the first deblur tiles: `{rest}`, the deblur tiles still to run (none when the photo
 *   is sharp or deblurring is not applied).
 * @typedef {{type: 'deblurEnd', skip?: boolean}} DeblurEnd
 *   Ends the deblur stage (after the rest): the photo is now the deblurred one if the verdict
 *   applies it. `skip`: the deblur network could not run, so the photo stays as it is.
 *   `{verdict}`: a Verdict, or null when there was no stage (off, or skipped).
 * @typedef {{type: 'faces', skip?: number[][]}} FindFaces
 *   After the deblur stage: finds the faces in the (deblurred) photo when the options restore
 *   faces, leaving out those the user did: any that overlaps one of the `skip` boxes
 *   (`[x, y, w, h]`, from detecting the photo as added) by half or more (IoU ≥ 0.5):
 *   `{faces, faceShapes}`.
 * @typedef {{type: 'input', kind: ItemKind, i: number, search?: number}} Input
 *   `{data}`: tile, face, deblur tile or damage band `i`'s network input.
 * @typedef {{type: 'accept', kind: ItemKind, i: number, data: Float32Array, h: number, w: number, search?: number}} Accept
 *   Takes an output back; a (SR) tile's reply has `{window, rgba}` to draw.
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
 * @typedef {{type: 'loseDevice'}} LoseDevice
 *   The GPU worker destroys its device, as a lost GPU would (the tests' hook): its runs fail from
 *   then on and the pool hands their work to the CPU workers.
 */

/**
 * @typedef {Init | Probe | UpscalerModels | LoadNet | Detect | FindDamage | DamageEnd | Run | StartJob | DeblurDecide | DeblurEnd | FindFaces |
 *   Input | Accept | Finish | FacePair | RecvBegin | RecvChunk | RecvEnd | RecvDrop | AddFile} Request
 */

/**
 * What the GPU worker answers: `run` resolves when the GPU's readback does.
 * @typedef {Init | LoadNet | Run | LoseDevice} GpuRequest
 */

/**
 * A face model in the store: its file `name` there, the source's `sha256`, the stored `bytes`.
 * @typedef {{arch: string, side: number, converted: boolean, name: string, sha256: string, bytes: number}} StoredModel
 */

/** Every request type a worker answers. */
export const REQUEST_TYPES = Object.freeze(
  /** @type {const} */ ([
    'init', 'probe', 'upscaler', 'net', 'detect', 'damage', 'damageEnd', 'run', 'job', 'deblurDecide', 'deblurEnd', 'faces', 'input', 'accept',
    'finish', 'encode', 'facePair',
    'recvBegin', 'recvChunk', 'recvEnd', 'recvDrop', 'addFile',
  ]),
);
