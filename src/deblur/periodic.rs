//! `auto`'s second look before the network: whether the photo's fine structure repeats with a
//! period, as it does in a photo that was enlarged (each original pixel spread over several by
//! the interpolation) or printed with a halftone screen and scanned. Such a photo looks soft, and
//! the network, which learned to undo camera blur at the photo's own resolution, "sharpens" it
//! into the grid underneath: a mosaic of the original pixels, the screen's dots amplified (seen
//! on the CodeFormer and GFPGAN test faces, where one enlarged face came out so blocky that YuNet
//! no longer found it). Its softness is the lack of resolution the super-resolution and face
//! stages are for, so `auto` leaves it to them ([`super::TAU_PERIODIC`]).
//!
//! The measure (after Popescu and Farid's resampling detector, "Exposing digital forgeries by
//! detecting traces of resampling", 2005: interpolation makes the second derivative's size
//! periodic): on the luma of the photo's centre, at most [`SIDE`]² pixels, per axis, the
//! absolute second difference along it, averaged over strips of [`STRIP`] lines across it
//! (enough to see a faint period, few enough that a slight rotation, as in an aligned face crop,
//! does not smear it); each strip's profile less its mean, under a Hann window, zero-padded to
//! the next power of two, gives a power spectrum, summed over the strips (rustfft's radix-4
//! alone: its planner, with every algorithm for every length, added 150 kB gzip to the page).
//! The peak between [`MIN_F`] and [`MAX_F`] cycles per pixel, over the median between
//! [`FLOOR_F`] and [`MAX_F`] (both leaving out the JPEG block grid's frequencies, j/8, which a
//! sharp or blurred JPEG shows alike). The photo's ratio S is the smaller axis's, when both
//! axes peak at the same period (within 10 %: enlargement and screens are alike both ways, a
//! brick wall or a fence is not), else 0. As `models/deblur/evaluate.py`'s `stat_periodic`
//! computes it, to float rounding (the FFT's, the window's, the order of sums: ~1e-15).
//!
//! Not seen: an enlargement by exactly 2, 4, 8 or 8/3 (2.67), whose period falls on the JPEG
//! grid's frequencies (left out), by less than about 2.2 or by 16 and more (periods past the
//! band). The faces that
//! showed the mosaic were enlarged by 2.5–7.6, as aligning a face crop does.

use rustfft::{algorithm::Radix4, num_complex::Complex, Fft, FftDirection};

use crate::Rgb16Image;

/// The side of the centre window measured (a 12 MP photo's enlargement is the same everywhere).
pub const SIDE: usize = 1024;
/// Lines per strip.
pub const STRIP: usize = 32;
/// The band searched for a peak, in cycles per pixel: periods from 2.2 up to (not including) 16
/// pixels.
pub const MIN_F: f64 = 1.0 / 16.0;
pub const MAX_F: f64 = 0.45;
/// The band's reference level starts here (below it lies the scene's own layout).
pub const FLOOR_F: f64 = 0.02;

/// S for `photo` (0 for one smaller than a strip either way).
pub fn measure(photo: &Rgb16Image) -> f64 {
    let (w, h) = (photo.width() as usize, photo.height() as usize);
    let (cw, ch) = (w.min(SIDE), h.min(SIDE));
    if cw < STRIP || ch < STRIP {
        return 0.0;
    }
    let y = super::crisp::luma(photo, [(w - cw) / 2, (h - ch) / 2, cw, ch]);
    let transposed: Vec<f64> = (0..cw * ch).map(|i| y[(i % ch) * cw + i / ch]).collect();
    let (sx, px) = axis(&y, cw, ch);
    let (sy, py) = axis(&transposed, ch, cw);
    if px.min(py) <= 0.0 || (px - py).abs() > 0.1 * px.max(py) {
        return 0.0;
    }
    sx.min(sy)
}

/// One axis, along the rows of the `w`×`h` row-major `y`: (peak power over the median, period).
fn axis(y: &[f64], w: usize, h: usize) -> (f64, f64) {
    let n = w - 2;
    let len = n.next_power_of_two();
    let fft = Radix4::new(len, FftDirection::Forward);
    // numpy's hanning(n)
    let hann: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos())
        .collect();
    let bins = len / 2 + 1;
    let mut power = vec![0f64; bins];
    let mut profile = vec![0f64; n];
    let mut buf = vec![Complex::new(0f64, 0f64); len];
    for r0 in (0..=h - STRIP).step_by(STRIP) {
        profile.iter_mut().for_each(|p| *p = 0.0);
        for r in r0..r0 + STRIP {
            let row = &y[r * w..(r + 1) * w];
            for (j, p) in profile.iter_mut().enumerate() {
                *p += (row[j + 2] - 2.0 * row[j + 1] + row[j]).abs();
            }
        }
        profile.iter_mut().for_each(|p| *p /= STRIP as f64);
        let mean = profile.iter().sum::<f64>() / n as f64;
        buf.fill(Complex::new(0.0, 0.0));
        for ((b, &p), &k) in buf.iter_mut().zip(&profile).zip(&hann) {
            *b = Complex::new((p - mean) * k, 0.0);
        }
        fft.process(&mut buf);
        for (pw, b) in power.iter_mut().zip(&buf) {
            *pw += b.norm_sqr();
        }
    }
    let f = |k: usize| k as f64 / len as f64;
    let jpeg = |k: usize| (1..=4).any(|j| (f(k) - j as f64 / 8.0).abs() < 2.0 / n as f64);
    let mut reference: Vec<f64> = (0..bins)
        .filter(|&k| f(k) > FLOOR_F && f(k) < MAX_F && !jpeg(k))
        .map(|k| power[k])
        .collect();
    let mut peak: Option<usize> = None;
    for k in (0..bins).filter(|&k| f(k) > MIN_F && f(k) < MAX_F && !jpeg(k)) {
        if peak.is_none_or(|p| power[k] > power[p]) {
            peak = Some(k);
        }
    }
    let Some(k) = peak else { return (0.0, 0.0) };
    let median = median(&mut reference);
    let ratio = if median > 0.0 { power[k] / median } else { 0.0 };
    (ratio, len as f64 / k as f64)
}

/// numpy's median: the middle value, or the mean of the two middle ones.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured scene: a value per pixel from a hash (fine detail at every pixel, as a photo
    /// at its own resolution has), softened a little.
    fn scene(w: u32, h: u32) -> Vec<f64> {
        let hash = |x: u32, y: u32| {
            let mut v = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
            v ^= v >> 15;
            v = v.wrapping_mul(0x2C1B_3C6D);
            v ^= v >> 12;
            (v % 1000) as f64 / 1000.0
        };
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let n = (hash(x, y) * 2.0 + hash(x + 1, y) + hash(x, y + 1)) / 4.0;
                60.0 + 140.0 * n
            })
            .collect()
    }

    fn photo(w: u32, h: u32, v: impl Fn(u32, u32) -> f64) -> Rgb16Image {
        Rgb16Image::from_fn(w, h, |x, y| {
            let l = (v(x, y).round().clamp(0.0, 255.0) as u16) * 257;
            image::Rgb([l, l, l])
        })
    }

    /// `small` enlarged `k` times by bilinear interpolation (pixel centres aligned).
    fn enlarge(small: &[f64], sw: u32, sh: u32, k: u32) -> Rgb16Image {
        photo(sw * k, sh * k, |x, y| {
            let fx = ((x as f64 + 0.5) / k as f64 - 0.5).clamp(0.0, (sw - 1) as f64);
            let fy = ((y as f64 + 0.5) / k as f64 - 0.5).clamp(0.0, (sh - 1) as f64);
            let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
            let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
            let (ax, ay) = (fx - x0 as f64, fy - y0 as f64);
            let at = |x: u32, y: u32| small[(y * sw + x) as usize];
            (at(x0, y0) * (1.0 - ax) + at(x1, y0) * ax) * (1.0 - ay)
                + (at(x0, y1) * (1.0 - ax) + at(x1, y1) * ax) * ay
        })
    }

    #[test]
    fn an_enlarged_photo_is_periodic_and_the_same_scene_at_its_size_is_not() {
        let (sw, sh) = (80, 64);
        let small = scene(sw, sh);
        let enlarged = measure(&enlarge(&small, sw, sh, 5));
        let big = scene(400, 320);
        let native = measure(&photo(400, 320, |x, y| big[(y * 400 + x) as usize]));
        assert!(enlarged > 50.0, "enlarged ×5: {enlarged}");
        assert!(native < 10.0, "native: {native}");
    }

    #[test]
    fn both_axes_must_repeat_at_the_same_period() {
        // Stripes over a textured scene: every 6 pixels both ways, a screen; every 6 along x and
        // every 9 along y, a lattice of two periods (a tiled wall, not an enlargement), though
        // each axis alone is as periodic.
        let s = scene(300, 300);
        let stripes = |v: u32, p: u32| if v % p < 2 { 60.0 } else { 0.0 };
        let at = |x: u32, y: u32| s[(y * 300 + x) as usize] * 0.6;
        let screen = measure(&photo(300, 300, |x, y| {
            at(x, y) + stripes(x, 6) + stripes(y, 6)
        }));
        let lattice = measure(&photo(300, 300, |x, y| {
            at(x, y) + stripes(x, 6) + stripes(y, 9)
        }));
        assert!(screen > 50.0, "screen: {screen}");
        assert_eq!(lattice, 0.0);
    }

    #[test]
    fn too_small_to_measure_is_zero() {
        assert_eq!(measure(&photo(20, 200, |_, _| 100.0)), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
