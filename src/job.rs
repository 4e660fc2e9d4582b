//! One photo's restoration as explicit steps: plan (decode, find the damage where asked, repair
//! where a mask marks damage, tiles, faces) → deblur (where the photo is blurred: its own tiles, a decision, the rest) →
//! accept each tile's network output → accept each face's → finish (paste the faces, put alpha
//! and metadata back) → encode. The CLI and tests drive a job in a loop on their
//! threads ([`crate::pipeline`]); the page's coordinating worker drives the same job from
//! messages (`web/wasm`), while its inference workers only run networks. So the two front ends
//! restore a photo the same way, and neither holds any of the pipeline's rules.

use std::borrow::Borrow;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::deblur::{self, DeblurMode, Verdict};
use crate::engine::gpu::Accelerator;
use crate::engine::Network;
use crate::error::{Error, Result};
use crate::face::detect::Detector;
use crate::face::paste::paste_restored;
use crate::face::restore::{self, FaceInput, Method};
use crate::face::Face;
use crate::image_io::{self, OutputFormat, Photo};
use crate::repair::{self, Mask};
use crate::tiles::TileRect;
use crate::upscale::{self, TileJob};
use crate::{resample, Options};

/// A 512×512 face, interleaved RGB in 0…1.
pub type FacePixels = Vec<[f32; 3]>;

/// A restoration in progress. Tiles and faces may be accepted in any order; `finish` pastes the
/// faces in their detection order, so the result does not depend on the order of arrival.
pub struct RestoreJob {
    photo: Photo,
    opts: Options,
    method: Method,
    tiles: Option<TileJob>,
    faces: Vec<Face>,
    face_inputs: Vec<FaceInput>,
    restored: Vec<Option<FacePixels>>,
    result: Option<Photo>,
    /// The photo's pixels have been read (faces, tiles): too late to repair or deblur it.
    begun: AtomicBool,
    /// The deblur stage, from `plan_deblur` to `end_deblur`.
    deblur: Option<deblur::Stage>,
    /// Its verdict, once ended (none when off, skipped or not planned).
    verdict: Option<Verdict>,
    /// The deblur stage was planned (it may have ended since): too late to repair the photo.
    deblur_planned: bool,
}

impl RestoreJob {
    /// Decodes the photo and plans its tiles. `sr_scale` is the SR network's scale;
    /// `face_side` the face model's input side, or `None` to restore faces with the SR network.
    pub fn new(
        bytes: &[u8],
        opts: &Options,
        sr_scale: usize,
        face_side: Option<usize>,
    ) -> Result<Self> {
        opts.validate()?;
        let photo = image_io::decode(bytes)?;
        Self::from_photo(photo, opts, sr_scale, face_side)
    }

    /// As [`RestoreJob::new`], for a photo already decoded.
    pub fn from_photo(
        photo: Photo,
        opts: &Options,
        sr_scale: usize,
        face_side: Option<usize>,
    ) -> Result<Self> {
        opts.validate()?;
        let tiles = TileJob::new(
            photo.width(),
            photo.height(),
            opts.scale,
            opts.tile,
            opts.overlap,
            sr_scale,
        )?;
        Ok(RestoreJob {
            photo,
            opts: opts.clone(),
            method: Method::for_face_model(face_side),
            tiles: Some(tiles),
            faces: vec![],
            face_inputs: vec![],
            restored: vec![],
            result: None,
            begun: AtomicBool::new(false),
            deblur: None,
            verdict: None,
            deblur_planned: false,
        })
    }

    /// Decodes the photo and repairs it where `mask` marks damage (see [`RestoreJob::repair`]),
    /// then plans its tiles: [`RestoreJob::new`] with the repair step, for a front end that has a
    /// mask (`None` is no repair).
    pub fn with_repair(
        bytes: &[u8],
        mask: Option<&Mask>,
        opts: &Options,
        sr_scale: usize,
        face_side: Option<usize>,
    ) -> Result<Self> {
        let mut job = Self::new(bytes, opts, sr_scale, face_side)?;
        if let Some(mask) = mask {
            job.repair(mask)?;
        }
        Ok(job)
    }

    // --- repair ---

    /// Fills the damaged pixels that `mask` marks (nonzero; the upright photo's exact size, or an
    /// error naming both sizes) from their surroundings, at the photo's own resolution
    /// ([`repair::repair`]). Comes before the deblur stage, the faces and the tiles, so that all
    /// see the repaired photo: called after any of them, it is an error.
    pub fn repair(&mut self, mask: &Mask) -> Result<()> {
        if self.begun.load(Ordering::Relaxed) || self.result.is_some() {
            return Err(Error::Invalid(
                "the photo is repaired before its faces and tiles, not after".into(),
            ));
        }
        if self.deblur_planned {
            return Err(Error::Invalid(
                "the photo is repaired before it is deblurred, not after".into(),
            ));
        }
        repair::repair(&mut self.photo.rgb, mask)
    }

    /// What the damage detector `net` finds in the photo ([`repair::detect::detect`], on a
    /// ≤ 1 MP copy, in bands): the mask at the photo's size, to show, correct and pass to
    /// [`RestoreJob::repair`]. Asked before the repair, the deblur stage, the faces and the tiles.
    pub fn find_damage(&self, net: &Network) -> Result<repair::detect::Damage> {
        repair::detect::detect(net, &self.photo.rgb)
    }

    // --- deblur ---

    /// Plans the deblur stage by the options' `deblur` (nothing when off): after the repair,
    /// before the faces and tiles, which then see the deblurred photo. Then: run the tiles of
    /// [`RestoreJob::deblur_first`], [`RestoreJob::decide_deblur`], run the tiles it returns,
    /// [`RestoreJob::end_deblur`]. Called after the faces or tiles have read the photo, or a
    /// second time, it is an error.
    pub fn plan_deblur(&mut self) -> Result<()> {
        if self.begun.load(Ordering::Relaxed) || self.result.is_some() {
            return Err(Error::Invalid(
                "the photo is deblurred before its faces and tiles, not after".into(),
            ));
        }
        if self.deblur_planned {
            return Err(Error::Invalid("the deblur stage is already planned".into()));
        }
        if self.opts.deblur == DeblurMode::Off {
            return Ok(());
        }
        self.deblur = Some(deblur::Stage::new(
            &self.photo.rgb,
            self.opts.deblur,
            self.opts.tile,
        )?);
        self.deblur_planned = true;
        Ok(())
    }

    fn deblur_stage(&self) -> Result<&deblur::Stage> {
        self.deblur
            .as_ref()
            .ok_or_else(|| Error::Invalid("there is no deblur stage (plan_deblur)".into()))
    }

    /// How many deblur tiles the photo has: 0 when the stage is not planned (or off, or ended).
    pub fn deblur_tile_count(&self) -> usize {
        self.deblur.as_ref().map_or(0, deblur::Stage::count)
    }

    /// `[1, 3, h, w]`: the deblur network's input and output for every tile (padded to its
    /// multiple of 8).
    pub fn deblur_tile_shape(&self) -> Result<[usize; 4]> {
        Ok(self.deblur_stage()?.shape())
    }

    /// The deblur tiles to run before the decision: all of them for `on`; for `auto` a sample
    /// spread over the photo, at most [`deblur::SAMPLE_PIXELS`] of it (all of a smaller photo),
    /// or none when `auto`'s looks decided ([`deblur::Looks`]). Empty when there is no stage.
    pub fn deblur_first(&self) -> Vec<usize> {
        self.deblur
            .as_ref()
            .map_or_else(Vec::new, |s| s.first().to_vec())
    }

    /// Deblur tile `i`'s network input, planar, of [`RestoreJob::deblur_tile_shape`].
    pub fn deblur_tile_input(&self, i: usize) -> Result<Vec<f32>> {
        self.deblur_stage()?.input(&self.photo.rgb, i)
    }

    /// Takes deblur tile `i`'s network output (planar, of the tile shape): a first tile before
    /// the decision, a tile it returned after it.
    pub fn accept_deblur_tile(&mut self, i: usize, output: &[f32]) -> Result<()> {
        let stage = self
            .deblur
            .as_mut()
            .ok_or_else(|| Error::Invalid("there is no deblur stage (plan_deblur)".into()))?;
        stage.accept(&self.photo.rgb, i, output)
    }

    /// Decides, once the first tiles are in, whether to deblur the photo (`on`: yes; `auto`: no
    /// when its looks decided, else when the network changed it enough there,
    /// [`deblur::TAU_R`]) and returns the tiles still to run: none when the photo stays as it
    /// is, or when every tile ran first.
    pub fn decide_deblur(&mut self) -> Result<Vec<usize>> {
        self.deblur
            .as_mut()
            .ok_or_else(|| Error::Invalid("there is no deblur stage (plan_deblur)".into()))?
            .decide()
    }

    /// Ends the deblur stage: when the verdict deblurs, the photo's pixels become the deblurred
    /// canvas (every tile must be in); otherwise the photo is untouched, bit for bit. Returns the
    /// verdict, or `None` when there was no stage (off, or not planned).
    pub fn end_deblur(&mut self) -> Result<Option<&Verdict>> {
        let Some(stage) = &self.deblur else {
            return Ok(self.verdict.as_ref());
        };
        stage.ready()?;
        if self.begun.load(Ordering::Relaxed) {
            return Err(Error::Invalid(
                "the faces or tiles read the photo before its deblur stage ended".into(),
            ));
        }
        let stage = self.deblur.take().expect("checked above");
        self.verdict = Some(stage.finish(&mut self.photo.rgb)?);
        Ok(self.verdict.as_ref())
    }

    /// Drops the deblur stage without deblurring (the network could not run): the photo stays
    /// as it is, and there is no verdict.
    pub fn skip_deblur(&mut self) {
        self.deblur = None;
    }

    /// The deblur verdict, once the stage has ended (`None`: off, skipped, or not planned).
    pub fn deblur_verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Runs the deblur tiles `tiles` through `net` on `threads` threads (one on wasm32), in this
    /// process; `on_tile` is told after each. The result does not depend on the thread count.
    pub fn deblur_with(
        &mut self,
        net: &Network,
        tiles: &[usize],
        threads: usize,
        obs: &dyn crate::Observer,
        on_tile: &mut dyn FnMut(),
    ) -> Result<()> {
        let stage = self
            .deblur
            .as_mut()
            .ok_or_else(|| Error::Invalid("there is no deblur stage (plan_deblur)".into()))?;
        let shape = stage.shape();
        // Plan once, before the threads start, so that they do not all build it.
        net.plan(&shape)?;
        let geometry = stage.geometry().clone();
        let photo = &self.photo.rgb;
        let work = |k: usize| -> Result<Vec<f32>> {
            net.run(&shape, geometry.input(photo, tiles[k]))?
                .into_iter()
                .next()
                .map(|(_, data)| data)
                .ok_or_else(|| Error::Model("the deblur network has no output".into()))
        };
        crate::workers::run(tiles.len(), threads, obs, &work, &mut |k, out| {
            stage.accept(photo, tiles[k], &out)?;
            on_tile();
            Ok(())
        })
    }

    /// Faces and tiles read the photo after its deblur stage has ended.
    fn check_deblurred(&self) -> Result<()> {
        if self.deblur.is_some() {
            return Err(Error::Invalid(
                "the photo is deblurred before its faces and tiles: end the deblur stage first"
                    .into(),
            ));
        }
        Ok(())
    }

    fn begin(&self) {
        self.begun.store(true, Ordering::Relaxed);
    }

    pub fn photo(&self) -> &Photo {
        &self.photo
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// The restored photo's size.
    pub fn output_size(&self) -> (u32, u32) {
        match (&self.result, &self.tiles) {
            (Some(r), _) => (r.width(), r.height()),
            (None, Some(t)) => t.canvas().dimensions(),
            (None, None) => (0, 0),
        }
    }

    // --- faces ---

    /// Finds the faces (when the options restore faces) and prepares each one's network input.
    pub fn detect<N: Borrow<Network>>(&mut self, detector: &Detector<N>) -> Result<&[Face]> {
        self.check_deblurred()?;
        self.begin();
        let faces = if self.opts.faces {
            detector.detect(&self.photo.rgb)?
        } else {
            vec![]
        };
        self.set_faces(faces);
        Ok(&self.faces)
    }

    /// Takes the faces to restore (a subset the user picked, or a detector's result).
    pub fn set_faces(&mut self, faces: Vec<Face>) {
        self.begin();
        let faces = if self.opts.faces { faces } else { vec![] };
        self.face_inputs = faces
            .iter()
            .map(|f| restore::prepare(&self.photo.rgb, f, self.method))
            .collect();
        self.restored = vec![None; faces.len()];
        self.faces = faces;
    }

    pub fn faces(&self) -> &[Face] {
        &self.faces
    }

    pub fn face_count(&self) -> usize {
        self.face_inputs.len()
    }

    /// `[1, 3, side, side]` of face `i`'s network input.
    pub fn face_shape(&self, i: usize) -> Result<[usize; 4]> {
        Ok(self.face_input_ref(i)?.shape)
    }

    /// Face `i`'s network input, planar.
    pub fn face_input(&self, i: usize) -> Result<&[f32]> {
        Ok(&self.face_input_ref(i)?.data)
    }

    fn face_input_ref(&self, i: usize) -> Result<&FaceInput> {
        self.face_inputs
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("there is no face {i}")))
    }

    /// Takes face `i`'s network output (planar, of `shape` `[1,3,h,w]`).
    pub fn accept_face(&mut self, i: usize, shape: &[usize], output: &[f32]) -> Result<()> {
        self.face_input_ref(i)?;
        match shape {
            [1, 3, h, w] if output.len() == 3 * h * w => {}
            _ => {
                return Err(Error::Model(format!(
                    "the face model's output has shape {shape:?} and {} values; expected [1,3,h,w]",
                    output.len()
                )))
            }
        }
        self.restored[i] = Some(restore::finish(self.method, shape, output));
        Ok(())
    }

    /// Face `i` before (its aligned input, brought to 512²) and after (the restored face, or
    /// the input again while it has not arrived), each 512×512 RGB in 0…1.
    pub fn face_pair(&self, i: usize) -> Result<(FacePixels, FacePixels)> {
        let input = self.face_input_ref(i)?;
        let side = input.shape[2];
        let before = resample::rgb_f32(
            &restore::input_pixels(self.method, input),
            side,
            side,
            restore::FACE,
            restore::FACE,
        );
        let after = self.restored[i].clone().unwrap_or_else(|| before.clone());
        Ok((before, after))
    }

    // --- tiles ---

    fn tile_job(&self) -> Result<&TileJob> {
        self.tiles.as_ref().ok_or_else(finished)
    }

    fn tile_job_mut(&mut self) -> Result<&mut TileJob> {
        self.tiles.as_mut().ok_or_else(finished)
    }

    pub fn tile_count(&self) -> usize {
        self.tiles.as_ref().map_or(0, TileJob::count)
    }

    /// `[1, 3, h, w]`, the same for every tile of the photo.
    pub fn tile_shape(&self) -> Result<[usize; 4]> {
        Ok(self.tile_job()?.input_shape())
    }

    pub fn tile_input(&self, i: usize) -> Result<Vec<f32>> {
        self.check_deblurred()?;
        let tiles = self.tile_job()?;
        check_tile(tiles, i)?;
        self.begin();
        Ok(tiles.input(&self.photo.rgb, i))
    }

    /// Blends tile `i`'s network output in; returns where it lands.
    pub fn accept_tile(&mut self, i: usize, output: &[f32]) -> Result<TileRect> {
        self.check_deblurred()?;
        self.begin();
        let tiles = self.tile_job_mut()?;
        check_tile(tiles, i)?;
        tiles.accept(i, output)
    }

    /// The canvas in a window as RGBA8, for drawing progress (see `TileJob::preview_rgba8`).
    pub fn preview(&self, x: usize, y: usize, w: usize, h: usize) -> Result<Vec<u8>> {
        Ok(self.tile_job()?.preview_rgba8(x, y, w, h))
    }

    /// Runs every tile through `net` on `threads` threads (one on wasm32), in this process; on
    /// the GPU instead while `gpu` is active.
    pub fn upscale_with(
        &mut self,
        net: &Network,
        gpu: &Accelerator,
        threads: usize,
        obs: &dyn crate::Observer,
        on_tile: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        self.check_deblurred()?;
        self.begin();
        let tiles = self.tiles.as_mut().ok_or_else(finished)?;
        upscale::run_tiles(tiles, &self.photo.rgb, net, gpu, threads, obs, on_tile)
    }

    // --- the end ---

    /// Pastes the restored faces (in their order; a face whose output never came is left as
    /// upscaled), puts alpha and metadata back. Idempotent: the finished photo is kept, so that
    /// it can be encoded again in another format.
    pub fn finish(&mut self) -> Result<&Photo> {
        if self.result.is_none() {
            let tiles = self
                .tiles
                .take()
                .ok_or_else(|| Error::Invalid("the job has no tiles".into()))?;
            let mut canvas = tiles.finish();
            let scale = canvas.width() as f64 / self.photo.width() as f64;
            for (input, restored) in self.face_inputs.iter().zip(&self.restored) {
                if let Some(restored) = restored {
                    paste_restored(&mut canvas, input, restored, scale, self.opts.face_strength);
                }
            }
            let alpha = self
                .photo
                .alpha
                .as_ref()
                .map(|a| resample::luma16(a, canvas.width(), canvas.height()));
            self.result = Some(Photo {
                rgb: canvas,
                alpha,
                ..self.photo.clone_meta()
            });
        }
        Ok(self.result.as_ref().expect("set above"))
    }

    /// Encodes the finished photo (after [`RestoreJob::finish`]).
    pub fn encode(&self, format: OutputFormat, quality: u8) -> Result<Vec<u8>> {
        let out = self
            .result
            .as_ref()
            .ok_or_else(|| Error::Invalid("the job is not finished".into()))?;
        image_io::encode(out, format, quality)
    }

    /// The restored file's name for a photo named `stem` (the one naming rule, `OutputFormat`'s).
    pub fn output_name(&self, stem: &str, format: OutputFormat) -> String {
        format.output_name(stem, self.opts.scale)
    }

    /// The finished photo and the faces, ending the job.
    pub fn into_result(mut self) -> Result<(Photo, Vec<Face>)> {
        self.finish()?;
        Ok((self.result.take().expect("finished"), self.faces))
    }
}

fn finished() -> Error {
    Error::Invalid("the job is finished".into())
}

fn check_tile(tiles: &TileJob, i: usize) -> Result<()> {
    if i >= tiles.count() {
        return Err(Error::Invalid(format!("there is no tile {i}")));
    }
    Ok(())
}
