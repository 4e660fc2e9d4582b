// The scheduler: one coordinating worker that holds the photo's Job (decode, deblur plan and
// decision, tile plan, blending, face paste, encode) and the face detector, a pool of inference
// workers, one per core, each with its own wasm instance and networks (the upscaler, the face
// model, the deblur network), fed deblur tiles, then tiles and faces, as transferable buffers, and
// for a large face model one face worker of its own. The main thread only routes buffers and draws.
//
// Where the browser has a GPU (gpu.js decides), one GPU worker owns the device and runs the
// upscaler's tiles and the faces (the face model, where the GPU engine can run it); the CPU
// workers are its fallback: a GPU that fails (a lost device, out of memory, a failed dispatch)
// hands the tiles and faces it held and all that remain to them, with the same tile shape, and
// the job says so once (`info.gpuFailure`). The deblur stage and the detectors stay on the CPU.

import { engineBuild } from './engine.js';
import { Peer, WorkerDied } from './bridge.js';
import { findAdapter } from './gpu.js';

export { WorkerDied };

/** A deblur tile's cost per pixel, relative to an SR tile's per input pixel (for progress and
 *  the time left): the deblur network is about 25 GMAC a megapixel (v3), the upscalers 600–1,200. */
const DEBLUR_COST = 0.03;
/** A run on the GPU failed (a lost device, out of memory, a failed dispatch). */
class GpuFailed extends Error {}

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/**
 * How many face workers a large face model gets: its heap is 1.6–1.8 GiB and never shrinks, so
 * one, and two only where the device says it has the memory (8 GB, Chromium's cap) and there are
 * cores beside the tile workers' to run them.
 */
export function faceWorkers(runners) {
  const mem = /** @type {any} */ (navigator).deviceMemory;
  return mem >= 8 && (navigator.hardwareConcurrency || 2) >= 4 && runners >= 2 ? 2 : 1;
}

/** How many inference workers: one per core, fewer on a device that says it has little memory. */
export function poolSize() {
  const cores = navigator.hardwareConcurrency || 2;
  const mem = /** @type {any} */ (navigator).deviceMemory; // GB, rounded, capped at 8; absent outside Chromium
  const byMemory = mem ? Math.max(1, Math.floor(mem * 1.5)) : cores;
  return Math.max(1, Math.min(cores, byMemory, 16));
}

export class Pool {
  constructor(size = poolSize()) {
    this.size = size;
    this.runners = [];
    this.coord = null;
    this.job = null;
    this.nets = {}; // slot → { key, a, b, t } what the runners should hold
    this.coordNets = {}; // slot → { key, bytes } what the coordinator should hold
    /** The damage detector the inference workers load (`setDamageDetector`), or null. */
    this.damageNet = null;
    /** The GPU worker while it runs, else null. */
    this.gpu = null;
    /**
     * Which processor runs the upscaler (`reason`: why not the GPU).
     * @type {{mode: string, active: boolean, name?: string, software?: boolean, reason?: string}}
     */
    this.gpuState = { mode: 'off', active: false, reason: 'not started' };
    /** The GPU worker's start (or stop), settled before a restoration begins. */
    this.gpuSettled = Promise.resolve(this.gpuState);
  }

  async start() {
    this.build = engineBuild();
    this.module = await compile(`./${this.build.dir}/unblur_web_bg.wasm`);
    this.coord = this.spawn('coordinator');
    for (let i = 0; i < this.size; i++) this.runners.push(this.spawn(`runner-${i}`));
    const [init] = await Promise.all([this.coord.ready, ...this.runners.map((r) => r.ready)]);
    /** The output formats, as the core defines them: [{id, label, mime}], the default first. */
    this.formats = init.formats;
    /** The scales a restoration offers, as the core defines them: {min, max}. */
    this.scales = init.scales;
  }

  spawn(name) {
    return new Peer(this.module, this.build.dir, name);
  }

  /**
   * Starts the GPU worker as `mode` ('auto' | 'on' | 'off', gpu.js) allows, stopping the one
   * running; resolves to the new `gpuState`, never rejects (no GPU is the CPU pool, not an error).
   */
  setGpu(mode) {
    const prev = this.gpuSettled;
    this.gpuSettled = (async () => {
      await prev;
      this.stopGpu('the processor choice changed');
      const found = await findAdapter(mode);
      if (found.ok === false) return (this.gpuState = { mode, active: false, reason: found.reason });
      let peer = null;
      try {
        // Fetched only now: a browser without an adapter never downloads the GPU engine.
        const module = await compile('./pkg-gpu/unblur_web_gpu_bg.wasm');
        peer = new Peer(module, 'pkg-gpu', 'gpu', true);
        const { adapter } = await peer.ready;
        this.gpu = peer;
        return (this.gpuState = { mode, active: true, name: found.name || adapter, software: found.software });
      } catch (e) {
        peer?.kill('the GPU could not start');
        return (this.gpuState = { mode, active: false, reason: `the GPU could not start: ${e?.message ?? e}` });
      }
    })();
    return this.gpuSettled;
  }

  /** Ends the GPU worker (its device goes with it); the CPU workers run everything. */
  stopGpu(reason) {
    this.gpu?.kill(reason);
    this.gpu = null;
  }

  /** The tests' hook: the GPU worker destroys its device, as a lost GPU would. */
  async loseGpu() {
    await this.gpu?.call({ type: 'loseDevice' });
  }

  /** Which processor runs the upscaler, in words: the adapter, or "CPU, N workers". */
  processor() {
    return this.gpuState.active ? `GPU: ${this.gpuState.name}` : `CPU, ${this.runners.length} worker${this.runners.length === 1 ? '' : 's'}`;
  }

  /** Replaces dead workers with fresh ones (which load their networks when next needed). */
  heal() {
    if (this.coord?.dead) {
      this.coord = this.spawn('coordinator');
    }
    this.runners = this.runners.map((r, i) => (r.dead ? this.spawn(`runner-${i}`) : r));
  }

  // --- networks ---

  /** The face detector, in the coordinating worker. */
  setDetector(key, bytes) {
    return this.setCoordNet('detect', key, bytes);
  }

  /** The damage detector (old-photo repair): each inference worker loads it when it first runs a
   *  band (the coordinator cuts the photo into bands, one a worker). Fails, and is not kept, for
   *  a network that cannot be one (the first worker loads and checks it now). */
  async setDamageDetector(key, bytes) {
    const want = { key, a: bytes };
    this.heal();
    await this.ensureNet(this.runners[0], 'repair', want);
    this.damageNet = want;
  }

  /** A network the coordinating worker itself runs (the face detector, slot 'detect'), kept here so a
   *  fresh coordinator (after heal) loads it again when next needed. */
  async setCoordNet(slot, key, bytes) {
    this.coordNets[slot] = { key, bytes };
    await this.ensureCoordNet(slot);
  }

  async ensureCoordNet(slot) {
    const c = this.coord;
    const want = this.coordNets[slot];
    if (!want || c.nets[slot] === want.key) return;
    await c.ready;
    await c.call({ type: 'net', slot, key: want.key, a: want.bytes });
    c.nets[slot] = want.key;
  }

  /**
   * What the inference workers should run: `sr` {key, a, b?, t?}, `face` {key, a} or null, and
   * `deblur` {key, load} or null (then `deblurMissing` says why, for a photo that asks for it):
   * `load()` fetches its bytes when a worker first needs them.
   * A large face model (GFPGAN, CodeFormer: a 1.6–1.8 GiB heap that never shrinks) is
   * `{key, stored, fidelity, heavy: true}`: it gets one face worker of its own, which reads it
   * from the store and is ended after the face stage.
   */
  setNets(nets) {
    this.nets = nets;
  }

  /** Loads `want` (what slot `slot` should hold; `this.nets`'s by default) into `peer` unless it
   *  holds it already. */
  async ensureNet(peer, slot, want = this.nets[slot]) {
    if (!want || peer.nets[slot] === want.key) return peer.info?.[slot];
    // A network fetched only when first needed (the deblur network) comes as `load`.
    const a = want.load ? await want.load() : want.a;
    await peer.ready;
    const r = await peer.call({ type: 'net', slot, key: want.key, a, b: want.b, denoise: want.denoise, stored: want.stored, fidelity: want.fidelity });
    peer.nets[slot] = want.key;
    peer.info = { ...peer.info, [slot]: r };
    return r;
  }

  async probe(bytes) {
    await this.coord.ready;
    return (await this.coord.call({ type: 'probe', bytes })).info;
  }

  /**
   * Which models make upscaler `id` at `denoise`: the core's rule, asked of the coordinator.
   * @param {string} manifest the built manifest's JSON
   * @returns {Promise<{models: string[], denoise: number}>}
   */
  async upscaler(manifest, id, denoise) {
    await this.coord.ready;
    return this.coord.call({ type: 'upscaler', manifest, model: id, denoise });
  }

  /** A worker of its own for checking, converting and storing a face model (ended after). */
  modelWorker() {
    return this.spawn('face-model');
  }

  async detect(bytes) {
    await this.ensureCoordNet('detect');
    return (await this.coord.call({ type: 'detect', bytes })).faces;
  }

  /**
   * The damage in a photo (scratches, cracks, dust), or null when this build has no damage
   * detector: `{width, height, coverage, worth, mask}` (see protocol.js `damageEnd`). The
   * coordinator cuts the photo's copy into bands for `workers` workers and the inference
   * workers (at most that many) run them side by side (beside a restoration's tiles, if one is running); the
   * result also says how many `bands` ran and in how many `ms`. One photo at a time.
   */
  findDamage(bytes, workers = this.size) {
    if (!this.damageNet) return Promise.resolve(null);
    // A worker ended under it (a restoration cancelled while it ran a band) is replaced and the
    // photo searched once more.
    const search = () => this.searchDamage(bytes, workers).catch((e) => (e instanceof WorkerDied ? this.searchDamage(bytes, workers) : Promise.reject(e)));
    const run = (this.damageQueue ?? Promise.resolve()).catch(() => {}).then(search);
    this.damageQueue = run;
    return run;
  }

  async searchDamage(bytes, workers) {
    const t0 = performance.now();
    this.heal();
    // One coordinator and one search id for the whole search: a band that comes back after its
    // search ended (a failed attempt's) is refused, never taken into the next photo's.
    const coord = this.coord;
    const search = (this.damageSeq = (this.damageSeq ?? 0) + 1);
    const runners = this.runners.slice(0, Math.max(1, workers));
    await coord.ready;
    const { bands, shape } = await coord.call({ type: 'damage', bytes, workers: Math.max(1, workers), search });
    const [, , h, w] = shape;
    let next = 0;
    let failed = false;
    await Promise.all(
      runners.map(async (r) => {
        try {
          if (next >= bands) return;
          await this.ensureNet(r, 'repair', this.damageNet);
          while (next < bands && !failed) {
            const i = next++;
            const { data } = await coord.call({ type: 'input', kind: 'damage', i, search });
            const out = await r.call({ type: 'run', slot: 'repair', data, h, w }, [data.buffer]);
            const [, , oh, ow] = out.shape;
            await coord.call({ type: 'accept', kind: 'damage', i, data: out.data, h: oh, w: ow, search }, [out.data.buffer]);
          }
        } catch (e) {
          failed = true; // the other workers stop after their band in flight
          throw e;
        }
      }),
    );
    const { width, height, coverage, worth, mask } = await coord.call({ type: 'damageEnd', search });
    return { width, height, coverage, worth, mask: new Uint8Array(mask), bands, ms: performance.now() - t0 };
  }

  // --- one restoration ---

  /**
   * Restores one photo. `on` receives start(info), tile(window, rgba), face(i), progress(p)
   * (`p.stage`: 'deblur-check' for the sample that decides whether the photo is blurred,
   * 'deblur', 'faces', then 'tiles'), finishing(); `stem` is the photo's file name without its
   * extension, for the result's name; `skip`, the boxes (`bbox`) of faces the user left out
   * (the faces are found again after the deblur stage, which may move them a little: a face
   * that overlaps a left-out box by half or more is left out); `mask`, the damage to repair first
   * (one byte a pixel, nonzero = damaged, the upright photo's size) or null.
   * Resolves to {bytes, name, mime, info}: `info.deblur` is the deblur stage's verdict (null
   * when off or skipped), `info.deblurFailure` why the stage could not run, if it could not.
   * Rejects with Cancelled, WorkerDied or an Error.
   */
  async restore(bytes, options, on = {}, stem = 'photo', skip = null, mask = null) {
    if (this.job) throw new Error('a restoration is already running');
    const job = (this.job = { cancelled: false, failed: null });
    const check = () => {
      if (job.cancelled) throw new Cancelled();
    };
    try {
      this.heal();
      await this.ensureCoordNet('detect');
      await this.gpuSettled;
      // Load the networks everywhere at once; the first one tells the scales.
      const faceModel = !!this.nets.face;
      const heavy = faceModel && this.nets.face.heavy;
      const warm = () => Promise.all(this.runners.map((r) => Promise.all([this.ensureNet(r, 'sr'), faceModel && !heavy ? this.ensureNet(r, 'face') : null])));
      // The GPU's networks: one it cannot run (an operator its engine lacks, a buffer over its
      // limits) leaves that work to the CPU workers, and says so once.
      const gpu = { peer: this.gpu, tiles: false, faces: false, failure: null, tiles_run: 0, faces_run: 0 };
      const gpuFail = (e) => {
        gpu.failure ??= String(e?.message ?? e);
        gpu.tiles = gpu.faces = false;
      };
      const [first] = await Promise.all([
        warm(),
        gpu.peer &&
          Promise.all([
            this.ensureNet(gpu.peer, 'sr').then(() => (gpu.tiles = true), gpuFail),
            faceModel && !heavy ? this.ensureNet(gpu.peer, 'face').then(() => (gpu.faces = !gpu.failure), () => {}) : null,
          ]),
      ]).then(([cpu]) => cpu);
      if (gpu.failure && this.gpu === gpu.peer) {
        // It cannot run this upscaler: the CPU workers run everything, and the page says so
        // (choosing the processor again starts it afresh).
        this.stopGpu('the GPU cannot run the upscaler');
        this.gpuState = { ...this.gpuState, active: false, reason: `the GPU cannot run this upscaler: ${gpu.failure}` };
      }
      // Without a face model, a face is an upscaler run like a tile's.
      if (!faceModel) gpu.faces = gpu.tiles;
      check();
      const srScale = first[0].srScale;
      // A heavy model's side is 512 (the converter builds only those; an ONNX was checked when added).
      const faceSide = faceModel ? (heavy ? this.nets.face.side || 512 : first[1].faceSide) : 0;
      const info = await this.coord.call({ type: 'job', bytes, options, srScale, faceSide, mask });
      check();
      const plan = info.deblur; // the deblur stage's tiles; `info.deblur` becomes its verdict
      info.deblur = null;
      info.faces = [];
      info.faceShapes = [];
      on.start?.(info);

      // Progress over the whole photo: the deblur tiles, then the SR tiles and the faces. What is
      // not known yet (the deblur tiles after the sample, the faces) is added when it is.
      const [, , th, tw] = info.tileShape;
      const total = { tiles: info.tiles, faces: 0, deblur: 0, cost: info.tiles * th * tw };
      const done = { tiles: 0, faces: 0, deblur: 0, cost: 0 };
      const t0 = performance.now();
      let stage = 'tiles';
      let shown = 0; // the bar never goes back when more work becomes known
      const report = () => {
        const el = (performance.now() - t0) / 1000;
        const eta = done.cost > 0 ? (el * (total.cost - done.cost)) / done.cost : null;
        shown = Math.max(shown, total.cost ? done.cost / total.cost : 0);
        on.progress?.({
          stage,
          deblurDone: done.deblur,
          deblurTiles: total.deblur,
          tilesDone: done.tiles,
          tiles: total.tiles,
          facesDone: done.faces,
          faces: total.faces,
          fraction: shown,
          elapsed: el,
          eta,
        });
      };

      // The deblur stage, at the photo's own resolution, before faces are found and tiles run.
      if (plan) {
        info.deblur = await this.deblurStage(plan, info, check, { total, done, report, setStage: (s) => (stage = s) });
        check();
        // Workers that died in the deblur stage are replaced, and every worker has its networks.
        this.heal();
        await warm();
        check();
      }
      if (options.faces) {
        stage = 'faces';
        report();
      }
      const found = await this.coord.call({ type: 'faces', skip: skip ?? undefined });
      check();
      info.faces = found.faces;
      info.faceShapes = found.faceShapes;
      stage = 'tiles';

      // The face worker starts only for a photo with faces to restore: its model takes seconds
      // to load and a heap of 1.6–1.8 GiB.
      const nFace = heavy ? Math.min(info.faces.length, faceWorkers(this.runners.length)) : 0;
      const facePeers = (this.facePeers = Array.from({ length: nFace }, (_, k) => this.spawn(`face-${k}`)));
      const faceReady = facePeers.map((p) => this.ensureNet(p, 'face'));
      for (const r of faceReady) r.catch(() => {}); // awaited by the face stage

      // The work: faces first (the largest items), then tiles in reading order.
      const faces = info.faces.map((_, i) => ({ kind: 'face', i, h: info.faceShapes[i][2], w: info.faceShapes[i][3] }));
      const tiles = Array.from({ length: info.tiles }, (_, i) => ({ kind: 'tile', i, h: th, w: tw }));
      const items = [...faces, ...tiles];
      for (const it of items) it.cost = it.h * it.w * (it.kind === 'face' && faceModel ? (heavy ? 60 : 6) : 1);
      total.faces = info.faces.length;
      total.cost += faces.reduce((s, it) => s + it.cost, 0);
      report();

      // The inference workers share one queue (with a heavy face model, tiles only); the face
      // worker has the faces to itself. A running GPU takes the tiles (and the faces, if it
      // holds the face model) from the CPU workers.
      const queue = heavy ? tiles.slice() : items.slice();
      const faceQueue = heavy ? faces.slice() : null;
      const faceRunners = faceModel ? Math.min(this.runners.length, 2) : this.runners.length;
      const next = (idx) => {
        if (idx === 'face') return faceQueue.shift() || null;
        const take = (it) =>
          idx === 'gpu'
            ? it.kind === 'tile'
              ? gpu.tiles
              : gpu.faces
            : it.kind === 'tile'
              ? !gpu.tiles
              : !gpu.faces && idx < faceRunners; // workers past `faceRunners` hold no face model
        const k = queue.findIndex(take);
        return k < 0 ? null : queue.splice(k, 1)[0];
      };
      const fetchInput = (it) => {
        if (!it) return null;
        const p = this.coord.call({ type: 'input', kind: it.kind, i: it.i }).then((r) => ({ it, data: r.data }));
        p.catch(() => {}); // awaited by the loop; a failure after a cancel is not news
        return p;
      };
      // `held`: the items this loop took and has not finished (given back if the GPU fails).
      const loop = async (runner, idx, held = new Set()) => {
        const take = () => {
          const it = next(idx);
          if (it) held.add(it);
          return fetchInput(it);
        };
        let pending = take();
        while (pending) {
          const { it, data } = await pending;
          check();
          pending = take();
          const slot = it.kind === 'face' && faceModel ? 'face' : 'sr';
          const run = runner.call({ type: 'run', slot, data, h: it.h, w: it.w }, [data.buffer]);
          // A GPU's failure is its own, not the job's: the CPU workers take over.
          const out = idx === 'gpu' ? await run.catch((e) => Promise.reject(new GpuFailed(e?.message ?? String(e)))) : await run;
          check();
          const [, , h, w] = out.shape; // the network says what it returned
          const acc = await this.coord.call({ type: 'accept', kind: it.kind, i: it.i, data: out.data, h, w }, [out.data.buffer]);
          check();
          held.delete(it);
          done.cost += it.cost;
          if (idx === 'gpu') gpu[it.kind === 'tile' ? 'tiles_run' : 'faces_run']++;
          if (it.kind === 'tile') {
            done.tiles++;
            on.tile?.(acc.window, acc.rgba);
          } else {
            done.faces++;
            on.face?.(it.i);
          }
          report();
          // Work the GPU gave back while this one ran (the loop would otherwise end here).
          pending ??= take();
        }
      };
      // Each CPU worker runs one loop at a time; the GPU's failure starts loops for those idle
      // (a busy one takes the given-back work when its item is done).
      const looping = new Set();
      const cpuLoop = async (r, idx) => {
        if (looping.has(r)) return;
        looping.add(r);
        try {
          await loop(r, idx);
        } finally {
          looping.delete(r);
        }
      };
      // The GPU: a run that fails (a lost device, out of memory, a failed dispatch; not a
      // cancel) gives back what it held, ends the GPU worker, and the CPU workers take the rest.
      const gpuLoop = async () => {
        const held = new Set();
        try {
          await loop(gpu.peer, 'gpu', held);
        } catch (e) {
          if (job.cancelled || !(e instanceof GpuFailed)) throw e;
          gpuFail(e);
          queue.unshift(...[...held].sort((a, b) => (a.kind === b.kind ? a.i - b.i : a.kind === 'face' ? -1 : 1)));
          // (Unless the choice changed meanwhile and another GPU worker has taken its place.)
          if (this.gpu === gpu.peer) {
            this.stopGpu('the GPU failed');
            this.gpuState = { ...this.gpuState, active: false, reason: `the GPU failed: ${gpu.failure}` };
          }
          await Promise.all(this.runners.map((r, idx) => cpuLoop(r, idx)));
        }
      };
      // The face worker: a model that fails to load or runs out of memory leaves the remaining
      // faces as the upscaler made them (the job goes on); the worker is ended when done.
      // Each face worker takes faces from one queue until it is empty; one that fails leaves the
      // others to go on, and when none is left the remaining faces stay as upscaled.
      let faceAlive = facePeers.length;
      let faceError = null;
      const faceStage = (peer, k) =>
        (async () => {
          try {
            await faceReady[k];
            check();
            await loop(peer, 'face');
          } catch (e) {
            if (job.cancelled || !(e instanceof WorkerDied || /memory|stored face model/i.test(e.message))) throw e;
            faceError ??= e.message;
            if (--faceAlive === 0) for (const it of faceQueue.splice(0)) done.cost += it.cost;
          } finally {
            peer.kill('the face stage is done');
          }
        })();
      // The first failure stops the others: a dead worker fails the whole job cleanly.
      await new Promise((resolve, reject) => {
        const loops = [...this.runners.map((r, idx) => cpuLoop(r, idx)), ...(gpu.tiles || gpu.faces ? [gpuLoop()] : []), ...facePeers.map(faceStage)];
        let left = loops.length;
        loops.forEach((l) =>
          l.then(
            () => --left === 0 && resolve(),
            (e) => {
              job.cancelled = true;
              reject(e);
            },
          ),
        );
      });
      check();
      if (queue.length) throw new Error(`${queue.length} tile(s) or face(s) were left unrun`);
      // A face worker that failed: the faces no worker restored stay as the upscaler made them.
      if (faceError) info.faceFailure = { error: faceError, restored: done.faces, left: total.faces - done.faces };
      // Where the upscaler and the faces ran, and why the GPU stopped (or never began), once.
      info.gpu = gpu.peer ? { name: this.gpuState.name, tiles: gpu.tiles_run, faces: gpu.faces_run } : null;
      if (gpu.failure) info.gpuFailure = gpu.failure;
      on.finishing?.();
      const res = await this.coord.call({ type: 'finish', format: options.format, quality: options.jpeg_quality, stem });
      return { bytes: res.bytes, name: res.name, mime: res.mime, info };
    } catch (e) {
      job.cancelled = true;
      this.stopBusy();
      if (job.userCancelled) throw new Cancelled();
      throw e;
    } finally {
      this.job = null;
    }
  }

  /**
   * The deblur stage of the job just planned (`plan`: {tiles, tileShape, first}): the first
   * tiles (for 'auto', a sample to decide on), the core's decision, the rest, the end. Its tiles
   * go to the inference workers, which load the deblur network first. A worker that cannot load
   * or run it leaves the stage and its tile goes back to the queue for another; when none is left
   * (or the core refuses the network's output), the photo goes on without deblurring.
   * Resolves to the verdict (null when skipped: `info.deblurFailure` then says why).
   */
  async deblurStage(plan, info, check, { total, done, report, setStage }) {
    const [, , h, w] = plan.tileShape;
    const cost = h * w * DEBLUR_COST;
    total.deblur = plan.first.length;
    total.cost += plan.first.length * cost;
    let failure = this.nets.deblur ? null : this.nets.deblurMissing || 'the sharpening network is not available';
    const out = new Set(); // workers that cannot run it
    /** Runs these deblur tiles; resolves to whether all of them were accepted. */
    const run = async (indices) => {
      const queue = indices.slice();
      let accepted = 0;
      let inFlight = 0;
      let waiting = [];
      const changed = () => {
        for (const wake of waiting.splice(0)) wake();
      };
      const worker = async (runner) => {
        try {
          await this.ensureNet(runner, 'deblur');
        } catch (e) {
          check();
          out.add(runner);
          failure ??= e.message;
          return;
        }
        while (!out.has(runner)) {
          check();
          if (!queue.length) {
            if (!inFlight) return;
            await new Promise((r) => waiting.push(r)); // a tile in flight may come back
            continue;
          }
          const i = queue.shift();
          inFlight++;
          try {
            const { data } = await this.coord.call({ type: 'input', kind: 'deblur', i });
            check();
            let res;
            try {
              res = await runner.call({ type: 'run', slot: 'deblur', data, h, w }, [data.buffer]);
            } catch (e) {
              check();
              queue.unshift(i); // for another worker
              out.add(runner);
              failure ??= e.message;
              return;
            }
            check();
            const [, , oh, ow] = res.shape;
            try {
              await this.coord.call({ type: 'accept', kind: 'deblur', i, data: res.data, h: oh, w: ow }, [res.data.buffer]);
            } catch (e) {
              // The job is the coordinator's: if it died, the photo is lost. An output the core
              // refuses would be refused from every worker: the stage ends.
              if (e instanceof WorkerDied) throw e;
              check();
              failure = e.message;
              for (const r of this.runners) out.add(r);
              queue.length = 0;
              return;
            }
            check();
            accepted++;
            done.deblur++;
            done.cost += cost;
            report();
          } finally {
            inFlight--;
            changed();
          }
        }
      };
      const workers = this.runners.filter((r) => !out.has(r));
      if (!this.nets.deblur || !workers.length) return false;
      await Promise.all(workers.map(worker));
      return accepted === indices.length;
    };

    // No first tiles: the core's looks decided (sharp, or enlarged), and the decision needs no
    // network (nor its fetch, which `prepareNets` leaves to the workers' first tile), nor a
    // "Checking for blur" on the way.
    if (plan.first.length) {
      setStage(plan.first.length < plan.tiles ? 'deblur-check' : 'deblur');
      report();
    }
    let ok = !plan.first.length || (await run(plan.first));
    check();
    if (ok) {
      const { rest } = await this.coord.call({ type: 'deblurDecide' });
      check();
      if (rest.length) {
        setStage('deblur');
        total.deblur += rest.length;
        total.cost += rest.length * cost;
        report();
        ok = await run(rest);
        check();
      }
    }
    const { verdict } = await this.coord.call({ type: 'deblurEnd', skip: !ok });
    // Only the dead are replaced (heal): a worker whose run failed may still run SR tiles.
    if (!ok) info.deblurFailure = failure || 'the sharpening network could not run';
    return verdict;
  }

  /** Stops at once: busy workers are terminated and replaced by fresh ones. */
  cancel() {
    if (!this.job) return;
    this.job.cancelled = true;
    this.job.userCancelled = true;
    this.stopBusy();
  }

  stopBusy() {
    // Fresh workers still starting are left to start; busy ones are stopped mid-computation. A
    // busy GPU worker is ended too and started again (its device with it).
    if (this.gpu?.busy) this.setGpu(this.gpuState.mode);
    for (const r of this.runners) if (r.busy && !r.initializing) r.kill('cancelled');
    for (const p of this.facePeers || []) p.kill('cancelled');
    if (this.coord.busy) this.coord.kill('cancelled');
    this.heal();
  }

  /** The finished photo of the last job, encoded again: {bytes, name, mime}. */
  async encode(format, quality, stem) {
    return this.coord.call({ type: 'encode', format, quality, stem });
  }

  /** Face `i`'s network input in the last job (planar f32 RGB in -1…1, for the tests' reference). */
  async faceInput(i) {
    return (await this.coord.call({ type: 'input', kind: 'face', i })).data;
  }

  /** Face `i` of the last job: two 512×512 RGBA images, before then after. */
  async facePair(i) {
    return (await this.coord.call({ type: 'facePair', i })).rgba;
  }
}

/** Compiles a wasm module of this site (streaming where the server sends it as wasm). */
async function compile(path) {
  const url = new URL(path, import.meta.url);
  try {
    return await WebAssembly.compileStreaming(fetch(url));
  } catch {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`the engine could not be loaded (HTTP ${r.status})`);
    return WebAssembly.compile(await r.arrayBuffer());
  }
}
