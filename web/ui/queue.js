// Adding photos (the file inputs, drag and drop, paste), reading each one (its size, the faces
// and the damage in it) and the queue: its list, removing and choosing a photo, and the Restore button.

import { $, baseName, fmtScale, plural, friendly } from './dom.js';
import { settings } from './settings.js';
import { items, state, restorable } from './state.js';
import { renderItem } from './view.js';
import { findDamage } from './repair.js';

let seq = 0;

export async function addFiles(files) {
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
  select(state.running ? state.selected : first);
  renderQueue();
}

async function inspect(item) {
  try {
    item.bytes = new Uint8Array(await item.file.arrayBuffer());
    await state.engineReady;
    item.info = await state.pool.probe(item.bytes);
    // Finding faces decodes the whole photo: a truncated or corrupt file shows up here.
    if (settings.faces) item.faces = await state.pool.detect(item.bytes);
    await findDamage(item);
    item.status = 'ready';
  } catch (e) {
    item.status = 'error';
    item.error = `${item.name}: ${friendly(e)}`;
  }
  renderQueue();
  if (item === state.selected) renderItem();
  updateRestore();
}

export async function detectFaces(item) {
  try {
    item.faces = await state.pool.detect(item.bytes);
  } catch {
    item.faces = null;
  }
  renderQueue();
  if (item === state.selected) renderItem();
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

export function statusText(it) {
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
    case 'error':
      return it.failedRestore ? 'Failed · Restore to try again' : 'Could not be read';
    default:
      return 'Could not be read';
  }
}

/** "3 faces", or "2 of 3 faces" when the user left some out. */
export function facesText(it) {
  const n = it.faces.length;
  const k = n - (it.skip?.size || 0);
  return k === n ? plural(n, 'face') : `${k} of ${plural(n, 'face')}`;
}

/** The boxes of the faces the user left out, or null when none is. */
export function skippedFaces(it) {
  return it.skip?.size && it.faces ? it.faces.filter((_, i) => it.skip.has(i)).map((f) => f.bbox) : null;
}

export function renderQueue() {
  $('queue-panel').hidden = items.length === 0;
  const ul = $('queue');
  ul.replaceChildren(
    ...items.map((it) => {
      const li = document.createElement('li');
      li.className = `q-item q-${it.status}${it === state.selected ? ' selected' : ''}`;
      li.dataset.status = it.status;
      const thumb = document.createElement('img');
      thumb.src = it.status === 'error' && !it.failedRestore ? 'icon.svg' : it.url;
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
  if (state.selected === it) select(items[Math.min(i, items.length - 1)] || null);
  renderQueue();
}

export function select(it) {
  state.selected = it;
  renderQueue();
  renderItem(true);
}

export function pending() {
  return items.filter(restorable);
}

export function updateRestore() {
  const b = $('restore');
  const p = pending();
  const redo = !p.length && state.selected?.status === 'done';
  b.disabled = state.running || document.body.dataset.engine === 'failed' || (!p.length && !redo);
  b.textContent = state.running ? 'Restoring…' : redo ? 'Restore again' : p.length > 1 ? `Restore ${p.length} photos` : 'Restore';
}
