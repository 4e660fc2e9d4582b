// Where face models are kept: the Origin Private File System, under `unblur/face-models/` (one
// origin holds all of a user's GitHub Pages projects, hence the namespace). The workers write and
// read the files (worker.js); the page lists and deletes them (facemodels.js).

const STORE_PATH = ['unblur', 'face-models'];

/** The store's folder, made if missing; a clear error where the browser has no OPFS. */
export async function storeDir() {
  if (!navigator.storage?.getDirectory) throw new Error('this browser cannot store face models (no Origin Private File System)');
  let d = await navigator.storage.getDirectory();
  for (const n of STORE_PATH) d = await d.getDirectoryHandle(n, { create: true });
  return d;
}
