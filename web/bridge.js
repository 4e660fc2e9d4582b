// The bridge to one Web Worker (worker.js, or gpuworker.js for the GPU): its own wasm instance, and the requests waiting for
// its replies. Every message is one of protocol.js; a reply is {id, ok, ...} and a trap in the
// worker (`fatal`) kills it, failing everything it still owed with WorkerDied.

/** @typedef {import('./protocol.js').Request} Request */
/** @typedef {import('./protocol.js').GpuRequest} GpuRequest */

export class WorkerDied extends Error {}

/** One worker and its pending requests. */
export class Peer {
  /**
   * @param {WebAssembly.Module} module the compiled engine, shared by every worker
   * @param {string} build the wasm-bindgen glue's folder (engine.js)
   * @param {string} name for the browser's task manager and the tests
   * @param {boolean} [gpu] the GPU worker (gpuworker.js) instead of a CPU one (worker.js)
   */
  constructor(module, build, name, gpu = false) {
    this.name = name;
    const url = gpu ? new URL('./gpuworker.js', import.meta.url) : new URL('./worker.js', import.meta.url);
    this.worker = new Worker(url, { type: 'module', name });
    this.pending = new Map();
    this.seq = 0;
    this.dead = null;
    this.nets = {}; // slot → key, as far as we know
    this.worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      this.pending.delete(data.id);
      if (data.ok) p.resolve(data);
      else if (data.fatal) {
        this.kill(data.error);
        p.reject(new WorkerDied(data.error));
      } else p.reject(new Error(data.error));
    };
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.kill(e.message || 'the worker failed');
    };
    this.worker.onmessageerror = () => this.kill('a message could not be read');
    this.initializing = true;
    this.ready = this.call({ type: 'init', module, build }).finally(() => (this.initializing = false));
    this.ready.catch(() => {}); // a worker killed while starting is not news; callers see `dead`
  }

  get busy() {
    return this.pending.size > 0;
  }

  /**
   * Sends one request; resolves to the worker's reply.
   * @param {Request | GpuRequest} msg
   * @param {Transferable[]} [transfer]
   * @returns {Promise<any>}
   */
  call(msg, transfer = []) {
    if (this.dead) return Promise.reject(new WorkerDied(this.dead));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  kill(reason = 'terminated') {
    if (this.dead) return;
    this.dead = reason;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new WorkerDied(reason));
    this.pending.clear();
  }
}
