//! The rule that picks a network's engine: `auto`, `on` or `off` for the GPU, and the CPU engine
//! ([`Network`]) for whatever the GPU cannot run — a network it cannot lower, a device it cannot
//! open, a tile it fails on — reported once, never an error of the restoration. Compiled with or
//! without the `gpu` feature (without it, only the CPU runs). Native only: in the browser the
//! page's GPU worker is the GPU's side (`web/wasm-gpu`) and the pool does the falling back, so
//! there this is the CPU-only form.

use std::sync::Mutex;

use crate::engine::Network;
use crate::error::{Error, Result};

/// Whether to run a network on a GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuMode {
    /// A hardware GPU when there is one; never a software adapter (there the CPU engine is the
    /// faster one).
    #[default]
    Auto,
    /// Any adapter, a software one included.
    On,
    /// The CPU only.
    Off,
}

impl GpuMode {
    pub const ALL: [GpuMode; 3] = [GpuMode::Auto, GpuMode::On, GpuMode::Off];

    pub fn name(self) -> &'static str {
        match self {
            GpuMode::Auto => "auto",
            GpuMode::On => "on",
            GpuMode::Off => "off",
        }
    }
}

impl std::fmt::Display for GpuMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GpuMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        GpuMode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::Invalid(format!("--gpu is auto, on or off, not '{s}'")))
    }
}

/// A network's outputs, each as (shape, data).
type Outputs = Vec<(Vec<usize>, Vec<f32>)>;

/// A CPU network's GPU counterpart, where there is one, with the fallback rule.
pub struct Accelerator {
    #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
    gpu: Option<super::GpuNetwork>,
    #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
    failed: std::sync::atomic::AtomicBool,
    device: Option<String>,
    /// Why the CPU runs what was asked of the GPU, until taken.
    note: Mutex<Option<String>>,
}

impl Accelerator {
    /// The CPU only.
    pub fn off() -> Self {
        Accelerator {
            #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
            gpu: None,
            #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
            failed: Default::default(),
            device: None,
            note: Mutex::new(None),
        }
    }

    /// `net` (`what`, in words: "the upscaler") on a GPU as `mode` asks. Never fails: where the
    /// GPU cannot take it, the CPU runs it and [`Accelerator::take_note`] says why — except
    /// `auto` on a machine with no hardware GPU, the ordinary case, which is silent.
    pub fn new(net: &Network, mode: GpuMode, what: &str) -> Self {
        let a = Accelerator::off();
        if mode == GpuMode::Off {
            return a;
        }
        #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
        {
            use super::{GpuChoice, GpuDevice, GpuError, GpuNetwork};
            let choice = if mode == GpuMode::On {
                GpuChoice::On
            } else {
                GpuChoice::Auto
            };
            let opened = GpuDevice::new(choice)
                .and_then(|dev| GpuNetwork::new(net, &dev).map(|g| (dev.describe(), g)));
            match opened {
                Ok((device, gpu)) => {
                    return Accelerator {
                        gpu: Some(gpu),
                        device: Some(device),
                        ..a
                    }
                }
                Err(GpuError::NoAdapter(_)) if mode == GpuMode::Auto => {}
                Err(e) => a.set_note(format!("the CPU runs {what}: {e}")),
            }
        }
        #[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
        {
            let _ = net;
            if mode == GpuMode::On {
                a.set_note(format!("the CPU runs {what}: this build has no GPU engine"));
            }
        }
        a
    }

    /// Whether the GPU runs the network (until a failure hands it back to the CPU).
    pub fn active(&self) -> bool {
        #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
        {
            self.gpu.is_some() && !self.failed.load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
        false
    }

    /// The adapter the network runs on, in words, while it does.
    pub fn device(&self) -> Option<&str> {
        self.device.as_deref().filter(|_| self.active())
    }

    /// Why the CPU runs what was asked of the GPU, once: the next call says nothing.
    pub fn take_note(&self) -> Option<String> {
        self.note.lock().unwrap().take()
    }

    fn set_note(&self, note: String) {
        self.note.lock().unwrap().get_or_insert(note);
    }

    /// Runs `net` (the CPU network this was made from) on one input: on the GPU while it is
    /// active; after a GPU error, on the CPU from then on.
    pub fn run(&self, net: &Network, shape: &[usize], data: Vec<f32>) -> Result<Outputs> {
        #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
        if let Some(gpu) = self.gpu.as_ref().filter(|_| self.active()) {
            match gpu.run(shape, data.clone()) {
                Ok(out) => return Ok(out),
                Err(e) => {
                    self.failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    self.set_note(format!("the GPU failed, the CPU runs the rest: {e}"));
                }
            }
        }
        net.run(shape, data)
    }
}
