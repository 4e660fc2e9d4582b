//! Matrix-multiply kernels for wasm32 SIMD, registered with tract's kernel registry.
//!
//! tract 0.23's wasm GEMM kernel (`wasm_f32_8x8`) keeps 16 v128 accumulators plus its operands
//! live. That suits ARM64's 32 vector registers, but on x86-64, where V8 has 16 XMM registers
//! and keeps one as scratch, the accumulators spill on every k-step. The kernels here keep at
//! most 12 accumulators, like the ones onnxruntime-web (MLAS: 2×16) and XNNPACK (4×8) ship for
//! wasm, and a higher-precedence dispatch tier makes tract use them for every f32 GEMM.
//! Convolutions are GEMMs with M = output channels, N = pixels, K = input channels × 3 × 3, so
//! this is where Real-ESRGAN and the face models spend nearly all their time.
//!
//! With `+relaxed-simd` the multiply-adds become fused (`f32x4.relaxed_madd`).
//!
//! The product ships one kernel, 4×8. The `bench` feature adds the others and a switch between
//! them (tract's own included), for `make bench` and the kernel check (`gemm_check.rs`).
use std::arch::wasm32::*;
#[cfg(feature = "bench")]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use tract_linalg::mmm::{DynKernel, FusedKerSpec, Query, Suitable};
use tract_linalg::pack::Packing;
use tract_onnx::prelude::DatumType;

// The `relaxed-simd` build fuses each multiply-add. Only this module is compiled for it, so
// both builds share every other crate's compiled code; the page picks one at load time.
#[cfg(feature = "relaxed-simd")]
#[target_feature(enable = "relaxed-simd")]
#[inline]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    f32x4_relaxed_madd(a, b, acc)
}

#[cfg(not(feature = "relaxed-simd"))]
#[inline(always)]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    f32x4_add(acc, f32x4_mul(a, b))
}

#[inline(always)]
fn each<const MR: usize, const NV: usize>(acc: &mut [[v128; NV]; MR], f: impl Fn(v128) -> v128) {
    for row in acc.iter_mut() {
        for v in row.iter_mut() {
            *v = f(*v);
        }
    }
}

#[inline(always)]
unsafe fn per_row<const MR: usize, const NV: usize>(
    acc: &mut [[v128; NV]; MR],
    rows: *const f32,
    f: impl Fn(v128, v128) -> v128,
) {
    for (r, row) in acc.iter_mut().enumerate() {
        let s = f32x4_splat(unsafe { *rows.add(r) });
        for v in row.iter_mut() {
            *v = f(s, *v);
        }
    }
}

#[inline(always)]
unsafe fn per_col<const MR: usize, const NV: usize>(
    acc: &mut [[v128; NV]; MR],
    cols: *const f32,
    f: impl Fn(v128, v128) -> v128,
) {
    let c: [v128; NV] =
        std::array::from_fn(|j| unsafe { v128_load(cols.add(4 * j) as *const v128) });
    for row in acc.iter_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = f(c[j], *v);
        }
    }
}

/// An MR × (4·NV) tile: rows are output channels, columns pixels.
#[cfg_attr(feature = "relaxed-simd", target_feature(enable = "relaxed-simd"))]
unsafe fn kernel<const MR: usize, const NV: usize>(spec: &[FusedKerSpec<f32>]) -> isize {
    let mut acc = [[f32x4_splat(0.0); NV]; MR];
    for op in spec {
        // SAFETY: tract hands each kernel pointers to buffers shaped for its MR × NR tile.
        unsafe {
            match *op {
                FusedKerSpec::Done => break,
                FusedKerSpec::Clear => each(&mut acc, |_| f32x4_splat(0.0)),
                FusedKerSpec::LoadTile(_, rows) => {
                    let p = rows as *const v128;
                    for (r, row) in acc.iter_mut().enumerate() {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = v128_load(p.add(r * NV + j));
                        }
                    }
                }
                FusedKerSpec::ScalarMin(a) => each(&mut acc, |v| f32x4_min(f32x4_splat(a), v)),
                FusedKerSpec::ScalarMax(a) => each(&mut acc, |v| f32x4_max(f32x4_splat(a), v)),
                FusedKerSpec::ScalarAdd(a) => each(&mut acc, |v| f32x4_add(f32x4_splat(a), v)),
                FusedKerSpec::ScalarMul(a) => each(&mut acc, |v| f32x4_mul(f32x4_splat(a), v)),
                FusedKerSpec::ScalarSub(a) => each(&mut acc, |v| f32x4_sub(f32x4_splat(a), v)),
                FusedKerSpec::ScalarSubF(a) => each(&mut acc, |v| f32x4_sub(v, f32x4_splat(a))),
                FusedKerSpec::LeakyRelu(a) => each(&mut acc, |v| {
                    let m = f32x4_gt(v, f32x4_splat(0.0));
                    v128_bitselect(v, f32x4_mul(f32x4_splat(a), v), m)
                }),
                FusedKerSpec::PerRowMin(p) => per_row(&mut acc, p, |s, v| f32x4_min(s, v)),
                FusedKerSpec::PerRowMax(p) => per_row(&mut acc, p, |s, v| f32x4_max(s, v)),
                FusedKerSpec::PerRowAdd(p) => per_row(&mut acc, p, |s, v| f32x4_add(s, v)),
                FusedKerSpec::PerRowMul(p) => per_row(&mut acc, p, |s, v| f32x4_mul(s, v)),
                FusedKerSpec::PerRowSub(p) => per_row(&mut acc, p, |s, v| f32x4_sub(s, v)),
                FusedKerSpec::PerRowSubF(p) => per_row(&mut acc, p, |s, v| f32x4_sub(v, s)),
                FusedKerSpec::PerColMin(p) => per_col(&mut acc, p, |c, v| f32x4_min(c, v)),
                FusedKerSpec::PerColMax(p) => per_col(&mut acc, p, |c, v| f32x4_max(c, v)),
                FusedKerSpec::PerColAdd(p) => per_col(&mut acc, p, |c, v| f32x4_add(c, v)),
                FusedKerSpec::PerColMul(p) => per_col(&mut acc, p, |c, v| f32x4_mul(c, v)),
                FusedKerSpec::PerColSub(p) => per_col(&mut acc, p, |c, v| f32x4_sub(c, v)),
                FusedKerSpec::PerColSubF(p) => per_col(&mut acc, p, |c, v| f32x4_sub(v, c)),
                FusedKerSpec::QScale(shift, rp, mult) => {
                    let s = tract_linalg::Scaler::from_fuse_params(shift, rp, mult).scale;
                    each(&mut acc, |v| f32x4_mul(f32x4_splat(s), v))
                }
                FusedKerSpec::RoundingShiftRight(shift, _) => {
                    let s = 2f32.powi(-(shift as i32));
                    each(&mut acc, |v| f32x4_mul(f32x4_splat(s), v))
                }
                FusedKerSpec::ShiftLeft(shift) => {
                    let s = 2f32.powi(shift as i32);
                    each(&mut acc, |v| f32x4_mul(f32x4_splat(s), v))
                }
                FusedKerSpec::AddUnicast(tile) => {
                    let (rs, cs) = (tile.row_byte_stride, tile.col_byte_stride);
                    for (r, row) in acc.iter_mut().enumerate() {
                        let p = tile.ptr.offset(r as isize * rs) as *const u8;
                        for (j, v) in row.iter_mut().enumerate() {
                            let q = p.offset(4 * j as isize * cs);
                            let m = if cs == 4 {
                                v128_load(q as *const v128)
                            } else {
                                f32x4(
                                    *(q as *const f32),
                                    *(q.offset(cs) as *const f32),
                                    *(q.offset(2 * cs) as *const f32),
                                    *(q.offset(3 * cs) as *const f32),
                                )
                            };
                            *v = f32x4_add(*v, m);
                        }
                    }
                }
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    let c: [v128; NV] =
                        std::array::from_fn(|j| v128_load(cols.add(4 * j) as *const v128));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let s = f32x4_splat(*rows.add(r));
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = madd(*v, s, c[j]);
                        }
                    }
                }
                FusedKerSpec::Store(tile) => {
                    let (rs, cs) = (tile.row_byte_stride, tile.col_byte_stride);
                    for (r, row) in acc.iter().enumerate() {
                        let p = tile.ptr.offset(r as isize * rs);
                        for (j, v) in row.iter().enumerate() {
                            let q = p.offset(4 * j as isize * cs);
                            if cs == 4 {
                                v128_store(q as *mut v128, *v);
                            } else {
                                *(q as *mut f32) = f32x4_extract_lane::<0>(*v);
                                *(q.offset(cs) as *mut f32) = f32x4_extract_lane::<1>(*v);
                                *(q.offset(2 * cs) as *mut f32) = f32x4_extract_lane::<2>(*v);
                                *(q.offset(3 * cs) as *mut f32) = f32x4_extract_lane::<3>(*v);
                            }
                        }
                    }
                }
                FusedKerSpec::AddMatMul { k, pa, pb, .. } => {
                    // A packed [k][MR], B packed [k][4·NV].
                    let mut a = pa as *const f32;
                    let mut b = pb as *const v128;
                    for _ in 0..k {
                        let bv: [v128; NV] = std::array::from_fn(|j| v128_load(b.add(j)));
                        // One `v128.load32_splat` per row beats a v128 load and 4 shuffles.
                        for (r, row) in acc.iter_mut().enumerate() {
                            let s = v128_load32_splat(a.add(r) as *const u32);
                            for (j, v) in row.iter_mut().enumerate() {
                                *v = madd(*v, s, bv[j]);
                            }
                        }
                        a = a.add(MR);
                        b = b.add(NV);
                    }
                }
            }
        }
    }
    0
}

macro_rules! kernels {
    ($($name:ident: $mr:literal x $nv:literal),+ $(,)?) => {
        $(
            #[allow(non_upper_case_globals)]
            static $name: LazyLock<DynKernel<$mr, { 4 * $nv }, f32>> = LazyLock::new(|| {
                unsafe fn run(spec: &[FusedKerSpec<f32>]) -> isize {
                    unsafe { kernel::<$mr, $nv>(spec) }
                }
                let mut k = DynKernel::new(
                    stringify!($name),
                    run,
                    f32::packing($mr),
                    f32::packing(4 * $nv),
                );
                k.arch = Some(tract_linalg::isa::Arch::Wasm32Simd128);
                k
            });
            inventory::submit! {
                tract_linalg::mmm_routines::MmmRoutine { make: || $name.mmm() }
            }
        )+
    };
}

// 4×8 (8 accumulators) measured fastest in Chromium on x86-64, about 1.1× over 2×16 and 8×4 and
// 1.3× over tract's 8×8; the others are the benchmark's, to show the comparison on any machine.
kernels! {
    unblur_f32_4x8: 4 x 2,
}
#[cfg(feature = "bench")]
kernels! {
    unblur_f32_2x16: 2 x 4,
    unblur_f32_8x4: 8 x 1,
    unblur_f32_8x8: 8 x 2,
}

/// The kernels this module adds, by name; the first is the one used unless one is selected.
#[cfg(not(feature = "bench"))]
pub const KERNELS: &[&str] = &["unblur_f32_4x8"];
#[cfg(feature = "bench")]
pub const KERNELS: &[&str] = &[
    "unblur_f32_4x8",
    "unblur_f32_2x16",
    "unblur_f32_8x4",
    "unblur_f32_8x8",
];

/// Index into [`KERNELS`] (or past its end for tract's own choice) of the GEMM kernel to use.
#[cfg(feature = "bench")]
static CHOICE: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "bench")]
fn choice() -> usize {
    CHOICE.load(Ordering::Relaxed)
}
#[cfg(not(feature = "bench"))]
fn choice() -> usize {
    0
}

/// Chooses the GEMM kernel by name (one of [`KERNELS`], or "tract" for tract's own). Takes
/// effect for plans built afterwards. Returns false for an unknown name.
#[cfg(feature = "bench")]
pub fn select(name: &str) -> bool {
    let ix = match KERNELS.iter().position(|k| *k == name) {
        Some(ix) => ix,
        None if name == "tract" => KERNELS.len(),
        None => return false,
    };
    CHOICE.store(ix, Ordering::Relaxed);
    true
}

fn preferred(
    _isa: &tract_linalg::isa::IsaSet,
    dt: DatumType,
    query: &Query,
    _suitable: &[Suitable],
) -> Option<&'static str> {
    match (dt, query.n) {
        (DatumType::F32, Some(1)) => None,
        (DatumType::F32, _) => KERNELS.get(choice()).copied(),
        _ => None,
    }
}

inventory::submit! {
    tract_linalg::mmm_tiers::MmmTier {
        arch: Some(tract_linalg::isa::Arch::Wasm32Simd128),
        precedence: 10,
        name: "unblur-wasm-simd",
        applies: |_| true,
        preferred,
    }
}

/// Keeps this module's registry entries in the link: wasm-ld drops an object file that nothing
/// references, and inventory entries alone do not count.
pub fn link() {
    std::hint::black_box(preferred as *const ());
}

/// JSON: the kernels this module offers, which of them tract's registry holds, and the choice.
#[cfg(feature = "bench")]
pub fn status() -> String {
    let routines: Vec<String> = tract_linalg::mmm_routines::declared()
        .map(|r| (r.make)().name().to_string())
        .filter(|n| n.starts_with("unblur_"))
        .collect();
    let tier = tract_linalg::mmm_tiers::declared().any(|t| t.name == "unblur-wasm-simd");
    serde_json::json!({
        "kernels": KERNELS,
        "registered": routines,
        "tier": tier,
        "relaxed_simd": cfg!(target_feature = "relaxed-simd"),
        "choice": KERNELS.get(CHOICE.load(Ordering::Relaxed)).copied().unwrap_or("tract"),
    })
    .to_string()
}
