// The state the UI's concerns share: the models, the workers, the photos and which one is shown.
// Changing values live on `state` (an object: a module's `let` export cannot be set by another).

import { Models } from '../models.js';

export const models = new Models();
/** The photos in the queue, in order. */
export const items = [];
export const state = {
  /** The workers (set by startEngine). @type {import('../pool.js').Pool} */
  pool: null,
  /** Resolves when workers and models are up. @type {Promise<void>} */
  engineReady: null,
  /** The photo shown. */
  selected: null,
  /** Whether a restoration (restoreAll) is running. */
  running: false,
  /** The photo of the pool's last job: only it can be re-encoded or show its progress canvas. */
  lastJobItem: null,
};

/** Whether the photo `it` can be restored as it is: read and waiting, cancelled, or its
 *  restoration failed (`it.failedRestore`: the photo itself is fine, so a mask or a setting
 *  changed can make it go). */
export function restorable(it) {
  return it.status === 'ready' || it.status === 'cancelled' || (it.status === 'error' && !!it.failedRestore);
}
