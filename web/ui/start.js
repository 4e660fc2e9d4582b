// Starting the engine (the workers, the manifest, the face detector and the networks the
// settings need) and loading models with their progress in the header.

import { Pool } from '../pool.js';
import { $, clamp, mb, plural, toast, friendly, setEngine } from './dom.js';
import { settings, deblurMode, gpuMode } from './settings.js';
import { models, state } from './state.js';
import { showSettings, faceChoice, storedChoice, currentModel, refreshFaceModels } from './settingspanel.js';
import { keepOffline, keepModelsOffline, keepGpuOffline } from './offline.js';

/** The download's format choice, from the core's list (an unknown setting becomes the default). */
function showFormats(formats) {
  $('out-format').replaceChildren(...formats.map((f) => new Option(f.label, f.id)));
  if (!formats.some((f) => f.id === settings.format)) settings.format = formats[0].id;
  $('out-format').value = settings.format;
}

/** The scale slider and its ticks, from the core's range (a saved or asked-for scale outside it
 *  is brought into it). */
function showScales({ min, max }) {
  const slider = $('scale');
  slider.min = min;
  slider.max = max;
  const ticks = [];
  for (let s = Math.ceil(min); s <= max; s++) ticks.push(Object.assign(document.createElement('span'), { textContent: `×${s}` }));
  $('scale-ticks').replaceChildren(...ticks);
  settings.scale = clamp(settings.scale, min, max);
}

export function readyText() {
  const off = navigator.serviceWorker?.controller && document.body.dataset.offline === 'ready' ? ' · works offline' : '';
  const gpu = state.pool.gpuState.active ? ` · GPU: ${state.pool.gpuState.name}` : '';
  setEngine(`Ready${gpu} · ${plural(state.pool.runners.length, 'worker')} · ${state.pool.build.name}${off}`, 'ready');
}

/** Starts (or stops) the GPU worker as the processor choice says; the settings and the header
 *  say which processor runs once it is known. A restoration waits for it. */
export function startGpu() {
  const pool = state.pool;
  if (!pool) return;
  pool.setGpu(gpuMode()).then((gs) => {
    if (gs.active) keepGpuOffline();
    showSettings();
    if (document.body.dataset.engine === 'ready' && !pool.job) readyText();
  });
}

async function loadModels(list, what) {
  const res = await models.load(list, (done, total) => {
    if (done < total) setEngine(`Loading ${what} · ${mb(done)} of ${mb(total)}`, 'busy', done / total);
  });
  return res;
}

/** Makes the workers' networks match the settings, loading what is missing; `deblur`, the
 *  photo's Sharpen blur mode (the setting's unless given), says whether the deblur network is
 *  needed. One that cannot be had is no error: the photo is restored without it, and says so. */
export async function prepareNets(deblur = deblurMode()) {
  const pool = state.pool;
  const up = await pool.upscaler(models.text, currentModel().id, settings.denoise);
  const [a, b] = await loadModels(up.models.map((id) => models.byId(id)), 'the upscaler');
  const sr = { key: `${up.models.join('+')}@${up.denoise}`, a, b, denoise: up.denoise };
  let face = null;
  const fm = settings.faces ? faceChoice() : 'sr';
  if (fm.startsWith('model:')) {
    const m = models.byId(fm.slice(6));
    const [a] = await loadModels([m], 'the face model');
    face = { key: m.id, a };
  } else if (fm !== 'sr') {
    const st = storedChoice(fm);
    const fidelity = st.arch === 'codeformer' ? settings.fidelity : null;
    face = { key: `stored:${st.file}@${fidelity}`, stored: st.file, fidelity, side: st.side, heavy: true };
  }
  let deblurNet = null;
  let deblurMissing;
  if (deblur !== 'off') {
    const m = models.deblur();
    if (!m) deblurMissing = 'this build of Unblur has no sharpening network';
    else {
      // Fetched when a worker first runs a deblur tile (Pool.ensureNet), not here: a photo that
      // the core's looks decide (sharp, or enlarged) needs no network, and a first restoration
      // of one does not wait for it (keepModelsOffline fetches it later, for offline use). A
      // failed fetch is tried again by the next photo.
      /** @type {Promise<Uint8Array> | null} */
      let bytes = null;
      const load = () =>
        (bytes ??= loadModels([m], 'the sharpening network').then(
          ([a]) => {
            readyText(); // the status the loading progress replaced
            return a;
          },
          (e) => {
            bytes = null;
            readyText();
            throw e;
          },
        ));
      deblurNet = { key: m.id, load };
    }
  }
  pool.setNets({ sr, face, deblur: deblurNet, deblurMissing });
}

/** Starts the workers and loads the models; resolves when the page can restore. */
export async function startEngine() {
  try {
    setEngine('Starting the engine…', 'busy');
    const pool = (state.pool = new Pool());
    await Promise.all([pool.start(), models.manifest()]);
    keepOffline(pool.build.dir);
    startGpu();
    showFormats(pool.formats);
    showScales(pool.scales);
    const sel = $('model');
    sel.replaceChildren(...models.srModels().map((m) => new Option(`${m.name} · ×${m.scale}`, m.id)));
    await refreshFaceModels();
    showSettings();
    caches?.delete('unblur-user-models').catch(() => {}); // where an earlier version kept added models
    const det = models.detector();
    const [detBytes] = await loadModels([det], 'models');
    await pool.setDetector(det.id, detBytes);
    // The sharpening network (0.9 MB gzip) is fetched only when a deblur tile runs, not on the
    // first visit's way to a ready engine (budget 5 MB).
    await prepareNets('off');
    readyText();
    keepModelsOffline().catch(() => {}); // a model that fails is fetched (and reported) when needed
  } catch (e) {
    setEngine('The engine could not start', 'failed');
    toast(friendly(e));
    throw e;
  }
}
