// The whole ×4 job with onnxruntime-web, as a web developer would write it after Real-ESRGAN's
// inference script: fetch the photo and the fp32 model, decode, run the model over TILE² tiles
// each padded by PAD pixels (its output cropped back), assemble the RGBA result and encode it as
// PNG with the browser's own encoder. In a worker (onnxruntime-web's threads need one off the
// main thread); `threads` > 1 only on a cross-origin-isolated page. `ep`: 'wasm' (the CPU), or
// 'webgpu' (onnxruntime-web's WebGPU build and provider). Replies with the times.

self.onmessage = async ({ data: { photo, model, threads, tile, pad, ep = 'wasm' } }) => {
  try {
    const t0 = performance.now();
    const ort = await import(ep === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
    ort.env.wasm.wasmPaths = '/ort/';
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.simd = true;
    const [img, bytes] = await Promise.all([
      fetch(photo).then((r) => r.blob()).then((b) => createImageBitmap(b)),
      fetch(model).then((r) => r.arrayBuffer()),
    ]);
    const session = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: [ep], graphOptimizationLevel: 'all' });
    const tLoad = performance.now();
    const { width: w, height: h } = img;
    const ctx = new OffscreenCanvas(w, h).getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, w, h).data;
    const s = 4;
    const W = w * s;
    const out = new Uint8ClampedArray(W * h * s * 4);
    let tiles = 0;
    for (let y0 = 0; y0 < h; y0 += tile)
      for (let x0 = 0; x0 < w; x0 += tile) {
        const y1 = Math.min(y0 + tile, h), x1 = Math.min(x0 + tile, w);
        const py0 = Math.max(y0 - pad, 0), py1 = Math.min(y1 + pad, h), px0 = Math.max(x0 - pad, 0), px1 = Math.min(x1 + pad, w);
        const ph = py1 - py0, pw = px1 - px0, plane = ph * pw;
        const input = new Float32Array(3 * plane);
        for (let y = 0; y < ph; y++)
          for (let x = 0; x < pw; x++) {
            const i = ((py0 + y) * w + px0 + x) * 4, o = y * pw + x;
            input[o] = px[i] / 255;
            input[plane + o] = px[i + 1] / 255;
            input[2 * plane + o] = px[i + 2] / 255;
          }
        const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, [1, 3, ph, pw]) });
        const y = res[session.outputNames[0]].data;
        const OW = pw * s, OP = ph * s * OW;
        for (let oy = (y0 - py0) * s, ry = y0 * s; ry < y1 * s; oy++, ry++)
          for (let ox = (x0 - px0) * s, rx = x0 * s; rx < x1 * s; ox++, rx++) {
            const i = oy * OW + ox, o = (ry * W + rx) * 4;
            out[o] = Math.round(Math.min(1, Math.max(0, y[i])) * 255);
            out[o + 1] = Math.round(Math.min(1, Math.max(0, y[OP + i])) * 255);
            out[o + 2] = Math.round(Math.min(1, Math.max(0, y[2 * OP + i])) * 255);
            out[o + 3] = 255;
          }
        tiles++;
      }
    const tRun = performance.now();
    const canvas = new OffscreenCanvas(W, h * s);
    canvas.getContext('2d').putImageData(new ImageData(out, W, h * s), 0, 0);
    const png = await canvas.convertToBlob({ type: 'image/png' });
    await session.release();
    const t1 = performance.now();
    postMessage({ ms: t1 - t0, loadMs: tLoad - t0, runMs: tRun - tLoad, encodeMs: t1 - tRun, tiles, pngBytes: png.size,
      threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated });
  } catch (e) {
    postMessage({ error: String(e?.stack || e) });
  }
};
