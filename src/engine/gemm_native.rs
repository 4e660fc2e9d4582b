//! The f32 GEMM kernel family on x86-64, measured on the machine the CLI runs on, not assumed.
//!
//! Where a CPU has AVX-512, tract runs its AVX-512 kernels. On this project's AMD EPYC, whose
//! AVX-512 executes on 256-bit units, its AVX2+FMA kernels run the super-resolution network's
//! convolutions about 1.2× faster (`bench/native.py`, "What the product's choices won"); on an
//! Intel server part the AVX-512 ones should win. So before the first plan is built, [`choose`]
//! times one convolution of the networks' shape (64 → 64 channels, 3×3, 64² pixels) planned with
//! each family, alternating, and keeps AVX2+FMA only if it is faster by a clear margin — a noisy
//! machine then does not flip the choice (and with it the last bits of the output) from run to
//! run. The choice applies through a dispatch tier above tract's own, which hands f32 queries to
//! tract's "fma" tier. `TRACT_CPU_ISA` (tract's own knob) or `UNBLUR_GEMM=tract|fma` skip the
//! measurement. Costs ~50 ms once per process.
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use tract_linalg::isa::{Arch, Isa, IsaSet};
use tract_linalg::mmm::{Query, Suitable};
use tract_linalg::mmm_tiers::MmmTier;
use tract_onnx::pb;
use tract_onnx::prelude::*;

use super::network;
use crate::convert::graph::{Attr, Graph};
use crate::Result;

const TRACT: u8 = 0;
const FMA: u8 = 1;

/// Which family f32 GEMMs use, for plans built from now on.
static FAMILY: AtomicU8 = AtomicU8::new(TRACT);

/// AVX2+FMA must take less than this fraction of the AVX-512 time to be chosen.
const MARGIN: f64 = 0.93;

/// What was measured at start-up: the family chosen and each family's best time (ms).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Choice {
    pub family: &'static str,
    pub why: &'static str,
    pub tract_ms: Option<f64>,
    pub fma_ms: Option<f64>,
}

fn has_both(isa: &IsaSet) -> bool {
    isa.has(Isa::X86_64Avx512f) && isa.has(Isa::X86_64Fma) && isa.has(Isa::X86_64Avx2)
}

fn preferred(
    isa: &IsaSet,
    dt: DatumType,
    query: &Query,
    suitable: &[Suitable],
) -> Option<&'static str> {
    if dt != DatumType::F32 || FAMILY.load(Ordering::Relaxed) != FMA {
        return None;
    }
    tract_linalg::mmm_tiers::declared()
        .find(|t| t.arch == Some(Arch::X86_64) && t.name == "fma")
        .and_then(|t| (t.preferred)(isa, dt, query, suitable))
}

inventory::submit! {
    MmmTier {
        arch: Some(Arch::X86_64),
        precedence: 20,
        name: "unblur-measured",
        applies: has_both,
        preferred,
    }
}

/// Measures once per process (see the module doc) and returns what was chosen.
pub fn choose() -> &'static Choice {
    static CHOICE: OnceLock<Choice> = OnceLock::new();
    CHOICE.get_or_init(|| {
        // Keeps this module's tier in the link, like gemm_wasm::link.
        std::hint::black_box(preferred as *const ());
        let fixed = |family, why| Choice {
            family,
            why,
            tract_ms: None,
            fma_ms: None,
        };
        match std::env::var("UNBLUR_GEMM").as_deref() {
            Ok("fma") => {
                FAMILY.store(FMA, Ordering::Relaxed);
                return fixed("avx2+fma", "UNBLUR_GEMM");
            }
            Ok("tract") => return fixed("tract", "UNBLUR_GEMM"),
            _ => {}
        }
        if std::env::var_os("TRACT_CPU_ISA").is_some() {
            return fixed("tract", "TRACT_CPU_ISA");
        }
        if !has_both(&tract_linalg::isa::native()) {
            return fixed("tract", "one family on this CPU");
        }
        match measure() {
            Ok((t, f)) => {
                let fma = f < MARGIN * t;
                if fma {
                    FAMILY.store(FMA, Ordering::Relaxed);
                }
                Choice {
                    family: if fma { "avx2+fma" } else { "tract" },
                    why: "measured",
                    tract_ms: Some(t),
                    fma_ms: Some(f),
                }
            }
            Err(_) => fixed("tract", "measurement failed"),
        }
    })
}

/// Best of 3 alternating runs per family of one 64→64 3×3 convolution at 64²: (tract, fma) ms.
fn measure() -> Result<(f64, f64)> {
    let (c, side) = (64usize, 64usize);
    let weights: Vec<f32> = (0..c * c * 9)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.1)
        .collect();
    let proto = conv_proto(c, side, &weights)?;
    let input: Vec<f32> = (0..c * side * side)
        .map(|i| (i * 104_729 % 1000) as f32 / 1000.0)
        .collect();
    let shape = [1, c, side, side];
    let mut plans = Vec::new();
    for family in [TRACT, FMA] {
        FAMILY.store(family, Ordering::Relaxed);
        plans.push(network::optimized_plan(&proto, &shape)?);
    }
    FAMILY.store(TRACT, Ordering::Relaxed);
    let x = Tensor::from_shape(&shape, &input)?;
    let mut best = [f64::INFINITY; 2];
    for _ in 0..3 {
        for (plan, best) in plans.iter().zip(best.iter_mut()) {
            let t = Instant::now();
            plan.run(tvec!(x.clone().into()))?;
            *best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok((best[0], best[1]))
}

/// One 3×3, `c`→`c` convolution on a `side`² input, through the project's ONNX graph builder.
fn conv_proto(c: usize, side: usize, weights: &[f32]) -> Result<pb::ModelProto> {
    let mut g = Graph::new(Default::default());
    let w = g.constant("w", &[c, c, 3, 3], weights);
    let y = g.op(
        "Conv",
        &["input", &w],
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ],
    );
    g.finish(&y, &[1, c, side, side], "GEMM probe")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The measurement runs on this machine and says what it chose and why.
    #[test]
    fn the_choice_is_measured_or_explained() {
        let c = choose();
        assert!(["tract", "avx2+fma"].contains(&c.family), "{c:?}");
        if c.why == "measured" {
            let (t, f) = (c.tract_ms.unwrap(), c.fma_ms.unwrap());
            assert!(
                t > 0.0 && f > 0.0 && t.is_finite() && f.is_finite(),
                "{c:?}"
            );
            assert_eq!(c.family == "avx2+fma", f < MARGIN * t, "{c:?}");
        }
    }
}
