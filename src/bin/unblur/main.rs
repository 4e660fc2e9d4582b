//! `unblur`: the command-line shell on the core, for batch work, tests and benchmarks.

mod store;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use unblur::engine::gpu::GpuMode;
use unblur::engine::Network;
use unblur::face::detect::Detector;
use unblur::models::{
    self, Manifest, DAMAGE_DETECTION, DEBLUR, DETECTION, FACE_RESTORATION, SUPER_RESOLUTION,
};
use unblur::{DeblurMode, Mask, Observer, Options, OutputFormat, Progress, Repair, Restorer};

#[derive(Parser)]
#[command(
    name = "unblur",
    version,
    about = "Upscale photos and restore their faces, on your own machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Faces {
    Auto,
    Off,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Folder of the built models (with manifest.json) [default: $UNBLUR_MODELS or models/build]
    #[arg(long)]
    models: Option<PathBuf>,
    /// Model form to load: fp32, int8 or fp16 [default: the shipped form]
    #[arg(long)]
    form: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Restore photos into a folder.
    Restore {
        /// Photos to restore.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long, short)]
        out: PathBuf,
        /// Output size over input size, 1 to 6 (1 = clean-up and faces only; above the
        /// network's own scale its output is resampled to the final size).
        #[arg(long, default_value_t = 2.0)]
        scale: f32,
        /// Denoise strength, 0 (keep grain) to 1 (smooth).
        #[arg(long, default_value_t = 0.5)]
        denoise: f32,
        #[arg(long, value_enum, default_value_t = Faces::Auto)]
        faces: Faces,
        /// Repair scratches, cracks, dust and spots before restoring: "off"; "auto", Unblur's
        /// damage detector finds them and they are filled when there are enough to matter; or a
        /// mask image (grayscale, nonzero = damaged) of the photo's size in its upright
        /// (EXIF-applied) frame, whose marked pixels are filled from their surroundings. A photo
        /// of another size than the mask fails with its own error.
        #[arg(long, default_value = "off", value_name = "off|auto|MASK.png")]
        repair: String,
        /// Deblur the photo (motion blur, focus) before its faces and upscaling, with Unblur's
        /// own network at the photo's resolution: "auto" deblurs when a sample of the photo
        /// shows blur, "on" always, "off" never.
        #[arg(long, default_value = "auto", value_name = "auto|on|off")]
        deblur: DeblurMode,
        /// The face stage: a face model's id (unblur-face, or a catalog model such as
        /// gfpgan-1.4 or codeformer: see `unblur models list`), a file (a GFPGAN v1.3/v1.4 or
        /// CodeFormer `.pth`, converted once and stored; or an ONNX face model, [1,3,512,512] or
        /// [1,3,256,256] RGB in -1..1), or "sr" for the upscaler on each face
        /// [default: the manifest's default face model, else sr].
        #[arg(long)]
        face_model: Option<String>,
        /// CodeFormer's fidelity weight w, 0 (the codebook's face) to 1 (closest to the photo)
        /// [default: 0.5].
        #[arg(long)]
        fidelity: Option<f32>,
        /// Download a catalog face model that is not stored yet (never done silently).
        #[arg(long)]
        fetch: bool,
        /// How much of the restored face to blend in, 0 to 1.
        #[arg(long, default_value_t = 1.0)]
        face_strength: f32,
        /// Tile side in pixels; 0 processes each photo in one piece.
        #[arg(long, default_value_t = unblur::upscale::TILE)]
        tile: usize,
        /// Overlap between tiles in pixels.
        #[arg(long, default_value_t = unblur::upscale::OVERLAP)]
        overlap: usize,
        /// Threads running tiles at once; 0 is one per CPU. The output is the same either way.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Run the upscaling network on a GPU: "auto" on a hardware GPU when there is one
        /// (never a software adapter), "on" on any adapter, "off" on the CPU. The CPU runs
        /// whatever the GPU cannot, with one message saying why.
        #[arg(long, default_value = "auto", value_name = "auto|on|off")]
        gpu: GpuMode,
        #[arg(long, default_value = "png")]
        format: String,
        /// JPEG quality, 1 to 100.
        #[arg(long, default_value_t = 92)]
        quality: u8,
        /// Super-resolution model id from the manifest [default: the manifest's default].
        #[arg(long)]
        sr_model: Option<String>,
        /// Print one JSON object per input on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        models: ModelArgs,
    },
    /// The face-restorer catalog: list it, or fetch a model into the store.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
        #[command(flatten)]
        models: ModelArgs,
    },
    /// List the faces found in photos.
    Detect {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        models: ModelArgs,
    },
}

#[derive(Subcommand)]
enum ModelsAction {
    /// The catalog of face restorers, what is stored, sizes and licenses.
    List,
    /// Download a catalog model (checked against its sha256, converted, stored).
    Fetch {
        id: String,
        /// Fetch from this URL instead of the catalog's (a mirror; the sha256 still decides).
        #[arg(long)]
        url: Option<String>,
    },
    /// Run a face model once on a raw input (f32 little-endian [1,3,512,512], RGB in -1..1) and
    /// write its raw output: how `models/checkpoints.py --compare` checks Unblur against PyTorch
    /// on real weights. Prints the load and run times as JSON.
    Run {
        /// A catalog id or a file (.pth or .onnx).
        model: String,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        fidelity: Option<f32>,
    },
}

fn main() -> ExitCode {
    // Mesa's device-select Vulkan layer asks the desktop's Wayland display which GPU is the
    // default one; on a headless machine (no XDG_RUNTIME_DIR) libwayland prints an "error:" line
    // for every Vulkan instance (`--gpu auto` opens one). There is no display to choose for, so
    // the layer is turned off, before any thread exists.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("unblur: {e}");
            ExitCode::from(2)
        }
    }
}

fn model_dir(arg: &Option<PathBuf>) -> PathBuf {
    if let Some(dir) = arg {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("UNBLUR_MODELS") {
        return dir.into();
    }
    let local = PathBuf::from("models/build");
    if local.join("manifest.json").exists() {
        return local;
    }
    // Next to the repository the binary was built in (target/<profile>/unblur).
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|root| root.join("models/build")))
        .filter(|d| d.join("manifest.json").exists())
        .unwrap_or(local)
}

fn load_detector(dir: &Path, manifest: &Manifest, form: Option<&str>) -> unblur::Result<Detector> {
    let entry = manifest.default_for(DETECTION)?;
    let bytes = models::read(dir, entry.artifact(form)?)?;
    Ok(Detector::new(Network::from_bytes(&bytes)?))
}

fn run(cli: Cli) -> unblur::Result<bool> {
    match cli.command {
        Command::Models { action, models: m } => {
            let manifest = Manifest::load(&model_dir(&m.models))?;
            match action {
                ModelsAction::List => store::list(&manifest),
                ModelsAction::Fetch { id, url } => {
                    let entry = manifest.catalog().find(|e| e.id == id).ok_or_else(|| {
                        unblur::Error::Model(format!(
                            "no catalog model '{id}' (see `unblur models list`)"
                        ))
                    })?;
                    let path = store::fetch(entry, url.as_deref())?;
                    eprintln!("stored {}", path.display());
                }
                ModelsAction::Run {
                    model,
                    input,
                    output,
                    fidelity,
                } => {
                    let started = Instant::now();
                    let bytes = store::face_model(&manifest, &model, false)?.ok_or_else(|| {
                        unblur::Error::Model(format!("'{model}' is not a readable file"))
                    })?;
                    let net = unblur::convert::face_network(&bytes, fidelity)?;
                    let side = net.input_shape().get(2).copied().flatten().unwrap_or(512);
                    let raw = std::fs::read(&input).map_err(unblur::Error::io("cannot read"))?;
                    let data: Vec<f32> = raw
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    let shape = [1, 3, side, side];
                    net.plan(&shape)?;
                    let loaded = started.elapsed();
                    let t = Instant::now();
                    let (_, out) = net.run(&shape, data)?.remove(0);
                    let ran = t.elapsed();
                    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
                    std::fs::write(&output, bytes).map_err(unblur::Error::io("cannot write"))?;
                    println!(
                        "{}",
                        json!({"model": model, "load_ms": loaded.as_millis() as u64, "run_ms": ran.as_millis() as u64})
                    );
                }
            }
            Ok(true)
        }
        Command::Detect { inputs, models: m } => {
            let dir = model_dir(&m.models);
            let manifest = Manifest::load(&dir)?;
            let detector = load_detector(&dir, &manifest, m.form.as_deref())?;
            let mut ok = true;
            for input in inputs {
                let result = std::fs::read(&input)
                    .map_err(unblur::Error::io("cannot read"))
                    .and_then(|b| unblur::image_io::decode(&b))
                    .and_then(|p| detector.detect(&p.rgb));
                match result {
                    Ok(faces) => println!("{}", json!({"input": input, "faces": faces})),
                    Err(e) => {
                        ok = false;
                        println!("{}", json!({"input": input, "error": e.to_string()}))
                    }
                }
            }
            Ok(ok)
        }
        Command::Restore {
            inputs,
            out,
            scale,
            denoise,
            faces,
            repair,
            deblur,
            face_model,
            fidelity,
            fetch,
            face_strength,
            tile,
            overlap,
            threads,
            gpu,
            format,
            quality,
            sr_model,
            json,
            models: m,
        } => {
            let format: OutputFormat = format.parse()?;
            let opts = Options {
                scale,
                faces: faces == Faces::Auto,
                face_strength,
                tile,
                overlap,
                format,
                jpeg_quality: quality,
                threads,
                deblur,
            };
            opts.validate()?;
            let repair = repair_arg(&repair)?;
            let dir = model_dir(&m.models);
            let manifest = Manifest::load(&dir)?;
            let restorer = load_restorer(
                &dir,
                &manifest,
                &m,
                sr_model.as_deref(),
                denoise,
                FaceChoice {
                    spec: face_model.as_deref(),
                    fidelity,
                    fetch,
                },
                opts.faces,
            )?
            .with_deblur(load_deblur(&dir, &manifest, m.form.as_deref(), deblur)?)?
            .with_damage_detector(load_damage_detector(
                &dir,
                &manifest,
                m.form.as_deref(),
                &repair,
            )?)?
            .with_gpu(gpu);
            let gpus = [
                ("upscaling", &restorer.sr_gpu),
                ("faces", &restorer.face_gpu),
            ];
            for (what, gpu) in gpus {
                if let Some(device) = gpu.device() {
                    eprintln!("unblur: {what} on {device}");
                }
                if let Some(note) = gpu.take_note() {
                    eprintln!("unblur: {note}");
                }
            }
            std::fs::create_dir_all(&out).map_err(unblur::Error::io(format!(
                "cannot create {}",
                out.display()
            )))?;
            let originals: Vec<PathBuf> = inputs
                .iter()
                .filter_map(|p| p.canonicalize().ok())
                .collect();
            let mut all_ok = true;
            for input in &inputs {
                let started = Instant::now();
                let target = output_path(&out, input, scale, format);
                let result = restore_one(
                    &restorer,
                    input,
                    &target,
                    &originals,
                    repair.as_repair(),
                    &opts,
                );
                let ms = started.elapsed().as_millis() as u64;
                match result {
                    Ok(r) => {
                        let (w, h, n, verdict, damage) =
                            (r.width, r.height, r.faces.len(), r.deblur, r.damage);
                        if json {
                            println!(
                                "{}",
                                json!({"input": input, "output": target, "width": w, "height": h, "faces": n, "deblur": verdict, "repair": damage, "ms": ms})
                            );
                        } else {
                            eprintln!(
                                "{} → {} ({w}×{h}, {n} face{}, {:.1} s)",
                                input.display(),
                                target.display(),
                                if n == 1 { "" } else { "s" },
                                ms as f64 / 1000.0
                            );
                        }
                        if let Some(d) = damage {
                            // The share is of every call (the mask that was or would be filled);
                            // the decision is on the confident calls alone, so a photo can be
                            // left alone with more found than the bar.
                            let pct = d.coverage * 100.0;
                            if d.repaired {
                                eprintln!("Repaired: damage on {pct:.2} % of the photo");
                            } else {
                                eprintln!(
                                    "Not repaired: too little of what was found ({pct:.2} % of \
                                     the photo) is surely damage"
                                );
                            }
                        }
                        if let Some(said) = verdict.and_then(|v| v.summary()) {
                            eprintln!("{said}");
                        }
                    }
                    Err(e) => {
                        all_ok = false;
                        if json {
                            println!("{}", json!({"input": input, "error": e.to_string()}));
                        } else {
                            eprintln!("{}: {e}", input.display());
                        }
                    }
                }
                // A GPU failure during this photo: said once, the rest done on the CPU.
                for note in gpus.iter().filter_map(|(_, gpu)| gpu.take_note()) {
                    eprintln!("unblur: {note}");
                }
            }
            Ok(all_ok)
        }
    }
}

/// `--repair`, read once for every input.
enum RepairArg {
    Off,
    Auto,
    Mask(Mask),
}

impl RepairArg {
    fn as_repair(&self) -> Repair<'_> {
        match self {
            RepairArg::Off => Repair::Off,
            RepairArg::Auto => Repair::Auto,
            RepairArg::Mask(m) => Repair::Mask(m),
        }
    }
}

/// `--repair`: off, auto, or the mask read once for every input.
fn repair_arg(arg: &str) -> unblur::Result<RepairArg> {
    match arg {
        "off" => Ok(RepairArg::Off),
        "auto" => Ok(RepairArg::Auto),
        path => {
            let bytes = std::fs::read(path).map_err(unblur::Error::io(format!(
                "cannot read the repair mask {path}"
            )))?;
            Mask::decode(&bytes)
                .map(RepairArg::Mask)
                .map_err(|e| unblur::Error::Invalid(format!("the repair mask {path}: {e}")))
        }
    }
}

/// The deblur network for `--deblur`: none when off; the manifest's deblur model otherwise. When
/// the models folder has none (built before Unblur had one), `auto` goes without it and says so,
/// and `on` is an error.
fn load_deblur(
    dir: &Path,
    manifest: &Manifest,
    form: Option<&str>,
    mode: DeblurMode,
) -> unblur::Result<Option<Network>> {
    if mode == DeblurMode::Off {
        return Ok(None);
    }
    let entry = match manifest.default_for(DEBLUR) {
        Ok(entry) => entry,
        Err(_) if mode == DeblurMode::On => {
            return Err(unblur::Error::Model(format!(
                "--deblur on needs the deblur model, and the models in {} have none (rebuild \
                 them with `make models`)",
                dir.display()
            )))
        }
        Err(_) => {
            eprintln!(
                "unblur: the models in {} have no deblur model (rebuild them with `make models`); \
                 not deblurring",
                dir.display()
            );
            return Ok(None);
        }
    };
    let bytes = models::read(dir, entry.artifact(form)?)?;
    Ok(Some(Network::from_bytes(&bytes)?))
}

/// The damage detector for `--repair auto` (none otherwise): the manifest's; a models folder
/// without one (built before Unblur had it) is an error naming the fix.
fn load_damage_detector(
    dir: &Path,
    manifest: &Manifest,
    form: Option<&str>,
    repair: &RepairArg,
) -> unblur::Result<Option<Network>> {
    if !matches!(repair, RepairArg::Auto) {
        return Ok(None);
    }
    let entry = manifest.default_for(DAMAGE_DETECTION).map_err(|_| {
        unblur::Error::Model(format!(
            "--repair auto needs the damage detector, and the models in {} have none (rebuild \
             them with `make models`, or pass a mask: --repair MASK.png)",
            dir.display()
        ))
    })?;
    let bytes = models::read(dir, entry.artifact(form)?)?;
    Ok(Some(Network::from_bytes(&bytes)?))
}

/// The face stage the user asked for.
struct FaceChoice<'a> {
    spec: Option<&'a str>,
    fidelity: Option<f32>,
    fetch: bool,
}

fn load_restorer(
    dir: &Path,
    manifest: &Manifest,
    m: &ModelArgs,
    sr_model: Option<&str>,
    denoise: f32,
    face: FaceChoice,
    faces: bool,
) -> unblur::Result<Restorer> {
    let form = m.form.as_deref();
    let entry = match sr_model {
        Some(id) => manifest.get(id)?,
        None => manifest.default_for(SUPER_RESOLUTION)?,
    };
    let up = manifest.upscaler(&entry.id, denoise)?;
    let bytes = models::read(dir, up.model.artifact(form)?)?;
    let partner = match up.partner {
        Some(p) => Some(models::read(dir, p.artifact(form)?)?),
        None => None,
    };
    let sr = unblur::upscale::sr_network(&bytes, partner.as_deref(), up.denoise)?;
    let detector = if faces {
        Some(load_detector(dir, manifest, form)?)
    } else {
        None
    };
    // The face stage: "sr", a built face model of the manifest, a catalog model, or a file.
    let built = |id: &str| manifest.get(id).ok().filter(|e| !e.artifacts.is_empty());
    let bytes = match face.spec {
        _ if !faces => None,
        Some("sr") => None,
        Some(id) if built(id).is_some() => {
            let e = built(id).unwrap();
            if e.task != FACE_RESTORATION {
                return Err(unblur::Error::Model(format!(
                    "'{}' is a {} model, not a face model",
                    e.id, e.task
                )));
            }
            Some(models::read(dir, e.artifact(form)?)?)
        }
        Some(spec) => Some(
            store::face_model(manifest, spec, face.fetch)?.ok_or_else(|| {
                unblur::Error::Model(format!(
                    "'{spec}' is neither a face model of the manifest nor a readable file"
                ))
            })?,
        ),
        None => match manifest.default_face_model() {
            Some(e) => Some(models::read(dir, e.artifact(form)?)?),
            None => None,
        },
    };
    if face.fidelity.is_some() && bytes.is_none() {
        return Err(unblur::Error::Invalid(
            "--fidelity is a setting of CodeFormer (--face-model codeformer)".into(),
        ));
    }
    let face = bytes
        .map(|b| unblur::convert::face_network(&b, face.fidelity))
        .transpose()?;
    Restorer::new(sr, detector, face)
}

fn output_path(out: &Path, input: &Path, scale: f32, format: OutputFormat) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    out.join(format.output_name(&stem, scale))
}

struct Bar(Option<ProgressBar>);

impl Observer for Bar {
    fn progress(&self, p: &Progress) {
        if let Some(bar) = &self.0 {
            bar.set_length((p.deblur_total + p.tiles_total + p.faces_total) as u64);
            bar.set_position((p.deblur_done + p.tiles_done + p.faces_done) as u64);
            let deblur = if p.deblur_total > 0 {
                format!("deblur {}/{} · ", p.deblur_done, p.deblur_total)
            } else {
                String::new()
            };
            bar.set_message(format!(
                "{deblur}tiles {}/{} · faces {}/{}",
                p.tiles_done, p.tiles_total, p.faces_done, p.faces_total
            ));
        }
    }
}

fn restore_one(
    restorer: &Restorer,
    input: &Path,
    target: &Path,
    originals: &[PathBuf],
    repair: Repair,
    opts: &Options,
) -> unblur::Result<unblur::Restored> {
    let bytes = std::fs::read(input).map_err(unblur::Error::io("cannot read"))?;
    // Never write over an input, whatever the names.
    let clash = |p: &Path| {
        p.canonicalize()
            .ok()
            .is_some_and(|c| originals.contains(&c))
    };
    if clash(target) {
        return Err(unblur::Error::WouldOverwrite(target.display().to_string()));
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {msg} {elapsed}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(
            input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        bar
    });
    let observer = Bar(bar);
    let result = restorer.restore_with(&bytes, repair, opts, &observer);
    if let Some(bar) = observer.0 {
        bar.finish_and_clear();
    }
    let restored = result?;
    // Write beside the target and rename, so a failure never leaves half a file.
    let tmp = target.with_extension("part");
    std::fs::write(&tmp, &restored.bytes)
        .and_then(|_| std::fs::rename(&tmp, target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            unblur::Error::io(format!("cannot write {}", target.display()))(e)
        })?;
    Ok(restored)
}
