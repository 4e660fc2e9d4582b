// The dialog that downloads a published face model (its size, license, host and the space it
// needs, then progress, Resume after an interruption), and adding a face model from a file.

import * as faceStore from '../facemodels.js';
import { $, mb, fmtTime, toast, friendly, setEngine } from './dom.js';
import { settings, saveSettings } from './settings.js';
import { state } from './state.js';
import { refreshFaceModels } from './settingspanel.js';
import { readyText } from './start.js';

const dlg = { worker: null, abort: null, entry: null, resolve: null };

function dialogState(phase, error = '') {
  $('fm-dialog').dataset.state = phase;
  $('fm-progress').hidden = phase === 'ask';
  $('fm-error').hidden = !error;
  $('fm-error').textContent = error;
  $('fm-go').hidden = phase === 'downloading' || phase === 'converting';
}

/** Shows a catalog model's size, license, host and the space it needs, and downloads it if the
 *  user says so. Resolves to whether it is now stored. */
export async function askAndInstall(entry) {
  if (dlg.resolve) return false;
  await state.engineReady;
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
      dlg.worker = state.pool.modelWorker();
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
    await state.engineReady;
    setEngine(`Checking ${f.name}${/\.pth$/i.test(f.name) ? ' and converting it' : ''}…`, 'busy');
    worker = state.pool.modelWorker();
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
