//! The page's GPU worker boundary (issue 30): the core's GPU engine on the browser's WebGPU.
//!
//! It mirrors `web/wasm`'s `Net` for the two kinds of network the GPU runs (the upscaler, with
//! its denoise blend, and a face model), built by the same core functions from the same bytes;
//! only `run` differs: it returns a promise, because a readback completes only when the worker's
//! event loop turns. The device is opened once per worker ([`open_device`]); a network whose
//! operators the GPU engine lacks is refused when it is loaded, and the page runs it on the CPU.
//! This wasm is fetched only after the page found an adapter, so a browser without WebGPU never
//! downloads it.

use std::cell::RefCell;
use std::rc::Rc;

use unblur::engine::gpu::{GpuChoice, GpuDevice, GpuError, GpuNetwork};
use unblur::engine::Network;
use wasm_bindgen::prelude::*;

// The same `Output` the CPU workers' boundary hands the page.
#[path = "../../wasm/src/output.rs"]
mod output;
use output::Output;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

thread_local! {
    /// The worker's one device, opened by [`open_device`].
    static DEVICE: RefCell<Option<GpuDevice>> = const { RefCell::new(None) };
}

fn device() -> Result<GpuDevice, JsError> {
    DEVICE
        .with(|d| d.borrow().clone())
        .ok_or_else(|| JsError::new("the GPU device is not open"))
}

fn gpu_err(e: GpuError) -> JsError {
    JsError::new(&e.to_string())
}

fn core_err(e: unblur::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// Opens the device on the adapter the browser offers, with its own buffer limits (or WebGPU's
/// defaults with `default_limits`: the tests' way to exercise the engine's splitting); resolves to
/// the adapter in words.
#[wasm_bindgen]
pub async fn open_device(default_limits: bool) -> Result<String, JsError> {
    let dev = GpuDevice::open(GpuChoice::On, default_limits)
        .await
        .map_err(gpu_err)?;
    let name = dev.describe();
    DEVICE.with(|d| *d.borrow_mut() = Some(dev));
    Ok(name)
}

/// Destroys the device, as a lost GPU would (the page's test hook): later runs fail and the
/// page hands their work to the CPU workers.
#[wasm_bindgen]
pub fn lose_device() {
    DEVICE.with(|d| {
        if let Some(dev) = d.borrow().as_ref() {
            dev.destroy();
        }
    });
}

/// A network lowered onto the worker's device, with what the page asks of it.
#[wasm_bindgen]
pub struct Net {
    net: Rc<GpuNetwork>,
    sr_scale: Option<usize>,
    face_side: Option<usize>,
}

impl Net {
    fn lower(net: Network) -> Result<Net, JsError> {
        let sr_scale = unblur::upscale::model_scale(&net).ok();
        let face_side = unblur::pipeline::face_model_side(&net).ok();
        let gpu = GpuNetwork::new(&net, &device()?).map_err(gpu_err)?;
        Ok(Net {
            net: Rc::new(gpu),
            sr_scale,
            face_side,
        })
    }
}

#[wasm_bindgen]
impl Net {
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<Net, JsError> {
        Net::lower(Network::from_bytes(bytes).map_err(core_err)?)
    }

    /// A face model (ONNX, or a stored conversion), with CodeFormer's fidelity as `web/wasm`'s.
    pub fn face(bytes: &[u8], fidelity: Option<f32>) -> Result<Net, JsError> {
        Net::lower(unblur::convert::face_network(bytes, fidelity).map_err(core_err)?)
    }

    /// The super-resolution network at a denoise strength, by the core's rule
    /// ([`unblur::upscale::sr_network`]), as `web/wasm`'s.
    pub fn upscaler(
        general: &[u8],
        partner: Option<Vec<u8>>,
        denoise: f32,
    ) -> Result<Net, JsError> {
        Net::lower(
            unblur::upscale::sr_network(general, partner.as_deref(), denoise).map_err(core_err)?,
        )
    }

    /// Runs on a planar `[1,3,h,w]` input; resolves to an [`Output`] (the first output, planar,
    /// with its shape).
    pub fn run(&self, input: Vec<f32>, h: usize, w: usize) -> js_sys::Promise {
        let net = self.net.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut out = net
                .run_async(&[1, 3, h, w], input)
                .await
                .map_err(|e| JsValue::from(gpu_err(e)))?;
            let (shape, data) = out.swap_remove(0);
            Ok(Output {
                shape: shape.iter().map(|&v| v as u32).collect(),
                data,
            }
            .into())
        })
    }

    /// The super-resolution scale (output side over input side).
    pub fn sr_scale(&self) -> Result<usize, JsError> {
        self.sr_scale
            .ok_or_else(|| JsError::new("this network is not an upscaler"))
    }

    /// A face model's input side (512 or 256).
    pub fn face_side(&self) -> Result<usize, JsError> {
        self.face_side
            .ok_or_else(|| JsError::new("this network is not a face model"))
    }
}
