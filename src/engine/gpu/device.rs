//! GPU device acquisition: which adapter, with which limits.
//!
//! `auto` never takes a software adapter (lavapipe, llvmpipe, SwiftShader: wgpu reports them as
//! `DeviceType::Cpu`): on such a machine tract's CPU engine is the faster of the two, so `auto`
//! falls back to it. `on` accepts one (that is how the tests run on a machine without a GPU).
//! The limits are asked for explicitly: the adapter's own `maxStorageBufferBindingSize` and
//! `maxBufferSize` (wgpu's defaults, 128 and 256 MiB, are below what most GPUs offer), the rest
//! wgpu's defaults; [`GpuDevice::with_default_limits`] keeps all of wgpu's defaults, so that a
//! test sees the engine under the limits every WebGPU implementation must offer.

use std::sync::{Arc, Mutex};

use super::GpuError;

/// Which adapters may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuChoice {
    /// A hardware GPU only (discrete first, then integrated, virtual, other).
    Auto,
    /// Any adapter, a software one included (hardware ones still come first).
    On,
}

/// An opened device: the wgpu device and queue, what the adapter is, the limits in force.
#[derive(Clone)]
pub struct GpuDevice {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    /// The first error wgpu reported outside any scope (validation, out of memory), taken by
    /// [`GpuDevice::take_error`] after each piece of work.
    errors: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuDevice({})", self.describe())
    }
}

impl GpuDevice {
    /// The best adapter `choice` allows, with its own buffer limits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(choice: GpuChoice) -> Result<Self, GpuError> {
        pollster::block_on(Self::open(choice, false))
    }

    /// As [`GpuDevice::new`], but with wgpu's default limits throughout (128 MiB bindings,
    /// 256 MiB buffers): what the tests use to exercise the engine's splitting of large work.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_default_limits(choice: GpuChoice) -> Result<Self, GpuError> {
        pollster::block_on(Self::open(choice, true))
    }

    /// Opens a device; natively through [`GpuDevice::new`], in the browser awaited by the page's
    /// GPU worker (where nothing may block).
    pub async fn open(choice: GpuChoice, default_limits: bool) -> Result<Self, GpuError> {
        let adapter = Self::adapter(choice).await?;
        let offered = adapter.limits();
        let limits = if default_limits {
            wgpu::Limits::default()
        } else {
            wgpu::Limits {
                max_storage_buffer_binding_size: offered.max_storage_buffer_binding_size,
                max_buffer_size: offered.max_buffer_size,
                ..wgpu::Limits::default()
            }
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("unblur"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let errors = Arc::new(Mutex::new(None::<String>));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap();
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = lost.lock().unwrap();
            if slot.is_none() {
                *slot = Some(format!("the GPU device was lost ({reason:?}): {message}"));
            }
        });
        Ok(GpuDevice {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            errors,
        })
    }

    /// Natively: every Vulkan, Metal or DX12 adapter with compute shaders, ranked, software ones
    /// dropped under `auto`.
    #[cfg(not(target_arch = "wasm32"))]
    async fn adapter(choice: GpuChoice) -> Result<wgpu::Adapter, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let mut adapters: Vec<wgpu::Adapter> = instance
            .enumerate_adapters(wgpu::Backends::PRIMARY)
            .await
            .into_iter()
            .filter(|a| {
                a.get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            })
            .collect();
        let found: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
        if choice == GpuChoice::Auto {
            adapters.retain(|a| a.get_info().device_type != wgpu::DeviceType::Cpu);
        }
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        adapters.into_iter().next().ok_or_else(|| {
            GpuError::NoAdapter(if found.is_empty() {
                "no Vulkan, Metal or DX12 adapter with compute shaders".into()
            } else {
                format!(
                    "only software adapters ({}), which `auto` leaves to the CPU engine",
                    found.join(", ")
                )
            })
        })
    }

    /// In the browser: the adapter WebGPU gives (high performance preferred). The page decides
    /// `auto` before it loads this code at all (it asks `navigator.gpu` and leaves a fallback
    /// adapter such as SwiftShader to the CPU pool), so both choices take what is offered here.
    #[cfg(target_arch = "wasm32")]
    async fn adapter(_choice: GpuChoice) -> Result<wgpu::Adapter, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::BROWSER_WEBGPU,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))
    }

    /// The adapter, in words: name, kind, backend.
    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    /// Whether this is a software adapter (a CPU pretending to be a GPU).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The limits the device was opened with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Destroys the device, as a driver reset or a lost GPU would (the page's test hook): every
    /// later run fails with [`GpuError::Execution`].
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// The first error wgpu reported since the last call, as a [`GpuError::Execution`].
    pub(crate) fn take_error(&self) -> Result<(), GpuError> {
        match self.errors.lock().unwrap().take() {
            Some(e) => Err(GpuError::Execution(e)),
            None => Ok(()),
        }
    }

    /// Blocks until the queue's work so far is done.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Execution(e.to_string()))?;
        self.take_error()
    }

    /// In the browser nothing may block: the work goes on as the event loop turns (a readback
    /// awaits its mapping); here only the errors reported so far are taken.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn wait(&self) -> Result<(), GpuError> {
        self.take_error()
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend)
}
