//! Unblur's own face model (models/unblur-face, built like the other models): the shipped form
//! loads, takes the face stage's 256² input, and restores the face of a real dev photo through
//! the whole pipeline: the same face as the SR fallback's, restored differently.

use crate::common;

use common::*;
use unblur::engine::Network;
use unblur::models::FACE_RESTORATION;
use unblur::{Options, Restorer, Silent};

const ID: &str = "unblur-face";

fn sr() -> Network {
    let entry = manifest()
        .default_for(unblur::models::SUPER_RESOLUTION)
        .unwrap();
    let a = model_bytes(&entry.id, None);
    let b = model_bytes(entry.denoise_partner.as_ref().unwrap(), None);
    Network::interpolated(&a, &b, 0.5).unwrap()
}

#[test]
fn the_shipped_face_model_restores_the_faces_of_a_dev_photo() {
    let entry = manifest().get(ID).unwrap();
    assert_eq!(entry.task, FACE_RESTORATION);
    let face = Network::from_bytes(&model_bytes(ID, None)).unwrap();
    let with_model = Restorer::new(sr(), Some(detector()), Some(face)).unwrap();
    assert_eq!(with_model.face_side(), Some(256));
    let fallback = Restorer::new(sr(), Some(detector()), None).unwrap();

    let png = small_png("codeformer/whole_imgs/04.jpg", 40, 20, 150, 150);
    let opts = Options {
        scale: 2.0,
        ..Options::default()
    };
    let a = with_model.restore(&png, &opts, &Silent).unwrap();
    let b = fallback.restore(&png, &opts, &Silent).unwrap();
    assert!(!a.faces.is_empty(), "the dev crop has a face");
    assert_eq!(a.faces, b.faces, "the same faces, whatever restores them");
    let (ia, ib) = (
        image::load_from_memory(&a.bytes).unwrap().to_rgb8(),
        image::load_from_memory(&b.bytes).unwrap().to_rgb8(),
    );
    assert_eq!(ia.dimensions(), (300, 300));

    // Inside the face box the model's face differs from the SR fallback's, but stays the same
    // face (not noise, not a flat patch).
    let f = &a.faces[0];
    let (x0, y0) = ((f.bbox[0] * 2.0) as u32, (f.bbox[1] * 2.0) as u32);
    let (w, h) = ((f.bbox[2] * 2.0) as u32, (f.bbox[3] * 2.0) as u32);
    let region = |img: &image::RgbImage| -> Vec<f64> {
        let mut v = vec![];
        for y in y0..(y0 + h).min(img.height()) {
            for x in x0..(x0 + w).min(img.width()) {
                v.extend(img.get_pixel(x, y).0.map(|c| c as f64));
            }
        }
        v
    };
    let psnr = |a: &[f64], b: &[f64]| {
        let mse = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64;
        10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
    };
    let (ra, rb) = (region(&ia), region(&ib));
    let p = psnr(&ra, &rb);
    assert!(
        (20.0..55.0).contains(&p),
        "face region: model vs SR fallback {p:.1} dB (same face, restored differently)"
    );
    let mean = ra.iter().sum::<f64>() / ra.len() as f64;
    let var = ra.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ra.len() as f64;
    assert!(
        var > 100.0,
        "the restored face has structure (variance {var:.0})"
    );
}
