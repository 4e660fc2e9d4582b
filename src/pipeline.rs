//! The whole restoration in one process (the CLI, tests, benchmarks): the networks loaded once
//! ([`Restorer`]) driving a [`RestoreJob`] on this process's threads, and the options.

use std::cell::Cell;

use crate::deblur::{DeblurMode, Verdict};
use crate::engine::gpu::{Accelerator, GpuMode};
use crate::engine::Network;
use crate::error::{Error, Result};
use crate::face::detect::Detector;
use crate::face::Face;
use crate::image_io::{self, OutputFormat, Photo};
use crate::job::RestoreJob;
use crate::repair::detect::{self as damage, Report};
use crate::repair::Mask;
use crate::upscale::{self, OVERLAP, TILE};
use crate::{Observer, Progress};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Options {
    /// Output size over input size, within [`upscale::SCALES`] (1…6).
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
    /// Deblur the photo before the faces and SR: `auto` (when a sample of it shows blur), `on`,
    /// `off`.
    pub deblur: DeblurMode,
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
            deblur: DeblurMode::Auto,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        upscale::check_scale(self.scale)?;
        if !(0.0..=1.0).contains(&self.face_strength) {
            return Err(Error::Invalid(format!(
                "face strength {} is not between 0 and 1",
                self.face_strength
            )));
        }
        Ok(())
    }
}

/// How a photo is repaired before everything else.
#[derive(Clone, Copy, Debug, Default)]
pub enum Repair<'a> {
    #[default]
    Off,
    /// Find the damage with the detector and fill it when there is enough to be worth it
    /// ([`damage::Damage::worth_repairing`]).
    Auto,
    /// Fill what this mask marks.
    Mask(&'a Mask),
}

/// The networks a restoration uses, loaded once and reused for every photo.
pub struct Restorer {
    pub sr: Network,
    pub sr_scale: usize,
    /// The SR network on a GPU ([`Restorer::with_gpu`]; off by default): its tiles run there,
    /// and on the CPU (`sr`) whenever the GPU cannot.
    pub sr_gpu: Accelerator,
    /// The face model on a GPU, likewise.
    pub face_gpu: Accelerator,
    pub detector: Option<Detector>,
    /// A face restoration model and its input side.
    pub face_model: Option<(Network, usize)>,
    /// The deblur network ([`Restorer::with_deblur`]); without it `auto` skips the stage and
    /// `on` is an error.
    pub deblur: Option<Network>,
    /// The damage detector ([`Restorer::with_damage_detector`]); `Repair::Auto` needs it.
    pub damage_detector: Option<Network>,
}

/// A restored photo before it is encoded, with what its stages found.
pub struct RestoredPhoto {
    pub photo: Photo,
    pub faces: Vec<Face>,
    /// The deblur stage's verdict (`None` when it did not run).
    pub deblur: Option<Verdict>,
    /// What the damage detector found (`Repair::Auto` only).
    pub damage: Option<Report>,
}

/// A finished restoration.
pub struct Restored {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
    /// The deblur stage's verdict (`None` when it did not run: off, or no deblur network).
    pub deblur: Option<Verdict>,
    /// What the damage detector found (`Repair::Auto` only).
    pub damage: Option<Report>,
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
            sr_gpu: Accelerator::off(),
            face_gpu: Accelerator::off(),
            detector,
            face_model,
            deblur: None,
            damage_detector: None,
        })
    }

    /// With the SR network's tiles and the face model on a GPU as `mode` asks (`auto`: a
    /// hardware GPU where there is one). Never fails: where the GPU cannot take a network, the
    /// CPU runs it and `sr_gpu.take_note()` / `face_gpu.take_note()` say why.
    pub fn with_gpu(mut self, mode: GpuMode) -> Self {
        self.sr_gpu = Accelerator::new(&self.sr, mode, "the upscaler");
        self.face_gpu = match &self.face_model {
            Some((net, _)) => Accelerator::new(net, mode, "the face model"),
            None => Accelerator::off(),
        };
        self
    }

    /// With a damage detector: one RGB input of any size (a multiple of 8), one logit a pixel.
    pub fn with_damage_detector(mut self, net: Option<Network>) -> Result<Self> {
        if let Some(net) = &net {
            damage::check_model(net)?;
        }
        self.damage_detector = net;
        Ok(self)
    }

    /// With a deblur network: one RGB input of any size (a multiple of 8), an output of the
    /// same shape.
    pub fn with_deblur(mut self, net: Option<Network>) -> Result<Self> {
        if let Some(net) = &net {
            check_deblur_model(net)?;
        }
        self.deblur = net;
        Ok(self)
    }

    /// The face model's input side, or `None` when faces are restored with the SR network.
    pub fn face_side(&self) -> Option<usize> {
        self.face_model.as_ref().map(|(_, side)| *side)
    }

    pub fn detect(&self, photo: &Photo) -> Result<Vec<Face>> {
        match &self.detector {
            Some(d) => d.detect(&photo.rgb),
            None => Ok(vec![]),
        }
    }

    /// Restores a decoded photo: drives a [`RestoreJob`] with this process's threads, repairing
    /// the photo first (by `repair`), then deblurring it (by `opts.deblur`).
    pub fn restore_photo(
        &self,
        photo: Photo,
        repair: Repair,
        opts: &Options,
        obs: &dyn Observer,
    ) -> Result<RestoredPhoto> {
        let mut job = RestoreJob::from_photo(photo, opts, self.sr_scale, self.face_side())?;
        let found = self.run_repair(&mut job, repair)?;
        let progress = Cell::new(Progress::default());
        let report = |p: Progress| {
            progress.set(p);
            obs.progress(&p);
        };
        let verdict = self.run_deblur(&mut job, opts, obs, &progress)?;
        if let Some(d) = &self.detector {
            job.detect(d)?;
        }
        report(Progress {
            faces_total: job.face_count(),
            ..progress.get()
        });
        let mut on_tile = |done, total| {
            report(Progress {
                tiles_done: done,
                tiles_total: total,
                ..progress.get()
            })
        };
        let threads = upscale::worker_threads(opts.threads, job.tile_count());
        job.upscale_with(&self.sr, &self.sr_gpu, threads, obs, &mut on_tile)?;
        let (net, gpu) = match &self.face_model {
            Some((net, _)) => (net, &self.face_gpu),
            None => (&self.sr, &self.sr_gpu),
        };
        // Faces run on the same pool of threads as the tiles, from one queue; the job pastes them
        // in their order, so the bytes are the same as with one thread.
        let n = job.face_count();
        let threads = upscale::worker_threads(opts.threads, n).max(1);
        let work = |i: usize| -> Result<(Vec<usize>, Vec<f32>)> {
            let shape = job.face_shape(i)?;
            let mut out = gpu.run(net, &shape, job.face_input(i)?.to_vec())?;
            Ok(out.swap_remove(0))
        };
        let mut outputs = Vec::with_capacity(n);
        let mut done = 0;
        crate::workers::run(n, threads, obs, &work, &mut |i, out| {
            outputs.push((i, out));
            done += 1;
            report(Progress {
                faces_done: done,
                ..progress.get()
            });
            Ok(())
        })?;
        for (i, (shape, data)) in outputs {
            job.accept_face(i, &shape, &data)?;
        }
        let (photo, faces) = job.into_result()?;
        Ok(RestoredPhoto {
            photo,
            faces,
            deblur: verdict,
            damage: found,
        })
    }

    /// The repair stage of `job`: a given mask filled; or, for `auto`, the damage found and
    /// filled when it is worth it (the detector is needed).
    fn run_repair(&self, job: &mut RestoreJob, repair: Repair) -> Result<Option<Report>> {
        match repair {
            Repair::Off => Ok(None),
            Repair::Mask(mask) => job.repair(mask).map(|_| None),
            Repair::Auto => {
                let Some(net) = &self.damage_detector else {
                    return Err(Error::Model(
                        "repair auto needs the damage detector (unblur-repair: build the models \
                         with `make models`)"
                            .into(),
                    ));
                };
                let found = job.find_damage(net)?;
                if found.worth_repairing() {
                    job.repair(&found.mask)?;
                }
                Ok(Some(found.report()))
            }
        }
    }

    /// The deblur stage of `job` on this process's threads: the first tiles, the decision, the
    /// rest. Skipped when off, and when `auto` has no deblur network; `on` without one is an
    /// error. Progress is reported through `progress`, which the later stages go on from.
    fn run_deblur(
        &self,
        job: &mut RestoreJob,
        opts: &Options,
        obs: &dyn Observer,
        progress: &Cell<Progress>,
    ) -> Result<Option<Verdict>> {
        if opts.deblur == DeblurMode::Off {
            return Ok(None);
        }
        let Some(net) = &self.deblur else {
            if opts.deblur == DeblurMode::On {
                return Err(Error::Invalid(
                    "deblur is on but no deblur model is loaded (unblur-deblur: build the models \
                     with `make models`)"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let report = |p: Progress| {
            progress.set(p);
            obs.progress(&p);
        };
        job.plan_deblur()?;
        let mut done = 0;
        let mut on_tile = || {
            done += 1;
            report(Progress {
                deblur_done: done,
                ..progress.get()
            });
        };
        let first = job.deblur_first();
        report(Progress {
            deblur_total: first.len(),
            ..progress.get()
        });
        // None when `auto`'s looks decided: the network is then not even planned.
        if !first.is_empty() {
            let threads = upscale::worker_threads(opts.threads, first.len());
            job.deblur_with(net, &first, threads, obs, &mut on_tile)?;
        }
        let rest = job.decide_deblur()?;
        if !rest.is_empty() {
            report(Progress {
                deblur_total: first.len() + rest.len(),
                ..progress.get()
            });
            let threads = upscale::worker_threads(opts.threads, rest.len());
            job.deblur_with(net, &rest, threads, obs, &mut on_tile)?;
        }
        Ok(job.end_deblur()?.copied())
    }

    /// Bytes in, bytes out.
    pub fn restore(&self, bytes: &[u8], opts: &Options, obs: &dyn Observer) -> Result<Restored> {
        self.restore_with(bytes, Repair::Off, opts, obs)
    }

    /// Bytes in, bytes out, the photo repaired first by `repair` (a mask must be the upright
    /// photo's size; another size is an error).
    pub fn restore_with(
        &self,
        bytes: &[u8],
        repair: Repair,
        opts: &Options,
        obs: &dyn Observer,
    ) -> Result<Restored> {
        opts.validate()?;
        let photo = image_io::decode(bytes)?;
        upscale::output_size(photo.width(), photo.height(), opts.scale)?;
        let r = self.restore_photo(photo, repair, opts, obs)?;
        let bytes = image_io::encode(&r.photo, opts.format, opts.jpeg_quality)?;
        Ok(Restored {
            bytes,
            width: r.photo.width(),
            height: r.photo.height(),
            faces: r.faces,
            deblur: r.deblur,
            damage: r.damage,
        })
    }
}

/// A deblur model takes one RGB image of any size: `[1, 3, H, W]` with H and W free (a model
/// that fixes them cannot run on tiles).
pub fn check_deblur_model(net: &Network) -> Result<()> {
    match net.input_shape().as_slice() {
        [_, Some(3), None, None] => Ok(()),
        other => {
            let dims = shape_text(other);
            Err(Error::Model(format!(
                "a deblur model takes an RGB image of any size (input 1×3×H×W); this one takes \
                 {dims}: it is not a deblur model"
            )))
        }
    }
}

/// A network's input shape as the model errors show it: `1×3×?×?`.
pub(crate) fn shape_text(dims: &[Option<usize>]) -> String {
    dims.iter()
        .map(|d| d.map_or("?".into(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join("×")
}

/// A face model must take one square RGB input of 512 or 256 pixels.
pub fn face_model_side(net: &Network) -> Result<usize> {
    match net.input_shape().as_slice() {
        [_, Some(3), Some(h), Some(w)] if h == w && (*h == 512 || *h == 256) => Ok(*h),
        other => {
            let dims = shape_text(other);
            Err(Error::Model(format!(
                "a face model takes a 512×512 or 256×256 face (input 1×3×512×512 or 1×3×256×256); \
                 this one takes {dims}: it is not a face model"
            )))
        }
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
