// The test hook `window.unblur`: the page's state, read-only, for the end-to-end tests and the
// curious.

import { items, state } from './state.js';

const base64 = (u8) => {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
};

export function installTestHook() {
  /** @type {any} */ (window).unblur = {
    /** Face `i` of the last restoration: its network input (f32) and the restored face (RGBA8 512²), base64. */
    async face(i) {
      const [input, pair] = await Promise.all([state.pool.faceInput(i), state.pool.facePair(i)]);
      return { input: base64(new Uint8Array(input.buffer)), after: base64(pair.subarray(512 * 512 * 4)) };
    },
    /** Photo `i`'s repair mask (one byte a pixel, nonzero = damaged), base64, or null. */
    mask(i) {
      const m = items[i]?.repair?.mask;
      return m ? base64(m) : null;
    },
    /** The damage detector on photo `i` again, in bands for `workers` workers (run on at most
     *  that many): what it found, with the mask's FNV-1a hash (`hash`) to compare masks by. */
    async findDamage(i, workers) {
      const d = await state.pool.findDamage(items[i].bytes, workers);
      let hash = 0x811c9dc5;
      for (const v of d?.mask ?? []) hash = Math.imul(hash ^ (v ? 1 : 0), 0x01000193) >>> 0;
      return d && { width: d.width, height: d.height, coverage: d.coverage, worth: d.worth, bands: d.bands, ms: d.ms, hash };
    },
    /** The tests' lost GPU: the GPU worker destroys its device (resolves once it has). */
    loseGpu() {
      return state.pool.loseGpu();
    },
    /** Whether any inference worker holds the sharpening network (loaded for a deblur tile). */
    get deblurLoaded() {
      return !!state.pool?.runners.some((r) => r.nets.deblur);
    },
    /** Which processor runs the upscaler: {mode, active, name?, reason?}. */
    get gpu() {
      return state.pool?.gpuState;
    },
    get items() {
      return items.map(({ name, status, error, info, faces, result, damage, repair }) => ({
        name, status, error, info, faces,
        result: result && { ...result, blob: undefined, faceEls: undefined },
        damage: damage && { width: damage.width, height: damage.height, coverage: damage.coverage, worth: damage.worth, bands: damage.bands, ms: damage.ms },
        repair: repair && { marked: repair.mask.reduce((n, v) => n + (v ? 1 : 0), 0), undo: repair.undo.length },
      }));
    },
  };
}
