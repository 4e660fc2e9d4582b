//! The Rust converter (`src/convert/`) against PyTorch: checkpoints in the exact upstream layout
//! of GFPGAN v1.4 and CodeFormer (random weights, `models/checkpoints.py`, part of `make test`)
//! converted here give PyTorch's output (relative error ≤ 1e-3 in fp32, ≥ 40 dB stored as fp16).

use crate::common;

use std::path::PathBuf;

use common::root;
use unblur::convert::{self, Arch, FIDELITY};
use unblur::engine::Network;

fn dir() -> PathBuf {
    let d = root().join("models/build/checkpoints");
    assert!(
        d.join("gfpgan.json").exists() && d.join("codeformer.json").exists(),
        "no checkpoints in {}: run `python3 models/checkpoints.py` (part of `make test`)",
        d.display()
    );
    d
}

fn floats(path: PathBuf) -> Vec<f32> {
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// PSNR of two faces in -1…1, clipped as the face stage clips them.
fn psnr(got: &[f32], want: &[f32]) -> f64 {
    let mse: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| ((a.clamp(-1.0, 1.0) - b.clamp(-1.0, 1.0)) as f64 / 2.0).powi(2))
        .sum::<f64>()
        / got.len() as f64;
    10.0 * (1.0 / mse.max(1e-20)).log10()
}

fn meta(arch: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir().join(format!("{arch}.json"))).unwrap()).unwrap()
}

/// Converts `ARCH.pth`, runs it on the fixture face (at each fidelity), and compares with
/// PyTorch, fp32 and as stored (fp16).
fn check(arch: &str, want_arch: Arch) {
    let m = meta(arch);
    let bytes = std::fs::read(dir().join(m["pth"].as_str().unwrap())).unwrap();
    let input = floats(dir().join(m["input"].as_str().unwrap()));
    let conv = convert::convert(&bytes).unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert_eq!(conv.arch, want_arch);
    let stored = convert::to_stored(conv.clone());
    assert!(
        stored.len() < bytes.len() * 7 / 10,
        "{arch}: the stored form is {} bytes for a {}-byte checkpoint",
        stored.len(),
        bytes.len()
    );
    let mut fp32 = Network::from_model(conv.model).unwrap();
    let mut fp16 = Network::from_bytes(&stored).unwrap();
    let shape = [1, 3, 512, 512];
    for (w, file) in m["expected"].as_object().unwrap() {
        let want = floats(dir().join(file.as_str().unwrap()));
        if let Ok(w) = w.parse::<f32>() {
            fp32.set_scalar(FIDELITY, w).unwrap();
            fp16.set_scalar(FIDELITY, w).unwrap();
        }
        let got = fp32.run(&shape, input.clone()).unwrap().remove(0);
        assert_eq!(got.0, shape);
        let rel = rel_err(&got.1, &want);
        let got16 = fp16.run(&shape, input.clone()).unwrap().remove(0).1;
        let db = psnr(&got16, &want);
        eprintln!("{arch} w={w}: fp32 rel err {rel:.2e}, stored fp16 {db:.1} dB");
        assert!(rel <= 1e-3, "{arch} w={w}: relative error {rel:.2e}");
        assert!(db >= 40.0, "{arch} w={w}: stored form {db:.1} dB");
    }
}

#[test]
fn gfpgan_from_its_checkpoint_matches_pytorch() {
    check("gfpgan", Arch::Gfpgan);
}

#[test]
fn codeformer_from_its_checkpoint_matches_pytorch_at_two_fidelities() {
    let m = meta("codeformer");
    assert!(m["expected"].as_object().unwrap().len() >= 2);
    check("codeformer", Arch::Codeformer);
}

#[test]
fn a_checkpoint_of_another_architecture_is_named_not_converted() {
    // The SR network's ONNX is not a .pth; and a real .pth of another architecture is refused
    // by name. A GFPGAN checkpoint with one tensor removed is refused with that tensor's name.
    let e = convert::convert(b"PK\x03\x04 truncated").err().unwrap();
    assert!(e.to_string().contains("PyTorch checkpoint"), "{e}");
    let bytes = std::fs::read(dir().join("gfpgan.pth")).unwrap();
    let e = convert::convert(&bytes[..bytes.len() / 2]).err().unwrap();
    assert!(e.to_string().contains("PyTorch checkpoint"), "{e}");
}
