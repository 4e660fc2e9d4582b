// Restoring: the queue's photos one after another through the pool (a photo's own Sharpen blur
// choice, from its result's Undo sharpening / Sharpen, before the settings'), the result drawn
// tile by tile on the progress canvas as the workers hand tiles back, the progress bar, and Cancel.

import { Cancelled } from '../pool.js';
import { $, fmtTime, toast, friendly } from './dom.js';
import { settings, tileParam, deblurMode } from './settings.js';
import { items, state } from './state.js';
import { select, renderQueue, pending, statusText, skippedFaces } from './queue.js';
import { renderItem, sizeProblem } from './view.js';
import { prepareNets, readyText } from './start.js';
import { refreshFaceModels, showSettings } from './settingspanel.js';
import { loadFacePairs } from './result.js';
import { restorationEnded } from './offline.js';

let previewScale = 1;
let deblurFailureSaid = false;
const gpuFailuresSaid = new Set();

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
  const parts =
    p.stage === 'deblur-check'
      ? [`Checking for blur… tile ${Math.min(p.deblurDone + 1, p.deblurTiles)} of ${p.deblurTiles}`]
      : p.stage === 'deblur'
        ? [`Sharpening… tile ${Math.min(p.deblurDone + 1, p.deblurTiles)} of ${p.deblurTiles}`]
        : p.stage === 'faces'
          ? ['Finding faces…']
          : [`Tiles ${p.tilesDone} of ${p.tiles}`];
  if (p.stage === 'tiles' && p.faces) parts.push(`faces ${p.facesDone} of ${p.faces}`);
  if (p.eta != null && p.fraction < 1) parts.push(`about ${fmtTime(p.eta)} left`);
  $('progress-text').textContent = parts.join(' · ');
  $('progress').dataset.stage = p.stage;
  $('progress').dataset.deblur = `${p.deblurDone}/${p.deblurTiles}`;
  $('progress').dataset.tiles = `${p.tilesDone}/${p.tiles}`;
  $('progress').dataset.faces = `${p.facesDone}/${p.faces}`;
  const li = $('queue').children[items.indexOf(it)];
  if (li) li.querySelector('.q-status').textContent = statusText(it);
}

/** Restores the photos waiting (or `only` these), one after another. */
export async function restoreAll(only = null) {
  if (state.running) return;
  await state.engineReady;
  let todo = only || pending();
  if (!todo.length && state.selected?.status === 'done') todo = [state.selected];
  if (!todo.length) return;
  state.running = true;
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
    state.running = false;
    restorationEnded();
    renderQueue();
    renderItem();
  }
}

async function restoreOne(it) {
  const prev = it.status;
  it.status = 'working';
  it.failedRestore = false;
  it.progress = null;
  select(it);
  $('bar-fill').style.width = '0%';
  $('progress-text').textContent = 'Loading the upscaler…';
  const scale = settings.scale;
  const format = settings.format;
  // Sharpen blur: the photo's own choice (Undo sharpening, Sharpen), else the settings'.
  const deblur = it.deblur ?? deblurMode();
  try {
    await prepareNets(deblur);
    readyText();
    $('progress-text').textContent = 'Preparing…';
    const options = { scale, faces: settings.faces, face_strength: settings.strength, format, jpeg_quality: settings.quality, deblur, ...(tileParam && { tile: tileParam }) };
    state.lastJobItem = it;
    const t0 = performance.now();
    const res = await state.pool.restore(it.bytes, options, {
      start: (info) => setupCanvas(info),
      tile: (win, rgba) => drawTile(win, rgba),
      progress: (p) => showProgress(it, p),
      finishing: () => ($('progress-text').textContent = it.faces?.length || settings.faces ? 'Pasting faces and saving…' : 'Saving…'),
    }, it.base, skippedFaces(it), it.repair?.mask ?? null);
    const seconds = (performance.now() - t0) / 1000;
    if (it.result) URL.revokeObjectURL(it.result.url);
    const blob = new Blob([res.bytes], { type: res.mime });
    it.result = { blob, url: URL.createObjectURL(blob), name: res.name, width: res.info.outWidth, height: res.info.outHeight, faces: res.info.faces.length, restored: res.info.faces.length - (res.info.faceFailure?.left ?? 0), scale, format, seconds, deblur, verdict: res.info.deblur, repaired: !!it.repair, gpu: res.info.gpu, faceEls: null };
    it.status = 'done';
    if (!skippedFaces(it)) it.faces = res.info.faces;
    if (res.info.deblurFailure && !deblurFailureSaid) {
      deblurFailureSaid = true; // said once: every photo after would fail the same way
      toast(`Sharpening could not run (${res.info.deblurFailure}), so ${it.name} was restored without it${items.length > 1 ? ', as the next photos will be' : ''}.`, 'warning');
    }
    if (res.info.gpuFailure && !gpuFailuresSaid.has(res.info.gpuFailure)) {
      gpuFailuresSaid.add(res.info.gpuFailure);
      // The GPU worker has stopped (or could not take this network): said once, from then on the CPU runs.
      toast(`The GPU could not go on (${res.info.gpuFailure}); the CPU workers ${res.info.gpu?.tiles || res.info.gpu?.faces ? 'finished' : 'restored'} ${it.name}.`, 'warning');
      readyText();
      showSettings();
    }
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
    it.failedRestore = true; // the photo itself is fine: it stays, to correct and restore again
    toast(`${it.name}: ${it.error}`);
    renderItem();
    return 'error';
  } finally {
    readyText();
  }
}

$('restore').addEventListener('click', () => restoreAll());
$('cancel').addEventListener('click', () => {
  state.pool?.cancel();
  $('progress-text').textContent = 'Cancelling…';
});
