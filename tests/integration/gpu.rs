//! The GPU engine (feature `gpu`) against tract on the real networks, on crops of real dev
//! photos: PSNR between the two engines' outputs of at least 50 dB, for each network the GPU
//! engine covers; a network it does not cover must be refused with a typed error (so that it
//! runs on the CPU by rule), never crash.
//!
//! Crops are small (a software adapter runs these on CI). They run on any adapter, lavapipe
//! included (`scripts/setup.sh test` installs it where there is no Vulkan driver), and skip,
//! saying so, only where there is no adapter at all — and not even there under `make test`, which
//! sets `UNBLUR_REQUIRE_GPU=1`.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{dev, model_dir};

use unblur::engine::gpu::{Accelerator, GpuChoice, GpuDevice, GpuError, GpuMode, GpuNetwork};
use unblur::engine::Network;
use unblur::models::{self, Manifest};
use unblur::{DeblurMode, Options, Restorer};

const MIN_PSNR_DB: f64 = 50.0;

fn network(id: &str) -> Network {
    let dir = model_dir();
    let manifest = Manifest::load(&dir).unwrap();
    let entry = manifest.get(id).unwrap();
    Network::from_bytes(&models::read(&dir, entry.artifact(Some("fp32")).unwrap()).unwrap())
        .unwrap()
}

fn device() -> Option<&'static GpuDevice> {
    static D: OnceLock<Option<GpuDevice>> = OnceLock::new();
    D.get_or_init(|| match GpuDevice::new(GpuChoice::On) {
        Ok(d) => {
            eprintln!("GPU network tests on {}", d.describe());
            Some(d)
        }
        Err(GpuError::NoAdapter(why)) => {
            // `make test` sets this: there, setup.sh has installed an adapter, so none is a
            // failure, not a skip.
            if std::env::var_os("UNBLUR_REQUIRE_GPU").is_some() {
                panic!("UNBLUR_REQUIRE_GPU is set and there is no GPU adapter: {why}");
            }
            eprintln!(
                "SKIPPED: the GPU network tests need an adapter, and there is none ({why}); \
                 on Debian, `apt-get install mesa-vulkan-drivers` gives a software one"
            );
            None
        }
        Err(e) => panic!("{e}"),
    })
    .as_ref()
}

/// A `size`² crop of a dev photo at (x, y), NCHW RGB in 0…1.
fn crop(rel: &str, x: u32, y: u32, size: u32) -> Vec<f32> {
    let path = dev(rel);
    assert!(path.exists(), "missing dev photo {}", path.display());
    let img = image::open(Path::new(&path)).unwrap().to_rgb8();
    let c = image::imageops::crop_imm(&img, x, y, size, size).to_image();
    let plane = (size * size) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in c.pixels().enumerate() {
        for ch in 0..3 {
            out[ch * plane + i] = p[ch] as f32 / 255.0;
        }
    }
    out
}

/// PSNR of `a` against `b`, both on a range of `peak`.
fn psnr(a: &[f32], b: &[f32], peak: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (peak * peak / mse).log10()
}

/// Both engines on one input: asserts the shapes agree and the PSNR is at least 50 dB.
fn compare(what: &str, net: &Network, shape: &[usize], input: Vec<f32>, peak: f64) {
    let Some(dev) = device() else { return };
    let t = Instant::now();
    let (cs, cpu) = net.run(shape, input.clone()).unwrap().remove(0);
    let cpu_ms = t.elapsed().as_millis();
    let gpu = GpuNetwork::new(net, dev).unwrap_or_else(|e| panic!("{what}: {e}"));
    let t = Instant::now();
    let (gs, out) = gpu.run(shape, input).unwrap().remove(0);
    let gpu_ms = t.elapsed().as_millis();
    assert_eq!(gs, cs, "{what}: output shape");
    let db = psnr(&out, &cpu, peak);
    eprintln!(
        "{what} {shape:?}: {db:.1} dB GPU vs tract (tract {cpu_ms} ms, GPU {gpu_ms} ms with its plan, on {})",
        dev.describe()
    );
    assert!(db >= MIN_PSNR_DB, "{what}: {db:.2} dB < {MIN_PSNR_DB} dB");
}

#[test]
fn realesr_general_x4v3() {
    let input = crop("old-photos/old_a.png", 120, 80, 64);
    compare(
        "realesr-general-x4v3",
        &network("realesr-general-x4v3"),
        &[1, 3, 64, 64],
        input,
        1.0,
    );
}

/// The CLI's default: the two Real-ESRGAN networks' weights mixed half and half (the denoise
/// slider), a different set of weights for the same graph.
#[test]
fn realesr_denoise_blend() {
    let dir = model_dir();
    let manifest = Manifest::load(&dir).unwrap();
    let read = |id: &str| {
        models::read(
            &dir,
            manifest.get(id).unwrap().artifact(Some("fp32")).unwrap(),
        )
        .unwrap()
    };
    let net = Network::interpolated(
        &read("realesr-general-x4v3"),
        &read("realesr-general-wdn-x4v3"),
        0.5,
    )
    .unwrap();
    let input = crop("old-photos/old_c.png", 40, 40, 40);
    compare(
        "realesr-general-x4v3 denoise 0.5",
        &net,
        &[1, 3, 40, 40],
        input,
        1.0,
    );
}

#[test]
fn lsdir_compact() {
    let input = crop("old-photos/old_b.png", 64, 64, 48);
    compare(
        "4xLSDIRCompactC3",
        &network("4xLSDIRCompactC3"),
        &[1, 3, 48, 48],
        input,
        1.0,
    );
}

#[test]
fn nomos_span() {
    let input = crop("old-photos/old_d.png", 64, 64, 48);
    compare(
        "2xNomosUni SPAN",
        &network("2xNomosUni_span_multijpg_ldl"),
        &[1, 3, 48, 48],
        input,
        1.0,
    );
}

/// Unblur's own face model, on a real face crop brought to its 256² input in −1…1.
#[test]
fn unblur_face() {
    let path = dev("gfpgan/cropped_faces");
    let first = std::fs::read_dir(&path)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .min()
        .expect("a dev face");
    let img = image::open(&first).unwrap().to_rgb8();
    let img = image::imageops::resize(&img, 256, 256, image::imageops::FilterType::Triangle);
    let plane = 256 * 256;
    let mut input = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for ch in 0..3 {
            input[ch * plane + i] = p[ch] as f32 / 127.5 - 1.0;
        }
    }
    compare(
        "unblur-face",
        &network("unblur-face"),
        &[1, 3, 256, 256],
        input,
        2.0,
    );
}

/// The other networks of the manifest: each either runs on the GPU engine and agrees with tract,
/// or is refused with a typed "unsupported" error (it then runs on the CPU by rule).
#[test]
fn other_networks_by_rule() {
    let Some(dev) = device() else { return };
    for (id, size) in [("unblur-deblur", 40), ("unblur-repair", 40), ("yunet", 0)] {
        let net = network(id);
        match GpuNetwork::new(&net, dev) {
            Ok(_) if size > 0 => {
                let input = crop("old-photos/old_e.png", 30, 30, size);
                let s = size as usize;
                compare(id, &net, &[1, 3, s, s], input, 1.0);
            }
            Ok(_) => eprintln!("{id}: lowered"),
            Err(e @ GpuError::Unsupported { .. }) => eprintln!("{id}: on the CPU by rule ({e})"),
            Err(e) => panic!("{id}: {e}"),
        }
    }
}

/// `auto` never takes a software adapter: on a machine whose only adapters are software ones
/// (lavapipe on CI), it finds none and the CPU runs, silently; `on` takes one.
#[test]
fn auto_never_takes_a_software_adapter() {
    let Some(dev) = device() else { return };
    let net = network("4xLSDIRCompactC3");
    match GpuDevice::new(GpuChoice::Auto) {
        Ok(hw) => assert!(!hw.is_software(), "auto took {}", hw.describe()),
        Err(GpuError::NoAdapter(why)) => {
            assert!(
                dev.is_software(),
                "auto found no adapter beside {}",
                dev.describe()
            );
            eprintln!("auto: {why}");
            let a = Accelerator::new(&net, GpuMode::Auto, "the upscaler");
            assert!(!a.active() && a.take_note().is_none());
        }
        Err(e) => panic!("{e}"),
    }
    let on = Accelerator::new(&net, GpuMode::On, "the upscaler");
    assert!(on.active(), "{:?}", on.take_note());
    assert!(Accelerator::new(&net, GpuMode::Off, "the upscaler")
        .device()
        .is_none());
}

/// A network the GPU engine cannot lower runs on the CPU by rule, with one note saying why.
#[test]
fn unsupported_network_runs_on_the_cpu_with_one_note() {
    if device().is_none() {
        return;
    }
    let net = network("unblur-deblur");
    let a = Accelerator::new(&net, GpuMode::On, "the upscaler");
    assert!(!a.active());
    let note = a.take_note().expect("a note");
    assert!(note.contains("unsupported op"), "{note}");
    assert!(a.take_note().is_none());
    let shape = [1, 3, 16, 16];
    let input = crop("old-photos/old_a.png", 0, 0, 16);
    let via = a.run(&net, &shape, input.clone()).unwrap();
    assert_eq!(via, net.run(&shape, input).unwrap());
}

/// The restoration with the SR tiles on the GPU (`--gpu on`) against the CPU's, on a small
/// crop of a dev photo in several tiles.
#[test]
fn restoration_with_gpu_tiles() {
    if device().is_none() {
        return;
    }
    let path = dev("old-photos/old_a.png");
    let img = image::open(&path).unwrap().crop_imm(100, 120, 56, 44);
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let opts = Options {
        faces: false,
        deblur: DeblurMode::Off,
        tile: 32,
        overlap: 8,
        ..Options::default()
    };
    let restore = |mode: GpuMode| {
        let restorer = Restorer::new(network("realesr-general-x4v3"), None, None)
            .unwrap()
            .with_gpu(mode);
        assert_eq!(restorer.sr_gpu.active(), mode == GpuMode::On);
        let t = Instant::now();
        let r = restorer
            .restore(png.get_ref(), &opts, &unblur::Silent)
            .unwrap();
        assert!(restorer.sr_gpu.take_note().is_none());
        let ms = t.elapsed().as_millis();
        (image::load_from_memory(&r.bytes).unwrap().to_rgb8(), ms)
    };
    let ((cpu, cpu_ms), (gpu, gpu_ms)) = (restore(GpuMode::Off), restore(GpuMode::On));
    assert_eq!(cpu.dimensions(), gpu.dimensions());
    let f = |i: &image::RgbImage| i.as_raw().iter().map(|&v| v as f32).collect::<Vec<_>>();
    let db = psnr(&f(&gpu), &f(&cpu), 255.0);
    eprintln!(
        "restoration 56×44 ×2: {db:.1} dB GPU tiles vs CPU (CPU {cpu_ms} ms, GPU {gpu_ms} ms)"
    );
    assert!(db >= MIN_PSNR_DB, "{db:.2} dB");
}

/// The face stage with Unblur's face model on the GPU (the upscaler kept on the CPU, which is
/// faster on a software adapter) against the all-CPU restoration: a 96-px face on a grey 144²
/// canvas, found by YuNet, restored at the model's 256².
#[test]
fn restoration_with_the_face_model_on_the_gpu() {
    if device().is_none() {
        return;
    }
    let dir = dev("gfpgan/cropped_faces");
    let first = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .min()
        .expect("a dev face");
    let face =
        image::open(&first)
            .unwrap()
            .resize_exact(96, 96, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(144, 144, image::Rgb([128, 128, 128]));
    image::imageops::overlay(&mut canvas, &face.to_rgb8(), 24, 24);
    let mut png = std::io::Cursor::new(Vec::new());
    canvas.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let opts = Options {
        scale: 1.0,
        deblur: DeblurMode::Off,
        ..Options::default()
    };
    let restore = |mode: GpuMode| {
        let detector = unblur::face::detect::Detector::new(network("yunet"));
        let sr = network("realesr-general-x4v3");
        let mut restorer = Restorer::new(sr, Some(detector), Some(network("unblur-face")))
            .unwrap()
            .with_gpu(mode);
        restorer.sr_gpu = Accelerator::off();
        assert_eq!(restorer.face_gpu.active(), mode == GpuMode::On);
        let r = restorer
            .restore(png.get_ref(), &opts, &unblur::Silent)
            .unwrap();
        assert!(restorer.face_gpu.take_note().is_none());
        assert_eq!(r.faces.len(), 1);
        image::load_from_memory(&r.bytes).unwrap().to_rgb8()
    };
    let (cpu, gpu) = (restore(GpuMode::Off), restore(GpuMode::On));
    let f = |i: &image::RgbImage| i.as_raw().iter().map(|&v| v as f32).collect::<Vec<_>>();
    let db = psnr(&f(&gpu), &f(&cpu), 255.0);
    eprintln!("restoration with the face model on the GPU: {db:.1} dB vs CPU");
    assert!(db >= MIN_PSNR_DB, "{db:.2} dB");
}

/// Not part of `make test`: the SR network's time per tile size on this machine's adapter and
/// on tract, the plans built first (`cargo test --release --test gpu -- --ignored --nocapture`).
#[test]
#[ignore]
fn sr_tile_times() {
    let Some(dev) = device() else { return };
    let net = network("realesr-general-x4v3");
    let gpu = GpuNetwork::new(&net, dev).unwrap();
    for side in [64usize, 128, 256] {
        let shape = [1, 3, side, side];
        let input = vec![0.5f32; 3 * side * side];
        net.run(&shape, input.clone()).unwrap();
        gpu.run(&shape, input.clone()).unwrap();
        let t = Instant::now();
        net.run(&shape, input.clone()).unwrap();
        let cpu = t.elapsed().as_secs_f64();
        let t = Instant::now();
        gpu.run(&shape, input).unwrap();
        let g = t.elapsed().as_secs_f64();
        let gmac = (side * side) as f64 * 1.19e6 / 1e9;
        eprintln!(
            "{side}²: tract {:.0} ms, GPU {:.0} ms ({:.2} GMAC/s on {})",
            cpu * 1e3,
            g * 1e3,
            gmac / g,
            dev.describe()
        );
    }
}
