//! Where the deblur tiles lie: SR's tile plan ([`crate::tiles`]) at 1:1; each tile's network
//! input, its window widened by [`CONTEXT`] pixels of the photo on every side and padded to the
//! network's multiple of 8 (the photo's edge repeated where the photo ends); the part of the
//! photo each tile owns (for the statistics); and which tiles `auto` runs first.

use crate::error::{Error, Result};
use crate::tiles::{AxisPlan, TilePlan};
use crate::Rgb16Image;

use super::{CONTEXT, MULTIPLE};

/// The deblur tiles' geometry (a copy of the plan: cheap, and shared by the threads).
#[derive(Clone, Debug)]
pub struct Geometry {
    plan: TilePlan,
    /// The network input's side: the tile's and [`CONTEXT`] on both sides, rounded up to
    /// [`MULTIPLE`].
    padded: (usize, usize),
}

impl Geometry {
    pub fn new(plan: &TilePlan) -> Geometry {
        let (w, h) = plan.tile_size();
        let side = |t: usize| (t + 2 * CONTEXT).next_multiple_of(MULTIPLE);
        Geometry {
            plan: plan.clone(),
            padded: (side(w), side(h)),
        }
    }

    pub fn count(&self) -> usize {
        self.plan.count()
    }

    /// The network's input (and output) shape, NCHW, the same for every tile.
    pub fn shape(&self) -> [usize; 4] {
        [1, 3, self.padded.1, self.padded.0]
    }

    /// Tile `i`'s window of the photo: x, y, width, height.
    pub fn window(&self, i: usize) -> [usize; 4] {
        self.plan.rect(i).input
    }

    /// Tile `i`'s network input: planar RGB in 0…1 of the padded shape. The window starts
    /// [`CONTEXT`] pixels in; around it lies the photo, and beyond the photo's edge its last
    /// column and row repeated (a continuation the network's convolutions handle like the photo's
    /// own edge, where zeros would be a dark border).
    pub fn input(&self, photo: &Rgb16Image, i: usize) -> Vec<f32> {
        let [x0, y0, _, _] = self.window(i);
        let (pw, ph) = self.padded;
        let (last_x, last_y) = (self.plan.x.len - 1, self.plan.y.len - 1);
        let at =
            |start: usize, k: usize, last: usize| (start + k).saturating_sub(CONTEXT).min(last);
        let plane = pw * ph;
        let mut data = vec![0f32; 3 * plane];
        for y in 0..ph {
            for x in 0..pw {
                let p = photo.get_pixel(at(x0, x, last_x) as u32, at(y0, y, last_y) as u32);
                for c in 0..3 {
                    data[c * plane + y * pw + x] = p.0[c] as f32 / 65535.0;
                }
            }
        }
        data
    }

    /// Tile `i`'s input without the padding: planar RGB in 0…1 of its window.
    pub fn window_input(&self, photo: &Rgb16Image, i: usize) -> Vec<f32> {
        self.crop(&self.input(photo, i))
            .expect("the input has the padded shape")
    }

    /// A network output of the padded shape, cut back to the tile's window (planar).
    pub fn crop(&self, output: &[f32]) -> Result<Vec<f32>> {
        let c = CONTEXT;
        let (pw, ph) = self.padded;
        let (w, h) = self.plan.tile_size();
        if output.len() != 3 * pw * ph {
            return Err(Error::Model(format!(
                "the deblur tile's output has {} values, expected 3×{ph}×{pw} (the input's shape)",
                output.len()
            )));
        }
        let mut out = Vec::with_capacity(3 * w * h);
        for ch in 0..3 {
            for y in c..c + h {
                let row = ch * pw * ph + y * pw + c;
                out.extend_from_slice(&output[row..row + w]);
            }
        }
        Ok(out)
    }

    /// The part of tile `i`'s window it owns, relative to the window: [x, y, width, height].
    /// Neighbouring tiles split their overlap at its middle, so the tiles' parts cover the
    /// photo exactly once.
    pub fn owned(&self, i: usize) -> [usize; 4] {
        let nx = self.plan.x.count();
        let [x0, y0, _, _] = self.window(i);
        let (ax, ay) = (owned(&self.plan.x, i % nx), owned(&self.plan.y, i / nx));
        [ax.0 - x0, ay.0 - y0, ax.1 - ax.0, ay.1 - ay.0]
    }

    /// The tiles to run first for a decision: every tile when the photo has at most `budget`
    /// pixels, else a grid of tiles spread evenly over the photo whose inputs add up to at most
    /// `budget` pixels (at least one tile), in tile order.
    pub fn sample(&self, budget: usize) -> Vec<usize> {
        let (nx, ny) = (self.plan.x.count(), self.plan.y.count());
        let (tw, th) = self.plan.tile_size();
        let k = (budget / (tw * th)).max(1);
        if self.plan.x.len * self.plan.y.len <= budget || k >= nx * ny {
            return (0..nx * ny).collect();
        }
        // The grid of at most k tiles with the most tiles, then the closest to the photo's shape.
        let aspect = |kx: usize, ky: usize| ((kx * ny) as f64 / (ky * nx) as f64).ln().abs();
        let (kx, ky) = (1..=nx.min(k))
            .map(|kx| (kx, ny.min(k / kx)))
            .max_by(|a, b| {
                (a.0 * a.1)
                    .cmp(&(b.0 * b.1))
                    .then(aspect(b.0, b.1).total_cmp(&aspect(a.0, a.1)))
            })
            .expect("at least one column");
        let spread = |k: usize, n: usize| (0..k).map(move |j| (2 * j + 1) * n / (2 * k));
        spread(ky, ny)
            .flat_map(|row| spread(kx, nx).map(move |col| row * nx + col))
            .collect()
    }
}

/// The input pixels tile `k` of an axis owns: from the middle of its overlap with the tile
/// before to the middle of its overlap with the tile after (the photo's ends for the end tiles).
fn owned(axis: &AxisPlan, k: usize) -> (usize, usize) {
    let s = &axis.starts;
    let boundary = |k: usize| (s[k] + axis.tile + s[k + 1]) / 2;
    let start = if k == 0 { 0 } else { boundary(k - 1) };
    let end = if k + 1 == s.len() {
        axis.len
    } else {
        boundary(k)
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(w: usize, h: usize, tile: usize) -> Geometry {
        Geometry::new(&TilePlan::new(w, h, w, h, tile, super::super::OVERLAP))
    }

    /// A photo whose red is 1000 + 100·x and green 1000 + 100·y.
    fn ramps(w: u32, h: u32) -> Rgb16Image {
        Rgb16Image::from_fn(w, h, |x, y| {
            image::Rgb([1000 + x as u16 * 100, 1000 + y as u16 * 100, 7])
        })
    }

    #[test]
    fn a_tile_sees_the_photo_around_it_and_the_edge_repeated_past_the_photo() {
        // Smaller than a tile: one tile of the whole photo; 13×10 and the context, 45×42, padded
        // to 48×48.
        let g = geometry(13, 10, 256);
        assert_eq!((g.count(), g.shape()), (1, [1, 3, 48, 48]));
        let photo = ramps(13, 10);
        let input = g.input(&photo, 0);
        let at = |c: usize, x: usize, y: usize| (input[c * 48 * 48 + y * 48 + x] * 65535.0).round();
        let c = CONTEXT;
        assert_eq!(at(0, c + 12, c + 3), 2200.0, "the window starts CONTEXT in");
        assert_eq!(at(0, 47, 3), 2200.0, "the last column repeats");
        assert_eq!(at(0, 0, 3), 1000.0, "the first column repeats");
        assert_eq!(at(1, c + 4, 47), 1900.0, "the last row repeats");
        // Cropping gives back the window exactly.
        let back = g.crop(&input).unwrap();
        assert_eq!(back.len(), 3 * 13 * 10);
        assert_eq!((back[12] * 65535.0).round(), 2200.0);
        assert_eq!((back[130 + 13 * 9] * 65535.0).round(), 1900.0);
        assert!(
            g.crop(&back).is_err(),
            "an output of another shape is refused"
        );
        // A tile inside a larger photo sees the photo's own pixels around its window.
        let g = geometry(600, 300, 256);
        assert_eq!(g.shape(), [1, 3, 256 + 2 * c, 256 + 2 * c]);
        let photo = ramps(600, 300);
        let [x0, ..] = g.window(1);
        assert!(x0 > c);
        let input = g.input(&photo, 1);
        assert_eq!(
            (input[0] * 65535.0).round(),
            1000.0 + (x0 - c) as f32 * 100.0
        );
    }

    #[test]
    fn the_owned_parts_cover_the_photo_exactly_once() {
        for (w, h) in [(700, 300), (256, 257), (1203, 999), (40, 30)] {
            let g = geometry(w, h, 256);
            let mut count = vec![0u8; w * h];
            for i in 0..g.count() {
                let [x0, y0, ..] = g.window(i);
                let [ox, oy, ow, oh] = g.owned(i);
                for y in y0 + oy..y0 + oy + oh {
                    for x in x0 + ox..x0 + ox + ow {
                        count[y * w + x] += 1;
                    }
                }
            }
            assert!(count.iter().all(|&c| c == 1), "{w}×{h}");
        }
    }

    #[test]
    fn a_large_photo_is_sampled_evenly_and_a_small_one_whole() {
        // 1000×1000: 1 MP, every tile.
        let g = geometry(1000, 1000, 256);
        assert_eq!(g.sample(1_000_000).len(), g.count());
        // 4000×3000 (12 MP): 15 tiles of 256² fit 1 MP; 5×3 of the 18×14.
        let g = geometry(4000, 3000, 256);
        let s = g.sample(1_000_000);
        assert!(s.len() <= 15 && s.len() >= 12, "{s:?}");
        assert!(s.len() * 256 * 256 <= 1_000_000);
        let nx = 18;
        let (cols, rows): (Vec<usize>, Vec<usize>) = s.iter().map(|i| (i % nx, i / nx)).unzip();
        // Spread over the photo: near each edge and the middle, never in one row or column.
        let span = |v: &[usize]| v.iter().max().unwrap() - v.iter().min().unwrap();
        assert!(span(&cols) >= 12 && span(&rows) >= 6, "{s:?}");
        assert!(
            s.windows(2).all(|p| p[0] < p[1]),
            "in tile order, no repeats"
        );
        // A tiny budget still runs one tile.
        assert_eq!(g.sample(10).len(), 1);
    }
}
