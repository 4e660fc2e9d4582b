//! Shared helpers for the integration tests: the real built models, the real dev photos.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{DynamicImage, ImageFormat};
use unblur::engine::Network;
use unblur::face::detect::Detector;
use unblur::models::{self, Manifest, DAMAGE_DETECTION, DEBLUR, DETECTION, SUPER_RESOLUTION};
use unblur::Restorer;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built models. Tests need them: `make models` (part of `make test`) builds them.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("UNBLUR_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/build"));
    assert!(
        dir.join("manifest.json").exists(),
        "no built models in {}: run `make models`",
        dir.display()
    );
    dir
}

pub fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| Manifest::load(&model_dir()).expect("manifest loads"))
}

pub fn model_bytes(id: &str, form: Option<&str>) -> Vec<u8> {
    let entry = manifest().get(id).unwrap();
    models::read(&model_dir(), entry.artifact(form).unwrap()).unwrap()
}

pub fn sr_id() -> String {
    manifest().default_for(SUPER_RESOLUTION).unwrap().id.clone()
}

pub fn detector() -> Detector {
    let id = &manifest().default_for(DETECTION).unwrap().id;
    Detector::new(Network::from_bytes(&model_bytes(id, None)).unwrap())
}

/// The restorer the CLI builds by default (denoise 0.5), shared by the tests of one binary.
pub fn restorer() -> &'static Restorer {
    static R: OnceLock<Restorer> = OnceLock::new();
    R.get_or_init(|| Restorer::new(default_sr(), Some(detector()), None).unwrap())
}

/// The SR network the CLI builds by default (denoise 0.5).
fn default_sr() -> Network {
    let entry = manifest().default_for(SUPER_RESOLUTION).unwrap();
    let a = model_bytes(&entry.id, None);
    let b = model_bytes(entry.denoise_partner.as_ref().unwrap(), None);
    Network::interpolated(&a, &b, 0.5).unwrap()
}

/// The default restorer with Unblur's deblurring network (the manifest's deblur model, in its
/// shipped form) and no detector: the deblur tests restore without faces.
pub fn deblur_restorer() -> &'static Restorer {
    static R: OnceLock<Restorer> = OnceLock::new();
    R.get_or_init(|| {
        let id = &manifest().default_for(DEBLUR).unwrap().id;
        let net = Network::from_bytes(&model_bytes(id, None)).unwrap();
        Restorer::new(default_sr(), None, None)
            .unwrap()
            .with_deblur(Some(net))
            .unwrap()
    })
}

/// The default restorer with Unblur's damage detector (the manifest's, in its shipped form) and
/// no face detector: the repair tests restore without faces.
pub fn repair_restorer() -> &'static Restorer {
    static R: OnceLock<Restorer> = OnceLock::new();
    R.get_or_init(|| {
        let id = &manifest().default_for(DAMAGE_DETECTION).unwrap().id;
        let net = Network::from_bytes(&model_bytes(id, None)).unwrap();
        Restorer::new(default_sr(), None, None)
            .unwrap()
            .with_damage_detector(Some(net))
            .unwrap()
    })
}

/// The deblurring network (shared with [`deblur_restorer`]).
pub fn deblur_net() -> &'static Network {
    deblur_restorer().deblur.as_ref().unwrap()
}

pub fn dev(rel: &str) -> PathBuf {
    let p = root().join("../shared/data/dev").join(rel);
    assert!(p.exists(), "missing dev photo {}", p.display());
    p
}

pub fn whole_imgs() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for set in ["codeformer", "gfpgan"] {
        for e in std::fs::read_dir(dev(&format!("{set}/whole_imgs"))).unwrap() {
            all.push(e.unwrap().path());
        }
    }
    all.sort();
    all
}

pub fn load(path: &Path) -> DynamicImage {
    image::open(path).unwrap()
}

/// A small piece of a real photo (to keep the SR network's time down), encoded as PNG.
pub fn small_png(rel: &str, x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
    encode(&load(&dev(rel)).crop_imm(x, y, w, h), ImageFormat::Png)
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// PSNR in dB between two same-sized images (RGB8).
pub fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// A 60×40 crop of a real photo (as stored) saved as a JPEG with EXIF orientation 6: 40×60
/// upright. Returns the stored pixels and the JPEG.
pub fn sideways_jpeg() -> (image::RgbImage, Vec<u8>) {
    use image::ImageEncoder;
    let src = load(&dev("codeformer/whole_imgs/05.jpg"))
        .crop_imm(0, 0, 60, 40)
        .to_rgb8();
    let mut jpeg = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95);
    enc.set_exif_metadata(exif_orientation(6)).unwrap();
    enc.write_image(src.as_raw(), 60, 40, image::ExtendedColorType::Rgb8)
        .unwrap();
    (src, jpeg)
}

/// A fresh, empty folder for one test, `unblur-<what>-*` in the temp folder, removed when the
/// returned guard drops (CI runs on a long-lived machine: folders left behind pile up).
pub fn tempdir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("unblur-{what}-"))
        .tempdir()
        .unwrap()
}

/// The `unblur` binary with the built models.
pub fn unblur_cli() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_unblur"));
    c.env("UNBLUR_MODELS", model_dir());
    c
}

/// `unblur restore --json ARGS --out OUT PHOTO`, which must succeed: its JSON line and its stderr.
pub fn restore_json(args: &[&str], out: &Path, photo: &Path) -> (serde_json::Value, String) {
    let run = unblur_cli()
        .arg("restore")
        .arg("--json")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg(photo)
        .output()
        .unwrap();
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(run.status.success(), "{stderr}");
    (serde_json::from_slice(&run.stdout).unwrap(), stderr)
}

/// A minimal big-endian EXIF (TIFF) block holding one tag: Orientation.
pub fn exif_orientation(value: u16) -> Vec<u8> {
    let mut e = b"MM\0\x2a\0\0\0\x08".to_vec();
    e.extend([0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    e.extend(value.to_be_bytes());
    e.extend([0, 0, 0, 0, 0, 0]);
    e
}
