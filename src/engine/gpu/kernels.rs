//! The WGSL kernels (`wgsl/*.wgsl`) and their compute pipelines, built once per network.
//!
//! - `conv.wgsl`: direct convolution, register-blocked (4 pixels × 8 output channels per
//!   invocation), bias and activation fused; one pipeline per kernel size and stride.
//! - `eltwise.wgsl`: Add/Mul/Sub/Div of two tensors or with a broadcast constant; PReLU and
//!   LeakyReLU on their own.
//! - `copy.wgsl`: strided copies (axis moves, concatenation, slices) and padding.
//! - `resize.wgsl`: nearest and linear resampling from tract's own per-axis plans.

use std::collections::HashMap;
use std::sync::Mutex;

/// Output pixels per conv invocation (`PX` in conv.wgsl) and the workgroup's 8×8 invocations.
pub const CONV_PX: usize = 4;
pub const CONV_WG: usize = 8;
/// Output channels per conv invocation.
pub const CONV_OC: usize = 8;
/// conv.wgsl's input window: `(PX − 1)·stride + kernel width` values.
pub const CONV_WINDOW: usize = 16;
/// Invocations per workgroup of the 1-D kernels.
pub const LINEAR_WG: usize = 256;

pub struct Kernels {
    device: wgpu::Device,
    conv_module: wgpu::ShaderModule,
    conv: Mutex<HashMap<[u32; 4], wgpu::ComputePipeline>>,
    pub eltwise: wgpu::ComputePipeline,
    pub copy: wgpu::ComputePipeline,
    pub resize: wgpu::ComputePipeline,
}

fn module(device: &wgpu::Device, name: &str, src: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    })
}

fn pipeline(
    device: &wgpu::Device,
    name: &str,
    module: &wgpu::ShaderModule,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: None,
        module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants,
            ..Default::default()
        },
        cache: None,
    })
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Self {
        let simple =
            |name: &str, src: &str| pipeline(device, name, &module(device, name, src), &[]);
        Kernels {
            device: device.clone(),
            conv_module: module(device, "conv", include_str!("wgsl/conv.wgsl")),
            conv: Mutex::new(HashMap::new()),
            eltwise: simple("eltwise", include_str!("wgsl/eltwise.wgsl")),
            copy: simple("copy", include_str!("wgsl/copy.wgsl")),
            resize: simple("resize", include_str!("wgsl/resize.wgsl")),
        }
    }

    /// The convolution pipeline for one kernel size and stride.
    pub fn conv(&self, kernel: [usize; 2], stride: [usize; 2]) -> wgpu::ComputePipeline {
        let key = [kernel[0], kernel[1], stride[0], stride[1]].map(|v| v as u32);
        self.conv
            .lock()
            .unwrap()
            .entry(key)
            .or_insert_with(|| {
                let constants = [
                    ("KH", key[0] as f64),
                    ("KW", key[1] as f64),
                    ("SH", key[2] as f64),
                    ("SW", key[3] as f64),
                ];
                pipeline(&self.device, "conv", &self.conv_module, &constants)
            })
            .clone()
    }
}
