// The settings: defaults ← localStorage ← URL query (`?scale=4&faces=off…`), saved on each change;
// and `?tile=`, `?deblur=` and `?gpu=`, which apply to this visit only.

import { clamp } from './dom.js';
import { GPU_MODES } from '../gpu.js';

const SETTINGS_KEY = 'unblur.settings';
const DEFAULTS = { scale: 2, denoise: 0.5, faces: true, strength: 1, fidelity: 0.5, model: '', faceModel: '', format: 'png', quality: 92, deblur: 'auto', gpu: 'auto' };
/** Sharpen blur: the deblur stage's modes, as the core's options name them. */
export const DEBLUR_MODES = Object.freeze(['auto', 'on', 'off']);

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
  if (!DEBLUR_MODES.includes(s.deblur)) s.deblur = DEFAULTS.deblur;
  if (!GPU_MODES.includes(s.gpu)) s.gpu = DEFAULTS.gpu;
  const set = (k, v) => v !== undefined && (s[k] = v);
  // Brought into the core's range once the engine is up (showScales).
  set('scale', queryNumber('scale', 1, Infinity));
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
export const settings = readSettings();
// `?tile=N`: the tile side for this visit only (never saved), for measuring the page's own
// choice against others (bench/page_vs_ort.mjs). Without it the core's default applies.
export const tileParam = Math.round(queryNumber('tile', 32, 512) ?? 0) || undefined;
/** What the page found wrong in its URL, to say once it is up. */
export const queryProblems = [];
// `?deblur=auto|on|off`: Sharpen blur for this visit only (never saved; choosing in the settings
// ends it). Another value is reported, and the default used.
// `?gpu=auto|on|off`: the processor likewise (the tests force the SwiftShader adapter with `on`).
export const visit = { deblur: undefined, gpu: undefined };
/** This visit's `?key=` if it is one of `modes`; another value is reported, and the default used. */
function visitMode(key, modes, what) {
  if (!query.has(key)) return undefined;
  const v = query.get(key).toLowerCase();
  if (modes.includes(v)) return v;
  queryProblems.push(`The address asks for ?${key}=${query.get(key)}: ${what} is ${modes.slice(0, -1).join(', ')} or ${modes.at(-1)}. Using ${DEFAULTS[key]}, the default.`);
  return DEFAULTS[key];
}
visit.deblur = visitMode('deblur', DEBLUR_MODES, 'Sharpen blur');
visit.gpu = visitMode('gpu', GPU_MODES, 'the processor');
/** Sharpen blur as it applies now: this visit's `?deblur=`, else the setting. */
export const deblurMode = () => visit.deblur ?? settings.deblur;
/** The processor choice as it applies now: this visit's `?gpu=`, else the setting. */
export const gpuMode = () => visit.gpu ?? settings.gpu;
export function saveSettings() {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {}
}
