// The page: UI only. Photos, settings, progress, the before/after view and downloads. All image
// work happens in workers (pool.js); this thread draws what they hand back.

import { Pool, Cancelled, WorkerDied } from './pool.js';
import { Models } from './models.js';
import * as faceStore from './facemodels.js';

/** An element by id (any: the page's elements are inputs, canvases, dialogs, …). @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);
const SETTINGS_KEY = 'unblur.settings';
const DEFAULTS = { scale: 2, denoise: 0.5, faces: true, strength: 1, fidelity: 0.5, model: '', faceModel: '', format: 'png', quality: 92 };

// ---------- settings: defaults ← localStorage ← URL query ----------

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const query = new URLSearchParams(location.search);
/** The URL parameter `k` as a number clamped to lo…hi, or undefined. */
const queryNumber = (k, lo, hi) => {
  const v = parseFloat(query.get(k) ?? '');
  return Number.isFinite(v) ? clamp(v, lo, hi) : undefined;
};
function readSettings() {
  let s = { ...DEFAULTS };
  try {
    s = { ...s, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') };
  } catch {}
  const set = (k, v) => v !== undefined && (s[k] = v);
  set('scale', queryNumber('scale', 1, 4));
  set('denoise', queryNumber('denoise', 0, 1));
  set('strength', queryNumber('strength', 0, 1));
  set('fidelity', queryNumber('fidelity', 0, 1));
  if (query.has('faces')) s.faces = !/^(off|false|0|no)$/i.test(query.get('faces'));
  if (query.has('model')) s.model = query.get('model');
  if (query.has('faceModel')) s.faceModel = query.get('faceModel');
  // Checked against the core's formats once the engine is up (showFormats).
  if (query.has('format')) s.format = query.get('format').toLowerCase().replace('jpeg', 'jpg');
  return s;
}
const settings = readSettings();
// `?tile=N`: the tile side for this visit only (never saved), for measuring the page's own
// choice against others (bench/page_vs_ort.mjs). Without it the core's default applies.
const tileParam = Math.round(queryNumber('tile', 32, 512) ?? 0) || undefined;
const saveSettings = () => {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {}
};

// ---------- state ----------

const models = new Models();
let pool = null;
let engineReady = null; // Promise, resolves when workers and models are up
const items = [];
let selected = null;
let running = false;
let lastJobItem = null;
let seq = 0;

// ---------- small helpers ----------

const mb = faceStore.mbText;
const fmtScale = (s) => String(Math.round(s * 100) / 100);
const fmtTime = (s) => (s < 1 ? 'less than a second' : s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
const baseName = (name) => (name.replace(/\.[^.]+$/, '') || 'photo').replace(/[\\/:*?"<>|]+/g, '_');

let toastTimer = 0;
function toast(text, kind = 'error') {
  const t = $('toast');
  t.textContent = text;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 6000);
}

function friendly(e) {
  const m = String(e?.message ?? e);
  if (e instanceof WorkerDied) return `The restoration stopped: ${m}. Try a smaller scale or a smaller photo.`;
  return m.charAt(0).toUpperCase() + m.slice(1).replace(/\.?$/, '.');
}

function setEngine(text, state, progress) {
  $('engine-text').textContent = text;
  $('engine').dataset.state = state;
  document.body.dataset.engine = state;
  const p = $('engine-progress');
  p.hidden = progress == null;
  if (progress != null) p.value = progress;
}

// ---------- controls ----------

function showSettings() {
  $('scale').value = settings.scale;
  $('scale-out').textContent = `×${fmtScale(settings.scale)}`;
  $('denoise').value = settings.denoise;
  $('denoise-out').textContent = settings.denoise.toFixed(2);
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
$('model').addEventListener('change', () => {
  settings.model = $('model').value;
  saveSettings();
  showSettings();
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
function faceChoice() {
  const own = models.faceModels();
  const pick = settings.faceModel;
  if (pick === 'sr' || (pick.startsWith('model:') && own.some((m) => `model:${m.id}` === pick))) return pick;
  if (storedChoice(pick)) return pick;
  const d = own.find((m) => m.default);
  return d ? `model:${d.id}` : 'sr';
}

/** The stored face model a choice names, if it is stored. */
function storedChoice(choice) {
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

function currentModel() {
  const list = models.srModels();
  return list.find((m) => m.id === settings.model) || list.find((m) => m.default) || list[0];
}

async function refreshFaceModels() {
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

// ---------- downloading a published face model ----------

const dlg = { worker: null, abort: null, entry: null, resolve: null };

function dialogState(state, error = '') {
  $('fm-dialog').dataset.state = state;
  $('fm-progress').hidden = state === 'ask';
  $('fm-error').hidden = !error;
  $('fm-error').textContent = error;
  $('fm-go').hidden = state === 'downloading' || state === 'converting';
}

/** Shows a catalog model's size, license, host and the space it needs, and downloads it if the
 *  user says so. Resolves to whether it is now stored. */
async function askAndInstall(entry) {
  if (dlg.resolve) return false;
  await engineReady;
  dlg.entry = entry;
  $('fm-title').textContent = `Download ${entry.name}?`;
  $('fm-size').textContent = mb(entry.download.bytes);
  $('fm-license').textContent = entry.license;
  $('fm-host').textContent = faceStore.hostOf(entry);
  $('fm-space').textContent = '…';
  $('fm-go').textContent = 'Download';
  $('fm-go').disabled = false;
  const warn = [];
  if (faceStore.meteredConnection()) warn.push(`Your connection says it is metered or saving data: this is a ${mb(entry.download.bytes)} download.`);
  $('fm-warn').hidden = !warn.length;
  $('fm-warn').textContent = warn.join(' ');
  dialogState('ask');
  $('fm-dialog').showModal();
  faceStore.spaceFor(entry).then(({ need, free, enough }) => {
    $('fm-space').textContent = `about ${mb(need)}${free != null ? ` (this browser has ${mb(free)} free)` : ''}`;
    if (!enough) {
      $('fm-go').disabled = true;
      dialogState('ask', `There is not enough storage space: it needs about ${mb(need)}, and this browser has ${mb(free)} for this site. Free some space, or delete stored models.`);
    }
  });
  return new Promise((resolve) => (dlg.resolve = resolve));
}

function closeDialog(ok) {
  dlg.abort?.abort();
  dlg.worker?.kill('closed');
  dlg.worker = dlg.abort = null;
  $('fm-dialog').close();
  const r = dlg.resolve;
  dlg.resolve = null;
  r?.(ok);
}

$('fm-cancel').addEventListener('click', () => closeDialog(false));
$('fm-dialog').addEventListener('cancel', (e) => {
  e.preventDefault();
  closeDialog(false);
});
$('fm-go').addEventListener('click', async () => {
  const entry = dlg.entry;
  dialogState('downloading');
  $('fm-status').textContent = 'Connecting…';
  const t0 = performance.now();
  try {
    // One worker for the whole download: after an interruption it still holds what arrived.
    if (!dlg.worker) {
      dlg.worker = pool.modelWorker();
      await dlg.worker.ready;
    }
    dlg.abort = new AbortController();
    const s = await faceStore.install(entry, dlg.worker, {
      signal: dlg.abort.signal,
      onProgress: ({ got, total, speed, eta }) => {
        $('fm-bar').style.width = `${((got / total) * 100).toFixed(1)}%`;
        const parts = [`${mb(got)} of ${mb(total)}`];
        if (speed) parts.push(`${(speed / 1e6).toFixed(1)} MB/s`);
        if (eta != null && got < total) parts.push(`about ${fmtTime(eta)} left`);
        $('fm-status').textContent = parts.join(' · ');
        $('fm-dialog').dataset.got = got;
      },
      onStage: (what) => {
        dialogState('converting');
        $('fm-status').textContent = `${what} on this device…`;
      },
    });
    await refreshFaceModels();
    toast(`${entry.name} is stored in this browser (${mb(s.bytes)}, ${fmtTime((performance.now() - t0) / 1000)}).`, 'ok');
    closeDialog(true);
  } catch (e) {
    if (dlg.abort?.signal.aborted || !dlg.resolve) return;
    if (e instanceof faceStore.DownloadInterrupted) {
      $('fm-go').textContent = 'Resume';
      dialogState('error', `${friendly(e)} Nothing was stored; Resume continues where it stopped.`);
    } else {
      dlg.worker?.kill('failed');
      dlg.worker = null;
      $('fm-go').textContent = 'Try again';
      dialogState('error', `${friendly(e)}${/stored/.test(e.message) ? '' : ' Nothing was stored.'}`);
    }
  }
});

$('face-file').addEventListener('change', async (ev) => {
  const f = ev.target.files[0];
  ev.target.value = '';
  if (!f) return;
  let worker = null;
  try {
    await engineReady;
    setEngine(`Checking ${f.name}${/\.pth$/i.test(f.name) ? ' and converting it' : ''}…`, 'busy');
    worker = pool.modelWorker();
    await worker.ready;
    const s = await faceStore.addFile(f, worker);
    settings.faceModel = `stored:${s.file}`;
    saveSettings();
    await refreshFaceModels();
    toast(`Added the face model ${f.name} (${s.arch}, ${s.side}×${s.side}).`, 'ok');
  } catch (e) {
    toast(`${f.name} cannot be used as a face model: ${friendly(e)}`);
  } finally {
    worker?.kill('done');
    readyText();
  }
});

// ---------- engine and models ----------

/** The download's format choice, from the core's list (an unknown setting becomes the default). */
function showFormats(formats) {
  $('out-format').replaceChildren(...formats.map((f) => new Option(f.label, f.id)));
  if (!formats.some((f) => f.id === settings.format)) settings.format = formats[0].id;
  $('out-format').value = settings.format;
}

function readyText() {
  const off = navigator.serviceWorker?.controller && document.body.dataset.offline === 'ready' ? ' · works offline' : '';
  setEngine(`Ready · ${plural(pool.runners.length, 'worker')} · ${pool.build.name}${off}`, 'ready');
}

async function loadModels(list, what) {
  const res = await models.load(list, (done, total) => {
    if (done < total) setEngine(`Loading ${what} · ${mb(done)} of ${mb(total)}`, 'busy', done / total);
  });
  return res;
}

/** Makes the workers' networks match the settings, loading what is missing. */
async function prepareNets() {
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
  pool.setNets({ sr, face });
}

async function startEngine() {
  try {
    setEngine('Starting the engine…', 'busy');
    pool = new Pool();
    await Promise.all([pool.start(), models.manifest()]);
    keepOffline(pool.build.dir);
    showFormats(pool.formats);
    const sel = $('model');
    sel.replaceChildren(...models.srModels().map((m) => new Option(`${m.name} · ×${m.scale}`, m.id)));
    await refreshFaceModels();
    showSettings();
    caches?.delete('unblur-user-models').catch(() => {}); // where an earlier version kept added models
    const det = models.detector();
    const [detBytes] = await loadModels([det], 'models');
    await pool.setDetector(det.id, detBytes);
    await prepareNets();
    readyText();
    keepModelsOffline().catch(() => {}); // a model that fails is fetched (and reported) when needed
  } catch (e) {
    setEngine('The engine could not start', 'failed');
    toast(friendly(e));
    throw e;
  }
}

// ---------- adding photos ----------

async function addFiles(files) {
  files = [...files].filter((f) => f && f.size !== undefined);
  if (!files.length) return;
  let first = null;
  for (const file of files) {
    const item = { id: ++seq, file, name: file.name || `pasted-${seq}.png`, status: 'new', url: URL.createObjectURL(file) };
    item.base = baseName(item.name);
    items.push(item);
    first ??= item;
    inspect(item);
  }
  select(running ? selected : first);
  renderQueue();
}

async function inspect(item) {
  try {
    item.bytes = new Uint8Array(await item.file.arrayBuffer());
    await engineReady;
    item.info = await pool.probe(item.bytes);
    // Finding faces decodes the whole photo: a truncated or corrupt file shows up here.
    if (settings.faces) item.faces = await pool.detect(item.bytes);
    item.status = 'ready';
  } catch (e) {
    item.status = 'error';
    item.error = `${item.name}: ${friendly(e)}`;
  }
  renderQueue();
  if (item === selected) renderItem();
  updateRestore();
}

async function detectFaces(item) {
  try {
    item.faces = await pool.detect(item.bytes);
  } catch {
    item.faces = null;
  }
  renderQueue();
  if (item === selected) renderItem();
}

$('file').addEventListener('change', (e) => {
  addFiles(e.target.files);
  e.target.value = '';
});
$('file-more').addEventListener('change', (e) => {
  addFiles(e.target.files);
  e.target.value = '';
});
let dragDepth = 0;
addEventListener('dragenter', (e) => {
  if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
  dragDepth++;
  $('dropmask').hidden = false;
});
addEventListener('dragleave', () => {
  if (--dragDepth <= 0) ($('dropmask').hidden = true), (dragDepth = 0);
});
addEventListener('dragover', (e) => e.preventDefault());
addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  $('dropmask').hidden = true;
  addFiles(e.dataTransfer.files);
});
addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files || [])];
  if (files.length) addFiles(files);
});

// ---------- the queue ----------

function statusText(it) {
  switch (it.status) {
    case 'new':
      return 'Reading…';
    case 'ready':
      return it.info ? `${it.info.width}×${it.info.height}${it.faces?.length ? ` · ${facesText(it)}` : ''}` : 'Ready';
    case 'working':
      return it.progress != null ? `Restoring · ${Math.floor(it.progress * 100)}%` : 'Restoring…';
    case 'done':
      return `Done · ×${fmtScale(it.result.scale)}`;
    case 'cancelled':
      return 'Cancelled';
    default:
      return 'Could not be read';
  }
}

/** "3 faces", or "2 of 3 faces" when the user left some out. */
function facesText(it) {
  const n = it.faces.length;
  const k = n - (it.skip?.size || 0);
  return k === n ? plural(n, 'face') : `${k} of ${plural(n, 'face')}`;
}

/** The indices of the faces to restore, or null for all. */
function chosenFaces(it) {
  return it.skip?.size && it.faces ? it.faces.map((_, i) => i).filter((i) => !it.skip.has(i)) : null;
}

function renderQueue() {
  $('queue-panel').hidden = items.length === 0;
  const ul = $('queue');
  ul.replaceChildren(
    ...items.map((it) => {
      const li = document.createElement('li');
      li.className = `q-item q-${it.status}${it === selected ? ' selected' : ''}`;
      li.dataset.status = it.status;
      const thumb = document.createElement('img');
      thumb.src = it.status === 'error' ? 'icon.svg' : it.url;
      thumb.alt = '';
      thumb.decoding = 'async';
      thumb.onerror = () => (thumb.src = 'icon.svg');
      const text = document.createElement('div');
      text.className = 'q-text';
      const name = document.createElement('div');
      name.className = 'q-name';
      name.textContent = it.name;
      const st = document.createElement('div');
      st.className = 'q-status';
      st.textContent = statusText(it);
      text.append(name, st);
      const rm = document.createElement('button');
      rm.type = 'button';
      rm.className = 'q-remove';
      rm.title = 'Remove';
      rm.setAttribute('aria-label', `Remove ${it.name}`);
      rm.textContent = '×';
      rm.disabled = it.status === 'working';
      rm.onclick = (e) => {
        e.stopPropagation();
        remove(it);
      };
      li.append(thumb, text, rm);
      li.onclick = () => select(it);
      return li;
    }),
  );
  updateRestore();
}

function remove(it) {
  const i = items.indexOf(it);
  if (i < 0 || it.status === 'working') return;
  items.splice(i, 1);
  URL.revokeObjectURL(it.url);
  if (it.result) URL.revokeObjectURL(it.result.url);
  if (selected === it) select(items[Math.min(i, items.length - 1)] || null);
  renderQueue();
}

function select(it) {
  selected = it;
  renderQueue();
  renderItem(true);
}

function pending() {
  return items.filter((it) => it.status === 'ready' || it.status === 'cancelled');
}

function updateRestore() {
  const b = $('restore');
  const p = pending();
  const redo = !p.length && selected?.status === 'done';
  b.disabled = running || document.body.dataset.engine === 'failed' || (!p.length && !redo);
  b.textContent = running ? 'Restoring…' : redo ? 'Restore again' : p.length > 1 ? `Restore ${p.length} photos` : 'Restore';
}

// ---------- the photo view ----------

const view = { w: 1, h: 1, zoom: 1, fit: true, x: 0, y: 0, divider: 0.5, mode: 'none' };

function renderItem(reset = false) {
  const it = selected;
  document.body.dataset.state = it ? it.status : document.body.dataset.engine === 'ready' ? 'ready' : 'starting';
  $('drop').hidden = !!it;
  $('view').hidden = !it;
  if (!it) return;
  $('photo-name').textContent = it.name;
  const info = it.info;
  const out = info && [Math.round(info.width * settings.scale), Math.round(info.height * settings.scale)];
  $('photo-meta').textContent = info
    ? it.status === 'done'
      ? `${info.width}×${info.height} → ${it.result.width}×${it.result.height}`
      : `${info.width}×${info.height} → ${out[0]}×${out[1]}${it.faces?.length ? ` · ${facesText(it)} to restore · click a face to leave it out` : ''}`
    : '';

  const before = $('before');
  if (before.dataset.item !== String(it.id)) {
    before.dataset.item = it.id;
    before.src = it.status === 'error' ? '' : it.url;
    before.hidden = it.status === 'error';
  }
  const err = $('view-error');
  let msg = it.status === 'error' ? it.error : null;
  if (!msg && info && it.status !== 'done' && it.status !== 'working') msg = sizeProblem(info);
  err.hidden = !msg;
  err.textContent = msg || '';
  err.dataset.kind = it.status === 'error' ? 'error' : 'warning';

  const done = it.status === 'done';
  const working = it.status === 'working';
  $('progress').hidden = !working;
  $('done').hidden = !done;
  $('zoom-tools').hidden = !info || it.status === 'error';
  $('after').hidden = !done;
  $('divider').hidden = !done;
  $('progress-canvas').hidden = !(working || (it === lastJobItem && it.status === 'cancelled'));
  $('viewport').classList.toggle('comparing', done);
  drawFaces(it);
  if (done) showResult(it);
  if (info) {
    const w = done ? it.result.width : info.width;
    const h = done ? it.result.height : info.height;
    if (reset || view.w !== w || view.h !== h) {
      view.w = w;
      view.h = h;
      view.fit = true;
    }
    layout();
  }
  updateRestore();
}

/** Whether this device can hold the result at the chosen scale (the limit is the core's, per
 *  device memory: `max_scale` of the worker's probe). */
function sizeProblem(info) {
  if (settings.scale <= info.max_scale) return null;
  const [w, h] = [Math.round(info.width * settings.scale), Math.round(info.height * settings.scale)];
  const best = Math.floor(info.max_scale * 10) / 10;
  return best >= 1
    ? `At ×${fmtScale(settings.scale)} the result (${w}×${h}) is larger than this browser can hold. The largest scale that fits is ×${best}.`
    : `This photo is too large for this browser to restore, even at ×1.`;
}

function drawFaces(it) {
  const svg = $('faces-overlay');
  const show = it.info && it.faces?.length && settings.faces && (it.status === 'ready' || it.status === 'cancelled');
  svg.hidden = !show;
  if (!show) return svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${it.info.width} ${it.info.height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren(
    ...it.faces.map(({ bbox: [x, y, w, h] }, i) => {
      const r = document.createElementNS(ns, 'rect');
      Object.entries({ x, y, width: w, height: h, rx: Math.min(w, h) * 0.12 }).forEach(([k, v]) => r.setAttribute(k, v));
      r.setAttribute('vector-effect', 'non-scaling-stroke');
      r.dataset.face = i;
      r.classList.toggle('skipped', !!it.skip?.has(i));
      const t = document.createElementNS(ns, 'title');
      t.textContent = it.skip?.has(i) ? `Face ${i + 1}: left as it is (click to restore it)` : `Face ${i + 1}: restored (click to leave it as it is)`;
      r.append(t);
      return r;
    }),
  );
}

// Zoom and pan: the box is the photo at `zoom` screen pixels per (output) pixel.
function layout() {
  const vp = $('viewport');
  const vw = vp.clientWidth;
  const vh = vp.clientHeight;
  const fitZoom = Math.min(vw / view.w, vh / view.h, 1e9);
  if (view.fit) {
    view.zoom = Math.min(fitZoom, Math.max(1, fitZoom));
    view.zoom = fitZoom;
  }
  const bw = view.w * view.zoom;
  const bh = view.h * view.zoom;
  if (view.fit) {
    view.x = (vw - bw) / 2;
    view.y = (vh - bh) / 2;
  } else {
    // Keep the photo on screen.
    view.x = bw <= vw ? (vw - bw) / 2 : clamp(view.x, vw - bw, 0);
    view.y = bh <= vh ? (vh - bh) / 2 : clamp(view.y, vh - bh, 0);
  }
  const box = $('canvas-box');
  box.style.width = `${bw}px`;
  box.style.height = `${bh}px`;
  box.style.transform = `translate(${view.x}px, ${view.y}px)`;
  box.classList.toggle('pixels', view.zoom >= 2);
  vp.classList.toggle('pannable', bw > vw + 1 || bh > vh + 1);
  const dx = view.divider * vw;
  $('divider').style.left = `${dx}px`;
  const cut = clamp((dx - view.x) / bw, 0, 1) * 100;
  $('after').style.clipPath = `inset(0 0 0 ${cut}%)`;
  $('divider').setAttribute('aria-valuenow', Math.round(view.divider * 100));
}

function zoomAt(factor, cx, cy) {
  const vp = $('viewport');
  const fitZoom = Math.min(vp.clientWidth / view.w, vp.clientHeight / view.h);
  const z = clamp(view.zoom * factor, Math.min(fitZoom, 1), 16);
  cx ??= vp.clientWidth / 2;
  cy ??= vp.clientHeight / 2;
  view.x = cx - ((cx - view.x) * z) / view.zoom;
  view.y = cy - ((cy - view.y) * z) / view.zoom;
  view.zoom = z;
  view.fit = false;
  layout();
}

$('zoom-in').onclick = () => zoomAt(1.5);
$('zoom-out').onclick = () => zoomAt(1 / 1.5);
$('zoom-fit').onclick = () => ((view.fit = true), layout());
$('zoom-1').onclick = () => zoomAt(1 / view.zoom);
addEventListener('resize', () => selected?.info && layout());
$('viewport').addEventListener(
  'wheel',
  (e) => {
    if (!selected?.info) return;
    e.preventDefault();
    const r = $('viewport').getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  },
  { passive: false },
);
{
  let drag = null;
  $('viewport').addEventListener('pointerdown', (e) => {
    if (!selected?.info || e.button !== 0) return;
    // A face box: choose whether that face is restored (a face model takes seconds a face).
    const box = e.target.closest?.('#faces-overlay rect');
    if (box) {
      const it = selected;
      const i = +box.dataset.face;
      it.skip ??= new Set();
      if (!it.skip.delete(i)) it.skip.add(i);
      renderItem();
      renderQueue();
      return;
    }
    const onDivider = e.target.closest('#divider');
    drag = { divider: !!onDivider, x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
    $('viewport').setPointerCapture(e.pointerId);
    if (!onDivider && !$('divider').hidden && !$('viewport').classList.contains('pannable')) {
      drag.divider = true; // nothing to pan: a press anywhere moves the divider
      moveDivider(e);
    }
  });
  const moveDivider = (e) => {
    const r = $('viewport').getBoundingClientRect();
    view.divider = clamp((e.clientX - r.left) / r.width, 0, 1);
    layout();
  };
  $('viewport').addEventListener('pointermove', (e) => {
    if (!drag) return;
    if (drag.divider) return moveDivider(e);
    view.x = drag.vx + e.clientX - drag.x;
    view.y = drag.vy + e.clientY - drag.y;
    view.fit = false;
    layout();
  });
  const end = () => (drag = null);
  $('viewport').addEventListener('pointerup', end);
  $('viewport').addEventListener('pointercancel', end);
  $('divider').addEventListener('keydown', (e) => {
    const step = e.key === 'ArrowLeft' ? -0.05 : e.key === 'ArrowRight' ? 0.05 : 0;
    if (!step) return;
    view.divider = clamp(view.divider + step, 0, 1);
    layout();
  });
}

// ---------- restoring ----------

let previewScale = 1;

function setupCanvas(info) {
  const c = $('progress-canvas');
  // Draw at full size while that is cheap; a huge result is previewed downscaled.
  previewScale = Math.min(1, Math.sqrt(16e6 / (info.outWidth * info.outHeight)), 8192 / Math.max(info.outWidth, info.outHeight));
  c.width = Math.max(1, Math.round(info.outWidth * previewScale));
  c.height = Math.max(1, Math.round(info.outHeight * previewScale));
  c.getContext('2d').clearRect(0, 0, c.width, c.height);
  c.hidden = false;
}

async function drawTile([x, y, w, h], rgba) {
  const c = $('progress-canvas');
  const ctx = c.getContext('2d');
  const img = new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength), w, h);
  if (previewScale === 1) return ctx.putImageData(img, x, y);
  const bmp = await createImageBitmap(img);
  ctx.drawImage(bmp, x * previewScale, y * previewScale, w * previewScale, h * previewScale);
  bmp.close();
}

function showProgress(it, p) {
  it.progress = p.fraction;
  $('bar-fill').style.width = `${(p.fraction * 100).toFixed(1)}%`;
  const parts = [`Tiles ${p.tilesDone} of ${p.tiles}`];
  if (p.faces) parts.push(`faces ${p.facesDone} of ${p.faces}`);
  if (p.eta != null && p.fraction < 1) parts.push(`about ${fmtTime(p.eta)} left`);
  $('progress-text').textContent = parts.join(' · ');
  $('progress').dataset.tiles = `${p.tilesDone}/${p.tiles}`;
  $('progress').dataset.faces = `${p.facesDone}/${p.faces}`;
  const li = $('queue').children[items.indexOf(it)];
  if (li) li.querySelector('.q-status').textContent = statusText(it);
}

async function restoreAll() {
  if (running) return;
  await engineReady;
  let todo = pending();
  if (!todo.length && selected?.status === 'done') todo = [selected];
  if (!todo.length) return;
  running = true;
  try {
    for (const it of todo) {
      if (!items.includes(it)) continue;
      const problem = it.info && sizeProblem(it.info);
      if (problem) {
        toast(`${it.name}: ${problem}`);
        continue;
      }
      const ok = await restoreOne(it);
      if (ok === 'cancelled') break;
    }
  } finally {
    running = false;
    lastRunEnded = performance.now();
    firstRestorationEnded();
    renderQueue();
    renderItem();
  }
}

async function restoreOne(it) {
  const prev = it.status;
  it.status = 'working';
  it.progress = null;
  select(it);
  $('bar-fill').style.width = '0%';
  $('progress-text').textContent = 'Loading the upscaler…';
  const scale = settings.scale;
  const format = settings.format;
  try {
    await prepareNets();
    readyText();
    $('progress-text').textContent = settings.faces ? 'Finding faces…' : 'Preparing…';
    const options = { scale, faces: settings.faces, face_strength: settings.strength, format, jpeg_quality: settings.quality, ...(tileParam && { tile: tileParam }) };
    lastJobItem = it;
    const t0 = performance.now();
    const res = await pool.restore(it.bytes, options, {
      start: (info) => setupCanvas(info),
      tile: (win, rgba) => drawTile(win, rgba),
      progress: (p) => showProgress(it, p),
      finishing: () => ($('progress-text').textContent = it.faces?.length || settings.faces ? 'Pasting faces and saving…' : 'Saving…'),
    }, it.base, chosenFaces(it));
    const seconds = (performance.now() - t0) / 1000;
    if (it.result) URL.revokeObjectURL(it.result.url);
    const blob = new Blob([res.bytes], { type: res.mime });
    it.result = { blob, url: URL.createObjectURL(blob), name: res.name, width: res.info.outWidth, height: res.info.outHeight, faces: res.info.faces.length, restored: res.info.faces.length - (res.info.faceFailure?.left ?? 0), scale, format, seconds, faceEls: null };
    it.status = 'done';
    if (!chosenFaces(it)) it.faces = res.info.faces;
    if (res.info.faceFailure) {
      const f = res.info.faceFailure;
      toast(`${it.name}: the face model stopped: ${f.error}. ${f.left === 1 ? 'One face was' : `${f.left} faces were`} left as the upscaler made ${f.left === 1 ? 'it' : 'them'}.`, 'warning');
      refreshFaceModels(); // a model the browser evicted is no longer listed (or offered as stored)
    }
    it.faceEls = null;
    loadFacePairs(it);
    select(it);
    return 'done';
  } catch (e) {
    if (e instanceof Cancelled) {
      it.status = prev === 'done' ? 'done' : 'cancelled';
      renderItem();
      return 'cancelled';
    }
    it.status = 'error';
    it.error = friendly(e);
    toast(`${it.name}: ${it.error}`);
    renderItem();
    return 'error';
  } finally {
    readyText();
  }
}

$('restore').addEventListener('click', restoreAll);
$('cancel').addEventListener('click', () => {
  pool?.cancel();
  $('progress-text').textContent = 'Cancelling…';
});

// ---------- the result ----------

function showResult(it) {
  const r = it.result;
  const after = $('after');
  if (after.dataset.url !== r.url) {
    after.dataset.url = r.url;
    after.src = r.url;
  }
  const ext = r.name.slice(r.name.lastIndexOf('.') + 1);
  const a = $('download');
  a.href = r.url;
  a.download = r.name;
  a.textContent = `Download ${ext.toUpperCase().replace('JPG', 'JPEG')} · ${mb(r.blob.size)}`;
  $('out-format').value = r.format;
  $('out-format').disabled = it !== lastJobItem || running;
  $('done').dataset.facesRestored = r.restored;
  $('done-title').textContent = r.restored ? `Restored · ${plural(r.restored, 'face')}` : 'Restored';
  $('done-meta').textContent = `×${fmtScale(r.scale)} · ${r.width}×${r.height} · ${fmtTime(r.seconds)}`;
  $('faces-panel').hidden = !r.faces;
  const list = $('face-list');
  if (list.dataset.item !== String(it.id) || list.childElementCount !== (it.faceEls?.length || 0)) {
    list.dataset.item = it.id;
    list.replaceChildren(...(it.faceEls || []));
  }
}

async function loadFacePairs(it) {
  const n = it.result.faces;
  const els = [];
  for (let i = 0; i < n; i++) {
    try {
      const rgba = await pool.facePair(i);
      const fig = document.createElement('figure');
      fig.className = 'face';
      for (const [k, label] of /** @type {[number, string][]} */ ([[0, 'Before'], [1, 'After']])) {
        const c = document.createElement('canvas');
        c.width = c.height = 512;
        c.title = label;
        c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, k * 512 * 512 * 4, 512 * 512 * 4), 512, 512), 0, 0);
        fig.append(c);
      }
      const cap = document.createElement('figcaption');
      cap.textContent = `Face ${i + 1}`;
      fig.append(cap);
      els.push(fig);
    } catch {
      break;
    }
  }
  it.faceEls = els;
  if (selected === it && it.status === 'done') showResult(it);
}

$('out-format').addEventListener('change', async () => {
  const format = $('out-format').value;
  settings.format = format;
  saveSettings();
  const it = selected;
  if (!it?.result || it !== lastJobItem || running) return;
  try {
    $('out-format').disabled = true;
    const res = await pool.encode(format, settings.quality, it.base);
    URL.revokeObjectURL(it.result.url);
    const blob = new Blob([res.bytes], { type: res.mime });
    Object.assign(it.result, { blob, url: URL.createObjectURL(blob), name: res.name, format });
  } catch (e) {
    toast(friendly(e));
  }
  renderItem();
});

// ---------- start ----------

showSettings();
engineReady = startEngine();
engineReady.then(() => {
  renderItem();
  updateRestore();
}, () => {});

/** Asks the service worker to keep the wasm build this browser runs (it precaches only the
 *  shell); once it has, the page works offline. */
function keepOffline(dir) {
  navigator.serviceWorker?.ready
    .then(
      (reg) =>
        new Promise((resolve, reject) => {
          const ch = new MessageChannel();
          ch.port1.onmessage = ({ data }) => (data?.kept ? resolve() : reject(new Error(data?.error)));
          reg.active.postMessage({ type: 'keep', urls: [`${dir}/unblur_web.js`, `${dir}/unblur_web_bg.wasm`] }, [ch.port2]);
        }),
    )
    .then(() => offlinePart('engine'))
    .catch(() => {});
}

const offlineParts = new Set();
/** The page works offline once the service worker keeps the engine and every shipped model is
 *  in the cache. */
function offlinePart(part) {
  offlineParts.add(part);
  if (!offlineParts.has('engine') || !offlineParts.has('models')) return;
  document.body.dataset.offline = 'ready';
  if (document.body.dataset.engine === 'ready') readyText();
}

/** When the last restoration ended (performance.now()), for waiting until the page is idle. */
let lastRunEnded = -Infinity;
let firstRestorationEnded = () => {};
const firstRestoration = new Promise((r) => (firstRestorationEnded = () => r(undefined)));

/** The models fetched only when first needed (the denoise partners for another strength, the
 *  other upscalers, Unblur's face model), fetched once the page is idle: 3 s after the first
 *  restoration (or 10 s after the engine is ready, if none has ended), never while one runs nor
 *  in the 3 s after one ends, at low priority, so that they never slow the first photo and offline use never finds one
 *  missing. Not on a data-saver connection: there each is fetched when first needed, and the
 *  page does not say it works offline. */
async function keepModelsOffline() {
  if (/** @type {any} */ (navigator).connection?.saveData) return;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await Promise.race([firstRestoration, sleep(10_000)]);
  // Also when the 10 s end during a restoration: wait for it to end, then 3 s more.
  while (running || performance.now() - lastRunEnded < 3000) await sleep(250);
  await models.load(models.shipped(), undefined, { hold: false });
  offlinePart('models');
}

if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('sw.js').catch(() => {});
  navigator.serviceWorker.addEventListener('controllerchange', () => pool && document.body.dataset.engine === 'ready' && readyText());
}

// For tests and the curious: the page's state, read-only.
const base64 = (u8) => {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
};
/** @type {any} */ (window).unblur = {
  /** Face `i` of the last restoration: its network input (f32) and the restored face (RGBA8 512²), base64. */
  async face(i) {
    const [input, pair] = await Promise.all([pool.faceInput(i), pool.facePair(i)]);
    return { input: base64(new Uint8Array(input.buffer)), after: base64(pair.subarray(512 * 512 * 4)) };
  },
  get items() { return items.map(({ name, status, error, info, faces, result }) => ({ name, status, error, info, faces, result: result && { ...result, blob: undefined, faceEls: undefined } })); } };
