// Old-photo repair in the page: the damage detector's suggestion ("This photo looks scratched —
// repair it?"), and the mask editor over the photo: the found damage shown in red, a brush to
// add and an eraser to remove (mouse, pen and touch, at any zoom), undo. The mask travels with
// the photo in the queue (`it.repair.mask`) and goes to the job, which fills it before anything
// else. Whether found damage is worth suggesting is the core's policy (`worth`).

import { $, clamp } from './dom.js';
import { models, state, restorable } from './state.js';

/** Undo steps kept per photo (each a copy of its mask). */
const UNDO_STEPS = 20;

let tool = 'brush'; // 'brush' | 'eraser'
let stroke = null; // the pointer painting, and the last point it painted

let detectorLoaded = null;

/** Loads the damage detector into the pool once, when the first photo is added: not on the first
 *  visit's way to a ready engine (0.16 MB gzip; that visit's budget is 5 MB). False without one. */
function loadDetector() {
  detectorLoaded ??= (async () => {
    const m = models.damageDetector();
    if (!m) return false;
    const [bytes] = await models.load([m]);
    await state.pool.setDamageDetector(m.id, bytes);
    return true;
  })().catch(() => {
    detectorLoaded = null; // a later photo tries again
    return false;
  });
  return detectorLoaded;
}

/** The damage detector on a photo as it is added: `it.damage`, or null without a detector. */
export async function findDamage(it) {
  try {
    it.damage = (await loadDetector()) ? await state.pool.findDamage(it.bytes) : null;
  } catch {
    it.damage = null; // the photo restores without the suggestion
  }
}

/** Starts repairing `it`: from what the detector found, or an empty mask to paint. */
export function startRepair(it) {
  const { width, height } = it.info;
  const found = it.damage && it.damage.width === width && it.damage.height === height ? it.damage.mask : null;
  it.repair = { mask: found ? found.slice() : new Uint8Array(width * height), undo: [] };
  it.repairDeclined = false;
}

/** The repair bar and the mask layer, for the photo shown. */
export function renderRepair(it) {
  const bar = $('repair-bar');
  const canvas = $('mask-canvas');
  const editable = !!it?.info && restorable(it);
  const editing = editable && !!it.repair;
  bar.hidden = !editable;
  canvas.hidden = !editing;
  bar.dataset.mode = editing ? 'editing' : it?.damage?.worth && !it.repairDeclined ? 'suggest' : 'offer';
  if (!editable) return;
  const pct = it.damage ? `${(it.damage.coverage * 100).toFixed(2)} %` : '';
  $('repair-text').textContent = editing
    ? 'Repair: the damage to fill is red. Paint to add, erase to remove.'
    : bar.dataset.mode === 'suggest'
      ? `This photo looks scratched (${pct} of it) — repair it?`
      : 'Scratches, cracks or spots?';
  $('repair-yes').hidden = editing;
  $('repair-yes').textContent = bar.dataset.mode === 'suggest' ? 'Repair it' : 'Mark damage';
  $('repair-no').hidden = bar.dataset.mode === 'offer';
  $('repair-no').textContent = editing ? 'Don’t repair' : 'No';
  $('repair-tools').hidden = !editing;
  $('repair-brush').setAttribute('aria-pressed', String(tool === 'brush'));
  $('repair-eraser').setAttribute('aria-pressed', String(tool === 'eraser'));
  $('repair-undo').disabled = !it.repair?.undo.length;
  if (editing) drawMask(it);
}

/** Redraws the mask layer (or a window of it) at the photo's own resolution. */
function drawMask(it, x0 = 0, y0 = 0, w = it.info.width, h = it.info.height) {
  const canvas = $('mask-canvas');
  const { width, height } = it.info;
  if (canvas.width !== width || canvas.height !== height || canvas.dataset.item !== String(it.id)) {
    canvas.width = width;
    canvas.height = height;
    canvas.dataset.item = it.id;
    [x0, y0, w, h] = [0, 0, width, height];
  }
  if (w <= 0 || h <= 0) return;
  const img = new ImageData(w, h);
  const px = new Uint32Array(img.data.buffer);
  const red = new Uint32Array(new Uint8ClampedArray([255, 40, 40, 170]).buffer)[0];
  const m = it.repair.mask;
  for (let y = 0; y < h; y++) {
    const row = (y0 + y) * width + x0;
    for (let x = 0; x < w; x++) if (m[row + x]) px[y * w + x] = red;
  }
  canvas.getContext('2d').putImageData(img, x0, y0);
}

/** The brush's radius in photo pixels: the slider is in screen pixels, so it feels the same at any zoom. */
function radius(it) {
  const r = $('mask-canvas').getBoundingClientRect();
  return Math.max(0.5, (+$('repair-size').value * it.info.width) / Math.max(1, r.width));
}

/** Paints (or erases) a disk at every step from the last point to (x, y), photo pixels. */
function paint(it, x, y) {
  const { width, height } = it.info;
  const rad = radius(it);
  const [lx, ly] = stroke.last ?? [x, y];
  const steps = Math.max(1, Math.ceil(Math.hypot(x - lx, y - ly) / Math.max(0.5, rad / 2)));
  const v = tool === 'brush' ? 255 : 0;
  const m = it.repair.mask;
  let [bx0, by0, bx1, by1] = [width, height, 0, 0];
  for (let s = 1; s <= steps; s++) {
    const cx = lx + ((x - lx) * s) / steps;
    const cy = ly + ((y - ly) * s) / steps;
    const [x0, x1] = [clamp(Math.floor(cx - rad), 0, width - 1), clamp(Math.ceil(cx + rad), 0, width - 1)];
    const [y0, y1] = [clamp(Math.floor(cy - rad), 0, height - 1), clamp(Math.ceil(cy + rad), 0, height - 1)];
    for (let py = y0; py <= y1; py++)
      for (let px = x0; px <= x1; px++) if ((px + 0.5 - cx) ** 2 + (py + 0.5 - cy) ** 2 <= rad * rad) m[py * width + px] = v;
    [bx0, by0, bx1, by1] = [Math.min(bx0, x0), Math.min(by0, y0), Math.max(bx1, x1), Math.max(by1, y1)];
  }
  stroke.last = [x, y];
  if (bx1 >= bx0) drawMask(it, bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1);
}

function photoPoint(e, it) {
  const r = $('mask-canvas').getBoundingClientRect();
  return [((e.clientX - r.left) / r.width) * it.info.width, ((e.clientY - r.top) / r.height) * it.info.height];
}

// Painting takes the pointer from the view (which would pan): the mask layer is on top while editing.
$('mask-canvas').addEventListener('pointerdown', (e) => {
  const it = state.selected;
  if (!it?.repair || e.button !== 0) return;
  e.stopPropagation();
  e.preventDefault();
  it.repair.undo.push(it.repair.mask.slice());
  if (it.repair.undo.length > UNDO_STEPS) it.repair.undo.shift();
  $('mask-canvas').setPointerCapture(e.pointerId);
  stroke = { id: e.pointerId, last: null };
  paint(it, ...photoPoint(e, it));
  $('repair-undo').disabled = false;
});
$('mask-canvas').addEventListener('pointermove', (e) => {
  const it = state.selected;
  if (!stroke || e.pointerId !== stroke.id || !it?.repair) return;
  e.stopPropagation();
  for (const ev of e.getCoalescedEvents?.() ?? [e]) paint(it, ...photoPoint(ev, it));
});
const endStroke = (e) => {
  if (stroke && e.pointerId === stroke.id) stroke = null;
};
$('mask-canvas').addEventListener('pointerup', endStroke);
$('mask-canvas').addEventListener('pointercancel', endStroke);

$('repair-yes').addEventListener('click', () => {
  const it = state.selected;
  if (!it?.info) return;
  startRepair(it);
  renderRepair(it);
});
$('repair-no').addEventListener('click', () => {
  const it = state.selected;
  if (!it) return;
  it.repair = null;
  it.repairDeclined = true;
  renderRepair(it);
});
$('repair-brush').addEventListener('click', () => ((tool = 'brush'), renderRepair(state.selected)));
$('repair-eraser').addEventListener('click', () => ((tool = 'eraser'), renderRepair(state.selected)));
$('repair-undo').addEventListener('click', () => {
  const it = state.selected;
  const prev = it?.repair?.undo.pop();
  if (!prev) return;
  it.repair.mask = prev;
  drawMask(it);
  renderRepair(it);
});
