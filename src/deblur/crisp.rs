//! The first look `auto` takes at a photo, before any network runs: how many of its edges are
//! crisp. A photo with enough crisp edges in every direction is called sharp at once
//! ([`super::TAU_CRISP`]), and the deblur network is neither run on it nor, in the page, even
//! fetched; any other photo goes on to the network's own verdict ([`super::stats`]).
//!
//! An edge is a peak of the luma's central difference along one of four directions (0°, 90°,
//! 45°, 135°) whose luma spans at least [`MIN_RANGE`] levels within [`REACH`] pixels along that
//! direction. It is crisp when the difference across its middle pixel, |Y(p+d) − Y(p−d)| / 2,
//! is more than [`CRISP`] of that span: a one-pixel step gives 0.5; the same step blurred over
//! L pixels about 1/L. Motion blur softens only the edges across the streak, so the measure is
//! the smallest of the four directions' shares of crisp edges; a direction with fewer than
//! [`MIN_PEAKS`] edges counts as none crisp (a photo without edges is never called sharp).
//!
//! Measured on 8-bit levels, over the parts of the photo the first tiles own (the whole photo
//! up to a megapixel), leaving out the pixels within `REACH + 1` of the photo's border, exactly
//! as `models/deblur/evaluate.py` measures it (`stat_crisp`) when it calibrates the threshold.

use super::stats::{level, DIRECTIONS, LUMA};
use crate::Rgb16Image;

/// How far along a direction an edge's span is taken, each way (pixels): the largest blur the
/// network is trained for is 25 pixels long.
pub const REACH: usize = 12;
/// The least span (8-bit levels of luma) an edge must have: well above the noise of a photo.
pub const MIN_RANGE: f64 = 32.0;
/// The share of its span an edge must climb across one pixel's neighbours to be crisp.
pub const CRISP: f64 = 0.45;
/// The fewest edges a direction needs for its share to count.
pub const MIN_PEAKS: u64 = 20;

/// Counts per direction: add parts together with [`Edges::add`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Edges {
    peaks: [u64; 4],
    crisp: [u64; 4],
}

impl Edges {
    /// Counts the edges of `photo` centred in `region` = [x, y, width, height] (photo pixels).
    pub fn measure(photo: &Rgb16Image, region: [usize; 4]) -> Edges {
        let (w, h) = (photo.width() as usize, photo.height() as usize);
        let margin = REACH + 1;
        let [rx, ry, rw, rh] = region;
        assert!(rx + rw <= w && ry + rh <= h, "the region lies in the photo");
        // The pixels that may be an edge's middle, and the luma around them.
        let (x0, x1) = (rx.max(margin), (rx + rw).min(w.saturating_sub(margin)));
        let (y0, y1) = (ry.max(margin), (ry + rh).min(h.saturating_sub(margin)));
        let mut e = Edges::default();
        if x0 >= x1 || y0 >= y1 {
            return e;
        }
        let (bx, by) = (x0 - REACH, y0 - REACH);
        let (bw, bh) = (x1 + REACH - bx, y1 + REACH - by);
        let luma = luma(photo, [bx, by, bw, bh]);
        let at = |x: isize, y: isize| luma[(y as usize - by) * bw + (x as usize - bx)];
        for (d, &(dx, dy)) in DIRECTIONS.iter().enumerate() {
            let g = |x: isize, y: isize| (at(x + dx, y + dy) - at(x - dx, y - dy)).abs() / 2.0;
            for y in y0 as isize..y1 as isize {
                for x in x0 as isize..x1 as isize {
                    let here = g(x, y);
                    if here < g(x - dx, y - dy) || here <= g(x + dx, y + dy) {
                        continue;
                    }
                    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                    for t in -(REACH as isize)..=REACH as isize {
                        let v = at(x + t * dx, y + t * dy);
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                    let range = hi - lo;
                    if range >= MIN_RANGE {
                        e.peaks[d] += 1;
                        e.crisp[d] += (here / range > CRISP) as u64;
                    }
                }
            }
        }
        e
    }

    pub fn add(&mut self, other: &Edges) {
        for d in 0..4 {
            self.peaks[d] += other.peaks[d];
            self.crisp[d] += other.crisp[d];
        }
    }

    /// The smallest share of crisp edges over the four directions (0 when a direction has fewer
    /// than [`MIN_PEAKS`] edges).
    pub fn share(&self) -> f64 {
        (0..4)
            .map(|d| match self.peaks[d] {
                n if n < MIN_PEAKS => 0.0,
                n => self.crisp[d] as f64 / n as f64,
            })
            .fold(f64::INFINITY, f64::min)
    }
}

/// The luma of `photo` in `region` = [x, y, width, height], row-major: evaluate.py's 0.299 R +
/// 0.587 G + 0.114 B of the 8-bit levels, in f64, in that order.
pub(super) fn luma(photo: &Rgb16Image, region: [usize; 4]) -> Vec<f64> {
    let [rx, ry, rw, rh] = region;
    let mut luma = Vec::with_capacity(rw * rh);
    for y in ry..ry + rh {
        for x in rx..rx + rw {
            let p = photo.get_pixel(x as u32, y as u32).0;
            let levels = p.map(|v| level(v as f32 / 65535.0));
            luma.push(LUMA.iter().zip(levels).fold(0.0, |l, (k, v)| l + k * v));
        }
    }
    luma
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Squares of 60 and 200 (a checkerboard of side `cell`), each step softened over `soft`
    /// pixels along x only (`soft` 1: crisp steps).
    fn checks(w: u32, h: u32, cell: u32, soft: u32) -> Rgb16Image {
        let base = |x: i64, y: i64| {
            if ((x.div_euclid(cell as i64)) + (y.div_euclid(cell as i64))) % 2 == 0 {
                60.0
            } else {
                200.0
            }
        };
        Rgb16Image::from_fn(w, h, |x, y| {
            let v: f64 = (0..soft as i64)
                .map(|k| base(x as i64 + k - soft as i64 / 2, y as i64))
                .sum::<f64>()
                / soft as f64;
            let v = (v.round() as u16) * 257;
            image::Rgb([v, v, v])
        })
    }

    fn whole(p: &Rgb16Image) -> f64 {
        Edges::measure(p, [0, 0, p.width() as usize, p.height() as usize]).share()
    }

    #[test]
    fn crisp_squares_are_sharp_and_a_streak_across_them_is_not() {
        let sharp = whole(&checks(160, 120, 20, 1));
        assert!(sharp > 0.9, "{sharp}");
        // A horizontal streak of 8 pixels softens the vertical edges only: the 0° direction
        // has no crisp edge left, and the measure is the smallest direction's.
        let streaked = whole(&checks(160, 120, 20, 8));
        assert!(streaked < 0.05, "{streaked}");
    }

    #[test]
    fn a_flat_photo_has_no_edges_and_is_never_called_sharp() {
        let flat = Rgb16Image::from_pixel(100, 100, image::Rgb([30000, 30000, 30000]));
        assert_eq!(whole(&flat), 0.0);
        // Nor one too small to have a middle.
        assert_eq!(whole(&checks(20, 20, 5, 1)), 0.0);
    }

    #[test]
    fn parts_add_up_to_the_whole() {
        let p = checks(150, 110, 13, 2);
        let mut sum = Edges::default();
        for [x, y, w, h] in [[0, 0, 70, 50], [70, 0, 80, 50], [0, 50, 150, 60]] {
            sum.add(&Edges::measure(&p, [x, y, w, h]));
        }
        assert_eq!(sum, Edges::measure(&p, [0, 0, 150, 110]));
        assert!(sum.peaks.iter().all(|&n| n >= MIN_PEAKS), "{sum:?}");
    }
}
