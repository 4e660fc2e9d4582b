//! The whole restoration in one process (the CLI, tests, benchmarks): decode, find faces,
//! upscale tile by tile, restore and paste each face, put alpha back, encode.

use std::cell::Cell;

use crate::engine::Network;
use crate::error::{Error, Result};
use crate::face::detect::Detector;
use crate::face::paste::paste_restored;
use crate::face::restore::{self, Method};
use crate::face::Face;
use crate::image_io::{self, OutputFormat, Photo};
use crate::upscale::{self, OVERLAP, TILE};
use crate::{resample, Observer, Progress};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Options {
    /// Output size over input size, 1…4.
    pub scale: f32,
    /// Find and restore faces.
    pub faces: bool,
    /// 0 keeps the upscaled face, 1 uses the restored face fully.
    pub face_strength: f32,
    /// Tile side in input pixels; 0 processes the photo in one piece.
    pub tile: usize,
    /// Overlap between neighbouring tiles, in input pixels.
    pub overlap: usize,
    pub format: OutputFormat,
    pub jpeg_quality: u8,
    /// Threads running tiles at once: 0 is one per CPU; always one on wasm32 (the page runs
    /// tiles on its own workers). The output is the same whatever the count.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scale: 2.0,
            faces: true,
            face_strength: 1.0,
            tile: TILE,
            overlap: OVERLAP,
            format: OutputFormat::Png,
            jpeg_quality: 92,
            threads: 0,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        if !(1.0..=4.0).contains(&self.scale) {
            return Err(Error::Invalid(format!(
                "scale {} is not between 1 and 4",
                self.scale
            )));
        }
        if !(0.0..=1.0).contains(&self.face_strength) {
            return Err(Error::Invalid(format!(
                "face strength {} is not between 0 and 1",
                self.face_strength
            )));
        }
        Ok(())
    }
}

/// The networks a restoration uses, loaded once and reused for every photo.
pub struct Restorer {
    pub sr: Network,
    pub sr_scale: usize,
    pub detector: Option<Detector>,
    /// A face restoration model and its input side.
    pub face_model: Option<(Network, usize)>,
}

/// A finished restoration.
pub struct Restored {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
}

impl Restorer {
    pub fn new(
        sr: Network,
        detector: Option<Detector>,
        face_model: Option<Network>,
    ) -> Result<Self> {
        let sr_scale = upscale::model_scale(&sr)?;
        let face_model = face_model
            .map(|net| face_model_side(&net).map(|s| (net, s)))
            .transpose()?;
        Ok(Restorer {
            sr,
            sr_scale,
            detector,
            face_model,
        })
    }

    pub fn face_method(&self) -> Method {
        match &self.face_model {
            Some((_, size)) => Method::Model { size: *size },
            None => Method::Sr {
                scale: self.sr_scale,
            },
        }
    }

    pub fn detect(&self, photo: &Photo) -> Result<Vec<Face>> {
        match &self.detector {
            Some(d) => d.detect(&photo.rgb),
            None => Ok(vec![]),
        }
    }

    /// Restores a decoded photo.
    pub fn restore_photo(
        &self,
        photo: &Photo,
        opts: &Options,
        obs: &dyn Observer,
    ) -> Result<(Photo, Vec<Face>)> {
        opts.validate()?;
        let faces = if opts.faces {
            self.detect(photo)?
        } else {
            vec![]
        };
        let progress = Cell::new(Progress {
            faces_total: faces.len(),
            ..Default::default()
        });
        let mut on_tile = |done, total| {
            progress.set(Progress {
                tiles_done: done,
                tiles_total: total,
                ..progress.get()
            });
            obs.progress(&progress.get());
        };
        let mut canvas =
            upscale::upscale(&photo.rgb, &self.sr, self.sr_scale, opts, obs, &mut on_tile)?;
        let scale = canvas.width() as f64 / photo.width() as f64;
        let method = self.face_method();
        let net = match &self.face_model {
            Some((net, _)) => net,
            None => &self.sr,
        };
        let restore_face = |face: &Face| -> Result<_> {
            let mut input = restore::prepare(&photo.rgb, face, method);
            let out = net.run(&input.shape, std::mem::take(&mut input.data))?;
            let restored = restore::finish(method, &out[0].0, &out[0].1);
            Ok((input, restored))
        };
        // Faces run on the tiles' threads too, a group at a time, and are pasted in their order:
        // the same bytes as one thread, with one face per thread in memory.
        let threads = upscale::worker_threads(opts.threads, faces.len());
        let mut done = 0;
        for group in faces.chunks(threads.max(1)) {
            if obs.cancelled() {
                return Err(Error::Cancelled);
            }
            for result in map_on_threads(group, &restore_face) {
                let (input, restored) = result?;
                paste_restored(&mut canvas, &input, &restored, scale, opts.face_strength);
                done += 1;
                progress.set(Progress {
                    faces_done: done,
                    ..progress.get()
                });
                obs.progress(&progress.get());
            }
        }
        let alpha = photo
            .alpha
            .as_ref()
            .map(|a| resample::luma16(a, canvas.width(), canvas.height()));
        let out = Photo {
            rgb: canvas,
            alpha,
            ..photo.clone_meta()
        };
        Ok((out, faces))
    }

    /// Bytes in, bytes out.
    pub fn restore(&self, bytes: &[u8], opts: &Options, obs: &dyn Observer) -> Result<Restored> {
        opts.validate()?;
        let photo = image_io::decode(bytes)?;
        upscale::output_size(photo.width(), photo.height(), opts.scale)?;
        let (out, faces) = self.restore_photo(&photo, opts, obs)?;
        drop(photo);
        let bytes = image_io::encode(&out, opts.format, opts.jpeg_quality)?;
        Ok(Restored {
            bytes,
            width: out.width(),
            height: out.height(),
            faces,
        })
    }
}

/// `f` over `items`, one scoped thread per item (one item: this thread), results in order.
#[cfg(not(target_arch = "wasm32"))]
fn map_on_threads<T: Sync, R: Send>(items: &[T], f: &(impl Fn(&T) -> R + Sync)) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|item| s.spawn(move || f(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(target_arch = "wasm32")]
fn map_on_threads<T, R>(items: &[T], f: &impl Fn(&T) -> R) -> Vec<R> {
    items.iter().map(f).collect()
}

/// A face model must take one square RGB input of 512 or 256 pixels.
pub fn face_model_side(net: &Network) -> Result<usize> {
    match net.input_shape().as_slice() {
        [_, Some(3), Some(h), Some(w)] if h == w && (*h == 512 || *h == 256) => Ok(*h),
        other => Err(Error::Model(format!(
            "a face model needs a [1,3,512,512] or [1,3,256,256] input; this one has {other:?}"
        ))),
    }
}

impl Photo {
    /// Everything but the pixels.
    pub fn clone_meta(&self) -> Photo {
        Photo {
            rgb: crate::Rgb16Image::new(0, 0),
            alpha: None,
            gray: self.gray,
            sixteen_bit: self.sixteen_bit,
            exif: self.exif.clone(),
            icc: self.icc.clone(),
            format: self.format,
        }
    }
}
