//! The GPU engine (issue 30): the networks that fit its small set of operators run on wgpu
//! compute shaders (WGSL), the CPU engine ([`super::Network`], tract) stays the fallback.
//!
//! One description of each network, its ONNX file: the GPU side lowers tract's *decluttered*
//! model (the graph tract builds before its own code generation, weights folded into constants)
//! into a short list of GPU steps. A network with an operator the GPU side lacks is refused with
//! [`GpuError::Unsupported`] at load time, so that the caller runs it on the CPU by rule.
//!
//! - [`device`]: adapter choice (never a software adapter under `auto`) and explicit limits.
//! - [`lower`]: decluttered tract model → [`lower::Graph`] (convolutions with their folded
//!   weights, activations fused, axis shuffles as copies).
//! - [`kernels`]: the WGSL kernels and their pipelines.
//! - [`exec`]: [`GpuNetwork`]: weights uploaded once, one plan (buffers, bind groups, dispatches
//!   in chunks of rows) per input shape, only the output read back.
//!
//! - [`fallback`]: the `auto|on|off` rule and the fallback to the CPU, with or without the
//!   feature.
//!
//! Everything else here is behind the `gpu` feature (wgpu).

#[cfg(feature = "gpu")]
pub mod device;
#[cfg(feature = "gpu")]
pub mod exec;
pub mod fallback;
#[cfg(feature = "gpu")]
pub mod kernels;
#[cfg(feature = "gpu")]
pub mod lower;

#[cfg(all(test, feature = "gpu"))]
mod tests;

#[cfg(feature = "gpu")]
pub use device::{GpuChoice, GpuDevice};
#[cfg(feature = "gpu")]
pub use exec::GpuNetwork;
pub use fallback::{Accelerator, GpuMode};

#[cfg(feature = "gpu")]
/// Why the GPU engine cannot run a network (or a tile). Every variant is a reason to run on the
/// CPU instead; none is a crash.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter (of the kind asked for) on this machine.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter was found but its device could not be opened.
    #[error("the GPU device could not be opened: {0}")]
    Device(String),
    /// The network uses an operator (or a form of one) that the GPU engine does not implement.
    #[error("unsupported op {op} (node '{node}'): {why}")]
    Unsupported {
        op: String,
        node: String,
        why: String,
    },
    /// tract could not load or declutter the network.
    #[error("the network could not be prepared: {0}")]
    Model(String),
    /// A buffer would exceed the device's limits (`maxBufferSize`,
    /// `maxStorageBufferBindingSize`).
    #[error("{what} needs {bytes} bytes, over this device's limit of {limit} bytes")]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    /// The input does not fit the network (rank, batch, data length).
    #[error("bad input: {0}")]
    Input(String),
    /// wgpu reported an error while building or running the work.
    #[error("GPU execution failed: {0}")]
    Execution(String),
}

#[cfg(feature = "gpu")]
impl From<crate::error::Error> for GpuError {
    fn from(e: crate::error::Error) -> Self {
        GpuError::Model(e.to_string())
    }
}

#[cfg(feature = "gpu")]
impl From<tract_onnx::prelude::TractError> for GpuError {
    fn from(e: tract_onnx::prelude::TractError) -> Self {
        GpuError::Model(format!("{e:#}"))
    }
}
