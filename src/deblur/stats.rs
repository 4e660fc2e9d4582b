//! What `auto` decides on: how much the network changed the photo, and in which directions it
//! sharpened it. Both are measured on the first tiles' network input and output at the photo's
//! own resolution, both rounded to 8-bit levels (0…255; the output clamped to 0…1 first), as
//! `models/deblur/evaluate.py` measures them (`stat_r`, `stat_a`) when it calibrates the
//! thresholds: the same numbers on the same pixels.
//!
//! - The residual R: the mean of |deblurred − input| over pixels and channels. A sharp photo is
//!   nearly a fixed point of the network; a blurred one is not.
//! - The anisotropy A of the sharpening gain: on luma (0.299 R + 0.587 G + 0.114 B), the mean
//!   squared difference between neighbours along 0°, 90°, 45° and 135°, after over before, and
//!   the largest of those four gains over the smallest. Undoing a motion blur raises the contrast
//!   across the streak far more than along it; refocusing raises it in every direction (not
//!   quite alike: a diagonal step is √2 long, so a wide blur lowers the diagonal differences less
//!   than the axial ones, and undoing it gains less there; the calibrated `TAU_A` allows for it).
//!
//! Each tile is measured over the part of the photo it owns ([`super::tiles::Geometry::owned`]:
//! the overlaps split at their middle), so that when every tile is measured each pixel counts
//! once for R. The differences are taken, as evaluate.py does over a whole photo, from every
//! pixel of that part but its last row and its first and last columns, so that all four
//! directions have the same pixels and their neighbours lie in the part too (the pairs that
//! straddle two tiles' parts are left out: a few in a thousand). Tiles are measured one at a time
//! as they arrive and summed in tile order, so that the result does not depend on the order of
//! arrival (nor the number of threads).

/// The four directions, as (dx, dy) to the neighbour: 0°, 90°, 45°, 135°.
/// Also the directions of `auto`'s first look ([`super::crisp`]).
pub(super) const DIRECTIONS: [(isize, isize); 4] = [(1, 0), (0, 1), (1, 1), (-1, 1)];

/// Luma's weights for R, G and B, summed in that order (as evaluate.py's `luma`).
pub(super) const LUMA: [f64; 3] = [0.299, 0.587, 0.114];

/// evaluate.py's `to_u8`, in f32 as there: clamp to 0…1, ×255, round half up; an 8-bit level.
pub(super) fn level(v: f32) -> f64 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as f64
}

/// Sums over measured pixels: add tiles together with [`Stats::add`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Σ |clamp(output) − input| over pixels and channels, in 8-bit levels, and how many.
    abs_sum: f64,
    samples: u64,
    /// Per direction: Σ d² of the input's luma, of the output's, and how many pairs.
    energy_in: [f64; 4],
    energy_out: [f64; 4],
    pairs: [u64; 4],
}

impl Stats {
    /// Measures one tile. `input` and `output` are planar RGB in 0…1 of a `w`×`h` window (the
    /// output not clamped); `region` = [x, y, width, height] within the window is what counts.
    pub fn measure(input: &[f32], output: &[f32], w: usize, h: usize, region: [usize; 4]) -> Stats {
        let plane = w * h;
        assert!(input.len() == 3 * plane && output.len() == 3 * plane);
        let [rx, ry, rw, rh] = region;
        assert!(
            rx + rw <= w && ry + rh <= h,
            "the region lies in the window"
        );
        // evaluate.py's `to_u8`, in f32 as there: clamp, ×255, round half up.
        let mut s = Stats::default();
        // Luma of the region, before and after, row-major rw × rh.
        let mut luma_in = Vec::with_capacity(rw * rh);
        let mut luma_out = Vec::with_capacity(rw * rh);
        for y in ry..ry + rh {
            for x in rx..rx + rw {
                let j = y * w + x;
                let (mut li, mut lo) = (0.0, 0.0);
                for (c, k) in LUMA.into_iter().enumerate() {
                    let a = level(input[c * plane + j]);
                    let b = level(output[c * plane + j]);
                    s.abs_sum += (b - a).abs();
                    li += k * a;
                    lo += k * b;
                }
                luma_in.push(li);
                luma_out.push(lo);
            }
        }
        s.samples = 3 * (rw * rh) as u64;
        // From every pixel but the last row and the first and last columns: the same pixels for
        // all four directions.
        for y in 0..rh.saturating_sub(1) {
            for x in 1..rw.saturating_sub(1) {
                let a = y * rw + x;
                for (d, &(dx, dy)) in DIRECTIONS.iter().enumerate() {
                    let b = (a as isize + dy * rw as isize + dx) as usize;
                    s.energy_in[d] += (luma_in[b] - luma_in[a]).powi(2);
                    s.energy_out[d] += (luma_out[b] - luma_out[a]).powi(2);
                    s.pairs[d] += 1;
                }
            }
        }
        s
    }

    pub fn add(&mut self, other: &Stats) {
        self.abs_sum += other.abs_sum;
        self.samples += other.samples;
        for d in 0..4 {
            self.energy_in[d] += other.energy_in[d];
            self.energy_out[d] += other.energy_out[d];
            self.pairs[d] += other.pairs[d];
        }
    }

    /// Statistics whose residual is `r` (the verdict's tests).
    #[cfg(test)]
    pub(crate) fn set_residual_for_test(&mut self, r: f32) {
        (self.abs_sum, self.samples) = (r as f64 * 1000.0, 1000);
    }

    /// R: the mean absolute change, in 8-bit levels (0 when nothing was measured).
    pub fn residual(&self) -> f64 {
        self.abs_sum / self.samples.max(1) as f64
    }

    /// Each direction's sharpening gain: E(output) / max(E(input), 1e-8), E the mean squared
    /// neighbour difference of luma.
    pub fn gains(&self) -> [f64; 4] {
        std::array::from_fn(|d| {
            let n = self.pairs[d].max(1) as f64;
            (self.energy_out[d] / n) / (self.energy_in[d] / n).max(1e-8)
        })
    }

    /// A: the largest gain over the smallest (the smallest at least 1e-12, as in evaluate.py).
    /// 1 for an isotropic change (or none); a flat photo, whose gains are all 0, counts as
    /// isotropic.
    pub fn anisotropy(&self) -> f64 {
        let g = self.gains();
        let max = g.iter().copied().fold(0.0, f64::max);
        let min = g.iter().copied().fold(f64::INFINITY, f64::min);
        if max <= 0.0 {
            return 1.0;
        }
        max / min.max(1e-12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible image of noise: planar RGB w × h in 0.2…0.8.
    fn noise(w: usize, h: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..3 * w * h)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                0.2 + 0.6 * ((state >> 33) as f32 / (1u64 << 31) as f32)
            })
            .collect()
    }

    /// A box blur of `len` pixels along x (dx = 1) or y (dy = 1), edges clamped.
    fn box_blur(img: &[f32], w: usize, h: usize, len: usize, along_x: bool) -> Vec<f32> {
        let plane = w * h;
        let mut out = vec![0.0; img.len()];
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let mut sum = 0.0;
                    for k in 0..len {
                        let o = k as isize - (len / 2) as isize;
                        let (xx, yy) = if along_x {
                            ((x as isize + o).clamp(0, w as isize - 1) as usize, y)
                        } else {
                            (x, (y as isize + o).clamp(0, h as isize - 1) as usize)
                        };
                        sum += img[c * plane + yy * w + xx];
                    }
                    out[c * plane + y * w + x] = sum / len as f32;
                }
            }
        }
        out
    }

    const WHOLE: [usize; 4] = [0, 0, 32, 24];

    #[test]
    fn no_change_has_no_residual_and_no_anisotropy() {
        let x = noise(32, 24, 1);
        let s = Stats::measure(&x, &x, 32, 24, WHOLE);
        assert_eq!(s.residual(), 0.0);
        assert_eq!(s.anisotropy(), 1.0);
        assert_eq!(s.gains(), [1.0; 4]);
    }

    #[test]
    fn the_residual_is_in_8_bit_levels_and_clamps_the_output_first() {
        let x = vec![100.0f32 / 255.0; 3 * 8 * 8];
        let up = vec![104.0f32 / 255.0; 3 * 8 * 8];
        let s = Stats::measure(&x, &up, 8, 8, [0, 0, 8, 8]);
        assert_eq!(s.residual(), 4.0);
        // A flat photo changed flatly: no gain anywhere, isotropic.
        assert_eq!(s.anisotropy(), 1.0);
        // An output far above 1 counts as 1: 255 levels against 100.
        let wild = vec![9.0f32; 3 * 8 * 8];
        let s = Stats::measure(&x, &wild, 8, 8, [0, 0, 8, 8]);
        assert_eq!(s.residual(), 155.0);
        // Both are rounded to 8-bit levels first: a change of a third of a level is none.
        let slight: Vec<f32> = x.iter().map(|v| v + 0.3 / 255.0).collect();
        assert_eq!(
            Stats::measure(&x, &slight, 8, 8, [0, 0, 8, 8]).residual(),
            0.0
        );
    }

    #[test]
    fn undoing_a_horizontal_blur_is_anisotropic_and_a_blur_both_ways_is_not() {
        let sharp = noise(32, 24, 7);
        // Undoing a 9-pixel horizontal streak: the gain across it (0°) is about 9² and along the
        // other directions about 9, so A is about 9.
        let streaked = box_blur(&sharp, 32, 24, 9, true);
        let s = Stats::measure(&streaked, &sharp, 32, 24, WHOLE);
        let g = s.gains();
        assert!(
            g[0] > 3.0 * g[1] && g[0] > 3.0 * g[2] && g[0] > 3.0 * g[3],
            "{g:?}"
        );
        assert!(s.anisotropy() > 4.0, "{}", s.anisotropy());
        assert!(s.residual() > 5.0, "{}", s.residual());
        // The same along y is as anisotropic, the other way round.
        let down = box_blur(&sharp, 32, 24, 9, false);
        let g = Stats::measure(&down, &sharp, 32, 24, WHOLE).gains();
        assert!(g[1] > 3.0 * g[0], "{g:?}");
        // A 3×3 box blur (the same both ways) undone: the gains differ by far less. (Not by
        // nothing: a diagonal step is √2 long, so a blur lowers the diagonal differences less
        // than the axial ones, and their gains are lower: here 16 against 27.)
        let both = box_blur(&box_blur(&sharp, 32, 24, 3, true), 32, 24, 3, false);
        let iso = Stats::measure(&both, &sharp, 32, 24, WHOLE);
        assert!(
            iso.anisotropy() < 2.2,
            "{} {:?}",
            iso.anisotropy(),
            iso.gains()
        );
        assert!(s.anisotropy() > 2.0 * iso.anisotropy());
        assert!(iso.gains().iter().all(|&g| g > 5.0), "{:?}", iso.gains());
    }

    #[test]
    fn only_the_region_counts_and_tiles_add_up() {
        let x = noise(16, 16, 3);
        let mut y = x.clone();
        // A change outside the region [0, 0, 8, 16] is not seen.
        for c in 0..3 {
            for row in 0..16 {
                y[c * 256 + row * 16 + 12] = 1.0;
            }
        }
        let left = Stats::measure(&x, &y, 16, 16, [0, 0, 8, 16]);
        assert_eq!(left.residual(), 0.0);
        let right = Stats::measure(&x, &y, 16, 16, [8, 0, 8, 16]);
        assert!(right.residual() > 0.0);
        // Two halves add up to their sums: the residual of the union is their mean.
        let mut both = left;
        both.add(&right);
        assert!((both.residual() - right.residual() / 2.0).abs() < 1e-9);
        // The same pixels for every direction: all but the last row, the first and last columns.
        assert_eq!(left.pairs, [6 * 15; 4]);
    }
}
