//! Old-photo repair: a mask's pixels filled before faces and tiles, every other pixel untouched,
//! scratches drawn on real photos filled well, masks of the wrong size refused, the damage
//! detector finding drawn scratches and `auto` repairing with it, and the CLI's `--repair`.

use crate::common;

use std::path::PathBuf;

use common::*;
use image::{DynamicImage, ImageFormat, RgbImage};
use unblur::repair::{self, detect::Damage, Mask, DILATE};
use unblur::{image_io, Options, Repair, RestoreJob, Silent};

/// A scratch: a wobbling, slanted curve `width` pixels wide through the box (x, y, w, h).
fn scratch(size: (u32, u32), at: (u32, u32, u32, u32), width: f64) -> Mask {
    let (x0, y0, w, h) = at;
    let mut v = vec![0u8; size.0 as usize * size.1 as usize];
    for y in y0..y0 + h {
        let t = (y - y0) as f64 / h as f64;
        let cx = x0 as f64 + w as f64 * (0.2 + 0.6 * t) + 6.0 * (t * 9.0).sin();
        for x in x0..x0 + w {
            if (x as f64 - cx).abs() <= width / 2.0 {
                v[(y * size.0 + x) as usize] = 255;
            }
        }
    }
    Mask::new(size.0, size.1, &v).unwrap()
}

/// The pixels either mask marks.
fn union(a: &Mask, b: &Mask) -> Mask {
    let v: Vec<u8> = a
        .damaged()
        .iter()
        .zip(b.damaged())
        .map(|(&x, &y)| (x || y) as u8)
        .collect();
    Mask::new(a.width(), a.height(), &v).unwrap()
}

/// The photo with the mask's pixels painted a scratch's near-white.
fn damage(clean: &RgbImage, mask: &Mask) -> RgbImage {
    let mut out = clean.clone();
    for (p, &d) in out.pixels_mut().zip(mask.damaged()) {
        if d {
            *p = image::Rgb([236, 232, 225]);
        }
    }
    out
}

fn png(img: &RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png)
}

/// The photo a job holds after its repair step, as RGB8 (the dev photos are 8-bit).
fn repaired(bytes: &[u8], mask: &Mask) -> RgbImage {
    let job = RestoreJob::with_repair(bytes, Some(mask), &Options::default(), 4, None).unwrap();
    DynamicImage::ImageRgb16(job.photo().rgb.clone()).to_rgb8()
}

/// PSNR (dB) over the pixels where `mask` is set.
fn psnr_in(a: &RgbImage, b: &RgbImage, mask: &[bool]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for ((p, q), &m) in a.pixels().zip(b.pixels()).zip(mask) {
        if m {
            for c in 0..3 {
                sum += (p.0[c] as f64 - q.0[c] as f64).powi(2);
            }
            n += 3;
        }
    }
    10.0 * (255.0f64.powi(2) / (sum / n as f64).max(1e-9)).log10()
}

/// The `side`² block of the photo with the least detail (a sky, a wall): where a fill should be
/// nearly perfect.
fn smoothest_block(img: &RgbImage, side: u32) -> (u32, u32) {
    let luma = DynamicImage::ImageRgb8(img.clone()).to_luma8();
    let mut best = (f64::MAX, (0, 0));
    for by in (0..img.height() - side).step_by(side as usize / 2) {
        for bx in (0..img.width() - side).step_by(side as usize / 2) {
            let mut g = 0.0;
            for y in by..by + side - 1 {
                for x in bx..bx + side - 1 {
                    let v = luma.get_pixel(x, y).0[0] as f64;
                    g += (v - luma.get_pixel(x + 1, y).0[0] as f64).abs()
                        + (v - luma.get_pixel(x, y + 1).0[0] as f64).abs();
                }
            }
            if g < best.0 {
                best = (g, (bx, by));
            }
        }
    }
    best.1
}

/// Scratches, specks and two wide stains (so both fills run): only the widened mask is written.
#[test]
fn pixels_outside_the_dilated_mask_are_bit_exact() {
    let bytes = std::fs::read(dev("old-photos/old_b.png")).unwrap();
    let before = image_io::decode(&bytes).unwrap();
    let (w, h) = (before.width(), before.height());
    let mut mask = scratch((w, h), (0, 0, w, h), 3.0);
    // Specks, one on the border.
    let mut v: Vec<u8> = mask.damaged().iter().map(|&d| d as u8).collect();
    for (x, y) in [(0u32, 5u32), (300, 700), (w - 1, h - 1)] {
        v[(y * w + x) as usize] = 1;
    }
    // A stain wide enough for the patch fill (a 31×21 block), and one in the corner.
    for (x0, y0, bw, bh) in [(w / 3, h / 2, 31, 21), (w - 20, 0, 20, 16)] {
        for y in y0..y0 + bh {
            for x in x0..x0 + bw {
                v[(y * w + x) as usize] = 1;
            }
        }
    }
    mask = Mask::new(w, h, &v).unwrap();
    let job = RestoreJob::with_repair(&bytes, Some(&mask), &Options::default(), 4, None).unwrap();
    let after = &job.photo().rgb;
    let wide = mask.dilated(DILATE);
    let (mut changed, mut outside) = (0, 0);
    for (i, (a, b)) in before.rgb.pixels().zip(after.pixels()).enumerate() {
        if wide.damaged()[i] {
            changed += (a != b) as usize;
        } else {
            outside += 1;
            assert_eq!(a, b, "pixel {i} outside the dilated mask was written");
        }
    }
    assert!(
        outside > 0 && changed > wide.count() / 2,
        "{changed} of {}",
        wide.count()
    );
}

#[test]
fn a_scratch_on_a_smooth_region_of_a_real_photo_is_filled_well() {
    let clean = load(&dev("old-photos/old_b.png")).to_rgb8();
    let (w, h) = clean.dimensions();
    let (bx, by) = smoothest_block(&clean, 96);
    let mask = scratch((w, h), (bx, by, 96, 96), 3.0);
    let damaged = damage(&clean, &mask);
    let fixed = repaired(&png(&damaged), &mask);
    let before = psnr_in(&damaged, &clean, mask.damaged());
    let after = psnr_in(&fixed, &clean, mask.damaged());
    eprintln!("smooth block at ({bx},{by}): PSNR in the mask {before:.1} → {after:.1} dB");
    assert!(
        after > 30.0 && after > before + 15.0,
        "{before:.1} → {after:.1} dB"
    );
}

#[test]
fn scratches_across_a_whole_real_photo_are_filled() {
    let clean = load(&dev("codeformer/whole_imgs/00.jpg")).to_rgb8();
    let (w, h) = clean.dimensions();
    let mask = union(
        &scratch((w, h), (0, 0, w, h), 2.0),
        &scratch((w, h), (w / 3, h / 4, w / 2, h / 2), 4.0),
    );
    let damaged = damage(&clean, &mask);
    let fixed = repaired(&png(&damaged), &mask);
    let before = psnr_in(&damaged, &clean, mask.damaged());
    let after = psnr_in(&fixed, &clean, mask.damaged());
    eprintln!("whole photo: PSNR in the mask {before:.1} → {after:.1} dB");
    assert!(
        after > 18.0 && after > before + 12.0,
        "{before:.1} → {after:.1} dB"
    );
    assert!(
        psnr(
            &DynamicImage::ImageRgb8(fixed),
            &DynamicImage::ImageRgb8(clean)
        ) > 35.0
    );
}

#[test]
fn a_mask_of_the_wrong_size_is_a_clear_error_in_the_upright_frame() {
    // 60×40 as stored, 40×60 upright (EXIF orientation 6).
    let (_, jpeg) = sideways_jpeg();
    let job = |w: u32, h: u32| {
        // One damaged pixel: a mask that covered every pixel would be refused for that.
        let mut values = vec![0; (w * h) as usize];
        values[0] = 1;
        let mask = Mask::new(w, h, &values).unwrap();
        RestoreJob::with_repair(&jpeg, Some(&mask), &Options::default(), 4, None)
    };
    assert!(job(40, 60).is_ok(), "the upright frame fits");
    let e = job(60, 40).err().unwrap().to_string();
    assert!(
        e.contains("60×40") && e.contains("40×60") && e.contains("upright"),
        "{e}"
    );
    let e = job(41, 60).err().unwrap().to_string();
    assert!(e.contains("41×60") && e.contains("40×60"), "{e}");
}

#[test]
fn repair_comes_before_the_tiles() {
    let bytes = small_png("codeformer/whole_imgs/01.jpg", 100, 10, 40, 40);
    let mask = Mask::new(40, 40, &[1; 1600]).unwrap();
    let mut job = RestoreJob::new(&bytes, &Options::default(), 4, None).unwrap();
    job.tile_input(0).unwrap();
    let e = job.repair(&mask).err().unwrap().to_string();
    assert!(e.contains("before"), "{e}");
    // A direct call on the pixels checks the size the same way.
    let mut rgb = image_io::decode(&bytes).unwrap().rgb;
    assert!(repair::repair(&mut rgb, &Mask::new(4, 4, &[0; 16]).unwrap()).is_err());
}

#[test]
fn the_cli_repairs_with_a_mask_and_changes_the_photo_only_near_it() {
    let tmp = tempdir("repair-cli");
    let dir = tmp.path();
    let clean = load(&dev("old-photos/old_b.png"))
        .crop_imm(200, 300, 192, 160)
        .to_rgb8();
    let (w, h) = clean.dimensions();
    let mask = scratch((w, h), (40, 0, 80, h), 3.0);
    let damaged = damage(&clean, &mask);
    std::fs::write(dir.join("damaged.png"), png(&damaged)).unwrap();
    let mask_png = dir.join("mask.png");
    let gray: Vec<u8> = mask.damaged().iter().map(|&d| d as u8 * 255).collect();
    image::GrayImage::from_raw(w, h, gray)
        .unwrap()
        .save(&mask_png)
        .unwrap();
    let other = dir.join("other.png");
    std::fs::write(&other, png(&RgbImage::new(w + 1, h))).unwrap();
    // Deblurring off: this compares the repair alone (a deblurred photo would spread the
    // repair's change over the deblur network's field too, and its decision could differ).
    let run = |repair: &PathBuf, out: &str, inputs: &[PathBuf]| {
        unblur_cli()
            .args([
                "restore", "--json", "--scale", "1", "--faces", "off", "--deblur", "off",
                "--repair",
            ])
            .arg(repair)
            .arg("--out")
            .arg(dir.join(out))
            .args(inputs)
            .output()
            .unwrap()
    };
    let off = run(&"off".into(), "off", &[dir.join("damaged.png")]);
    assert!(
        off.status.success(),
        "{}",
        String::from_utf8_lossy(&off.stderr)
    );
    // With the mask: the photo that fits is repaired, the one that does not fails on its own.
    let on = run(&mask_png, "on", &[dir.join("damaged.png"), other.clone()]);
    assert_eq!(on.status.code(), Some(1), "the misfit fails the batch");
    let lines: Vec<serde_json::Value> = String::from_utf8(on.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0]["error"].is_null(), "{}", lines[0]);
    let e = lines[1]["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("{w}×{h}")) && e.contains(&format!("{}×{h}", w + 1)),
        "{e}"
    );

    let a = image::open(dir.join("off/damaged-unblur-x1.png"))
        .unwrap()
        .to_rgb8();
    let b = image::open(dir.join("on/damaged-unblur-x1.png"))
        .unwrap()
        .to_rgb8();
    // The SR network sees a repaired pixel within its receptive field (~35 px for the default
    // compact network); beyond it, nothing moves.
    let near = mask.dilated(DILATE + 40);
    let (mut far_diff, mut near_diff) = (0u8, 0usize);
    for (i, (p, q)) in a.pixels().zip(b.pixels()).enumerate() {
        let d = (0..3).map(|c| p.0[c].abs_diff(q.0[c])).max().unwrap();
        if near.damaged()[i] {
            near_diff += (d > 8) as usize;
        } else {
            far_diff = far_diff.max(d);
        }
    }
    assert!(
        far_diff <= 1,
        "a pixel far from the mask moved by {far_diff}"
    );
    assert!(
        near_diff > mask.count() / 2,
        "{near_diff} of {}",
        mask.count()
    );
    // And the scratch is gone: the repaired result is far closer to the clean photo there.
    let clean_up = |img: &RgbImage| psnr_in(img, &clean, mask.damaged());
    assert!(
        clean_up(&b) > clean_up(&a) + 10.0,
        "{} vs {}",
        clean_up(&b),
        clean_up(&a)
    );
}

/// Two light scratches across an uncracked old print (`old_b.png`), as the drawn mask and the
/// damaged photo.
fn scratched_print() -> (RgbImage, Mask, RgbImage) {
    let clean = load(&dev("old-photos/old_b.png")).to_rgb8();
    let (w, h) = clean.dimensions();
    let truth = union(
        &scratch((w, h), (0, 0, w, h), 3.0),
        &scratch((w, h), (w / 3, h / 4, w / 2, h / 2), 2.0),
    );
    let damaged = damage(&clean, &truth);
    (clean, truth, damaged)
}

/// The damage detector on a photo, through the job's steps as the page drives them.
fn found(bytes: &[u8]) -> Damage {
    let job = RestoreJob::new(bytes, &Options::default(), 4, None).unwrap();
    let net = repair_restorer().damage_detector.as_ref().unwrap();
    job.find_damage(net).unwrap()
}

#[test]
fn the_detector_finds_scratches_drawn_on_a_real_print_and_little_else() {
    let (clean, truth, damaged) = scratched_print();
    let d = found(&png(&damaged));
    let hit = |a: &Mask, b: &Mask| {
        a.damaged()
            .iter()
            .zip(b.damaged())
            .filter(|(&x, &y)| x && y)
            .count() as f64
    };
    let recall = hit(&truth, &d.mask) / truth.count() as f64;
    // Within 2 px of a drawn scratch counts as found (the mask is widened before the fill anyway).
    let precision = hit(&truth.dilated(2), &d.mask) / d.mask.count().max(1) as f64;
    let before = found(&png(&clean));
    eprintln!(
        "scratched: recall {recall:.2}, precision {precision:.2}, coverage {:.3} %; clean: {:.3} %",
        100.0 * d.coverage,
        100.0 * before.coverage
    );
    assert!(
        recall > 0.6 && precision > 0.6,
        "{recall:.2} / {precision:.2}"
    );
    assert!(d.worth_repairing());
    assert!(before.coverage < d.coverage / 3.0);
}

#[test]
fn auto_repairs_a_scratched_photo_and_leaves_a_clean_one_as_off() {
    let (clean, _, damaged) = scratched_print();
    let opts = Options {
        scale: 1.0,
        faces: false,
        deblur: unblur::DeblurMode::Off,
        ..Options::default()
    };
    let r = repair_restorer();
    let run = |bytes: &[u8], repair| r.restore_with(bytes, repair, &opts, &Silent).unwrap();
    let as_rgb = |out: &unblur::Restored| image::load_from_memory(&out.bytes).unwrap();
    let clean_img = DynamicImage::ImageRgb8(clean.clone());
    let auto = run(&png(&damaged), Repair::Auto);
    let off = run(&png(&damaged), Repair::Off);
    let report = auto.damage.unwrap();
    let (a, o) = (
        psnr(&as_rgb(&auto), &clean_img),
        psnr(&as_rgb(&off), &clean_img),
    );
    eprintln!(
        "auto: {:.3} % found, {a:.2} dB; off: {o:.2} dB",
        100.0 * report.coverage
    );
    assert!(report.repaired && a > o + 3.0, "{a:.2} vs {o:.2} dB");
    assert!(off.damage.is_none());
    // A clean photo: the detector's few false alarms are not worth a repair, so auto is off.
    let bytes = small_png("codeformer/whole_imgs/00.jpg", 0, 0, 320, 240);
    let auto = run(&bytes, Repair::Auto);
    assert!(!auto.damage.unwrap().repaired, "{:?}", auto.damage);
    assert!(auto.bytes == run(&bytes, Repair::Off).bytes);
}

#[test]
fn auto_without_a_damage_detector_is_an_error_naming_the_fix() {
    let bytes = small_png("codeformer/whole_imgs/01.jpg", 100, 10, 40, 40);
    let e = restorer()
        .restore_with(&bytes, Repair::Auto, &Options::default(), &Silent)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("damage detector") && e.contains("make models"),
        "{e}"
    );
}

#[test]
fn the_cli_repairs_auto_and_says_how_much_it_found() {
    let tmp = tempdir("repair-cli-auto");
    let dir = tmp.path();
    let (clean, _, damaged) = scratched_print();
    let crop = DynamicImage::ImageRgb8(damaged).crop_imm(100, 200, 320, 240);
    let photo = dir.join("scratched.png");
    crop.save(&photo).unwrap();
    // The same crop clean: left alone, and said so without calling the few pixels it found
    // (its false alarms) the damage that was too little to repair.
    let clean_photo = dir.join("clean.png");
    DynamicImage::ImageRgb8(clean)
        .crop_imm(100, 200, 320, 240)
        .save(&clean_photo)
        .unwrap();
    let (json, stderr) = restore_json(
        &[
            "--scale", "1", "--faces", "off", "--deblur", "off", "--repair", "auto",
        ],
        &dir.join("out-clean"),
        &clean_photo,
    );
    assert!(!json["repair"]["repaired"].as_bool().unwrap(), "{json}");
    assert!(
        stderr.contains("Not repaired: too little of what was found ("),
        "{stderr}"
    );
    let (json, stderr) = restore_json(
        &[
            "--scale", "1", "--faces", "off", "--deblur", "off", "--repair", "auto",
        ],
        &dir.join("out"),
        &photo,
    );
    let coverage = json["repair"]["coverage"].as_f64().unwrap();
    assert!(
        json["repair"]["repaired"].as_bool().unwrap() && coverage > 0.001,
        "{json}"
    );
    assert!(stderr.contains("Repaired: damage on"), "{stderr}");
    let e = unblur_cli()
        .args(["restore", "--repair", "nope.png", "--out"])
        .arg(dir.join("nope"))
        .arg(&photo)
        .output()
        .unwrap();
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("nope.png"));
}

/// The detector runs in bands (`detect::Plan::bands`) to hold a band's memory, not the copy's, and
/// the page runs a band on each of its workers (`detect::Search`); the context covers the receptive
/// field, so either finds what the copy in one piece gives. On the cracked dev print brought to
/// 1 MP (913×1148: 2 bands by size; 5 for five workers), the bands' outputs taken back to front.
#[test]
fn the_detector_in_bands_finds_what_one_piece_finds() {
    let print = load(&dev("old-photos/scratched_a.png")).to_rgb16();
    let (w, h) = print.dimensions();
    let s = ((1u64 << 20) as f64 / (w as f64 * h as f64)).sqrt();
    let photo = image::imageops::resize(
        &print,
        (w as f64 * s) as u32,
        (h as f64 * s) as u32,
        image::imageops::FilterType::Lanczos3,
    );
    let plan = repair::detect::Plan::new(photo.width(), photo.height());
    assert!(plan.bands().len() >= 2, "{:?}", plan.bands());
    let net = repair_restorer().damage_detector.as_ref().unwrap();
    let (whole_shape, whole) = net
        .run(&plan.shape(), plan.input(&photo))
        .unwrap()
        .swap_remove(0);
    let one_piece = plan.damage(&whole_shape, &whole).unwrap();
    let damaged = whole
        .iter()
        .filter(|&&l| l > repair::detect::THRESHOLD)
        .count();
    assert!(damaged > 1000, "the print's cracks: {damaged}");

    let banded = repair::detect::detect(net, &photo).unwrap();
    let mut search = repair::detect::Search::new(&photo, 5);
    assert_eq!(search.band_count(), 5);
    for i in (0..5).rev() {
        let (shape, out) = net
            .run(&search.band_shape(), search.band_input(i).unwrap())
            .unwrap()
            .swap_remove(0);
        search.accept(i, &shape, &out).unwrap();
    }
    let five = search.finish().unwrap();
    eprintln!(
        "{} bands by size; {damaged} logits above the threshold; masks of {} / {} / {} pixels",
        plan.bands().len(),
        one_piece.mask.count(),
        banded.mask.count(),
        five.mask.count()
    );
    assert_eq!(banded, one_piece);
    assert_eq!(five, one_piece);
}
