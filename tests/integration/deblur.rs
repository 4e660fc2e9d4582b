//! The deblur stage on Unblur's own deblurring network and a real photo held out of its training
//! (tests/data/deblur): a streaked photo deblurred, a sharp one left alone by `auto`, seamless
//! tiles, the same bytes on any number of threads, the steps' order, and the CLI's `--deblur`.

use crate::common;

use common::*;
use image::{DynamicImage, ImageFormat, RgbImage};
use unblur::{DeblurMode, Options, RestoreJob, Silent, Verdict};

/// The sharp photo: a 512×384 crop of Kodak's kodim08 (tests/data/deblur/README.md).
fn sharp() -> RgbImage {
    load(&root().join("tests/data/deblur/kodim08.jpg")).to_rgb8()
}

/// `img` streaked: a horizontal box blur `len` pixels long (camera shake along x), edges
/// clamped, rounded to 8 bits.
fn streak(img: &RgbImage, len: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let mut sum = [0u32; 3];
        for k in 0..len {
            let xx = (x + k).saturating_sub(len / 2).min(w - 1);
            for (s, v) in sum.iter_mut().zip(img.get_pixel(xx, y).0) {
                *s += v as u32;
            }
        }
        image::Rgb(sum.map(|s| ((s + len / 2) / len) as u8))
    })
}

fn png(img: &RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png)
}

fn rgb(img: RgbImage) -> DynamicImage {
    DynamicImage::ImageRgb8(img)
}

fn options(deblur: DeblurMode) -> Options {
    Options {
        scale: 1.0,
        faces: false,
        deblur,
        ..Options::default()
    }
}

/// The photo a job holds after its deblur stage, driven the page's way (tile by tile, each
/// tile's input to the network and its output back, the first tiles last to first), with its
/// verdict and tile count. `tile` is the options' (0: one piece).
fn deblurred(bytes: &[u8], mode: DeblurMode, tile: usize) -> (RgbImage, Option<Verdict>, usize) {
    let opts = Options {
        tile,
        ..options(mode)
    };
    let mut job = RestoreJob::new(bytes, &opts, 4, None).unwrap();
    job.plan_deblur().unwrap();
    let n = job.deblur_tile_count();
    let shape = job.deblur_tile_shape().unwrap();
    assert!(
        shape[2].is_multiple_of(8) && shape[3].is_multiple_of(8),
        "{shape:?}"
    );
    let net = deblur_net();
    let run = |job: &mut RestoreJob, tiles: Vec<usize>| {
        for i in tiles {
            let input = job.deblur_tile_input(i).unwrap();
            let (out_shape, out) = net.run(&shape, input).unwrap().remove(0);
            assert_eq!(
                out_shape,
                shape.to_vec(),
                "the output has the input's shape"
            );
            job.accept_deblur_tile(i, &out).unwrap();
        }
    };
    let first: Vec<usize> = job.deblur_first().into_iter().rev().collect();
    run(&mut job, first);
    let rest = job.decide_deblur().unwrap();
    run(&mut job, rest);
    let verdict = job.end_deblur().unwrap().copied();
    assert_eq!(verdict.as_ref(), job.deblur_verdict());
    let photo = DynamicImage::ImageRgb16(job.photo().rgb.clone()).to_rgb8();
    (photo, verdict, n)
}

#[test]
fn deblurring_a_streaked_photo_changes_it_and_brings_it_closer_to_the_sharp_one() {
    let sharp = sharp();
    let blurred = streak(&sharp, 15);
    let bytes = png(&blurred);
    let (on, verdict, tiles) = deblurred(&bytes, DeblurMode::On, unblur::upscale::TILE);
    let v = verdict.expect("on has a verdict");
    assert!(v.applied && tiles > 1, "{v:?}, {tiles} tiles");
    let before = psnr(&rgb(blurred.clone()), &rgb(sharp.clone()));
    let after = psnr(&rgb(on.clone()), &rgb(sharp.clone()));
    let moved = psnr(&rgb(on), &rgb(blurred));
    eprintln!(
        "streak 15 px: {before:.2} dB → {after:.2} dB ({after_minus:+.2}); residual {:.2}, \
         anisotropy {:.2}, kind {:?}",
        v.residual,
        v.anisotropy,
        v.kind,
        after_minus = after - before
    );
    assert!(
        moved < 45.0,
        "the network hardly changed the photo: {moved:.1} dB"
    );
    // The committed model (v3) gains +0.53 dB on this held-out, finely detailed photo's 15-px
    // streak (+1.0 dB on average over the held-out photos' 10–20 px streaks; a 40-minute model
    // gained +0.17 here): the bar is that it brings the photo closer, not how far. Raise it with
    // the model.
    assert!(
        after > before + 0.3,
        "deblurred {after:.2} dB, blurred {before:.2} dB"
    );

    // The whole restoration (×1, no faces): on and off differ.
    let (on, off) = (
        deblur_restorer()
            .restore(&bytes, &options(DeblurMode::On), &Silent)
            .unwrap(),
        deblur_restorer()
            .restore(&bytes, &options(DeblurMode::Off), &Silent)
            .unwrap(),
    );
    assert!(on.deblur.is_some_and(|v| v.applied) && off.deblur.is_none());
    let db = psnr(
        &image::load_from_memory(&on.bytes).unwrap(),
        &image::load_from_memory(&off.bytes).unwrap(),
    );
    assert!(db < 45.0, "on and off hardly differ: {db:.1} dB");
}

#[test]
fn auto_leaves_a_sharp_photo_alone_and_deblurs_a_streaked_one() {
    let sharp = sharp();
    let restore = |img: &RgbImage, mode| {
        deblur_restorer()
            .restore(&png(img), &options(mode), &Silent)
            .unwrap()
    };
    let (auto, off) = (
        restore(&sharp, DeblurMode::Auto),
        restore(&sharp, DeblurMode::Off),
    );
    let v = auto.deblur.expect("auto measured the photo");
    eprintln!("sharp photo: {v:?}");
    if v.applied {
        // A false alarm may be forgiven if it changes nearly nothing.
        let db = psnr(
            &image::load_from_memory(&auto.bytes).unwrap(),
            &image::load_from_memory(&off.bytes).unwrap(),
        );
        assert!(
            db >= 38.0,
            "auto deblurred a sharp photo: {db:.1} dB from off, {v:?}"
        );
    } else {
        assert_eq!(
            auto.bytes, off.bytes,
            "auto on a sharp photo is off, byte for byte"
        );
    }
    let blurred = restore(&streak(&sharp, 15), DeblurMode::Auto);
    let v = blurred.deblur.expect("auto measured the photo");
    eprintln!("streaked photo: {v:?}");
    assert!(v.applied, "auto left a streaked photo blurred: {v:?}");
}

#[test]
fn tiles_blend_seamlessly() {
    let bytes = png(&streak(&sharp(), 15));
    let (tiled, _, n) = deblurred(&bytes, DeblurMode::On, unblur::upscale::TILE);
    let (whole, _, one) = deblurred(&bytes, DeblurMode::On, 0);
    assert!(n >= 4 && one == 1, "{n} tiles, {one} in one piece");
    let blurred = image::load_from_memory(&bytes).unwrap();
    let moved = psnr(&rgb(whole.clone()), &blurred);
    let db = psnr(&rgb(tiled), &rgb(whole));
    eprintln!("{n} tiles of 256 vs one piece: {db:.2} dB (one piece vs its input: {moved:.2} dB)");
    assert!(
        moved < 45.0,
        "the network hardly changed the photo ({moved:.1} dB): the comparison would say nothing"
    );
    assert!(db >= 40.0, "tiled vs one piece: {db:.2} dB");
}

#[test]
fn the_result_does_not_depend_on_the_thread_count() {
    // 300×300: 2×2 deblur tiles, few SR tiles.
    let crop = image::imageops::crop_imm(&sharp(), 100, 40, 300, 300).to_image();
    let bytes = png(&streak(&crop, 15));
    let with = |threads| {
        deblur_restorer()
            .restore(
                &bytes,
                &Options {
                    threads,
                    ..options(DeblurMode::On)
                },
                &Silent,
            )
            .unwrap()
    };
    let (one, two) = (with(1), with(2));
    assert!(one.deblur.is_some_and(|v| v.applied));
    assert_eq!(one.deblur, two.deblur);
    assert!(one.bytes == two.bytes, "1 and 2 threads give other bytes");
    // Auto's decision too: the statistics are summed in tile order, whatever the order of
    // arrival (here on the deblur stage alone).
    let auto = |threads| {
        let mut job = RestoreJob::new(&bytes, &options(DeblurMode::Auto), 4, None).unwrap();
        job.plan_deblur().unwrap();
        assert_eq!(job.deblur_tile_count(), 4);
        let first = job.deblur_first();
        job.deblur_with(deblur_net(), &first, threads, &Silent, &mut || {})
            .unwrap();
        let rest = job.decide_deblur().unwrap();
        job.deblur_with(deblur_net(), &rest, threads, &Silent, &mut || {})
            .unwrap();
        let v = job.end_deblur().unwrap().copied();
        (v, job.photo().rgb.clone())
    };
    let (a, b) = (auto(1), auto(2));
    assert!(a.0.is_some());
    assert!(
        a == b,
        "auto: 1 and 2 threads differ: {:?} vs {:?}",
        a.0,
        b.0
    );
}

#[test]
fn on_without_a_deblur_network_is_an_error_and_auto_goes_without() {
    let bytes = small_png("codeformer/whole_imgs/01.jpg", 100, 10, 40, 40);
    // The shared restorer has no deblur network.
    let e = restorer()
        .restore(&bytes, &options(DeblurMode::On), &Silent)
        .err()
        .expect("on needs the network")
        .to_string();
    assert!(e.contains("deblur"), "{e}");
    let auto = restorer()
        .restore(&bytes, &options(DeblurMode::Auto), &Silent)
        .unwrap();
    let off = restorer()
        .restore(&bytes, &options(DeblurMode::Off), &Silent)
        .unwrap();
    assert!(auto.deblur.is_none());
    assert_eq!(auto.bytes, off.bytes);
}

#[test]
fn the_deblur_stage_comes_after_repair_and_before_faces_and_tiles() {
    let bytes = small_png("codeformer/whole_imgs/01.jpg", 100, 10, 40, 40);
    let mask = unblur::Mask::new(40, 40, &[1; 1600]).unwrap();
    // Planned after the tiles have read the photo: an error.
    let mut job = RestoreJob::new(&bytes, &options(DeblurMode::On), 4, None).unwrap();
    job.tile_input(0).unwrap();
    let e = job.plan_deblur().unwrap_err().to_string();
    assert!(e.contains("before"), "{e}");
    // While it runs, the tiles wait for it; after it is planned, the repair is too late.
    let mut job = RestoreJob::new(&bytes, &options(DeblurMode::On), 4, None).unwrap();
    job.plan_deblur().unwrap();
    assert_eq!(job.deblur_tile_count(), 1);
    // 40² and the context around it, a multiple of 8.
    let side = (40 + 2 * unblur::deblur::CONTEXT).next_multiple_of(8);
    assert_eq!(job.deblur_tile_shape().unwrap(), [1, 3, side, side]);
    assert!(job.tile_input(0).is_err());
    assert!(job.repair(&mask).is_err());
    assert!(job.plan_deblur().is_err(), "planned twice");
    assert!(job.end_deblur().is_err(), "ended before its decision");
    // Skipped (the network could not run): the photo is as it was, and the tiles go on.
    let before = job.photo().rgb.clone();
    job.skip_deblur();
    assert_eq!(job.end_deblur().unwrap(), None);
    assert_eq!(job.photo().rgb, before);
    job.tile_input(0).unwrap();
    // Off plans nothing.
    let mut job = RestoreJob::new(&bytes, &options(DeblurMode::Off), 4, None).unwrap();
    job.plan_deblur().unwrap();
    assert_eq!((job.deblur_tile_count(), job.deblur_first()), (0, vec![]));
    assert!(job.deblur_tile_shape().is_err());
    assert_eq!(job.end_deblur().unwrap(), None);
}

#[test]
fn the_options_json_takes_deblur_and_names_the_allowed_values() {
    let o: Options = serde_json::from_str(r#"{"deblur": "on"}"#).unwrap();
    assert_eq!(o.deblur, DeblurMode::On);
    let o: Options = serde_json::from_str("{}").unwrap();
    assert_eq!(o.deblur, DeblurMode::Auto, "the default");
    let e = serde_json::from_str::<Options>(r#"{"deblur": "sideways"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sideways") && e.contains("auto, on, off"), "{e}");
}

#[test]
fn the_cli_takes_deblur_auto_on_off() {
    let tmp = tempdir("deblur-cli");
    let dir = tmp.path();
    let photo = dir.join("streaked.png");
    std::fs::write(&photo, png(&streak(&sharp(), 15))).unwrap();
    let bad = unblur_cli()
        .args(["restore", "--deblur", "sideways", "--out"])
        .arg(dir.join("bad"))
        .arg(&photo)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(e.contains("sideways") && e.contains("auto, on, off"), "{e}");
    let run = |mode: &str| {
        let args = ["--scale", "1", "--faces", "off", "--deblur", mode];
        let (line, stderr) = restore_json(&args, &dir.join(mode), &photo);
        let bytes = std::fs::read(line["output"].as_str().unwrap()).unwrap();
        (bytes, line, stderr)
    };
    let (on, on_line, on_err) = run("on");
    let (off, off_line, off_err) = run("off");
    let db = psnr(
        &image::load_from_memory(&on).unwrap(),
        &image::load_from_memory(&off).unwrap(),
    );
    assert!(db < 45.0, "--deblur on and off hardly differ: {db:.1} dB");
    assert_eq!(on_line["deblur"]["applied"], true, "{on_line}");
    assert!(off_line["deblur"].is_null(), "{off_line}");
    let kind = on_line["deblur"]["kind"].as_str().unwrap();
    let label = match kind {
        "motion" => "motion blur",
        "defocus" => "out of focus",
        _ => "blur",
    };
    assert!(on_err.contains(&format!("Sharpened: {label}")), "{on_err}");
    assert!(!off_err.contains("Sharpened"), "{off_err}");
}
