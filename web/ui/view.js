// The photo view: the photo shown (before, progress or before/after with the divider), its
// zoom and pan, the divider, and the face boxes a click leaves out of the restoration.

import { $, clamp, fmtScale } from './dom.js';
import { settings } from './settings.js';
import { state, restorable } from './state.js';
import { facesText, renderQueue, updateRestore } from './queue.js';
import { showResult } from './result.js';
import { renderRepair } from './repair.js';

const view = { w: 1, h: 1, zoom: 1, fit: true, x: 0, y: 0, divider: 0.5, mode: 'none' };

export function renderItem(reset = false) {
  const it = state.selected;
  document.body.dataset.state = it ? it.status : document.body.dataset.engine === 'ready' ? 'ready' : 'starting';
  $('drop').hidden = !!it;
  $('view').hidden = !it;
  if (!it) return renderRepair(null);
  $('photo-name').textContent = it.name;
  const info = it.info;
  const out = info && [Math.round(info.width * settings.scale), Math.round(info.height * settings.scale)];
  $('photo-meta').textContent = info
    ? it.status === 'done'
      ? `${info.width}×${info.height} → ${it.result.width}×${it.result.height}`
      : `${info.width}×${info.height} → ${out[0]}×${out[1]}${it.faces?.length ? ` · ${facesText(it)} to restore · click a face to leave it out` : ''}`
    : '';

  // A photo that could not be read has nothing to show; one whose restoration failed still has.
  const unreadable = it.status === 'error' && !it.failedRestore;
  const before = $('before');
  if (before.dataset.item !== String(it.id)) {
    before.dataset.item = it.id;
    before.src = unreadable ? '' : it.url;
    before.hidden = unreadable;
  }
  const err = $('view-error');
  let msg = it.status === 'error' ? it.error : null;
  if (!msg && info && it.status !== 'done' && it.status !== 'working') msg = sizeProblem(info);
  err.hidden = !msg;
  err.textContent = msg || '';
  // A failed restoration's message sits below the photo, which stays there to correct (its mask).
  err.dataset.kind = it.status === 'error' ? (it.failedRestore ? 'failed' : 'error') : 'warning';

  const done = it.status === 'done';
  const working = it.status === 'working';
  $('progress').hidden = !working;
  $('done').hidden = !done;
  $('zoom-tools').hidden = !info || unreadable;
  $('after').hidden = !done;
  $('divider').hidden = !done;
  $('progress-canvas').hidden = !(working || (it === state.lastJobItem && it.status === 'cancelled'));
  $('viewport').classList.toggle('comparing', done);
  drawFaces(it);
  renderRepair(it);
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
export function sizeProblem(info) {
  if (settings.scale <= info.max_scale) return null;
  const [w, h] = [Math.round(info.width * settings.scale), Math.round(info.height * settings.scale)];
  const best = Math.floor(info.max_scale * 10) / 10;
  return best >= 1
    ? `At ×${fmtScale(settings.scale)} the result (${w}×${h}) is larger than this browser can hold. The largest scale that fits is ×${best}.`
    : `This photo is too large for this browser to restore, even at ×1.`;
}

function drawFaces(it) {
  const svg = $('faces-overlay');
  const show = it.info && it.faces?.length && settings.faces && restorable(it);
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
addEventListener('resize', () => state.selected?.info && layout());
$('viewport').addEventListener(
  'wheel',
  (e) => {
    if (!state.selected?.info) return;
    e.preventDefault();
    const r = $('viewport').getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  },
  { passive: false },
);
{
  let drag = null;
  $('viewport').addEventListener('pointerdown', (e) => {
    if (!state.selected?.info || e.button !== 0) return;
    // A face box: choose whether that face is restored (a face model takes seconds a face).
    const box = e.target.closest?.('#faces-overlay rect');
    if (box) {
      const it = state.selected;
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
