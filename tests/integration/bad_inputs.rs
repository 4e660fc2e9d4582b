//! A corpus of bad inputs: each gives a clear error, none panics.

use crate::common;

use common::*;
use unblur::{image_io, Error, Options, Silent};

/// A PNG whose header claims 100000×100000 pixels (a decompression bomb's first step).
fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    // A tiny deflate stream that would inflate to the claimed size: the rest of a bomb.
    for (kind, data) in [
        (
            &b"IDAT"[..],
            &[0x78u8, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..],
        ),
        (b"IEND", &[]),
    ] {
        let chunk: Vec<u8> = kind.iter().chain(data).copied().collect();
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let jpeg = std::fs::read(dev("codeformer/whole_imgs/01.jpg")).unwrap();
    let png = std::fs::read(dev("gfpgan/cropped_faces/Adele_crop.png")).unwrap();
    let mut random = vec![0u8; 4096];
    let mut x = 0x2545_f491u32;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    vec![
        ("empty", vec![]),
        ("truncated jpeg", jpeg[..jpeg.len() / 3].to_vec()),
        ("truncated png", png[..png.len() / 2].to_vec()),
        ("random bytes", random),
        (
            "text named .jpg",
            b"this is not a photo, just some text\n".to_vec(),
        ),
        ("png claiming 100000x100000", png_bomb()),
    ]
}

#[test]
fn every_bad_input_gives_an_error_not_a_panic() {
    for (name, bytes) in corpus() {
        let decoded = std::panic::catch_unwind(|| image_io::decode(&bytes));
        let err = match decoded {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => panic!("{name}: decoded without error"),
            Err(_) => panic!("{name}: panicked"),
        };
        assert!(!err.to_string().is_empty());
        let full =
            std::panic::catch_unwind(|| restorer().restore(&bytes, &Options::default(), &Silent));
        assert!(
            matches!(full, Ok(Err(_))),
            "{name}: restore did not fail cleanly"
        );
        match name {
            "empty" => assert!(matches!(err, Error::Empty)),
            "png claiming 100000x100000" => assert!(matches!(err, Error::TooLarge { .. }), "{err}"),
            "random bytes" | "text named .jpg" => {
                assert!(matches!(err, Error::UnknownFormat(_)), "{err}")
            }
            _ => assert!(matches!(err, Error::Corrupt(_)), "{name}: {err}"),
        }
    }
}

#[test]
fn a_fifty_megapixel_photo_is_refused_before_decoding() {
    // 8660×5774 ≈ 50 MP, as a real (blank) PNG: refused from its header, nothing allocated.
    let img = image::GrayImage::new(8660, 5774);
    let png = encode(
        &image::DynamicImage::ImageLuma8(img),
        image::ImageFormat::Png,
    );
    let e = image_io::decode(&png).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("megapixels"));
}

#[test]
fn an_output_too_large_names_the_scale_that_fits() {
    let e = unblur::upscale::output_size(6000, 6000, 4.0).unwrap_err();
    match e {
        Error::OutputTooLarge { max_scale, .. } => assert!(max_scale > 2.0 && max_scale < 2.5),
        other => panic!("{other}"),
    }
    // A photo that fits at ×5 but not at ×6 (200 MP): the error names ×5.65, rounded down so
    // that it fits (√32 = 5.657; ×5.66 would not).
    let e = unblur::upscale::output_size(2500, 2500, 6.0).unwrap_err();
    assert!(
        e.to_string()
            .contains("the largest scale that fits is ×5.65"),
        "{e}"
    );
    assert_eq!(
        unblur::upscale::output_size(2500, 2500, 5.0).unwrap(),
        (12500, 12500)
    );
    assert!(unblur::upscale::output_size(2500, 2500, 5.65).is_ok());
    assert!(unblur::upscale::output_size(2500, 2500, 5.66).is_err());
}
