//! The engine layer: everything that runs a network, below the pipeline and above tract.
//!
//! - [`network`]: an ONNX network on tract (weights normalised on the protobuf, one optimised
//!   plan per input shape, reused for every tile of that shape); the rest of the core sees only
//!   [`Network`].
//! - `gemm_native` (x86-64): the f32 GEMM kernel family tract dispatches to, measured on one
//!   convolution before the first plan.
//! - `gemm_wasm` (wasm32 with SIMD128): Unblur's 4×8 wasm GEMM kernel in tract's kernel registry.
//! - `gemm_check` (the wasm `bench` build): every wasm kernel against a plain reference.
//! - [`gpu`] (feature `gpu`, native): the same networks on wgpu compute shaders, lowered from
//!   tract's decluttered model; a network it cannot lower runs on [`Network`].

// Empty without the `gpu` feature. Its items test `feature = "gpu"` inside it, under this
// allowance, because web/core-relaxed compiles this same source as a package of its own that has
// no such feature (and lints its wasm build with -D warnings).
#[allow(unexpected_cfgs)]
pub mod gpu;
pub mod network;

pub use network::{Network, OpTime};

#[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "bench"))]
pub mod gemm_check;
#[cfg(target_arch = "x86_64")]
pub mod gemm_native;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod gemm_wasm;
