// The result panel: the restored photo's download link and details, whether it was sharpened
// (and the switch to undo or redo that, which restores it again), each face before and after, and
// the download format (a change re-encodes the pool's last result, no new restoration).

import { $, mb, fmtScale, fmtTime, plural, toast, friendly } from './dom.js';
import { settings, saveSettings } from './settings.js';
import { state } from './state.js';
import { renderItem } from './view.js';
import { restoreAll } from './restore.js';

export function showResult(it) {
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
  $('out-format').disabled = it !== state.lastJobItem || state.running;
  $('done').dataset.facesRestored = r.restored;
  $('done-title').textContent = r.restored ? `Restored · ${plural(r.restored, 'face')}` : 'Restored';
  $('done-meta').textContent = `×${fmtScale(r.scale)} · ${r.width}×${r.height} · ${fmtTime(r.seconds)}`;
  showDeblur(it);
  $('faces-panel').hidden = !r.faces;
  const list = $('face-list');
  if (list.dataset.item !== String(it.id) || list.childElementCount !== (it.faceEls?.length || 0)) {
    list.dataset.item = it.id;
    list.replaceChildren(...(it.faceEls || []));
  }
}

/**
 * The deblur stage's outcome: "Sharpened: motion blur" (or "out of focus", or "blur" while the core names no kind; with
 * the share taken when `auto` sharpened in part: "Sharpened: blur (40 %)") with Undo
 * sharpening, which restores the photo again without the stage; once undone, "Not sharpened"
 * with Sharpen, which restores it again with the stage on. A photo `auto` left alone because it
 * looks enlarged or printed gets the core's word for it, and Sharpen too. The choice is the
 * photo's own. `#done[data-deblur]` is the verdict's kind when applied, else "none".
 */
function showDeblur(it) {
  const r = it.result;
  const v = r.verdict;
  const applied = !!v?.applied;
  $('done').dataset.deblur = applied ? v.kind : 'none';
  const undone = !applied && it.deblur === 'off';
  const said = !applied && !undone && v?.summary; // "Not sharpened: it looks enlarged or printed"
  $('deblur-row').hidden = !applied && !undone && !said;
  // The core's sentence (with the share when auto sharpened in part).
  $('deblur-text').textContent = applied || said ? v.summary : 'Not sharpened';
  const b = $('deblur-toggle');
  b.textContent = applied ? 'Undo sharpening' : 'Sharpen';
  b.dataset.action = applied ? 'off' : 'on';
  b.disabled = state.running;
}

$('deblur-toggle').addEventListener('click', async () => {
  const it = state.selected;
  if (!it?.result || state.running) return;
  const [prev, want] = [it.deblur, $('deblur-toggle').dataset.action];
  it.deblur = want;
  await restoreAll([it]);
  // Cancelled or failed: the photo keeps the result it has, and the choice that made it.
  if (it.result?.deblur !== want) it.deblur = prev;
});

export async function loadFacePairs(it) {
  const n = it.result.faces;
  const els = [];
  for (let i = 0; i < n; i++) {
    try {
      const rgba = await state.pool.facePair(i);
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
  if (state.selected === it && it.status === 'done') showResult(it);
}

$('out-format').addEventListener('change', async () => {
  const format = $('out-format').value;
  settings.format = format;
  saveSettings();
  const it = state.selected;
  if (!it?.result || it !== state.lastJobItem || state.running) return;
  try {
    $('out-format').disabled = true;
    const res = await state.pool.encode(format, settings.quality, it.base);
    URL.revokeObjectURL(it.result.url);
    const blob = new Blob([res.bytes], { type: res.mime });
    Object.assign(it.result, { blob, url: URL.createObjectURL(blob), name: res.name, format });
  } catch (e) {
    toast(friendly(e));
  }
  renderItem();
});
