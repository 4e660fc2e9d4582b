//! The `unblur` command line: batches, JSON lines, bad files, never overwriting an input.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

#[test]
fn a_batch_reports_each_file_and_goes_on_after_bad_ones() {
    let tmp = tempdir("cli-batch");
    let dir = tmp.path();
    let good = dir.join("good.png");
    std::fs::write(
        &good,
        small_png("codeformer/whole_imgs/01.jpg", 100, 10, 40, 40),
    )
    .unwrap();
    let bad = dir.join("notes.jpg");
    std::fs::write(&bad, "not a photo").unwrap();
    let missing = dir.join("missing.png");
    let out = unblur_cli()
        .args([
            "restore", "--json", "--faces", "off", "--scale", "3", "--format", "webp", "--out",
        ])
        .arg(dir.join("out"))
        .args([&bad, &good, &missing])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed file must fail the batch"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["error"].as_str().unwrap().contains("not an image"));
    assert!(lines[2]["error"].is_string());
    let ok = &lines[1];
    assert_eq!(
        (
            ok["width"].as_u64(),
            ok["height"].as_u64(),
            ok["faces"].as_u64()
        ),
        (Some(120), Some(120), Some(0))
    );
    assert!(ok["ms"].as_u64().is_some());
    let written = PathBuf::from(ok["output"].as_str().unwrap());
    assert_eq!(written.file_name().unwrap(), "good-unblur-x3.webp");
    assert_eq!(
        image::open(&written).unwrap().to_rgb8().dimensions(),
        (120, 120)
    );
}

#[test]
fn scales_five_and_six_give_exact_sizes_and_a_too_large_one_names_the_scale_that_fits() {
    let tmp = tempdir("cli-scales");
    let dir = tmp.path();
    let photo = dir.join("small.png");
    std::fs::write(
        &photo,
        small_png("codeformer/whole_imgs/01.jpg", 100, 10, 41, 37),
    )
    .unwrap();
    for (scale, want) in [("5", (205, 185)), ("6", (246, 222))] {
        let (line, _) = restore_json(
            &["--faces", "off", "--scale", scale],
            &dir.join("out"),
            &photo,
        );
        let written = PathBuf::from(line["output"].as_str().unwrap());
        assert_eq!(
            written.file_name().unwrap().to_string_lossy(),
            format!("small-unblur-x{scale}.png")
        );
        assert_eq!(image::open(&written).unwrap().to_rgb8().dimensions(), want);
    }
    // 2500² at ×6 is 225 MP, past the 200 MP output limit: refused before any tile runs, with
    // the largest scale that fits.
    let big = dir.join("big.png");
    let blank = image::DynamicImage::ImageLuma8(image::GrayImage::new(2500, 2500));
    std::fs::write(&big, encode(&blank, image::ImageFormat::Png)).unwrap();
    let out = unblur_cli()
        .args([
            "restore", "--json", "--faces", "off", "--scale", "6", "--out",
        ])
        .arg(dir.join("out"))
        .arg(&big)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = line["error"].as_str().unwrap();
    assert!(
        err.contains("15000×15000") && err.contains("the largest scale that fits is ×5.65"),
        "{err}"
    );
}

#[test]
fn an_input_is_never_overwritten() {
    let tmp = tempdir("cli-overwrite");
    let dir = tmp.path();
    let png = small_png("codeformer/whole_imgs/01.jpg", 100, 10, 32, 32);
    // a.png's output name is a-unblur-x2.png, which is also an input here.
    std::fs::write(dir.join("a.png"), &png).unwrap();
    std::fs::write(dir.join("a-unblur-x2.png"), &png).unwrap();
    let out = unblur_cli()
        .args(["restore", "--json", "--faces", "off", "--out"])
        .arg(dir)
        .arg(dir.join("a.png"))
        .arg(dir.join("a-unblur-x2.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains("refusing to overwrite"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(dir.join("a-unblur-x2.png")).unwrap(),
        png,
        "an input was overwritten"
    );
    assert!(dir.join("a-unblur-x2-unblur-x2.png").exists());
}

#[test]
fn bad_settings_and_a_corrupt_model_folder_give_clear_errors() {
    let out = unblur_cli()
        .args(["restore", "--scale", "9", "--out", "/tmp/x", "y.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scale 9 is not between 1 and 6"));

    // A model folder whose SR file is corrupt: refused by its checksum, with the file named.
    let tmp = tempdir("cli-models");
    let dir = tmp.path();
    let src = model_dir();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    // The file the CLI loads for its upscaler at denoise 0.5 (a preset of that strength, if built).
    let m = manifest();
    let sr = m.default_for(unblur::models::SUPER_RESOLUTION).unwrap();
    let file = m
        .upscaler(&sr.id, 0.5)
        .unwrap()
        .model
        .artifact(None)
        .unwrap()
        .file
        .clone();
    let mut bytes = std::fs::read(dir.join(&file)).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(dir.join(&file), bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unblur"))
        .env("UNBLUR_MODELS", dir)
        .args(["restore", "--denoise", "0.5", "--out", "/tmp/x", "y.png"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains(&file) && err.contains("checksum"), "{err}");
    std::fs::remove_file(dir.join(&file)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unblur"))
        .env("UNBLUR_MODELS", dir)
        .args(["restore", "--denoise", "0.5", "--out", "/tmp/x", "y.png"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
}

/// The f32 GEMM kernel family is measured at start-up (src/engine/gemm_native.rs); either family gives
/// the same photo, to within one level of rounding.
#[test]
fn either_gemm_kernel_family_gives_the_same_photo() {
    let tmp = tempdir("cli-gemm");
    let dir = tmp.path();
    std::fs::write(
        dir.join("in.png"),
        small_png("codeformer/whole_imgs/01.jpg", 120, 40, 48, 40),
    )
    .unwrap();
    let mut photos = Vec::new();
    for family in ["tract", "fma"] {
        let out = dir.join(family);
        let run = unblur_cli()
            .env("UNBLUR_GEMM", family)
            .args(["restore", "--faces", "off", "--scale", "2", "--out"])
            .arg(&out)
            .arg(dir.join("in.png"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        photos.push(image::open(out.join("in-unblur-x2.png")).unwrap().to_rgb8());
    }
    assert_eq!(photos[0].dimensions(), (96, 80));
    let worst = photos[0]
        .as_raw()
        .iter()
        .zip(photos[1].as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "the two kernel families differ by {worst} levels"
    );
}
