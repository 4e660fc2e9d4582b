// onnxruntime-web (wasm backend, SIMD) in a worker: numThreads 1 on a static page; more on a
// cross-origin-isolated page (its own pthread workers, SharedArrayBuffer).
import { serve } from './serve.js';
import * as ort from '/ort/ort.wasm.min.mjs';

let session = null;
const handlers = {
  async load({ url, threads }) {
    ort.env.wasm.wasmPaths = '/ort/';
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.simd = true;
    const t0 = performance.now();
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const t1 = performance.now();
    await session?.release();
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    return {
      fetchMs: t1 - t0,
      loadMs: performance.now() - t1,
      isolated: self.crossOriginIsolated,
      threads: ort.env.wasm.numThreads,
      inputs: session.inputNames,
      outputs: session.outputNames,
    };
  },
  async run({ data, h, w, keep }) {
    const input = new ort.Tensor('float32', new Float32Array(data), [1, 3, h, w]);
    const t0 = performance.now();
    const res = await session.run({ [session.inputNames[0]]: input });
    const ms = performance.now() - t0;
    const out = res[session.outputNames[0]].data;
    const reply = { ms, outLen: out.length };
    if (keep) reply.out = out.slice().buffer;
    for (const t of Object.values(res)) t.dispose?.();
    return reply;
  },
};

serve(handlers);
