// Which of the two wasm builds this browser runs. Both hold the same engine; `pkg-relaxed`
// compiles the GEMM kernels with relaxed SIMD (fused multiply-adds, about 1.2× faster), which
// a browser without it refuses to load, so it is chosen only where WebAssembly.validate accepts
// a relaxed-SIMD instruction. `?engine=simd128` forces the other build (the tests use it).

// The smallest module using f32x4.relaxed_madd: (func (result v128) (f32x4.relaxed_madd c c c)).
const V128_ZERO = [0xfd, 0x0c, ...new Array(16).fill(0)];
const BODY = [0x00, ...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x85, 0x02, 0x0b];
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, BODY.length + 2, 0x01, BODY.length, ...BODY, // its code
]);

export const BUILDS = { relaxed: 'pkg-relaxed', simd128: 'pkg' };

/** The build's folder ('pkg-relaxed' or 'pkg') and its name for people. */
export function engineBuild(search = globalThis.location?.search || '') {
  const forced = new URLSearchParams(search).get('engine');
  const relaxed = forced ? forced === 'relaxed' : WebAssembly.validate(RELAXED_PROBE);
  return relaxed ? { dir: BUILDS.relaxed, name: 'relaxed SIMD' } : { dir: BUILDS.simd128, name: 'SIMD128' };
}
