// The settings panel: the controls shown from the settings and bound to them, and the face-model
// choice (the build's own, the upscaler alone, a published one once stored, or a user's file).

import * as faceStore from '../facemodels.js';
import { $, mb, fmtScale, toast } from './dom.js';
import { settings, saveSettings, visit, deblurMode, gpuMode } from './settings.js';
import { models, items, state } from './state.js';
import { renderItem } from './view.js';
import { detectFaces } from './queue.js';
import { askAndInstall } from './facedialog.js';
import { startGpu } from './start.js';

/** What each Sharpen blur mode does, under the choice. */
const DEBLUR_HINTS = {
  auto: 'Sharpens a photo blurred by motion or out of focus; leaves a sharp one as it is, and an enlarged one to the upscaler',
  on: 'Sharpens every photo, before faces and upscaling',
  off: 'Photos are not sharpened',
};

export function showSettings() {
  $('scale').value = settings.scale;
  $('scale-out').textContent = `×${fmtScale(settings.scale)}`;
  $('denoise').value = settings.denoise;
  $('denoise-out').textContent = settings.denoise.toFixed(2);
  const deblur = deblurMode();
  $('deblur').value = deblur;
  $('deblur-hint').textContent = `${DEBLUR_HINTS[deblur]}${visit.deblur ? ' (this visit, as the address asks)' : ''}.`;
  const gpu = gpuMode();
  $('gpu').value = gpu;
  const gs = state.pool?.gpuState;
  const runs = state.pool ? `Runs on: ${state.pool.processor()}` : '';
  const why = gs && !gs.active && gpu !== 'off' && gs.mode === gpu ? ` (${gs.reason})` : '';
  $('gpu-hint').textContent = `${runs}${why}${visit.gpu ? ' (this visit, as the address asks)' : ''}.`;
  $('faces').checked = settings.faces;
  $('strength').value = settings.strength;
  $('strength-out').textContent = settings.strength.toFixed(2);
  $('strength-field').classList.toggle('off', !settings.faces);
  $('strength').disabled = !settings.faces;
  $('out-format').value = settings.format;
  const m = models.list && currentModel();
  const dn = !!m?.denoise_partner;
  $('denoise').disabled = !dn;
  $('denoise-hint').textContent = dn ? 'Keeps grain at 0, removes noise at 1.' : 'This upscaler has no denoise control.';
  if (m) {
    $('model').value = m.id;
    $('model-hint').textContent = `${m.license} · ${m.attribution}`;
  }
  if (models.list) {
    const fm = faceChoice();
    $('face-model').value = fm;
    const own = fm.startsWith('model:') && models.byId(fm.slice(6));
    const st = storedChoice(fm);
    const cat = st?.id && models.byId(st.id);
    $('face-model-hint').textContent = own
      ? `${own.license} · ${own.attribution}`
      : cat
        ? `${cat.license} · stored in this browser (${mb(st.bytes)}) · several seconds a face`
        : st
          ? `Your file · ${st.arch} · stored in this browser (${mb(st.bytes)})`
          : fm === 'sr'
            ? 'Faces are only sharpened, not reconstructed.'
            : '';
    const codeformer = st?.arch === 'codeformer';
    $('fidelity-field').hidden = !codeformer || !settings.faces;
    $('fidelity').value = settings.fidelity;
    $('fidelity-out').textContent = settings.fidelity.toFixed(2);
  }
  renderItem();
}

function bindRange(id, key) {
  $(id).addEventListener('input', () => {
    settings[key] = parseFloat($(id).value);
    saveSettings();
    showSettings();
  });
}
bindRange('scale', 'scale');
bindRange('denoise', 'denoise');
bindRange('strength', 'strength');
bindRange('fidelity', 'fidelity');
$('faces').addEventListener('change', () => {
  settings.faces = $('faces').checked;
  saveSettings();
  showSettings();
  for (const it of items) if (settings.faces && it.status === 'ready' && !it.faces) detectFaces(it);
});
$('deblur').addEventListener('change', () => {
  settings.deblur = $('deblur').value;
  visit.deblur = undefined; // a choice made here ends the address's
  saveSettings();
  showSettings();
});
$('gpu').addEventListener('change', () => {
  settings.gpu = $('gpu').value;
  visit.gpu = undefined;
  saveSettings();
  showSettings();
  startGpu();
});
$('model').addEventListener('change', () => {
  settings.model = $('model').value;
  saveSettings();
  showSettings();
  // A GPU stopped because it could not run the last upscaler gets a try with this one.
  if (state.pool && !state.pool.gpuState.active && /cannot run this upscaler/.test(state.pool.gpuState.reason || '')) startGpu();
});
$('face-model').addEventListener('change', async () => {
  const v = $('face-model').value;
  $('face-model').value = faceChoice(); // until the choice is made real
  if (v === 'add-file') return $('face-file').click();
  if (v.startsWith('catalog:') && !storedChoice(v)) {
    const entry = models.byId(v.slice(8));
    if (!(await askAndInstall(entry))) return;
  }
  settings.faceModel = v;
  saveSettings();
  showSettings();
});

/**
 * The face stage in use: 'sr' (the upscaler on each face), 'model:ID' (a face model the build
 * ships), 'catalog:ID' (a published model, once stored) or 'stored:FILE' (a file the user added).
 * An empty or unavailable setting follows the build's default: its own face model, else 'sr'.
 */
export function faceChoice() {
  const own = models.faceModels();
  const pick = settings.faceModel;
  if (pick === 'sr' || (pick.startsWith('model:') && own.some((m) => `model:${m.id}` === pick))) return pick;
  if (storedChoice(pick)) return pick;
  const d = own.find((m) => m.default);
  return d ? `model:${d.id}` : 'sr';
}

/** The stored face model a choice names, if it is stored. */
export function storedChoice(choice) {
  if (choice.startsWith('catalog:')) {
    const e = models.byId(choice.slice(8));
    return e?.download ? faceStore.storedFor(e) : null;
  }
  if (choice.startsWith('stored:')) return stored.find((m) => m.file === choice.slice(7)) || null;
  return null;
}
let stored = [];

/** The published face restorers this build's page can download (hosts with CORS). */
const catalog = () => models.list.filter((m) => m.delivery === 'catalog' && m.download?.page_url);

export function currentModel() {
  const list = models.srModels();
  return list.find((m) => m.id === settings.model) || list.find((m) => m.default) || list[0];
}

export async function refreshFaceModels() {
  stored = await faceStore.checkStore().catch(() => faceStore.storedModels());
  const sel = $('face-model');
  const group = (label, opts) => {
    const g = document.createElement('optgroup');
    g.label = label;
    g.append(...opts);
    return g;
  };
  const cat = catalog();
  const fromCatalog = new Set(cat.map((e) => faceStore.storedFor(e)?.file).filter(Boolean));
  sel.replaceChildren(
    ...models.faceModels().map((m) => new Option(`${m.name} (built in) · ${mb(m.artifacts[m.ship].bytes)}`, `model:${m.id}`)),
    new Option('Upscaler on each face (no face model)', 'sr'),
    group('Published face restorers', cat.map((e) => new Option(`${e.name} · ${faceStore.storedFor(e) ? 'stored' : `${mb(e.download.bytes)} download`}`, `catalog:${e.id}`))),
    group('Your files', [
      ...stored.filter((m) => !fromCatalog.has(m.file)).map((m) => new Option(`${m.name} · ${mb(m.bytes)}`, `stored:${m.file}`)),
      new Option('A file from this device…', 'add-file'),
    ]),
  );
  const list = $('stored-models');
  const rows = stored.map((m) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = `${m.name} · ${mb(m.bytes)}`;
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'button ghost small';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete ${m.name}`);
    del.onclick = async () => {
      await faceStore.removeStored(m.file);
      await refreshFaceModels();
      toast(`Deleted ${m.name} from this browser.`, 'ok');
    };
    li.dataset.file = m.file;
    li.append(name, del);
    return li;
  });
  if (!rows.length) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'None yet. Choose a published face model above, or add a file.';
    rows.push(li);
  }
  list.replaceChildren(...rows);
  showSettings();
}
