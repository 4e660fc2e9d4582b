//! Unblur's core: photo bytes in, restored photo bytes out. Pure Rust with no knowledge of
//! JavaScript; the CLI (`src/bin/unblur.rs`) and the web page (`web/wasm`) are thin shells on it.
//!
//! Data flows one way: bytes → [`image_io::Photo`] → repair ([`repair`], where a mask marks
//! damage) → deblur ([`deblur`], where the photo is blurred) → faces ([`face::detect`]) and tiles
//! ([`tiles`], [`upscale`]) → networks ([`engine`]) → restored photo → bytes. [`pipeline`] runs the whole flow in one process; the page runs the
//! same steps spread over workers.

pub mod convert;
pub mod deblur;
pub mod engine;
pub mod error;
pub mod face;
pub mod image_io;
pub mod job;
pub mod models;
pub mod pipeline;
pub mod repair;
pub mod resample;
pub mod tiles;
pub mod upscale;
pub mod workers;

pub use deblur::{DeblurMode, Verdict};
pub use error::{Error, Result};
pub use image_io::{OutputFormat, Photo};
pub use job::RestoreJob;
pub use pipeline::{Options, Repair, Restored, Restorer};
pub use repair::Mask;

/// How far a job has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Deblur tiles: the total grows when `auto` decides to deblur the rest of the photo.
    pub deblur_done: usize,
    pub deblur_total: usize,
    pub tiles_done: usize,
    pub tiles_total: usize,
    pub faces_done: usize,
    pub faces_total: usize,
}

/// Watches a job: told of progress after each tile and face, asked between them whether to stop.
pub trait Observer {
    fn progress(&self, _progress: &Progress) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that neither watches nor cancels.
pub struct Silent;
impl Observer for Silent {}

/// 16-bit RGB: the working colour format (8-bit photos widen to it losslessly).
pub type Rgb16Image = image::ImageBuffer<image::Rgb<u16>, Vec<u16>>;
