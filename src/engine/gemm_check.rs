//! The wasm GEMM kernels ([`super::gemm_wasm`], and tract's own) checked against a plain
//! reference, for the `bench` build: `tests/e2e/exported.mjs` runs it in Chromium, since this
//! machine's Node runs relaxed SIMD only behind a flag.
//!
//! Each kernel runs, through the engine as the networks use it, convolutions of random weights
//! on random inputs: 1×1 (a plain GEMM: M = output channels, K = input channels, N = pixels) and
//! 3×3 (im2col, K = 9 × input channels), with sizes that leave partial tiles on every side of
//! every kernel's M×N tile. The reference is a direct convolution summed in f64.

use super::gemm_wasm::{select, KERNELS};
use crate::convert::graph::Graph;
use crate::convert::pth::{StateDict, Tensor};
use crate::engine::Network;
use crate::error::Result;

/// (input channels, output channels, height, width, kernel side).
const CASES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1),
    (3, 4, 8, 8, 1),
    (5, 13, 7, 3, 1),
    (37, 19, 5, 11, 1),
    (16, 33, 1, 70, 1),
    (3, 17, 13, 6, 3),
    (64, 64, 9, 9, 3),
    (48, 3, 16, 16, 3),
];

/// The largest relative error (‖got − want‖ / ‖want‖) a kernel may have: f32 sums in another
/// order than f64's, over K up to 576.
pub const TOLERANCE: f64 = 1e-5;

/// A small xorshift generator: the same random cases on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn reference(
    x: &[f32],
    wt: &[f32],
    b: &[f32],
    case: (usize, usize, usize, usize, usize),
) -> Vec<f32> {
    let (cin, cout, h, w, k) = case;
    let p = (k / 2) as isize;
    let mut y = vec![0f32; cout * h * w];
    for o in 0..cout {
        for yy in 0..h {
            for xx in 0..w {
                let mut s = b[o] as f64;
                for i in 0..cin {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (sy, sx) =
                                (yy as isize + ky as isize - p, xx as isize + kx as isize - p);
                            if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                continue;
                            }
                            let xv = x[(i * h + sy as usize) * w + sx as usize] as f64;
                            s += xv * wt[((o * cin + i) * k + ky) * k + kx] as f64;
                        }
                    }
                }
                y[(o * h + yy) * w + xx] = s as f32;
            }
        }
    }
    y
}

/// One case with the selected kernel: its relative error, and whether the optimised plan
/// names the kernel (tract's plans print their matmul kernel).
fn run_case(
    kernel: &str,
    case: (usize, usize, usize, usize, usize),
    rng: &mut Rng,
) -> Result<(f64, bool)> {
    let (cin, cout, h, w, k) = case;
    let (wt, b, x) = (
        rng.vec(cout * cin * k * k),
        rng.vec(cout),
        rng.vec(cin * h * w),
    );
    let mut sd = StateDict::new();
    sd.insert(
        "c.weight".into(),
        Tensor {
            shape: vec![cout, cin, k, k],
            data: wt.clone(),
        },
    );
    sd.insert(
        "c.bias".into(),
        Tensor {
            shape: vec![cout],
            data: b.clone(),
        },
    );
    let mut g = Graph::new(sd);
    let p = (k / 2) as i64;
    let y = g.conv("input", "c", 1, [p, p, p, p])?;
    let net = Network::from_model(g.finish(&y, &[1, cin, h, w], "a convolution")?)?;
    let shape = [1, cin, h, w];
    let plan = net.plan(&shape)?;
    let named = plan
        .model()
        .nodes
        .iter()
        .any(|n| format!("{:?}", n.op).contains(kernel));
    let got = net.run(&shape, x.clone())?.remove(0).1;
    let want = reference(&x, &wt, &b, case);
    let (mut num, mut den) = (0f64, 0f64);
    for (g, w) in got.iter().zip(&want) {
        num += ((g - w) as f64).powi(2);
        den += (*w as f64).powi(2);
    }
    let rel = if got.len() == want.len() && got.iter().all(|v| v.is_finite()) {
        (num / den.max(1e-30)).sqrt()
    } else {
        f64::INFINITY
    };
    Ok((rel, named))
}

/// Every kernel on every case: JSON `{ok, tolerance, kernels: [{name, ok, worst, used, cases}]}`.
/// `used`: whether every plan of a case with more than one pixel named the kernel (a plan with
/// one pixel is a matrix-vector product, which tract gives to its own kernel).
pub fn check() -> String {
    let mut out = vec![];
    let mut all_ok = true;
    for name in KERNELS.iter().copied().chain(["tract"]) {
        select(name);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut cases = vec![];
        let (mut worst, mut used, mut ok) = (0f64, true, true);
        for &case in CASES {
            match run_case(name, case, &mut rng) {
                Ok((rel, named)) => {
                    worst = worst.max(rel);
                    ok &= rel <= TOLERANCE;
                    if name != "tract" && case.2 * case.3 > 1 {
                        used &= named;
                    }
                    cases.push(serde_json::json!({"case": case, "rel_err": rel, "named": named}));
                }
                Err(e) => {
                    ok = false;
                    cases.push(serde_json::json!({"case": case, "error": e.to_string()}));
                }
            }
        }
        ok &= used;
        all_ok &= ok;
        out.push(serde_json::json!({"name": name, "ok": ok, "worst": worst, "used": used, "cases": cases}));
    }
    select(KERNELS[0]);
    serde_json::json!({"ok": all_ok, "tolerance": TOLERANCE, "kernels": out}).to_string()
}
