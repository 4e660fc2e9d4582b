//! Super-resolution over the tile plan. Each tile runs through the SR network at the network's
//! own scale, is resampled to the requested scale (Lanczos-3) over exactly the output window it
//! covers, and is blended into a 16-bit canvas with the plan's weights. Working memory is one
//! tile; only the canvas grows with the photo.
//!
//! The steps are separate (`input`, `accept`) so that the page can run tiles on other workers.

use crate::Rgb16Image;

use crate::engine::gpu::Accelerator;
use crate::engine::Network;
use crate::error::{Error, Result};
use crate::image_io::MAX_OUTPUT_PIXELS;
use crate::resample;
use crate::tiles::{AxisPlan, TilePlan, TileRect};
use crate::Observer;

/// Default tile side (input pixels), per front end, and the overlap between neighbouring tiles.
/// Natively 96² is 1.23× as fast per useful pixel as 64² (`bench/native.py`, "What the product's
/// choices won"), with the least memory of the larger sides; 128² and 192² were within 2 % of it
/// in the run of 2026-12-01 but took 0.94× and 0.87× of its time in that of 2026-12-07 (per
/// tile, one thread). The whole ×4 job (`unblur restore --faces off --deblur off --tile N`, two
/// threads, 3 alternating rounds, 2026-12-07) does not show that gain: medians for 96 / 128 /
/// 192 / 256 on a 0.32 MP photo 9.5 / 9.7 / 10.1 / 9.5 s, on a 0.7 MP one 18.7 / 17.2 / 17.5 /
/// 21.6 s, while the peak memory grows 195 → 249 → 388 → 420 MB (226 → 286 → 424 → 461): so 96²
/// stays, the least memory for no clear loss. In wasm throughput hardly depends on the tile side,
/// so the page takes 256² tiles, whose 16-pixel overlaps compute 1.14× the pixels they keep
/// where 96²'s compute 1.44×: the page's ×4 job on a 0.32 MP photo took 20.7 s instead of 28.1 s
/// (`bench/page_vs_ort.mjs`).
#[cfg(not(target_arch = "wasm32"))]
pub const TILE: usize = 96;
#[cfg(target_arch = "wasm32")]
pub const TILE: usize = 256;
pub const OVERLAP: usize = 16;

/// The scales a restoration offers (output side over input side). Above the network's own scale
/// the network's output is resampled (Lanczos-3) to the final size, as Real-ESRGAN's
/// `--outscale` does: ×6 is a ×4 network's output enlarged 1.5×, or a ×2 network's 3×. The page
/// reads this range from the core (its slider) as it reads `max_scale`.
pub const SCALES: std::ops::RangeInclusive<f32> = 1.0..=6.0;

/// `scale` is within [`SCALES`], or the error that says the range.
pub fn check_scale(scale: f32) -> Result<()> {
    if SCALES.contains(&scale) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "scale {scale} is not between {} and {}",
        SCALES.start(),
        SCALES.end()
    )))
}

/// The largest scale at which a `w`×`h` photo's output stays within `limit` pixels.
pub fn max_scale(w: u32, h: u32, limit: u64) -> f64 {
    (limit as f64 / (w as f64 * h as f64)).sqrt()
}

/// The output size for a photo at `scale`.
pub fn output_size(w: u32, h: u32, scale: f32) -> Result<(u32, u32)> {
    check_scale(scale)?;
    let (ow, oh) = (
        (w as f64 * scale as f64).round(),
        (h as f64 * scale as f64).round(),
    );
    if ow * oh > MAX_OUTPUT_PIXELS as f64 {
        return Err(Error::OutputTooLarge {
            width: ow as u64,
            height: oh as u64,
            max_scale: max_scale(w, h, MAX_OUTPUT_PIXELS),
        });
    }
    Ok((ow.max(1.0) as u32, oh.max(1.0) as u32))
}

/// The super-resolution network at denoise strength `denoise` (0…1): Real-ESRGAN's general model
/// mixed with its weak-denoise partner, every weight `denoise·general + (1 − denoise)·partner`;
/// the general model alone at 1, or when it has no partner.
pub fn sr_network(general: &[u8], partner: Option<&[u8]>, denoise: f32) -> Result<Network> {
    if !(0.0..=1.0).contains(&denoise) {
        return Err(Error::Invalid(format!(
            "denoise {denoise} is not between 0 and 1"
        )));
    }
    match partner {
        Some(p) if denoise < 1.0 => Network::interpolated(general, p, 1.0 - denoise),
        _ => Network::from_bytes(general),
    }
}

pub struct TileJob {
    plan: TilePlan,
    model_scale: usize,
    canvas: Rgb16Image,
    done: Vec<bool>,
}

impl TileJob {
    /// `tile` = 0: the whole photo in one piece.
    pub fn new(
        w: u32,
        h: u32,
        scale: f32,
        tile: usize,
        overlap: usize,
        model_scale: usize,
    ) -> Result<Self> {
        let (ow, oh) = output_size(w, h, scale)?;
        if tile != 0 && tile < 2 * overlap.max(8) {
            return Err(Error::Invalid(format!(
                "tile {tile} is too small for an overlap of {overlap}"
            )));
        }
        let plan = TilePlan::new(
            w as usize,
            h as usize,
            ow as usize,
            oh as usize,
            tile,
            overlap,
        );
        let done = vec![false; plan.count()];
        Ok(TileJob {
            plan,
            model_scale,
            canvas: Rgb16Image::new(ow, oh),
            done,
        })
    }

    pub fn count(&self) -> usize {
        self.plan.count()
    }

    /// The network input shape every tile has (NCHW).
    pub fn input_shape(&self) -> [usize; 4] {
        let (w, h) = self.plan.tile_size();
        [1, 3, h, w]
    }

    pub fn rect(&self, i: usize) -> TileRect {
        self.plan.rect(i)
    }

    pub fn plan(&self) -> &TilePlan {
        &self.plan
    }

    /// Tile `i`'s network input: planar RGB in 0…1.
    pub fn input(&self, photo: &Rgb16Image, i: usize) -> Vec<f32> {
        window_input(photo, self.plan.rect(i).input)
    }

    /// Blends tile `i`'s network output (planar, `model_scale` × the tile) into the canvas.
    pub fn accept(&mut self, i: usize, output: &[f32]) -> Result<TileRect> {
        let rect = self.plan.rect(i);
        let [ix, iy, tw, th] = rect.input;
        let ms = self.model_scale;
        let (sw, sh) = (tw * ms, th * ms);
        if output.len() != 3 * sw * sh {
            return Err(Error::Model(format!(
                "tile output has {} values, expected 3×{sw}×{sh} (is the model ×{ms}?)",
                output.len()
            )));
        }
        let [ox, oy, ow, oh] = rect.output;
        // Output pixel → network output pixel: out/out_len·len is input, ×ms is network output.
        let rx = self.plan.x.len as f64 / self.plan.x.out_len as f64 * ms as f64;
        let ry = self.plan.y.len as f64 / self.plan.y.out_len as f64 * ms as f64;
        let (left, top) = (
            ox as f64 * rx - (ix * ms) as f64,
            oy as f64 * ry - (iy * ms) as f64,
        );
        let patch: Vec<[f32; 3]> = if rx == 1.0 && ry == 1.0 {
            let (l, t) = (left as usize, top as usize);
            let plane = sw * sh;
            (0..oh)
                .flat_map(|y| (0..ow).map(move |x| (t + y) * sw + l + x))
                .map(|j| [output[j], output[plane + j], output[2 * plane + j]])
                .collect()
        } else {
            resample::planar_window(
                output,
                sw,
                sh,
                [left, top, ow as f64 * rx, oh as f64 * ry],
                ow,
                oh,
            )
        };
        let (wx, wy) = self.plan.weights(i);
        for y in 0..oh {
            for x in 0..ow {
                let w = wx[x] * wy[y];
                if w == 0.0 {
                    continue;
                }
                let p = self.canvas.get_pixel_mut((ox + x) as u32, (oy + y) as u32);
                let v = patch[y * ow + x];
                for (acc, value) in p.0.iter_mut().zip(v) {
                    *acc = acc.saturating_add((value.clamp(0.0, 1.0) * w * 65535.0).round() as u16);
                }
            }
        }
        self.done[i] = true;
        Ok(rect)
    }

    /// A window of the canvas as RGBA8 while tiles are still arriving: each pixel divided by the
    /// weight its finished tiles have given it so far, transparent where none has, so that a
    /// half-done overlap shows the finished tile instead of a dark seam.
    pub fn preview_rgba8(&self, x: usize, y: usize, w: usize, h: usize) -> Vec<u8> {
        let nx = self.plan.x.count();
        let (cols, rows) = (
            axis_weights(&self.plan.x, x, w),
            axis_weights(&self.plan.y, y, h),
        );
        let mut out = Vec::with_capacity(w * h * 4);
        for (yy, row) in rows.iter().enumerate() {
            for (xx, col) in cols.iter().enumerate() {
                let mut cover = 0.0f32;
                for &(ty, wy) in row {
                    for &(tx, wx) in col {
                        if self.done[ty * nx + tx] {
                            cover += wx * wy;
                        }
                    }
                }
                if cover < 1e-3 {
                    out.extend([0, 0, 0, 0]);
                    continue;
                }
                let p = self.canvas.get_pixel((x + xx) as u32, (y + yy) as u32).0;
                let v = p.map(|c| (c as f32 / 257.0 / cover).round().min(255.0) as u8);
                out.extend([v[0], v[1], v[2], 255]);
            }
        }
        out
    }

    pub fn canvas(&self) -> &Rgb16Image {
        &self.canvas
    }

    pub fn finish(self) -> Rgb16Image {
        self.canvas
    }
}

/// A window `[x0, y0, w, h]` of the photo as a network input: planar RGB in 0…1.
fn window_input(photo: &Rgb16Image, [x0, y0, w, h]: [usize; 4]) -> Vec<f32> {
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    for y in 0..h {
        for x in 0..w {
            let p = photo.get_pixel((x0 + x) as u32, (y0 + y) as u32).0;
            for c in 0..3 {
                data[c * plane + y * w + x] = p[c] as f32 / 65535.0;
            }
        }
    }
    data
}

/// For each output coordinate in `from..from + len`: the tiles along this axis touching it and
/// their weights.
fn axis_weights(axis: &AxisPlan, from: usize, len: usize) -> Vec<Vec<(usize, f32)>> {
    let mut out = vec![Vec::new(); len];
    for (i, (first, w)) in axis.spans.iter().enumerate() {
        let (lo, hi) = ((*first).max(from), (first + w.len()).min(from + len));
        for x in lo..hi {
            out[x - from].push((i, w[x - first]));
        }
    }
    out
}

/// The network's scale, read from the output shape of a small probe plan.
pub fn model_scale(net: &Network) -> Result<usize> {
    let fixed = net.input_shape();
    let (h, w) = match (
        fixed.get(2).copied().flatten(),
        fixed.get(3).copied().flatten(),
    ) {
        (Some(h), Some(w)) => (h, w),
        _ => (16, 16),
    };
    let plan = net.plan(&[1, 3, h, w])?;
    let fact = plan.model().output_fact(0)?;
    let oh = fact.shape.as_concrete().and_then(|s| s.get(2).copied());
    match oh {
        Some(oh) if oh % h == 0 && oh >= h => Ok(oh / h),
        _ => Err(Error::Model(
            "cannot tell the super-resolution model's scale".into(),
        )),
    }
}

/// How many threads run tiles: `requested` (0 = one per CPU), at most one per tile, and always
/// one on wasm32, which has no threads (the page spreads [`TileJob`] over its own workers).
pub fn worker_threads(requested: usize, tiles: usize) -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    let n = match requested {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    n.clamp(1, tiles.max(1))
}

/// Runs every tile of `job` through `net` and blends it in, on `threads` threads natively
/// ([`crate::workers`]; the blend is a sum of non-negative integers, so the bytes are the same
/// whatever the order), in order on one otherwise. While `gpu` is active the tiles run there,
/// one at a time (it is one device; CPU threads would only wait for it). Progress after each
/// tile; stops between tiles when cancelled.
pub fn run_tiles(
    job: &mut TileJob,
    photo: &Rgb16Image,
    net: &Network,
    gpu: &Accelerator,
    threads: usize,
    observer: &dyn Observer,
    on_tile: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let shape = job.input_shape();
    let n = job.count();
    let windows: Vec<[usize; 4]> = (0..n).map(|i| job.rect(i).input).collect();
    let threads = if gpu.active() {
        1
    } else {
        // Plan once, before the threads start, so that they do not all build it.
        net.plan(&shape)?;
        threads
    };
    let work = |i: usize| -> Result<Vec<f32>> {
        gpu.run(net, &shape, window_input(photo, windows[i]))?
            .into_iter()
            .next()
            .map(|(_, data)| data)
            .ok_or_else(|| Error::Model("the network has no output".into()))
    };
    let mut done = 0;
    crate::workers::run(n, threads, observer, &work, &mut |i, out| {
        job.accept(i, &out)?;
        done += 1;
        on_tile(done, n);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_limit_follows_device_memory_and_max_scale_fits_it() {
        use crate::image_io::{output_limit, MAX_OUTPUT_PIXELS};
        let (small, big, unknown) = (
            output_limit(Some(1.0)),
            output_limit(Some(8.0)),
            output_limit(None),
        );
        assert!(
            small < unknown && unknown < big && big < MAX_OUTPUT_PIXELS,
            "{small} {unknown} {big}"
        );
        // A 4000×3000 photo on a 1 GB phone: the largest scale that fits, and just above it.
        let s = max_scale(4000, 3000, small);
        let px = |s: f64| (4000.0 * s).round() * (3000.0 * s).round();
        assert!(
            px(s - 0.01) <= small as f64 && px(s + 0.01) > small as f64,
            "{s}"
        );
        assert!(output_size(5000, 4000, 4.0).is_err() && output_size(5000, 4000, 2.0).is_ok());
    }

    #[test]
    fn preview_shows_finished_tiles_at_full_brightness() {
        let mut job = TileJob::new(200, 100, 1.0, 96, 16, 1).unwrap();
        assert!(job.count() >= 3);
        let grey = vec![0.5f32; 3 * 96 * 96];
        job.accept(0, &grey).unwrap();
        let [ox, oy, ow, oh] = job.rect(0).output;
        let px = job.preview_rgba8(ox, oy, ow, oh);
        // Every pixel tile 0 touches shows grey (127/128), opaque — even in its fading overlap.
        for p in px.chunks(4) {
            assert_eq!(p[3], 255);
            assert!(p[0].abs_diff(128) <= 1, "{p:?}");
        }
        // Pixels only later tiles touch are transparent.
        let right = job.preview_rgba8(199, 0, 1, 1);
        assert_eq!(right[3], 0);
    }
}
