//! Every face-restorer architecture the exporter supports (random weights, exported by
//! `models/export.py --all-random`, part of `make test`) loads in tract and matches PyTorch, and
//! a face model runs through the whole pipeline.

use crate::common;

use std::path::PathBuf;
use std::time::Instant;

use common::*;
use unblur::engine::Network;
use unblur::{Options, Restorer, Silent};

fn export_dir() -> PathBuf {
    let d = root().join("models/build/export");
    assert!(
        d.is_dir(),
        "no exported models in {}: run `make test-export`",
        d.display()
    );
    d
}

fn floats(path: PathBuf) -> Vec<f32> {
    std::fs::read(&path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn every_exported_architecture_matches_pytorch_in_tract() {
    let dir = export_dir();
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.starts_with('.') || name == "summary.json" {
            continue;
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let shape: Vec<usize> = serde_json::from_value(meta["input"]["shape"].clone()).unwrap();
        let out_shape: Vec<usize> =
            serde_json::from_value(meta["expected"]["shape"].clone()).unwrap();
        let input = floats(dir.join(meta["input"]["file"].as_str().unwrap()));
        let expected = floats(dir.join(meta["expected"]["file"].as_str().unwrap()));
        let started = Instant::now();
        let net =
            Network::from_bytes(&std::fs::read(dir.join(meta["onnx"].as_str().unwrap())).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let loaded = started.elapsed();
        let out = net
            .run(&shape, input)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .remove(0);
        assert_eq!(out.0, out_shape, "{name}");
        let num: f64 = out
            .1
            .iter()
            .zip(&expected)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum();
        let den: f64 = expected.iter().map(|b| (*b as f64).powi(2)).sum();
        let rel = (num / den).sqrt();
        eprintln!(
            "{:<20} tract rel err {rel:.2e}  load {:?}  total {:?}",
            meta["arch"],
            loaded,
            started.elapsed()
        );
        assert!(
            rel <= 1e-3,
            "{name}: tract differs from PyTorch by {rel:.2e}"
        );
        checked.push(meta["arch"].as_str().unwrap().to_owned());
    }
    checked.sort();
    for arch in [
        "codeformer",
        "gfpgan",
        "gpen-bfr-512",
        "restoreformer++",
        "rrdbnet-x2",
        "rrdbnet-x4",
    ] {
        assert!(
            checked.iter().any(|c| c == arch),
            "{arch} was not exported (have {checked:?})"
        );
    }
}

#[test]
fn a_face_model_runs_through_the_pipeline() {
    let face = Network::from_bytes(&std::fs::read(export_dir().join("gpen-bfr-512.onnx")).unwrap())
        .unwrap();
    let entry = manifest()
        .default_for(unblur::models::SUPER_RESOLUTION)
        .unwrap();
    let sr = Network::from_bytes(&model_bytes(&entry.id, None)).unwrap();
    let r = Restorer::new(sr, Some(detector()), Some(face)).unwrap();
    assert_eq!(r.face_side(), Some(512));
    let png = small_png("codeformer/whole_imgs/04.jpg", 40, 20, 150, 150);
    let out = r
        .restore(
            &png,
            &Options {
                scale: 2.0,
                ..Options::default()
            },
            &Silent,
        )
        .unwrap();
    assert_eq!(out.faces.len(), 1);
    assert_eq!((out.width, out.height), (300, 300));
}

#[test]
fn a_model_that_is_not_a_face_model_is_refused() {
    let sr = Network::from_bytes(&model_bytes(&sr_id(), None)).unwrap();
    let not_face = Network::from_bytes(&model_bytes(&sr_id(), None)).unwrap();
    let e = Restorer::new(sr, None, Some(not_face))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("face model"), "{e}");
}
