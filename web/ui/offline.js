// Offline: the service worker (registered here) keeps the wasm build this browser runs, and the
// models fetched only when first needed are fetched once the page is idle; with both, the page
// says it works offline.

import { models, state } from './state.js';
import { readyText } from './start.js';

/** Asks the service worker to keep the wasm build this browser runs (it precaches only the
 *  shell); once it has, the page works offline. */
export function keepOffline(dir) {
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

/** Asks the service worker to keep the GPU worker's code too, once the page runs it (a browser
 *  without an adapter never fetches it, so it is not precached). */
export function keepGpuOffline() {
  navigator.serviceWorker?.ready
    .then((reg) => reg.active.postMessage({ type: 'keep', urls: ['gpuworker.js', 'pkg-gpu/unblur_web_gpu.js', 'pkg-gpu/unblur_web_gpu_bg.wasm'] }))
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

/** A restoration run (restoreAll) has ended: the idle wait counts from now. */
export function restorationEnded() {
  lastRunEnded = performance.now();
  firstRestorationEnded();
}

/** The models fetched only when first needed (the denoise partners for another strength, the
 *  other upscalers, Unblur's face model), fetched once the page is idle: 3 s after the first
 *  restoration (or 10 s after the engine is ready, if none has ended), never while one runs nor
 *  in the 3 s after one ends, at low priority, so that they never slow the first photo and offline use never finds one
 *  missing. Not on a data-saver connection: there each is fetched when first needed, and the
 *  page does not say it works offline. */
export async function keepModelsOffline() {
  if (/** @type {any} */ (navigator).connection?.saveData) return;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await Promise.race([firstRestoration, sleep(10_000)]);
  // Also when the 10 s end during a restoration: wait for it to end, then 3 s more.
  while (state.running || performance.now() - lastRunEnded < 3000) await sleep(250);
  await models.load(models.shipped(), undefined, { hold: false });
  offlinePart('models');
}

/** Registers the service worker (not from a file: URL); a new one taking control may change
 *  whether the page works offline, which the engine status says. */
export function registerServiceWorker() {
  if ('serviceWorker' in navigator && location.protocol !== 'file:') {
    navigator.serviceWorker.register('sw.js').catch(() => {});
    navigator.serviceWorker.addEventListener('controllerchange', () => state.pool && document.body.dataset.engine === 'ready' && readyText());
  }
}
