// The published face restorers (the manifest's catalog: GFPGAN, CodeFormer, GPEN) and the ones a
// user brings as a file: downloaded here, in the document (so the page's Content-Security-Policy,
// which lists the catalog's hosts only, binds every request), streamed to a face model worker that
// hashes, converts and stores them, and listed from the store afterwards.
//
// The store is the Origin Private File System under `unblur/face-models/` (written by the worker,
// worker.js); what is in it is listed in localStorage under `unblur.faceModels`. A user's GitHub
// Pages projects share one origin, hence the `unblur` namespace on both.

import { storeDir } from './store.js';

const INDEX_KEY = 'unblur.faceModels';

/** About how large the stored form is, per byte of the download: the converter keeps GFPGAN in
 *  fp16 (half), CodeFormer's encoder in f32 (two thirds); an ONNX file is stored as it is. */
const STORED_RATIO = { gfpgan: 0.51, codeformer: 0.67, onnx: 1 };

export class DownloadInterrupted extends Error {}

/** The stored face models: `[{name, file, id?, arch, side, bytes, sha256}]`. */
export function storedModels() {
  try {
    const list = JSON.parse(localStorage.getItem(INDEX_KEY) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function saveIndex(list) {
  localStorage.setItem(INDEX_KEY, JSON.stringify(list));
}

/** Drops index entries whose file the browser no longer has (evicted, or cleared by the user). */
export async function checkStore() {
  if (!navigator.storage?.getDirectory) return storedModels();
  const dir = await storeDir();
  const have = new Set();
  for await (const name of dir.keys()) have.add(name);
  const list = storedModels().filter((m) => have.has(m.file));
  // Files no entry names (a conversion whose page closed before it was listed) are removed.
  const named = new Set(list.map((m) => m.file));
  for (const name of have) if (!named.has(name)) await dir.removeEntry(name).catch(() => {});
  saveIndex(list);
  return list;
}

export async function removeStored(file) {
  saveIndex(storedModels().filter((m) => m.file !== file));
  const dir = await storeDir();
  await dir.removeEntry(file).catch(() => {});
}

function addToIndex(entry) {
  saveIndex([...storedModels().filter((m) => m.file !== entry.file), entry]);
  // Safari evicts storage that is not persistent after 7 days without a visit.
  navigator.storage?.persist?.().catch(() => {});
}

/** The stored copy of a catalog model, if there is one. */
export function storedFor(entry) {
  return storedModels().find((m) => m.sha256 === entry.download.sha256);
}

/** The space a catalog model needs in the store, and whether the browser says it has it. */
export async function spaceFor(entry) {
  const need = Math.ceil(entry.download.bytes * (STORED_RATIO[entry.arch] ?? 1));
  const est = await navigator.storage?.estimate?.().catch(() => null);
  const free = est?.quota != null ? est.quota - (est.usage || 0) : null;
  return { need, free, enough: free == null || free >= need };
}

/** Whether the connection says it is metered or asks to save data. */
export function meteredConnection() {
  const c = /** @type {any} */ (navigator).connection; // Chromium only
  return !!c && (c.saveData || c.type === 'cellular' || /2g/.test(c.effectiveType || ''));
}

/** The host a catalog model is downloaded from, for people. */
export const hostOf = (entry) => new URL(entry.download.page_url).host;

/**
 * @typedef {{got: number, total: number, speed: number, eta: number | null}} Progress
 * @typedef {{signal?: AbortSignal, onProgress?: (p: Progress) => void, onStage?: (what: string) => void}} InstallOptions
 */

/**
 * Downloads a catalog model into a face model worker (a Peer of worker.js), which hashes the bytes
 * as they arrive, then converts and stores it. `onProgress({got, total, speed, eta})`; `signal`
 * cancels. A download that stops halfway throws DownloadInterrupted; calling again with the same
 * worker resumes it with an HTTP Range request. Resolves to the stored entry.
 */
/**
 * @param {any} entry a catalog entry of the manifest
 * @param {import('./bridge.js').Peer} worker
 * @param {InstallOptions} [options]
 * @returns {Promise<object>} the stored entry
 */
export async function install(entry, worker, { signal, onProgress = () => {}, onStage = () => {} } = {}) {
  const { page_url: url, bytes: total, sha256 } = entry.download;
  let { have } = await worker.call({ type: 'recvBegin', sha256, total });
  let got = have;
  const t0 = performance.now();
  let mark = { t: t0, got };
  let speed = 0;
  const tick = () => {
    const now = performance.now();
    if (now - mark.t > 500) {
      const s = ((got - mark.got) * 1000) / (now - mark.t);
      speed = speed ? speed * 0.6 + s * 0.4 : s;
      mark = { t: now, got };
    }
    onProgress({ got, total, speed, eta: speed > 0 ? (total - got) / speed : null });
  };
  tick();
  if (got < total) {
    const headers = got > 0 ? { Range: `bytes=${got}-` } : {};
    let resp;
    try {
      resp = await fetch(url, { headers, signal, credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store' });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new DownloadInterrupted(`${hostOf(entry)} could not be reached (offline?)`);
    }
    if (!resp.ok) throw new Error(`${hostOf(entry)} answered HTTP ${resp.status}`);
    if (got > 0 && resp.status !== 206) {
      // The server ignored the Range: start over.
      await worker.call({ type: 'recvDrop' });
      ({ have } = await worker.call({ type: 'recvBegin', sha256, total }));
      got = have;
    } else if (got > 0 && !(resp.headers.get('content-range') || '').startsWith(`bytes ${got}-`)) {
      throw new Error(`${hostOf(entry)} resumed the download at the wrong place`);
    }
    const reader = resp.body.getReader();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (signal?.aborted) throw e;
        break; // the connection broke: what arrived is kept for a resume
      }
      if (chunk.done) break;
      const { value } = chunk;
      got += value.length;
      // Awaited: the worker's reply is the back-pressure (and a hashing error stops us).
      await worker.call({ type: 'recvChunk', data: value }, [value.buffer]);
      tick();
    }
    if (got < total) throw new DownloadInterrupted(`the download stopped at ${mbText(got)} of ${mbText(total)}`);
  }
  onStage(entry.format === 'pth' ? 'Checking and converting' : 'Checking');
  const r = await worker.call({ type: 'recvEnd' });
  const stored = { name: entry.name, id: entry.id, file: r.name, arch: entry.arch || r.arch, side: r.side, bytes: r.bytes, sha256: r.sha256 };
  addToIndex(stored);
  return stored;
}

/** A face model from the user's device (`.pth` or `.onnx`): checked, converted, stored. */
export async function addFile(file, worker) {
  const r = await worker.call({ type: 'addFile', file });
  const stored = { name: file.name, file: r.name, arch: r.arch, side: r.side, bytes: r.bytes, sha256: r.sha256 };
  addToIndex(stored);
  return stored;
}

/** A size as people read it: `1.6 MB`, `350 MB` (decimal megabytes, as downloads are shown). */
export const mbText = (n) => `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
