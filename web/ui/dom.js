// Small UI helpers every concern uses: the element lookup, number and name formatting, the toast,
// errors in words for people, and the engine status in the header.

import { WorkerDied } from '../pool.js';
import * as faceStore from '../facemodels.js';

/** An element by id (any: the page's elements are inputs, canvases, dialogs, …). @type {(id: string) => any} */
export const $ = (id) => document.getElementById(id);

export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
export const mb = faceStore.mbText;
export const fmtScale = (s) => String(Math.round(s * 100) / 100);
export const fmtTime = (s) => (s < 1 ? 'less than a second' : s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
export const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
export const baseName = (name) => (name.replace(/\.[^.]+$/, '') || 'photo').replace(/[\\/:*?"<>|]+/g, '_');

let toastTimer = 0;
export function toast(text, kind = 'error') {
  const t = $('toast');
  t.textContent = text;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 6000);
}

export function friendly(e) {
  const m = String(e?.message ?? e);
  if (e instanceof WorkerDied) return `The restoration stopped: ${m}. Try a smaller scale or a smaller photo.`;
  return m.charAt(0).toUpperCase() + m.slice(1).replace(/\.?$/, '.');
}

export function setEngine(text, state, progress) {
  $('engine-text').textContent = text;
  $('engine').dataset.state = state;
  document.body.dataset.engine = state;
  const p = $('engine-progress');
  p.hidden = progress == null;
  if (progress != null) p.value = progress;
}
