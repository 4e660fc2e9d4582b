// Whether this browser's GPU runs the upscaler and the face model (issue 30), decided on the main
// thread before any GPU code is fetched: the GPU worker (gpuworker.js, pkg-gpu/) is loaded only
// when `navigator.gpu.requestAdapter()` gives an adapter the choice allows, so a browser without
// WebGPU downloads none of it.
//
// The choice: 'auto' takes a hardware adapter and never a software one (a fallback adapter such
// as SwiftShader computes on the CPU, slower than the CPU pool); 'on' takes any adapter (the
// tests use it to run on SwiftShader); 'off' is the CPU pool only.

/** The processor choices, as the settings and `?gpu=` name them. */
export const GPU_MODES = Object.freeze(['auto', 'on', 'off']);

/**
 * The adapter `mode` allows: `{ok: true, name, software}` or `{ok: false, reason}` (in words, for
 * the settings' hint).
 * @param {string} mode
 * @returns {Promise<{ok: true, name: string, software: boolean} | {ok: false, reason: string}>}
 */
export async function findAdapter(mode) {
  if (mode === 'off') return { ok: false, reason: 'the CPU was chosen' };
  const gpu = /** @type {any} */ (navigator).gpu;
  if (!gpu) return { ok: false, reason: 'this browser has no WebGPU' };
  let adapter = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {}
  if (!adapter) return { ok: false, reason: 'the browser offers no GPU adapter' };
  const info = adapter.info || {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'a WebGPU adapter';
  // `info.isFallbackAdapter` (Chrome 136+), `adapter.isFallbackAdapter` before it; SwiftShader by name
  // where neither says.
  const software = !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || /swiftshader/i.test(name);
  if (software && mode !== 'on') return { ok: false, reason: `the only adapter is a software one (${name}), slower than the CPU` };
  return { ok: true, name, software };
}
