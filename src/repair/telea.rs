//! Telea's inpainting by fast marching (A. Telea, "An Image Inpainting Technique Based on the Fast
//! Marching Method", J. Graphics Tools 9(1), 2004), as OpenCV implements it for
//! `cv2.inpaint(..., cv2.INPAINT_TELEA)` (`modules/photo/src/inpaint.cpp`): the same distance
//! solver, narrow band and order of filling (ties in arrival order), the same outside distances
//! within the radius, and the same weights (direction × distance⁻³ × level). What it leaves out is
//! OpenCV's normalised first-order term, which moves a value by at most √2 sample units (nothing
//! at 16 bits), and OpenCV's +½ before rounding. On a 16-bit channel it agrees with OpenCV to a
//! few units of 65535 (`tests` below checks it against a stored OpenCV result).
//!
//! Fast marching fills a thin defect from its rim inwards, each pixel a weighted mean of the
//! known pixels within the radius, weighted towards those along the normal to the rim: right for
//! scratches, cracks and dust a few pixels wide. Wide holes come out smooth and blurred: there
//! its fill is only the start of the patch-based one ([`super::patch`]).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::Rgb16Image;

const KNOWN: u8 = 0;
const BAND: u8 = 1;
const INSIDE: u8 = 2;
const CHANGE: u8 = 3;
/// The distance of pixels not reached (OpenCV's 1e6).
const FAR: f32 = 1.0e6;

/// Fills the pixels of `rgb` where `hole` is true (row-major, the image's size) from the pixels
/// around them within `radius`. Only those pixels are written.
pub fn inpaint(rgb: &mut Rgb16Image, hole: &[bool], radius: usize) {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    assert_eq!(hole.len(), w * h, "the hole is the image's size");
    let radius = radius.clamp(1, 100);
    // Work in a window around the hole: everything read lies within radius + 1 of it.
    let Some((x0, y0, x1, y1)) = bounds(hole, w, h) else {
        return;
    };
    let m = radius + 2;
    let (x0, y0) = (x0.saturating_sub(m), y0.saturating_sub(m));
    let (x1, y1) = ((x1 + m).min(w - 1), (y1 + m).min(h - 1));
    let mut g = Grid::new(rgb, hole, (x0, y0), (x1 - x0 + 1, y1 - y0 + 1));
    g.outside_distances(radius);
    g.fill(rgb, radius);
}

/// The smallest box holding every true pixel: (x0, y0, x1, y1), inclusive.
fn bounds(hole: &[bool], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let mut b: Option<(usize, usize, usize, usize)> = None;
    for y in 0..h {
        let row = &hole[y * w..(y + 1) * w];
        let (Some(first), Some(last)) = (row.iter().position(|&v| v), row.iter().rposition(|&v| v))
        else {
            continue;
        };
        b = Some(match b {
            None => (first, y, last, y),
            Some((a, b0, c, _)) => (a.min(first), b0, c.max(last), y),
        });
    }
    b
}

/// A queue entry: the smallest distance first, equal distances in the order they came (as
/// OpenCV's sorted list does), so the fill is the same as OpenCV's.
#[derive(PartialEq)]
struct Entry {
    t: f32,
    seq: u64,
    at: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.t.total_cmp(&other.t).then(self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: usize, t: f32) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            t,
            seq: self.seq,
            at,
        }));
    }

    fn pop(&mut self) -> Option<usize> {
        self.heap.pop().map(|Reverse(e)| e.at)
    }
}

/// The window with a border of one pixel on each side (OpenCV's layout): flags, distances, the
/// narrow band's first queue, and where the window lies in the image.
struct Grid {
    /// Padded width and height.
    w: usize,
    h: usize,
    /// The image pixel at padded (1, 1).
    origin: (usize, usize),
    f: Vec<u8>,
    t: Vec<f32>,
    /// The narrow band around the hole, in raster order.
    band: Vec<usize>,
}

impl Grid {
    fn new(rgb: &Rgb16Image, hole: &[bool], origin: (usize, usize), size: (usize, usize)) -> Grid {
        let iw = rgb.width() as usize;
        let (w, h) = (size.0 + 2, size.1 + 2);
        let mut f = vec![KNOWN; w * h];
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                if hole[(origin.1 + y - 1) * iw + origin.0 + x - 1] {
                    f[y * w + x] = INSIDE;
                }
            }
        }
        let mut t = vec![FAR; w * h];
        let mut band = Vec::new();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let i = y * w + x;
                if f[i] != INSIDE && [i - w, i - 1, i + 1, i + w].iter().any(|&n| f[n] == INSIDE) {
                    band.push(i);
                }
            }
        }
        for &i in &band {
            f[i] = BAND;
            t[i] = 0.0;
        }
        Grid {
            w,
            h,
            origin,
            f,
            t,
            band,
        }
    }

    fn interior(&self, i: usize) -> bool {
        let (y, x) = (i / self.w, i % self.w);
        y > 0 && x > 0 && y < self.h - 1 && x < self.w - 1
    }

    /// The distances outside the hole, up to the radius, negative (OpenCV's `icvCalcFMM` with
    /// `negate`): the level term of the weights compares them with the distances inside.
    fn outside_distances(&mut self, radius: usize) {
        let (w, h) = (self.w, self.h);
        // The hole dilated by a (2r+1)² square: separably, with running counts.
        let dilate = |src: &[bool], n: usize, step: usize, lines: usize, stride: usize| {
            let mut out = vec![false; src.len()];
            let mut count = vec![0u32; n + 1];
            for line in 0..lines {
                let at = |k: usize| line * stride + k * step;
                for k in 0..n {
                    count[k + 1] = count[k] + src[at(k)] as u32;
                }
                for k in 0..n {
                    let (a, b) = (k.saturating_sub(radius), (k + radius).min(n - 1));
                    out[at(k)] = count[b + 1] > count[a];
                }
            }
            out
        };
        let inside: Vec<bool> = self.f.iter().map(|&v| v == INSIDE).collect();
        let rows = dilate(&inside, w, 1, h, w);
        let near = dilate(&rows, h, w, w, 1);
        drop((inside, rows));
        // The ring to measure: near, not in the hole or the band, not the border.
        let mut o = vec![KNOWN; w * h];
        for i in 0..w * h {
            if near[i] && self.f[i] == KNOWN && self.interior(i) {
                o[i] = INSIDE;
            }
        }
        let mut q = Queue::default();
        for &i in &self.band {
            q.push(i, 0.0);
        }
        while let Some(p) = q.pop() {
            o[p] = CHANGE;
            for n in [p - w, p - 1, p + w, p + 1] {
                if o[n] == INSIDE {
                    let d = solve4(n, w, &o, &self.t);
                    self.t[n] = d;
                    o[n] = BAND;
                    q.push(n, d);
                }
            }
        }
        for (t, &flag) in self.t.iter_mut().zip(&o) {
            if flag == CHANGE {
                *t = -*t;
            }
        }
    }

    /// Marches into the hole from its rim, filling each pixel as it is reached.
    fn fill(&mut self, rgb: &mut Rgb16Image, radius: usize) {
        let w = self.w;
        let r = radius as isize;
        let mut q = Queue::default();
        for &i in &self.band {
            q.push(i, 0.0);
        }
        let iw = rgb.width() as usize;
        let (ox, oy) = self.origin;
        // The image index of padded index i (i is never on the border here).
        let img = |i: usize| (oy + i / w - 1) * iw + ox + i % w - 1;
        let px = rgb.as_mut();
        while let Some(p) = q.pop() {
            self.f[p] = KNOWN;
            for n in [p - w, p - 1, p + w, p + 1] {
                if self.f[n] != INSIDE {
                    continue;
                }
                let t = &mut self.t;
                let f = &self.f;
                let d = solve4(n, w, f, t);
                t[n] = d;
                let grad = |a: usize, b: usize| match (f[a] != INSIDE, f[b] != INSIDE) {
                    (true, true) => (t[a] - t[b]) * 0.5,
                    (true, false) => t[a] - t[n],
                    (false, true) => t[n] - t[b],
                    (false, false) => 0.0,
                };
                let (gx, gy) = (grad(n + 1, n - 1), grad(n + w, n - w));
                let (cy, cx) = ((n / w) as isize, (n % w) as isize);
                let mut sum = [0f32; 3];
                let mut s = 1.0e-20f32;
                for k in cy - r..=cy + r {
                    for l in cx - r..=cx + r {
                        if k <= 0 || l <= 0 || k >= self.h as isize - 1 || l >= w as isize - 1 {
                            continue;
                        }
                        let (ry, rx) = (cy - k, cx - l);
                        let len2 = rx * rx + ry * ry;
                        if len2 > r * r {
                            continue;
                        }
                        let j = k as usize * w + l as usize;
                        if f[j] == INSIDE {
                            continue;
                        }
                        let len2 = len2 as f64;
                        let dst = (1.0 / (len2 * len2.sqrt())) as f32;
                        let lev = 1.0 / (1.0 + (t[j] - d).abs());
                        let mut dir = rx as f32 * gx + ry as f32 * gy;
                        if dir.abs() <= 0.01 {
                            dir = 0.000001;
                        }
                        let wt = (dst * lev * dir).abs();
                        let v = &px[img(j) * 3..img(j) * 3 + 3];
                        for c in 0..3 {
                            sum[c] += wt * v[c] as f32;
                        }
                        s += wt;
                    }
                }
                let at = img(n) * 3;
                for c in 0..3 {
                    px[at + c] = (sum[c] / s).round().clamp(0.0, 65535.0) as u16;
                }
                self.f[n] = BAND;
                q.push(n, d);
            }
        }
    }
}

/// The distance at `n` from its four neighbours (OpenCV's `min4` of `FastMarching_solve`).
fn solve4(n: usize, w: usize, f: &[u8], t: &[f32]) -> f32 {
    let (up, down, left, right) = (n - w, n + w, n - 1, n + 1);
    solve(up, left, f, t)
        .min(solve(down, left, f, t))
        .min(solve(up, right, f, t))
        .min(solve(down, right, f, t))
}

/// The eikonal equation |∇T| = 1 solved from two neighbours (OpenCV's `FastMarching_solve`).
fn solve(a: usize, b: usize, f: &[u8], t: &[f32]) -> f32 {
    let (ta, tb) = (t[a] as f64, t[b] as f64);
    let m = ta.min(tb);
    let sol = match (f[a] != INSIDE, f[b] != INSIDE) {
        (true, true) if (ta - tb).abs() >= 1.0 => 1.0 + m,
        (true, true) => (ta + tb + (2.0 - (ta - tb) * (ta - tb)).sqrt()) * 0.5,
        (true, false) => 1.0 + ta,
        (false, true) => 1.0 + tb,
        (false, false) => 1.0 + m,
    };
    sol as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode16(bytes: &[u8]) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
        image::load_from_memory(bytes).unwrap().to_luma16()
    }

    /// Against OpenCV 5.1's `cv2.inpaint(channel, mask, 5, cv2.INPAINT_TELEA)` on each 16-bit
    /// channel of a 96×80 synthetic picture with scratches and specks, at the border too
    /// (`tests/data/repair/telea_reference.py` made the files).
    #[test]
    fn agrees_with_opencv_telea_on_16_bit_channels() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/repair/");
        let read = |name: &str| std::fs::read(format!("{dir}{name}")).unwrap();
        let photo = image::load_from_memory(&read("photo.png"))
            .unwrap()
            .to_rgb16();
        let mask = image::load_from_memory(&read("mask.png"))
            .unwrap()
            .to_luma8();
        let hole: Vec<bool> = mask.pixels().map(|p| p.0[0] != 0).collect();
        let mut ours = photo.clone();
        inpaint(&mut ours, &hole, 5);
        let mut worst = 0u16;
        let mut total = 0u64;
        for (c, name) in ["opencv_r.png", "opencv_g.png", "opencv_b.png"]
            .iter()
            .enumerate()
        {
            let theirs = decode16(&read(name));
            for (i, (a, b)) in ours.pixels().zip(theirs.pixels()).enumerate() {
                if hole[i] {
                    let d = a.0[c].abs_diff(b.0[0]);
                    worst = worst.max(d);
                    total += d as u64;
                } else {
                    assert_eq!(
                        a.0[c],
                        photo.as_raw()[i * 3 + c],
                        "a pixel outside was written"
                    );
                }
            }
        }
        let n = 3 * hole.iter().filter(|&&v| v).count() as u64;
        let mean = total as f64 / n as f64;
        // OpenCV adds up to √2 + ½ units to each pixel it fills; the rest is float order.
        assert!(
            worst <= 12 && mean <= 2.5,
            "worst {worst}, mean {mean:.2} units of 65535"
        );
    }

    #[test]
    fn fills_a_line_across_a_ramp_in_between() {
        // A horizontal ramp with a vertical scratch: the fill lies between its neighbours.
        let (w, h) = (40u32, 30u32);
        let mut img = Rgb16Image::from_fn(w, h, |x, _| image::Rgb([x as u16 * 1000; 3]));
        let hole: Vec<bool> = (0..w * h).map(|i| (19..=20).contains(&(i % w))).collect();
        for (i, p) in img.pixels_mut().enumerate() {
            if hole[i] {
                *p = image::Rgb([65535; 3]);
            }
        }
        inpaint(&mut img, &hole, 5);
        for y in 0..h {
            for x in 19..=20 {
                let v = img.get_pixel(x, y).0[0];
                assert!((17_000..=22_000).contains(&v), "({x},{y}) = {v}");
            }
        }
    }

    #[test]
    fn an_empty_hole_changes_nothing() {
        let img = Rgb16Image::from_fn(9, 7, |x, y| image::Rgb([x as u16, y as u16, 7]));
        let mut out = img.clone();
        inpaint(&mut out, &[false; 63], 3);
        assert_eq!(out, img);
    }

    #[test]
    fn a_hole_at_the_corners_is_filled() {
        let mut img = Rgb16Image::from_pixel(12, 10, image::Rgb([5000, 6000, 7000]));
        let mut hole = vec![false; 120];
        for i in [0, 11, 108, 119, 1, 12] {
            hole[i] = true;
            img.as_mut()[i * 3..i * 3 + 3].copy_from_slice(&[0, 0, 0]);
        }
        inpaint(&mut img, &hole, 3);
        assert!(img.pixels().all(|p| p.0 == [5000, 6000, 7000]));
    }
}
