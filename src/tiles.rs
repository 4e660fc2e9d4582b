//! The tile plan: fixed-size tiles that overlap, cover the photo, and blend without seams.
//!
//! Along each axis, a tile's weight is zero in a thin margin at each inner edge (where the
//! network saw zero padding instead of the photo), ramps up linearly across the overlap, and is
//! one in the middle; the weights of all tiles are then divided by their sum, so at every output
//! pixel they add up to exactly one. The 2-D weight is the product of the two axes' weights.
//! Weights are evaluated at output pixel centres, so the plan works for any output scale.

/// The plan along one axis.
#[derive(Clone, Debug)]
pub struct AxisPlan {
    /// Input length.
    pub len: usize,
    /// Tile length (the whole axis when the photo is smaller than a tile).
    pub tile: usize,
    /// Start of each tile, in input pixels.
    pub starts: Vec<usize>,
    /// Output length.
    pub out_len: usize,
    /// For each tile: the first output pixel it touches and its weight at each output pixel.
    pub spans: Vec<(usize, Vec<f32>)>,
}

impl AxisPlan {
    pub fn new(len: usize, tile: usize, overlap: usize, out_len: usize) -> Self {
        assert!(len > 0 && out_len > 0);
        let tile = tile.clamp(1, len);
        let overlap = overlap.min(tile / 2);
        let starts: Vec<usize> = if tile == len {
            vec![0]
        } else {
            let n = (len - overlap).div_ceil(tile - overlap).max(2);
            (0..n)
                .map(|i| ((i * (len - tile)) as f64 / (n - 1) as f64).round() as usize)
                .collect()
        };
        let margin = overlap as f64 / 4.0;
        let ramp = (overlap as f64 - 2.0 * margin).max(1.0);
        let n = starts.len();
        let ratio = len as f64 / out_len as f64;
        let raw = |i: usize, x: f64| -> f64 {
            let (s, e) = (starts[i] as f64, (starts[i] + tile) as f64);
            if x < s || x > e {
                return 0.0;
            }
            let up = if i > 0 {
                ((x - s - margin) / ramp).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let down = if i + 1 < n {
                ((e - margin - x) / ramp).clamp(0.0, 1.0)
            } else {
                1.0
            };
            up.min(down)
        };
        let mut spans: Vec<(usize, Vec<f32>)> = vec![(usize::MAX, Vec::new()); n];
        let mut first = 0; // tiles are sorted: the first that can touch x only moves forward
        for ox in 0..out_len {
            let x = (ox as f64 + 0.5) * ratio;
            while first + 1 < n && (starts[first] + tile) as f64 <= x {
                first += 1;
            }
            let touching: Vec<(usize, f64)> = (first..n)
                .take_while(|&i| starts[i] as f64 <= x)
                .map(|i| (i, raw(i, x)))
                .filter(|&(_, w)| w > 0.0)
                .collect();
            let total: f64 = touching.iter().map(|t| t.1).sum();
            for (i, w) in touching {
                let span = &mut spans[i];
                if span.0 == usize::MAX {
                    span.0 = ox;
                }
                // A tile's span is contiguous: pad any gap (cannot happen with trapezoids).
                span.1.resize(ox - span.0, 0.0);
                span.1.push((w / total) as f32);
            }
        }
        AxisPlan {
            len,
            tile,
            starts,
            out_len,
            spans,
        }
    }

    pub fn count(&self) -> usize {
        self.starts.len()
    }
}

/// The 2-D plan: tiles in row-major order.
#[derive(Clone, Debug)]
pub struct TilePlan {
    pub x: AxisPlan,
    pub y: AxisPlan,
}

/// Where one tile reads its input and writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    /// Input window: x, y, width, height.
    pub input: [usize; 4],
    /// Output window this tile contributes to: x, y, width, height.
    pub output: [usize; 4],
}

impl TilePlan {
    /// `tile` = 0 means one piece: a single tile of the whole photo.
    pub fn new(
        w: usize,
        h: usize,
        out_w: usize,
        out_h: usize,
        tile: usize,
        overlap: usize,
    ) -> Self {
        let (tx, ty) = if tile == 0 { (w, h) } else { (tile, tile) };
        TilePlan {
            x: AxisPlan::new(w, tx, overlap, out_w),
            y: AxisPlan::new(h, ty, overlap, out_h),
        }
    }

    pub fn count(&self) -> usize {
        self.x.count() * self.y.count()
    }

    /// The input shape every tile has.
    pub fn tile_size(&self) -> (usize, usize) {
        (self.x.tile, self.y.tile)
    }

    pub fn rect(&self, i: usize) -> TileRect {
        let (ix, iy) = (i % self.x.count(), i / self.x.count());
        let (sx, sy) = (&self.x.spans[ix], &self.y.spans[iy]);
        TileRect {
            input: [
                self.x.starts[ix],
                self.y.starts[iy],
                self.x.tile,
                self.y.tile,
            ],
            output: [sx.0, sy.0, sx.1.len(), sy.1.len()],
        }
    }

    /// The blend weights of tile `i` along x and y, over its output window.
    pub fn weights(&self, i: usize) -> (&[f32], &[f32]) {
        let (ix, iy) = (i % self.x.count(), i / self.x.count());
        (&self.x.spans[ix].1, &self.y.spans[iy].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_partition(len: usize, tile: usize, overlap: usize, out_len: usize) {
        let p = AxisPlan::new(len, tile, overlap, out_len);
        let mut sum = vec![0f64; out_len];
        for (i, (first, w)) in p.spans.iter().enumerate() {
            assert!(p.starts[i] + p.tile <= len, "tile {i} runs past the end");
            for (k, v) in w.iter().enumerate() {
                sum[first + k] += *v as f64;
            }
        }
        for (ox, s) in sum.iter().enumerate() {
            assert!(
                (s - 1.0).abs() < 1e-5,
                "len {len} tile {tile} out {out_len}: pixel {ox} sums to {s}"
            );
        }
    }

    #[test]
    fn weights_partition_unity_for_many_shapes() {
        for len in [
            1, 7, 63, 64, 65, 100, 127, 128, 129, 200, 255, 511, 1000, 1203,
        ] {
            for tile in [32, 64, 128, 192] {
                for scale in [1.0, 1.5, 2.0, 3.0, 4.0] {
                    let out = ((len as f64) * scale).round() as usize;
                    check_partition(len, tile, 16, out);
                }
            }
        }
    }

    #[test]
    fn tiles_have_fixed_size_and_cover_the_photo() {
        let p = TilePlan::new(1000, 700, 2000, 1400, 128, 16);
        assert_eq!(p.tile_size(), (128, 128));
        let mut covered = vec![false; 1000 * 700];
        for i in 0..p.count() {
            let r = p.rect(i).input;
            assert_eq!((r[2], r[3]), (128, 128));
            for y in r[1]..r[1] + r[3] {
                for x in r[0]..r[0] + r[2] {
                    covered[y * 1000 + x] = true;
                }
            }
        }
        assert!(covered.iter().all(|&c| c));
    }

    #[test]
    fn margins_get_no_weight() {
        // Inner tile edges see zero padding in the network: they must not contribute.
        let p = AxisPlan::new(300, 100, 32, 300);
        for i in 1..p.count() {
            let (first, w) = &p.spans[i];
            let s = p.starts[i];
            for (k, v) in w.iter().enumerate() {
                if first + k < s + 8 {
                    assert_eq!(*v, 0.0);
                }
            }
        }
    }

    #[test]
    fn one_piece_is_a_single_tile() {
        let p = TilePlan::new(300, 200, 600, 400, 0, 16);
        assert_eq!(p.count(), 1);
        assert_eq!(p.rect(0).output, [0, 0, 600, 400]);
        assert!(p.weights(0).0.iter().all(|&w| w == 1.0));
    }
}
