//! Finding the damage: Unblur's damage detector (`models/repair`, a small U-Net trained on
//! synthetic scratches, cracks, creases, fibres and dust drawn over clean photos) run once on a
//! copy of the photo of at most [`SAMPLE_PIXELS`], its per-pixel logits brought back to the photo's
//! size and thresholded at [`THRESHOLD`] into a [`Mask`].
//!
//! One copy, not tiles: the detector is cheap (~2.9 GMAC per megapixel); on a larger scan a 1-px
//! scratch is sub-pixel in the copy and the mask comes back a little wider than the scratch, which
//! the fill tolerates. The copy runs in horizontal bands of at most [`BAND_ROWS`] rows, each with
//! [`BAND_CONTEXT`] rows of the copy above and below ([`Plan::bands`]): the network's memory is
//! then a band's, not the whole copy's, and since the context covers its receptive field and the
//! bands start on its stride, the logits are the same as in one piece (tested). The bands are
//! independent: [`Search`] hands them out one by one, so the page runs one on each of its
//! inference workers at once (the suggestion's wait), and [`detect`] runs them in turn.
//!
//! Whether a photo is worth repairing at all is one policy, [`Damage::worth_repairing`], judged on
//! the detector's confident calls: a clean photo's false alarms (a catchlight, a bright thread)
//! stay below it, and `auto` then leaves the photo byte-identical to `off`.

use crate::engine::Network;
use crate::error::{Error, Result};
use crate::repair::Mask;
use crate::Rgb16Image;

/// The most pixels the detector's copy of the photo has.
pub const SAMPLE_PIXELS: usize = 1 << 20;

/// The copy's sides are padded (edges replicated) to a multiple of this: the detector's stride-2
/// stem and its three levels down (`models/repair/net.py`'s `MULTIPLE`).
pub const MULTIPLE: usize = 16;

/// The most rows of the copy one run of the detector gives logits for. The detector works at half
/// resolution from its first layer, so a band of 768 rows holds less memory than v0's full-
/// resolution 512; and a 4:3 megapixel (896 padded rows) is two bands, one for each of two workers.
pub const BAND_ROWS: usize = 768;

/// Rows of the copy above and below a band that the detector also sees: its receptive field
/// (a stride-2 stem, then 3×3 convolutions at four scales, three stride-2 levels) is ~80 rows
/// each way, but what reaches a logit from beyond 64 is nil: on the cracked dev print at 1 MP in
/// 3, 4 or 5 bands the logits equal the one piece's to 0.0005 at 64 rows (at 48, up to 1.0 apart,
/// 7 pixels flip; at 32, 52). A multiple of [`MULTIPLE`], so bands keep the stride's phase.
pub const BAND_CONTEXT: usize = 64;

/// The logit above which a pixel is damage: chosen by `bench/repair_eval.py --calibrate` on
/// training photos (the best IoU whose false alarms on clean photos stay under 0.15 % on average).
/// Not higher for the one old print it over-calls (0.74 %, an out-of-focus mooring rope exactly
/// like a scratch): at 5.5 that print comes under 0.5 % but its rope is still called and filled,
/// while the cracked print's wide crack is found in pieces and its fill leaves a grey ghost.
pub const THRESHOLD: f32 = 3.25;

/// How far the detector's mask is widened (a square) before it is shown and filled, besides the
/// fill's own [`crate::repair::DILATE`]: its calls hug a crack's bright core, and the soft fringe
/// they leave shows as a ghost of the crack after the fill (looked at on the cracked dev print:
/// gone at one pixel more, smeared wider at two).
pub const WIDEN: usize = 1;

/// The logit of the detector's confident calls, 2 above [`THRESHOLD`] (as `--calibrate` sets it):
/// whether a photo is worth repairing is judged on these alone (thin real lines — wires, frames,
/// pencils — draw many calls above [`THRESHOLD`] but few this sure; a crack through the emulsion
/// draws many).
pub const CONFIDENT: f32 = 5.25;

/// The smallest share of the photo's pixels called damage with confidence ([`CONFIDENT`]) for
/// `auto` to repair it and for the page to suggest it: chosen by `bench/repair_eval.py
/// --calibrate` above the confident calls on the calibration's clean photos.
pub const WORTH_REPAIRING: f64 = 0.0007;

/// Where the detector runs: the copy's size and its padded input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    width: usize,
    height: usize,
    copy_w: usize,
    copy_h: usize,
}

/// What the detector found.
#[derive(Clone, Debug, PartialEq)]
pub struct Damage {
    pub mask: Mask,
    /// The share of the photo's pixels marked damaged (0…1), the mask widened by [`WIDEN`].
    pub coverage: f64,
    /// The share called damage with confidence ([`CONFIDENT`]): what decides.
    pub confident: f64,
}

/// What `auto` found and did, for the front ends to report.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// The share of the photo's pixels found damaged (0…1).
    pub coverage: f64,
    /// Whether the photo was repaired ([`Damage::worth_repairing`]).
    pub repaired: bool,
}

impl Damage {
    pub fn report(&self) -> Report {
        Report {
            coverage: self.coverage,
            repaired: self.worth_repairing(),
        }
    }

    /// The one policy of when found damage is repaired unasked (`auto`) or offered (the page).
    pub fn worth_repairing(&self) -> bool {
        self.confident >= WORTH_REPAIRING
    }
}

impl Plan {
    /// The plan for a `width`×`height` photo: the copy keeps the aspect ratio, at most
    /// [`SAMPLE_PIXELS`], never larger than the photo.
    pub fn new(width: u32, height: u32) -> Plan {
        let (w, h) = (width.max(1) as usize, height.max(1) as usize);
        let s = ((SAMPLE_PIXELS as f64) / (w * h) as f64).sqrt().min(1.0);
        Plan {
            width: w,
            height: h,
            copy_w: ((w as f64 * s).round() as usize).max(1),
            copy_h: ((h as f64 * s).round() as usize).max(1),
        }
    }

    /// The detector's input shape, `[1, 3, H, W]`, padded to [`MULTIPLE`].
    pub fn shape(&self) -> [usize; 4] {
        [
            1,
            3,
            self.copy_h.next_multiple_of(MULTIPLE),
            self.copy_w.next_multiple_of(MULTIPLE),
        ]
    }

    /// The bands the detector runs on, as `(rows of the padded copy it sees, rows it gives)`,
    /// both `[start, end)`: the copy's padded rows split evenly into the fewest bands of at most
    /// [`BAND_ROWS`] (multiples of [`MULTIPLE`]), each seen with at least [`BAND_CONTEXT`] rows
    /// around it where the copy has them. Every band is seen through a window of the same height
    /// (shifted inwards at the copy's ends), so that the network's plan is built for one shape.
    pub fn bands(&self) -> Vec<([usize; 2], [usize; 2])> {
        self.bands_at_least(1)
    }

    /// As [`Plan::bands`], for front ends that run the bands on `workers` workers at once: aiming
    /// at a multiple of `workers` bands, so that each worker has as many rows to run (3 bands on 2
    /// workers take as long as 4). Bands are kept at least twice [`BAND_CONTEXT`] rows (the
    /// context then at most doubles the work), so a short copy gets fewer; the rows are split on
    /// the stride, so the count can come out one under the aim and the last band shorter.
    pub fn bands_at_least(&self, workers: usize) -> Vec<([usize; 2], [usize; 2])> {
        let [_, _, ph, _] = self.shape();
        let workers = workers.max(1);
        let n = (ph.div_ceil(BAND_ROWS).div_ceil(workers) * workers)
            .min(ph / (2 * BAND_CONTEXT))
            .max(1);
        let band = (ph / MULTIPLE).div_ceil(n) * MULTIPLE;
        let window = (band + 2 * BAND_CONTEXT).min(ph);
        (0..ph)
            .step_by(band)
            .map(|a| {
                let s0 = a.saturating_sub(BAND_CONTEXT).min(ph - window);
                ([s0, s0 + window], [a, (a + band).min(ph)])
            })
            .collect()
    }

    /// The detector's input: the photo resized (Lanczos) to the copy, planar RGB in 0…1, padded
    /// by replicating the last row and column.
    pub fn input(&self, photo: &Rgb16Image) -> Vec<f32> {
        let copy;
        let src = if (self.copy_w, self.copy_h) == (self.width, self.height) {
            photo
        } else {
            copy = crate::resample::rgb16(photo, self.copy_w as u32, self.copy_h as u32);
            &copy
        };
        let [_, _, ph, pw] = self.shape();
        let mut out = vec![0f32; 3 * ph * pw];
        for y in 0..ph {
            for x in 0..pw {
                let p = src.get_pixel(x.min(self.copy_w - 1) as u32, y.min(self.copy_h - 1) as u32);
                for c in 0..3 {
                    out[c * ph * pw + y * pw + x] = p.0[c] as f32 / 65535.0;
                }
            }
        }
        out
    }

    /// The mask from the detector's output (`[1, 1, H, W]` logits, the input's shape): the copy's
    /// logits sampled bilinearly at each photo pixel's centre, damaged where above 0.
    pub fn damage(&self, shape: &[usize], logits: &[f32]) -> Result<Damage> {
        let [_, _, ph, pw] = self.shape();
        if shape != [1, 1, ph, pw] || logits.len() != ph * pw {
            return Err(not_one_logit_a_pixel(shape, ph, pw));
        }
        let (sx, sy) = (
            self.copy_w as f32 / self.width as f32,
            self.copy_h as f32 / self.height as f32,
        );
        let at = |x: usize, y: usize| logits[y * pw + x];
        let mut values = Vec::with_capacity(self.width * self.height);
        let mut confident = 0usize;
        for y in 0..self.height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (self.copy_h - 1) as f32);
            let (y0, ay) = (fy.floor() as usize, fy.fract());
            let y1 = (y0 + 1).min(self.copy_h - 1);
            for x in 0..self.width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (self.copy_w - 1) as f32);
                let (x0, ax) = (fx.floor() as usize, fx.fract());
                let x1 = (x0 + 1).min(self.copy_w - 1);
                let top = at(x0, y0) * (1.0 - ax) + at(x1, y0) * ax;
                let bottom = at(x0, y1) * (1.0 - ax) + at(x1, y1) * ax;
                let logit = top * (1.0 - ay) + bottom * ay;
                values.push(u8::from(logit > THRESHOLD));
                confident += usize::from(logit > CONFIDENT);
            }
        }
        let mask = Mask::new(self.width as u32, self.height as u32, &values)?.dilated(WIDEN);
        let pixels = (self.width * self.height) as f64;
        Ok(Damage {
            coverage: mask.count() as f64 / pixels,
            confident: confident as f64 / pixels,
            mask,
        })
    }
}

/// The error for a detector output that is not one logit a pixel of its `h`×`w` input.
fn not_one_logit_a_pixel(shape: &[usize], h: usize, w: usize) -> Error {
    Error::Model(format!(
        "the damage detector gave {shape:?} for a {w}×{h} input; a damage detector gives one \
         logit a pixel, [1, 1, {h}, {w}]"
    ))
}

/// A damage detector takes one RGB image of any size and gives one logit a pixel.
pub fn check_model(net: &Network) -> Result<()> {
    let dims = net.input_shape();
    if dims.len() != 4 || dims[0].is_some_and(|n| n != 1) || dims[1] != Some(3) {
        return Err(Error::Model(format!(
            "a damage detector takes an RGB image of any size (input 1×3×H×W); this one takes \
             {}: it is not a damage detector",
            crate::pipeline::shape_text(&dims)
        )));
    }
    Ok(())
}

/// Runs `net` on the photo's copy, band by band, and returns what it found.
pub fn detect(net: &Network, photo: &Rgb16Image) -> Result<Damage> {
    let mut search = Search::new(photo, 1);
    for i in 0..search.band_count() {
        let (shape, out) = net
            .run(&search.band_shape(), search.band_input(i)?)?
            .swap_remove(0);
        search.accept(i, &shape, &out)?;
    }
    search.finish()
}

/// One photo's detection as independent runs of the network, one a band: [`detect`] runs them
/// one after another; the page hands them to its inference workers at once and gives the
/// outputs back here, in any order. The bands' logits make the copy's, as one piece would.
pub struct Search {
    plan: Plan,
    input: Vec<f32>,
    bands: Vec<([usize; 2], [usize; 2])>,
    logits: Vec<f32>,
    accepted: Vec<bool>,
}

impl Search {
    /// The photo's copy ([`Plan::input`]) in bands for `workers` workers ([`Plan::bands_at_least`]).
    pub fn new(photo: &Rgb16Image, workers: usize) -> Search {
        let plan = Plan::new(photo.width(), photo.height());
        let [_, _, ph, pw] = plan.shape();
        let bands = plan.bands_at_least(workers);
        Search {
            input: plan.input(photo),
            accepted: vec![false; bands.len()],
            logits: vec![0.0; ph * pw],
            bands,
            plan,
        }
    }

    pub fn band_count(&self) -> usize {
        self.bands.len()
    }

    /// `[1, 3, rows, W]`: every band's input has this shape (one plan for the network).
    pub fn band_shape(&self) -> [usize; 4] {
        let [n, c, _, pw] = self.plan.shape();
        let [s0, s1] = self.bands[0].0;
        [n, c, s1 - s0, pw]
    }

    /// Band `i`: the rows it sees and the rows it gives, or the error for a band there is not.
    fn band(&self, i: usize) -> Result<([usize; 2], [usize; 2])> {
        self.bands.get(i).copied().ok_or_else(|| {
            Error::Invalid(format!(
                "no damage detector band {i}: the photo has {}",
                self.bands.len()
            ))
        })
    }

    /// Band `i`'s input: its rows of the copy with their context, planar.
    pub fn band_input(&self, i: usize) -> Result<Vec<f32>> {
        let [_, _, ph, pw] = self.plan.shape();
        let ([s0, s1], _) = self.band(i)?;
        let mut band = Vec::with_capacity(3 * (s1 - s0) * pw);
        for c in 0..3 {
            band.extend_from_slice(&self.input[(c * ph + s0) * pw..(c * ph + s1) * pw]);
        }
        Ok(band)
    }

    /// Takes band `i`'s output (`[1, 1, rows, W]`, its input's rows): its own rows' logits.
    pub fn accept(&mut self, i: usize, shape: &[usize], out: &[f32]) -> Result<()> {
        let [_, _, rows, pw] = self.band_shape();
        let ([s0, _], [a, b]) = self.band(i)?;
        if shape != [1, 1, rows, pw] || out.len() != rows * pw {
            return Err(not_one_logit_a_pixel(shape, rows, pw));
        }
        self.logits[a * pw..b * pw].copy_from_slice(&out[(a - s0) * pw..(b - s0) * pw]);
        self.accepted[i] = true;
        Ok(())
    }

    /// The damage, once every band is in.
    pub fn finish(self) -> Result<Damage> {
        if let Some(i) = self.accepted.iter().position(|&a| !a) {
            return Err(Error::Invalid(format!(
                "the damage detector's band {i} of {} has not run",
                self.bands.len()
            )));
        }
        let [_, _, ph, pw] = self.plan.shape();
        self.plan.damage(&[1, 1, ph, pw], &self.logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_the_aspect_and_at_most_a_megapixel() {
        let p = Plan::new(4000, 3000);
        assert!(p.copy_w * p.copy_h <= SAMPLE_PIXELS + 4000);
        assert!(((p.copy_w as f64 / p.copy_h as f64) - 4.0 / 3.0).abs() < 0.01);
        assert_eq!(p.shape()[2] % MULTIPLE, 0);
        let small = Plan::new(301, 17);
        assert_eq!((small.copy_w, small.copy_h), (301, 17));
        assert_eq!(small.shape(), [1, 3, 32, 304]);
    }

    #[test]
    fn the_bands_cover_the_copy_once_on_the_stride_with_their_context() {
        for (w, h) in [
            (4000, 3000),
            (3000, 4000),
            (1024, 1024),
            (301, 17),
            (5000, 400),
        ] {
            let p = Plan::new(w, h);
            let [_, _, ph, _] = p.shape();
            let bands = p.bands();
            assert_eq!(bands.len(), ph.div_ceil(BAND_ROWS), "{w}×{h}");
            let window = bands[0].0[1] - bands[0].0[0];
            let mut next = 0;
            for ([s0, s1], [a, b]) in bands {
                assert_eq!(a, next, "{w}×{h}: contiguous");
                assert!(b - a <= BAND_ROWS && a % MULTIPLE == 0 && s0 % MULTIPLE == 0);
                assert_eq!(s1 - s0, window, "{w}×{h}: one shape");
                assert!(s0 <= a.saturating_sub(BAND_CONTEXT) && s1 >= (b + BAND_CONTEXT).min(ph));
                next = b;
            }
            assert_eq!(next, ph, "{w}×{h}: every row");
        }
    }

    #[test]
    fn more_bands_for_more_workers_still_cover_the_copy_once() {
        let p = Plan::new(1182, 887); // a 4:3 megapixel: 896 padded rows, 2 bands by size
        let ph = 887usize.next_multiple_of(MULTIPLE);
        assert_eq!(p.bands().len(), 2);
        for n in [1, 2, 3, 4, 8, 100] {
            let bands = p.bands_at_least(n);
            // as many as asked where the rows divide so; never fewer than by size, nor (but the
            // last) thinner than twice the context
            if n <= 8 {
                assert_eq!(bands.len(), n.max(2).min(ph / (2 * BAND_CONTEXT)), "{n}");
            }
            assert!(bands.len() >= 2 && bands.len() <= n.max(2), "{n}");
            let window = bands[0].0[1] - bands[0].0[0];
            let mut next = 0;
            for ([s0, s1], [a, b]) in bands {
                assert_eq!((a, s1 - s0), (next, window));
                assert!(a % MULTIPLE == 0 && s0 <= a.saturating_sub(BAND_CONTEXT));
                assert!(b - a >= 2 * BAND_CONTEXT || b == ph);
                assert!(s1 >= (b + BAND_CONTEXT).min(ph));
                next = b;
            }
            assert_eq!(next, ph);
        }
        // 3 bands by size (1,712 padded rows): 4 for 2 workers, 3 for 3
        let tall = Plan::new(600, 1700);
        assert_eq!(tall.bands().len(), 3);
        assert_eq!(tall.bands_at_least(2).len(), 4);
        assert_eq!(tall.bands_at_least(3).len(), 3);
        // a copy too short to share: one band, the whole copy
        let short = Plan::new(500, 40);
        assert_eq!(short.bands_at_least(4), vec![([0, 48], [0, 48])]);
    }

    #[test]
    fn a_search_takes_its_bands_in_any_order_and_only_all_of_them() {
        let photo = Rgb16Image::new(200, 400); // 400 rows: room for 3 bands of twice the context
        let search = |order: &[usize], bands: usize| {
            let mut s = Search::new(&photo, bands);
            let [_, _, rows, pw] = s.band_shape();
            for &i in order {
                // band i marks its first own row (row 0 of the copy for band 0) confidently
                let mut out = vec![-5.0f32; rows * pw];
                let (_, [a, _]) = s.bands[i];
                let [s0, _] = s.bands[i].0;
                out[(a - s0) * pw..(a - s0 + 1) * pw].fill(CONFIDENT + 1.0);
                s.accept(i, &[1, 1, rows, pw], &out)?;
            }
            s.finish()
        };
        let forwards = search(&[0, 1, 2], 3).unwrap();
        assert_eq!(forwards, search(&[2, 0, 1], 3).unwrap());
        assert!(forwards.mask.count() > 0);
        assert!(search(&[0, 2], 3).is_err(), "a band missing");
        let mut s = Search::new(&photo, 3);
        let [_, _, rows, pw] = s.band_shape();
        assert!(
            s.accept(3, &[1, 1, rows, pw], &vec![0.0; rows * pw])
                .is_err(),
            "no band 3"
        );
        assert!(s
            .accept(0, &[1, 1, rows - 8, pw], &vec![0.0; (rows - 8) * pw])
            .is_err());
    }

    #[test]
    fn logits_come_back_at_the_photo_size_where_positive() {
        // a 16×8 photo at its own size: the mask is exactly where the logits are positive
        let p = Plan::new(13, 7);
        let [_, _, ph, pw] = p.shape();
        let mut logits = vec![-5.0f32; ph * pw];
        logits[3 * pw + 4] = CONFIDENT + 1.0;
        let d = p.damage(&[1, 1, ph, pw], &logits).unwrap();
        // the one pixel, widened by WIDEN (a 3×3 square)
        assert_eq!(d.mask.count(), 9);
        assert!(d.mask.damaged()[3 * 13 + 4] && d.mask.damaged()[2 * 13 + 3]);
        assert!(!d.mask.damaged()[13 + 4]);
        assert!((d.coverage - 9.0 / 91.0).abs() < 1e-9 && (d.confident - 1.0 / 91.0).abs() < 1e-9);
        assert!(d.worth_repairing());
        assert!(p.damage(&[1, 3, ph, pw], &logits).is_err());
    }

    #[test]
    fn a_downscaled_copy_marks_the_matching_region_of_the_photo() {
        let p = Plan::new(2048, 1024); // the copy is 1448×724
        let [_, _, ph, pw] = p.shape();
        let mut logits = vec![-5.0f32; ph * pw];
        for y in 0..p.copy_h {
            for x in p.copy_w / 2..p.copy_w {
                logits[y * pw + x] = (THRESHOLD + CONFIDENT) / 2.0;
            }
        }
        let d = p.damage(&[1, 1, ph, pw], &logits).unwrap();
        assert!((d.coverage - 0.5).abs() < 0.002, "{}", d.coverage);
        assert!(!d.mask.damaged()[1021] && d.mask.damaged()[1025]);
        // marked, but none of it confidently: not worth a repair
        assert!(d.confident == 0.0 && !d.worth_repairing());
    }
}
