//! The only code that knows wasm-bindgen: a thin boundary over Unblur's core for the page's
//! workers. `Net` runs a network (inference workers); `Job` holds one photo's restoration in the
//! coordinating worker and hands out tile and face inputs, taking outputs back in any order;
//! `DamageSearch` does the same for the damage detector's bands;
//! `Sha256` and `prepare_face_model` check and convert a downloaded face model (the model worker).

use sha2::Digest;
use unblur::convert;
use unblur::engine::Network;
use unblur::face::detect::Detector;
use unblur::image_io::{self, Photo};
use unblur::{Options, RestoreJob};
use wasm_bindgen::prelude::*;

mod output;
use output::Output;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn err(e: unblur::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A network in one worker: plans are built per input shape on first use and kept.
#[wasm_bindgen]
pub struct Net {
    net: Network,
}

#[wasm_bindgen]
impl Net {
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<Net, JsError> {
        Ok(Net {
            net: Network::from_bytes(bytes).map_err(err)?,
        })
    }

    /// A face model (ONNX, or a stored conversion), with CodeFormer's fidelity `w` set (none:
    /// the model's default; an error for a model without one).
    pub fn face(bytes: &[u8], fidelity: Option<f32>) -> Result<Net, JsError> {
        Ok(Net {
            net: convert::face_network(bytes, fidelity).map_err(err)?,
        })
    }

    /// The super-resolution network at a denoise strength (0…1), mixed with its weak-denoise
    /// `partner` when it has one (the core's rule: [`unblur::upscale::sr_network`]).
    pub fn upscaler(
        general: &[u8],
        partner: Option<Vec<u8>>,
        denoise: f32,
    ) -> Result<Net, JsError> {
        Ok(Net {
            net: unblur::upscale::sr_network(general, partner.as_deref(), denoise).map_err(err)?,
        })
    }

    /// Runs on a planar `[1,3,h,w]` input; returns the first output, planar, with its shape.
    pub fn run(&self, input: Vec<f32>, h: usize, w: usize) -> Result<Output, JsError> {
        let mut out = self.net.run(&[1, 3, h, w], input).map_err(err)?;
        let (shape, data) = out.swap_remove(0);
        Ok(Output {
            shape: shape.iter().map(|&v| v as u32).collect(),
            data,
        })
    }

    /// Runs once on a planar `[1,3,h,w]` input, timing every operator with the page's clock:
    /// JSON `[{op, nodes, ms}]`, largest first (the benchmark's profile of where time goes).
    #[cfg(feature = "bench")]
    pub fn profile(&self, input: Vec<f32>, h: usize, w: usize) -> Result<String, JsError> {
        let (perf, now) = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .and_then(|p| js_sys::Reflect::get(&p, &"now".into()).map(|f| (p, f)))
            .map_err(|_| JsError::new("this context has no performance.now"))?;
        let now = js_sys::Function::from(now);
        let now = || {
            now.call0(&perf)
                .ok()
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
        };
        let ops = self.net.profile(&[1, 3, h, w], input, now).map_err(err)?;
        Ok(serde_json::to_string(&ops).expect("profile serialises"))
    }

    /// The super-resolution scale (output side over input side).
    pub fn sr_scale(&self) -> Result<usize, JsError> {
        unblur::upscale::model_scale(&self.net).map_err(err)
    }

    /// A face model's input side (512 or 256), or an error saying why it is not one.
    pub fn face_side(&self) -> Result<usize, JsError> {
        unblur::pipeline::face_model_side(&self.net).map_err(err)
    }

    /// Detects faces in a photo's bytes; JSON `[{bbox, landmarks, score}]`.
    pub fn detect(&self, photo: &[u8]) -> Result<String, JsError> {
        let photo = image_io::decode(photo).map_err(err)?;
        detect_json(&self.net, &photo)
    }

    /// Whether this network can be the damage detector (one RGB input of any size); a clear
    /// error if not. The inference workers check it as they load it.
    pub fn check_damage_detector(&self) -> Result<(), JsError> {
        unblur::repair::detect::check_model(&self.net).map_err(err)
    }
}

/// The damage (scratches, cracks, dust) in one photo, found on a ≤ 1 MP copy in bands (the core's
/// [`unblur::repair::detect::Search`]), in the coordinating worker: it hands out each band's
/// input for an inference worker's damage detector and takes the outputs back in any order;
/// `finish` gives what was found. Bands are independent, so the page runs them side by side.
#[wasm_bindgen]
pub struct DamageSearch {
    search: unblur::repair::detect::Search,
}

#[wasm_bindgen]
impl DamageSearch {
    /// Decodes the photo (upright, as restoring it does) and cuts its copy into at least
    /// `workers` bands.
    #[wasm_bindgen(constructor)]
    pub fn new(photo: &[u8], workers: usize) -> Result<DamageSearch, JsError> {
        let photo = image_io::decode(photo).map_err(err)?;
        Ok(DamageSearch {
            search: unblur::repair::detect::Search::new(&photo.rgb, workers),
        })
    }

    pub fn band_count(&self) -> usize {
        self.search.band_count()
    }

    /// `[1, 3, h, w]`, the same for every band.
    pub fn band_shape(&self) -> Vec<u32> {
        self.search.band_shape().iter().map(|&d| d as u32).collect()
    }

    /// Band `i`'s network input, planar.
    pub fn band_input(&self, i: usize) -> Result<Vec<f32>, JsError> {
        self.search.band_input(i).map_err(err)
    }

    /// Takes band `i`'s output (`[1, 1, h, w]`, planar).
    pub fn accept(&mut self, i: usize, output: &[f32], h: usize, w: usize) -> Result<(), JsError> {
        self.search.accept(i, &[1, 1, h, w], output).map_err(err)
    }

    /// What was found, once every band is in (this object is used up).
    pub fn finish(self) -> Result<Damage, JsError> {
        let d = self.search.finish().map_err(err)?;
        Ok(Damage {
            width: d.mask.width(),
            height: d.mask.height(),
            coverage: d.coverage,
            worth: d.worth_repairing(),
            mask: d
                .mask
                .damaged()
                .iter()
                .map(|&v| if v { 255 } else { 0 })
                .collect(),
        })
    }
}

/// What the damage detector found: the mask (one byte a pixel, 255 = damaged, row-major, the
/// upright photo's size), the share of the photo it covers, and whether that is worth repairing
/// (the core's one policy). `mask` hands the bytes over once; `free()` it after.
#[wasm_bindgen]
pub struct Damage {
    width: u32,
    height: u32,
    coverage: f64,
    worth: bool,
    mask: Vec<u8>,
}

#[wasm_bindgen]
impl Damage {
    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn coverage(&self) -> f64 {
        self.coverage
    }
    pub fn worth(&self) -> bool {
        self.worth
    }
    pub fn mask(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.mask)
    }
}

fn detect_json(net: &Network, photo: &Photo) -> Result<String, JsError> {
    let faces = Detector::new(net).detect(&photo.rgb).map_err(err)?;
    Ok(serde_json::to_string(&faces).expect("faces serialise"))
}

/// Chooses the GEMM kernel for plans built afterwards (benchmarks compare them); false if unknown.
#[cfg(feature = "bench")]
#[wasm_bindgen]
pub fn select_gemm_kernel(name: &str) -> bool {
    unblur::engine::gemm_wasm::select(name)
}

/// The GEMM kernels this build can run (tract's own is "tract"), and whether they registered.
#[cfg(feature = "bench")]
#[wasm_bindgen]
pub fn gemm_kernels() -> String {
    unblur::engine::gemm_wasm::status()
}

/// Overrides one of tract's knobs (`None` drops the override) for plans built afterwards, to
/// measure a plan option in wasm (bench/direct_spatial.mjs); false for an unknown knob.
#[cfg(feature = "bench")]
#[wasm_bindgen]
pub fn set_tract_knob(name: &str, value: Option<String>) -> bool {
    use tract_onnx::tract_core::knobs;
    match value {
        Some(v) => knobs::set_str(name, &v),
        None => knobs::clear_str(name),
    }
}

/// The repair fill timed in wasm, as `bench/native`'s `--fill` times it natively: the photo
/// decoded once, then `reps` fills of the mask's pixels (`unblur::repair::repair`) on fresh
/// copies. JSON `{pixels, masked, runs_ms}` (bench/stages.py's wasm rows).
#[cfg(feature = "bench")]
#[wasm_bindgen]
pub fn bench_fill(photo: &[u8], mask: &[u8], reps: usize) -> Result<String, JsError> {
    let photo = image_io::decode(photo).map_err(err)?;
    let mask = unblur::Mask::decode(mask).map_err(err)?;
    let mut runs = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let mut rgb = photo.rgb.clone();
        let t0 = js_sys::Date::now();
        unblur::repair::repair(&mut rgb, &mask).map_err(err)?;
        runs.push(js_sys::Date::now() - t0);
        std::hint::black_box(rgb);
    }
    let pixels = photo.rgb.width() as f64 * photo.rgb.height() as f64;
    Ok(serde_json::json!({"pixels": pixels, "masked": mask.count(), "runs_ms": runs}).to_string())
}

/// Every GEMM kernel against a plain reference on random convolutions, edge tiles included
/// (`unblur::engine::gemm_check`): JSON `{ok, tolerance, kernels: [...]}`.
#[cfg(feature = "bench")]
#[wasm_bindgen]
pub fn gemm_check() -> String {
    unblur::engine::gemm_check::check()
}

/// Reads a photo's header only: `{format, width, height, max_scale}` as JSON (upright, after
/// EXIF orientation; `max_scale`: the largest scale whose result a device with `memory_gb` of
/// memory holds, the core's [`image_io::output_limit`]), or a clear error.
#[wasm_bindgen]
pub fn probe(bytes: &[u8], memory_gb: Option<f64>) -> Result<String, JsError> {
    let (format, w, h) = image_io::probe(bytes).map_err(err)?;
    let max_scale = unblur::upscale::max_scale(w, h, image_io::output_limit(memory_gb));
    Ok(format!(
        r#"{{"format":"{format:?}","width":{w},"height":{h},"max_scale":{max_scale}}}"#
    ))
}

/// One photo's restoration: the core's [`RestoreJob`], its types converted for JavaScript.
#[wasm_bindgen]
pub struct Job {
    job: RestoreJob,
}

fn shape_u32(shape: [usize; 4]) -> Vec<u32> {
    shape.iter().map(|&v| v as u32).collect()
}

fn indices(list: Vec<usize>) -> Vec<u32> {
    list.into_iter().map(|v| v as u32).collect()
}

/// The verdict's JSON, with the blur kind's words for people (`label`) beside its id (`kind`), and
/// what the page says of it (`summary`, the core's sentence; absent when there is nothing to say).
fn verdict_json(v: &unblur::deblur::Verdict) -> String {
    let mut j = serde_json::to_value(v).expect("the verdict serialises");
    j["label"] = v.kind.label().into();
    if let Some(summary) = v.summary() {
        j["summary"] = summary.into();
    }
    j.to_string()
}

#[wasm_bindgen]
impl Job {
    /// Decodes the photo and plans its tiles. `options` is the JSON of the core's `Options`;
    /// `sr_scale` is the SR network's scale; `face_side` is the face model's input side, or 0 to
    /// restore faces with the SR network.
    #[wasm_bindgen(constructor)]
    pub fn new(
        bytes: &[u8],
        options: &str,
        sr_scale: usize,
        face_side: usize,
    ) -> Result<Job, JsError> {
        let opts: Options = serde_json::from_str(options)
            .map_err(|e| JsError::new(&format!("bad options: {e}")))?;
        let face_side = (face_side > 0).then_some(face_side);
        Ok(Job {
            job: RestoreJob::new(bytes, &opts, sr_scale, face_side).map_err(err)?,
        })
    }

    pub fn width(&self) -> u32 {
        self.job.photo().width()
    }
    pub fn height(&self) -> u32 {
        self.job.photo().height()
    }
    pub fn out_width(&self) -> u32 {
        self.job.output_size().0
    }
    pub fn out_height(&self) -> u32 {
        self.job.output_size().1
    }

    /// Repairs the photo where `mask` (one byte a pixel, nonzero = damaged, row-major, the upright
    /// photo's size) marks damage: before the deblur stage, the faces and the tiles.
    pub fn repair(&mut self, mask: &[u8]) -> Result<(), JsError> {
        let (w, h) = (self.job.photo().width(), self.job.photo().height());
        let mask = unblur::Mask::new(w, h, mask).map_err(err)?;
        self.job.repair(&mask).map_err(err)
    }

    /// Whether the options restore faces (else `detect` finds none and needs no detector).
    pub fn restores_faces(&self) -> bool {
        self.job.options().faces
    }

    // --- the deblur stage: after repair, before faces and tiles ---

    /// Plans the deblur stage by the options' `deblur` (nothing when off).
    pub fn plan_deblur(&mut self) -> Result<(), JsError> {
        self.job.plan_deblur().map_err(err)
    }

    pub fn deblur_tile_count(&self) -> usize {
        self.job.deblur_tile_count()
    }

    /// `[1, 3, h, w]`, the same (padded) for every deblur tile.
    pub fn deblur_tile_shape(&self) -> Result<Vec<u32>, JsError> {
        Ok(shape_u32(self.job.deblur_tile_shape().map_err(err)?))
    }

    /// The deblur tiles to run first: a sample to decide on (auto; none when its looks at the
    /// photo decided), or all of them (on).
    pub fn deblur_first(&self) -> Vec<u32> {
        indices(self.job.deblur_first())
    }

    pub fn deblur_tile_input(&self, i: usize) -> Result<Vec<f32>, JsError> {
        self.job.deblur_tile_input(i).map_err(err)
    }

    /// Takes deblur tile `i`'s network output (planar, the tile's shape).
    pub fn accept_deblur_tile(&mut self, i: usize, output: &[f32]) -> Result<(), JsError> {
        self.job.accept_deblur_tile(i, output).map_err(err)
    }

    /// After the first tiles: the deblur tiles still to run (none for a photo left as it is).
    pub fn decide_deblur(&mut self) -> Result<Vec<u32>, JsError> {
        Ok(indices(self.job.decide_deblur().map_err(err)?))
    }

    /// Ends the deblur stage: the photo becomes the deblurred one if the verdict applies it.
    /// Returns the verdict as JSON `{applied, strength, kind, label, summary, residual, anisotropy}`, or nothing
    /// when there was no stage. `skip`: the network could not run; the photo stays as it is.
    pub fn end_deblur(&mut self, skip: bool) -> Result<Option<String>, JsError> {
        if skip {
            self.job.skip_deblur();
            return Ok(None);
        }
        Ok(self.job.end_deblur().map_err(err)?.map(verdict_json))
    }

    /// Finds the faces with the detector network (when faces are on); returns their JSON.
    pub fn detect(&mut self, detector: &Net) -> Result<String, JsError> {
        let detector = Detector::new(&detector.net);
        let faces = self.job.detect(&detector).map_err(err)?;
        Ok(serde_json::to_string(faces).expect("faces serialise"))
    }

    pub fn tile_count(&self) -> usize {
        self.job.tile_count()
    }

    /// `[1, 3, h, w]`, the same for every tile.
    pub fn tile_shape(&self) -> Result<Vec<u32>, JsError> {
        Ok(shape_u32(self.job.tile_shape().map_err(err)?))
    }

    pub fn tile_input(&self, i: usize) -> Result<Vec<f32>, JsError> {
        self.job.tile_input(i).map_err(err)
    }

    /// Blends a tile's output in; returns its output window `[x, y, w, h]`.
    pub fn accept_tile(&mut self, i: usize, output: &[f32]) -> Result<Vec<u32>, JsError> {
        let r = self.job.accept_tile(i, output).map_err(err)?;
        Ok(r.output.iter().map(|&v| v as u32).collect())
    }

    /// The canvas in a window as RGBA8, for drawing progress: finished tiles at full brightness,
    /// transparent where no tile has arrived yet.
    pub fn preview(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Vec<u8>, JsError> {
        self.job
            .preview(x as usize, y as usize, w as usize, h as usize)
            .map_err(err)
    }

    pub fn face_count(&self) -> usize {
        self.job.face_count()
    }

    /// Restores only these faces (JSON `[{bbox, landmarks, score}]`, a subset the user picked of
    /// what `detect` found); returns their count.
    pub fn set_faces(&mut self, faces: &str) -> Result<usize, JsError> {
        let faces = serde_json::from_str(faces)
            .map_err(|e| JsError::new(&format!("bad face list: {e}")))?;
        self.job.set_faces(faces);
        Ok(self.job.face_count())
    }

    /// `[1, 3, side, side]` of face `i`'s network input.
    pub fn face_shape(&self, i: usize) -> Result<Vec<u32>, JsError> {
        Ok(shape_u32(self.job.face_shape(i).map_err(err)?))
    }

    pub fn face_input(&self, i: usize) -> Result<Vec<f32>, JsError> {
        Ok(self.job.face_input(i).map_err(err)?.to_vec())
    }

    /// Takes face `i`'s network output (planar, of shape `[1,3,h,w]`).
    pub fn accept_face(
        &mut self,
        i: usize,
        output: &[f32],
        h: usize,
        w: usize,
    ) -> Result<(), JsError> {
        self.job.accept_face(i, &[1, 3, h, w], output).map_err(err)
    }

    /// Face `i` before and after, as two 512×512 RGBA8 images one after the other, for the
    /// page's face comparison.
    pub fn face_pair(&self, i: usize) -> Result<Vec<u8>, JsError> {
        let (before, after) = self.job.face_pair(i).map_err(err)?;
        Ok(rgba8(before.iter().chain(after.iter())))
    }

    /// Pastes the restored faces, puts alpha back and encodes. The finished photo is kept for
    /// `encode`.
    pub fn finish(&mut self, format: &str, quality: u8) -> Result<Vec<u8>, JsError> {
        self.job.finish().map_err(err)?;
        self.encode(format, quality)
    }

    /// Encodes the finished photo (after `finish`) again, in any format.
    pub fn encode(&self, format: &str, quality: u8) -> Result<Vec<u8>, JsError> {
        let format: unblur::OutputFormat = format.parse().map_err(err)?;
        self.job.encode(format, quality).map_err(err)
    }

    /// The restored file's name for a photo named `stem`, in `format`.
    pub fn output_name(&self, stem: &str, format: &str) -> Result<String, JsError> {
        Ok(self.job.output_name(stem, format.parse().map_err(err)?))
    }
}

/// SHA-256 over bytes that arrive in chunks: SubtleCrypto cannot hash a stream, and a face model
/// is hundreds of megabytes, hashed as it downloads.
#[wasm_bindgen]
pub struct Sha256 {
    h: sha2::Sha256,
}

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256 {
        Sha256 {
            h: sha2::Sha256::new(),
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.h.update(chunk);
    }

    /// The digest so far, in lowercase hex (the hasher goes on).
    pub fn hex(&self) -> String {
        format!("{:x}", self.h.clone().finalize())
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// A face model made ready to store: `bytes` is what a face worker loads with [`Net::face`].
#[wasm_bindgen]
pub struct PreparedModel {
    bytes: Vec<u8>,
    arch: String,
    side: usize,
    converted: bool,
}

#[wasm_bindgen]
impl PreparedModel {
    /// Hands the bytes over once (no copy stays in the wasm heap).
    pub fn bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
    /// "gfpgan", "codeformer", or "onnx" for a model that came as ONNX.
    pub fn arch(&self) -> String {
        self.arch.clone()
    }
    pub fn side(&self) -> usize {
        self.side
    }
    /// Whether it was converted from a PyTorch checkpoint (else it is the ONNX file as given).
    pub fn converted(&self) -> bool {
        self.converted
    }
}

/// A face model from a file's bytes: a PyTorch checkpoint (GFPGAN v1.3/v1.4, CodeFormer) is
/// converted, to its stored fp16 form (`stored`) or in full fp32 (the tests' comparison); an ONNX
/// file is loaded once to check that it takes a face. Either way nothing is run.
#[wasm_bindgen]
pub fn prepare_face_model(bytes: &[u8], stored: bool) -> Result<PreparedModel, JsError> {
    if convert::is_checkpoint(bytes) {
        let c = convert::convert(bytes).map_err(err)?;
        let arch = serde_json::to_value(c.arch).expect("arch serialises");
        let arch = arch.as_str().unwrap_or("face").to_string();
        let bytes = if stored {
            convert::to_stored(c)
        } else {
            use prost::Message;
            c.model.encode_to_vec()
        };
        return Ok(PreparedModel {
            bytes,
            arch,
            side: 512,
            converted: true,
        });
    }
    let net = Network::from_bytes(bytes).map_err(err)?;
    let side = unblur::pipeline::face_model_side(&net).map_err(err)?;
    Ok(PreparedModel {
        bytes: bytes.to_vec(),
        arch: "onnx".into(),
        side,
        converted: false,
    })
}

/// The name a converted model is stored under (source sha256 and converter version).
#[wasm_bindgen]
pub fn stored_name(source_sha256: &str) -> String {
    convert::stored_name(source_sha256)
}

/// The models that make upscaler `id` at denoise strength `denoise`, by the core's rule
/// ([`unblur::models::Manifest::upscaler`]), from the built manifest's JSON:
/// `{"models": [id, partner?], "denoise": d}`.
#[wasm_bindgen]
pub fn upscaler_models(manifest: &str, id: &str, denoise: f32) -> Result<String, JsError> {
    let manifest = unblur::models::Manifest::parse(manifest).map_err(err)?;
    let up = manifest.upscaler(id, denoise).map_err(err)?;
    let ids: Vec<&str> = std::iter::once(&up.model.id)
        .chain(up.partner.map(|p| &p.id))
        .map(String::as_str)
        .collect();
    Ok(serde_json::json!({"models": ids, "denoise": up.denoise}).to_string())
}

/// The output formats, as the core defines them: JSON `[{id, label, mime}]`, the default first.
/// (`mime_type` and `Job::output_name` take any of the ids, or `jpeg`.)
#[wasm_bindgen]
pub fn output_formats() -> String {
    let list: Vec<_> = unblur::OutputFormat::ALL
        .iter()
        .map(|f| serde_json::json!({"id": f.extension(), "label": f.label(), "mime": f.mime()}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// The scales a restoration offers, as the core defines them: JSON `{min, max}`.
#[wasm_bindgen]
pub fn scales() -> String {
    let r = unblur::upscale::SCALES;
    serde_json::json!({"min": r.start(), "max": r.end()}).to_string()
}

/// The MIME type of an output format (`png`, `jpg`, `webp`).
#[wasm_bindgen]
pub fn mime_type(format: &str) -> Result<String, JsError> {
    let format: unblur::OutputFormat = format.parse().map_err(err)?;
    Ok(format.mime().into())
}

/// RGB in 0…1 as RGBA8, opaque.
fn rgba8<'a>(px: impl Iterator<Item = &'a [f32; 3]>) -> Vec<u8> {
    px.flat_map(|p| {
        p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .into_iter()
            .chain([255])
    })
    .collect()
}
