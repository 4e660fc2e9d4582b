//! Filling wide holes (a torn corner, a stain, a large spot) with pieces of the photo around them,
//! as content-aware fill does: PatchMatch (Barnes, Shechtman, Finkelstein & Goldman, "PatchMatch:
//! A Randomized Correspondence Algorithm for Structural Image Editing", SIGGRAPH 2009) inside the
//! coarse-to-fine expectation–maximisation of Wexler, Shechtman & Irani ("Space-Time Completion
//! of Video", PAMI 2007).
//!
//! Telea's diffusion ([`super::telea`]) is right for a defect a few pixels wide; across a wider
//! hole it draws the rim's colours inwards into a smooth blur where grass, fabric or a wall should
//! go on. Here each component of the hole's wide parts (see [`WIDE`]) is filled in a window around
//! it: each patch that touches it is matched to the most similar whole patch of the window that
//! touches no hole pixel, and each of its pixels becomes the mean of what the patches over it
//! found, weighted by how well each matched; repeated from a coarse copy (where the hole is a few
//! pixels across and Telea's fill is the start) to the photo's resolution. Only the wide parts'
//! pixels are written.
//!
//! Deterministic: the random search draws from a generator seeded by the component's place, so
//! the page and the CLI fill the same hole the same way.

use crate::Rgb16Image;

/// The hole's wide parts are its pixels within this distance (chessboard) of a pixel that lies
/// this many pixels or more from the nearest known one (rim pixels are 1): where the hole is at
/// least `2·WIDE − 1` pixels across, with its rim. Narrower defects, and a crack beyond the first
/// few pixels out of a stain, are Telea's.
pub const WIDE: u8 = 4;

/// The patch's radius: 7×7 patches.
const R: usize = 3;
const SIDE: usize = 2 * R + 1;

/// The window around a component: its box widened by this many times its larger side, at least
/// [`MIN_MARGIN`] pixels (more photo to draw from, for a cost that grows with the window).
const MARGIN_FACTOR: usize = 2;
const MIN_MARGIN: usize = 48;

/// The most pixels a window may have (the fill's memory is about 50 bytes a window pixel), and
/// the most a component's box may have: a hole larger than that (half a photo painted over) is
/// beyond what the photo around it can fill, and keeps Telea's fill.
const MAX_WINDOW: usize = 2 << 20;
const MAX_BOX: usize = MAX_WINDOW / 4;

/// Coarse levels go down until the hole is about a patch across there, at most this many.
const MAX_LEVELS: usize = 5;

/// EM iterations at the coarsest level and at the photo's resolution (linear between), and
/// PatchMatch passes per EM iteration.
const EM_COARSE: usize = 8;
const EM_FINE: usize = 2;
const PM_PASSES: usize = 3;

/// Fills the wide parts of `hole` (row-major, the photo's size) in `rgb`, which must already hold
/// a first guess there (Telea's fill): it is the start at the coarsest level. Returns how many
/// components of the wide parts were filled. No other pixel is written.
pub fn fill_wide(rgb: &mut Rgb16Image, hole: &[bool]) -> usize {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    assert_eq!(hole.len(), w * h, "the hole is the image's size");
    let depth = chessboard_depth(hole, w, h);
    let mut wide = wide_parts(hole, &depth, w, h);
    let mut filled = 0;
    for start in 0..w * h {
        if !wide[start] {
            continue;
        }
        let (pixels, bbox) = component(&mut wide, w, h, start);
        let deepest = pixels.iter().map(|&i| depth[i]).max().unwrap_or(0);
        if fill_component(rgb, hole, &pixels, bbox, deepest) {
            filled += 1;
        }
    }
    filled
}

/// The hole's wide parts: its pixels within [`WIDE`] (chessboard) of a pixel [`WIDE`] deep, so a
/// stain with its rim, and of a thin crack leaving it only the first few pixels (the rest of the
/// crack stays Telea's fill, and a crack network joining two stains does not make one window of
/// the whole photo).
fn wide_parts(hole: &[bool], depth: &[u8], w: usize, h: usize) -> Vec<bool> {
    let deep = super::Mask {
        width: w as u32,
        height: h as u32,
        damaged: depth.iter().map(|&d| d >= WIDE).collect(),
    };
    let mut near = deep.dilated(WIDE as usize).damaged;
    for (n, &in_hole) in near.iter_mut().zip(hole) {
        *n &= in_hole;
    }
    near
}

/// Each hole pixel's chessboard distance to the nearest known pixel (or the border, taken as
/// known), saturating at 255; 0 outside the hole. Two passes (Rosenfeld & Pfaltz).
fn chessboard_depth(hole: &[bool], w: usize, h: usize) -> Vec<u8> {
    let mut d: Vec<u8> = hole.iter().map(|&v| if v { 255 } else { 0 }).collect();
    let at = |d: &[u8], x: isize, y: isize| -> u8 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            0
        } else {
            d[y as usize * w + x as usize]
        }
    };
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            if d[i] == 0 {
                continue;
            }
            let m = [(-1, -1), (0, -1), (1, -1), (-1, 0)]
                .iter()
                .map(|&(dx, dy)| at(&d, x + dx, y + dy))
                .min()
                .unwrap();
            d[i] = d[i].min(m.saturating_add(1));
        }
    }
    for y in (0..h as isize).rev() {
        for x in (0..w as isize).rev() {
            let i = y as usize * w + x as usize;
            if d[i] == 0 {
                continue;
            }
            let m = [(1, 1), (0, 1), (-1, 1), (1, 0)]
                .iter()
                .map(|&(dx, dy)| at(&d, x + dx, y + dy))
                .min()
                .unwrap();
            d[i] = d[i].min(m.saturating_add(1));
        }
    }
    d
}

type Box4 = (usize, usize, usize, usize);

/// The 8-connected component of `wide` holding `start`, taken out of it: its pixels and its box
/// (x0, y0, x1, y1 inclusive).
fn component(wide: &mut [bool], w: usize, h: usize, start: usize) -> (Vec<usize>, Box4) {
    let mut pixels = vec![start];
    wide[start] = false;
    let mut bbox = (w, h, 0, 0);
    let mut next = 0;
    while next < pixels.len() {
        let i = pixels[next];
        next += 1;
        let (x, y) = (i % w, i / w);
        bbox = (bbox.0.min(x), bbox.1.min(y), bbox.2.max(x), bbox.3.max(y));
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let j = ny * w + nx;
                if wide[j] {
                    wide[j] = false;
                    pixels.push(j);
                }
            }
        }
    }
    (pixels, bbox)
}

/// One level of the window: the colours (0…1), which pixels are unknown (any hole pixel, whether
/// of this component or not: never a source), and which are this component's (re-estimated).
struct Level {
    w: usize,
    h: usize,
    px: Vec<[f32; 3]>,
    unknown: Vec<bool>,
    target: Vec<bool>,
}

impl Level {
    /// Half the size: colours the mean of 2×2 (edge pixels repeated), a pixel unknown or a target
    /// when any of its four is.
    fn down(&self) -> Level {
        let (w, h) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut out = Level {
            w,
            h,
            px: vec![[0.0; 3]; w * h],
            unknown: vec![false; w * h],
            target: vec![false; w * h],
        };
        for y in 0..h {
            for x in 0..w {
                let o = y * w + x;
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let i = (2 * y + dy).min(self.h - 1) * self.w + (2 * x + dx).min(self.w - 1);
                    for c in 0..3 {
                        out.px[o][c] += 0.25 * self.px[i][c];
                    }
                    out.unknown[o] |= self.unknown[i];
                    out.target[o] |= self.target[i];
                }
            }
        }
        out
    }

    /// The pixel at (x, y), clamped into the level.
    fn get(&self, x: isize, y: isize) -> [f32; 3] {
        let x = x.clamp(0, self.w as isize - 1) as usize;
        let y = y.clamp(0, self.h as isize - 1) as usize;
        self.px[y * self.w + x]
    }
}

/// A small, fast generator (xorshift64*): the random search needs no more.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `-r..=r`.
    fn offset(&mut self, r: usize) -> isize {
        (self.next() % (2 * r as u64 + 1)) as isize - r as isize
    }
}

/// Fills one component in a window around it; false when the component is over [`MAX_BOX`] or
/// the window has no whole known patch to draw from (then Telea's fill stays).
fn fill_component(
    rgb: &mut Rgb16Image,
    hole: &[bool],
    pixels: &[usize],
    bbox: Box4,
    deepest: u8,
) -> bool {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (bw, bh) = (bbox.2 - bbox.0 + 1, bbox.3 - bbox.1 + 1);
    if bw * bh > MAX_BOX {
        return false;
    }
    let mut margin = (MARGIN_FACTOR * bw.max(bh)).max(MIN_MARGIN);
    while margin > R + 1 && (bw + 2 * margin) * (bh + 2 * margin) > MAX_WINDOW {
        margin = margin * 3 / 4;
    }
    let (x0, y0) = (bbox.0.saturating_sub(margin), bbox.1.saturating_sub(margin));
    let (x1, y1) = ((bbox.2 + margin).min(w - 1), (bbox.3 + margin).min(h - 1));
    let (ww, wh) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut fine = Level {
        w: ww,
        h: wh,
        px: vec![[0.0; 3]; ww * wh],
        unknown: vec![false; ww * wh],
        target: vec![false; ww * wh],
    };
    for y in 0..wh {
        for x in 0..ww {
            let (i, o) = ((y0 + y) * w + x0 + x, y * ww + x);
            let p = rgb.get_pixel((x0 + x) as u32, (y0 + y) as u32).0;
            fine.px[o] = p.map(|v| v as f32 / 65535.0);
            fine.unknown[o] = hole[i];
        }
    }
    for &i in pixels {
        fine.target[(i / w - y0) * ww + i % w - x0] = true;
    }

    // The pyramid, down until the hole is about a patch across (the depth halves each level) and
    // while a level still holds patches to draw from.
    let mut levels = vec![fine];
    let mut depth = deepest as usize;
    while levels.len() < MAX_LEVELS && depth > R + 1 {
        let next = levels.last().unwrap().down();
        if next.w < 4 * SIDE || next.h < 4 * SIDE {
            break;
        }
        levels.push(next);
        depth = depth.div_ceil(2);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((bbox.1 * w + bbox.0) as u64 + 1));
    let n = levels.len();
    let mut coarser: Option<(Targets, Vec<(usize, usize)>)> = None;
    for li in (0..n).rev() {
        let sources = Sources::new(&levels[li]);
        if sources.list.is_empty() {
            return false;
        }
        let targets = Targets::new(&levels[li]);
        let mut field = match coarser.take() {
            None => targets
                .list
                .iter()
                .map(|_| sources.random(&mut rng))
                .collect::<Vec<_>>(),
            Some((coarse, coarse_field)) => {
                upsample_field(&coarse, &coarse_field, &targets, &sources, &mut rng)
            }
        };
        let em = if n == 1 {
            EM_FINE
        } else {
            EM_FINE + (EM_COARSE - EM_FINE) * li / (n - 1)
        };
        for _ in 0..em {
            let dist = patch_match(&levels[li], &targets, &mut field, &sources, &mut rng);
            levels[li].px = vote(&levels[li], &targets.list, &field, &dist);
        }
        if li > 0 {
            // The next level's start: its target pixels from this level's result.
            let (finer, coarser) = levels.split_at_mut(li);
            let (coarse, finer) = (&coarser[0], &mut finer[li - 1]);
            for y in 0..finer.h {
                for x in 0..finer.w {
                    let o = y * finer.w + x;
                    if finer.target[o] {
                        finer.px[o] = coarse.px[(y / 2) * coarse.w + x / 2];
                    }
                }
            }
        }
        coarser = Some((targets, field));
    }
    let fine = &levels[0];
    for &i in pixels {
        let o = (i / w - y0) * ww + i % w - x0;
        let v = fine.px[o].map(|c| (c.clamp(0.0, 1.0) * 65535.0).round() as u16);
        rgb.put_pixel((i % w) as u32, (i / w) as u32, image::Rgb(v));
    }
    true
}

/// Where a source patch may be centred: wholly inside the level and touching no unknown pixel.
struct Sources {
    w: usize,
    h: usize,
    ok: Vec<bool>,
    list: Vec<(usize, usize)>,
}

impl Sources {
    fn new(level: &Level) -> Sources {
        let (w, h) = (level.w, level.h);
        // Unknown pixels counted over each patch with a summed-area table.
        let mut sat = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            for x in 0..w {
                sat[(y + 1) * (w + 1) + x + 1] = level.unknown[y * w + x] as u32
                    + sat[y * (w + 1) + x + 1]
                    + sat[(y + 1) * (w + 1) + x]
                    - sat[y * (w + 1) + x];
            }
        }
        let mut ok = vec![false; w * h];
        let mut list = Vec::new();
        for y in R..h.saturating_sub(R) {
            for x in R..w.saturating_sub(R) {
                let (a, b) = (y - R, y + R + 1);
                let (c, d) = (x - R, x + R + 1);
                let count = sat[b * (w + 1) + d] + sat[a * (w + 1) + c]
                    - sat[a * (w + 1) + d]
                    - sat[b * (w + 1) + c];
                if count == 0 {
                    ok[y * w + x] = true;
                    list.push((x, y));
                }
            }
        }
        Sources { w, h, ok, list }
    }

    fn random(&self, rng: &mut Rng) -> (usize, usize) {
        self.list[(rng.next() % self.list.len() as u64) as usize]
    }

    fn valid(&self, x: isize, y: isize) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.w
            && (y as usize) < self.h
            && self.ok[y as usize * self.w + x as usize]
    }
}

/// The centres of the patches that touch a target pixel, row-major, and where each lies in that
/// list: built once a level, for its PatchMatch passes and for the next level's start.
struct Targets {
    w: usize,
    list: Vec<(usize, usize)>,
    /// For each pixel of the level, its place in `list`, or `u32::MAX`.
    index: Vec<u32>,
}

impl Targets {
    fn new(level: &Level) -> Targets {
        let list = target_centres(level);
        let mut index = vec![u32::MAX; level.w * level.h];
        for (k, &(x, y)) in list.iter().enumerate() {
            index[y * level.w + x] = k as u32;
        }
        Targets {
            w: level.w,
            list,
            index,
        }
    }

    /// The place in `list` of the target centred at (x, y), if one is.
    fn at(&self, x: usize, y: usize) -> Option<usize> {
        let k = self.index[y * self.w + x];
        (k != u32::MAX).then_some(k as usize)
    }
}

/// The centres of the patches that touch a target pixel, row-major.
fn target_centres(level: &Level) -> Vec<(usize, usize)> {
    let (w, h) = (level.w, level.h);
    let mut near = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if level.target[y * w + x] {
                for ny in y.saturating_sub(R)..=(y + R).min(h - 1) {
                    for nx in x.saturating_sub(R)..=(x + R).min(w - 1) {
                        near[ny * w + nx] = true;
                    }
                }
            }
        }
    }
    (0..w * h)
        .filter(|&i| near[i])
        .map(|i| (i % w, i / w))
        .collect()
}

/// The sum of squared differences between the patch at `t` (clamped into the level) and the
/// whole patch at `s`, given up once over `limit`.
fn distance(level: &Level, t: (usize, usize), s: (usize, usize), limit: f32) -> f32 {
    let mut sum = 0.0;
    for dy in -(R as isize)..=R as isize {
        let srow = (s.1 as isize + dy) as usize * level.w;
        for dx in -(R as isize)..=R as isize {
            let a = level.get(t.0 as isize + dx, t.1 as isize + dy);
            let b = level.px[srow + (s.0 as isize + dx) as usize];
            let (d0, d1, d2) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
            sum += d0 * d0 + d1 * d1 + d2 * d2;
        }
        if sum > limit {
            return sum;
        }
    }
    sum
}

/// PatchMatch over the targets: passes of propagation (from the left and upper neighbours, then,
/// on the way back, the right and lower) and random search in halving radii. Returns each
/// target's distance to its match.
fn patch_match(
    level: &Level,
    targets: &Targets,
    field: &mut [(usize, usize)],
    sources: &Sources,
    rng: &mut Rng,
) -> Vec<f32> {
    let w = level.w;
    let index = targets;
    let targets = &targets.list;
    let mut dist: Vec<f32> = targets
        .iter()
        .zip(field.iter())
        .map(|(&t, &s)| distance(level, t, s, f32::MAX))
        .collect();
    let search = level.w.max(level.h);
    for pass in 0..PM_PASSES {
        let forward = pass % 2 == 0;
        let step: isize = if forward { 1 } else { -1 };
        for n in 0..targets.len() {
            let k = if forward { n } else { targets.len() - 1 - n };
            let t = targets[k];
            let try_source = |s: (isize, isize), best: &mut (usize, usize), d: &mut f32| {
                if sources.valid(s.0, s.1) {
                    let s = (s.0 as usize, s.1 as usize);
                    if s != *best {
                        let e = distance(level, t, s, *d);
                        if e < *d {
                            *d = e;
                            *best = s;
                        }
                    }
                }
            };
            let (mut best, mut d) = (field[k], dist[k]);
            // Propagation: a neighbour's match, shifted back by the step between them.
            for (nx, ny) in [
                (t.0 as isize - step, t.1 as isize),
                (t.0 as isize, t.1 as isize - step),
            ] {
                if nx < 0 || ny < 0 || nx as usize >= w || ny as usize >= level.h {
                    continue;
                }
                if let Some(j) = index.at(nx as usize, ny as usize) {
                    let m = field[j];
                    let cand = (
                        m.0 as isize + t.0 as isize - nx,
                        m.1 as isize + t.1 as isize - ny,
                    );
                    try_source(cand, &mut best, &mut d);
                }
            }
            // Random search around the best so far.
            let mut r = search;
            while r >= 1 {
                let cand = (
                    best.0 as isize + rng.offset(r),
                    best.1 as isize + rng.offset(r),
                );
                try_source(cand, &mut best, &mut d);
                r /= 2;
            }
            field[k] = best;
            dist[k] = d;
        }
    }
    dist
}

/// Each target pixel the mean of what the patches over it found, weighted by how well each
/// matched: (1 + d / 2σ²)⁻⁴, σ² the 75th percentile of the distances (Wexler et al. weigh by
/// exp(−d / 2σ²); a rational weight is the same shape and, unlike `exp`, rounds alike in wasm and
/// natively, so the page and the CLI find the same patches).
fn vote(
    level: &Level,
    targets: &[(usize, usize)],
    field: &[(usize, usize)],
    dist: &[f32],
) -> Vec<[f32; 3]> {
    let (w, h) = (level.w, level.h);
    let mut sorted = dist.to_vec();
    sorted.sort_by(f32::total_cmp);
    let sigma2 = sorted[sorted.len() * 3 / 4].max(1e-6);
    let mut acc = vec![[0.0f32; 4]; w * h];
    for (k, &t) in targets.iter().enumerate() {
        let u = 1.0 + dist[k] / (2.0 * sigma2);
        let weight = (1.0 / (u * u * u * u)).max(1e-8);
        let s = field[k];
        for dy in -(R as isize)..=R as isize {
            let ty = t.1 as isize + dy;
            if ty < 0 || ty as usize >= h {
                continue;
            }
            for dx in -(R as isize)..=R as isize {
                let tx = t.0 as isize + dx;
                if tx < 0 || tx as usize >= w {
                    continue;
                }
                let o = ty as usize * w + tx as usize;
                if !level.target[o] {
                    continue;
                }
                let v = level.px[(s.1 as isize + dy) as usize * w + (s.0 as isize + dx) as usize];
                let a = &mut acc[o];
                a[0] += weight * v[0];
                a[1] += weight * v[1];
                a[2] += weight * v[2];
                a[3] += weight;
            }
        }
    }
    let mut out = level.px.clone();
    for (o, a) in acc.iter().enumerate() {
        if level.target[o] && a[3] > 0.0 {
            out[o] = [a[0] / a[3], a[1] / a[3], a[2] / a[3]];
        }
    }
    out
}

/// The next finer level's field from a coarser one's: each target takes the match of the coarse
/// target over it, doubled and shifted by its place in the 2×2, or a random source where that is
/// not one.
fn upsample_field(
    coarse: &Targets,
    coarse_field: &[(usize, usize)],
    targets: &Targets,
    sources: &Sources,
    rng: &mut Rng,
) -> Vec<(usize, usize)> {
    let coarse_h = coarse.index.len() / coarse.w;
    targets
        .list
        .iter()
        .map(|&(x, y)| {
            if let Some(j) = coarse.at((x / 2).min(coarse.w - 1), (y / 2).min(coarse_h - 1)) {
                let m = coarse_field[j];
                let cand = ((2 * m.0 + x % 2) as isize, (2 * m.1 + y % 2) as isize);
                if sources.valid(cand.0, cand.1) {
                    return (cand.0 as usize, cand.1 as usize);
                }
            }
            sources.random(rng)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured image: diagonal stripes of period 9 in two colours, with fine noise.
    fn stripes(w: u32, h: u32) -> Rgb16Image {
        Rgb16Image::from_fn(w, h, |x, y| {
            let phase = ((x + 2 * y) % 9) as f32 / 9.0;
            let v = (0.5 + 0.4 * (phase * std::f32::consts::TAU).sin()) * 65535.0;
            image::Rgb([v as u16, (v * 0.7) as u16, 20000])
        })
    }

    fn square_hole(w: usize, h: usize, x0: usize, y0: usize, side: usize) -> Vec<bool> {
        (0..w * h)
            .map(|i| (x0..x0 + side).contains(&(i % w)) && (y0..y0 + side).contains(&(i / w)))
            .collect()
    }

    fn psnr_in(a: &Rgb16Image, b: &Rgb16Image, hole: &[bool]) -> f64 {
        let (mut sum, mut n) = (0.0, 0);
        for ((p, q), &m) in a.pixels().zip(b.pixels()).zip(hole) {
            if m {
                for c in 0..3 {
                    let d = (p.0[c] as f64 - q.0[c] as f64) / 65535.0;
                    sum += d * d;
                }
                n += 3;
            }
        }
        10.0 * (1.0 / (sum / n as f64).max(1e-12)).log10()
    }

    #[test]
    fn depth_is_the_chessboard_distance_to_the_nearest_known_pixel() {
        let hole = square_hole(12, 12, 2, 2, 7);
        let d = chessboard_depth(&hole, 12, 12);
        assert_eq!(d[2 * 12 + 2], 1);
        assert_eq!(d[5 * 12 + 5], 4, "the centre of a 7×7 hole");
        assert_eq!(d[0], 0);
        // A hole touching the border: the outside counts as known.
        let edge = square_hole(12, 12, 0, 0, 3);
        assert_eq!(chessboard_depth(&edge, 12, 12)[0], 1);
    }

    #[test]
    fn patch_match_finds_the_exhaustive_searchs_nearest_patches() {
        // A reference: every source tried for every target (the search PatchMatch approximates).
        let img = Rgb16Image::from_fn(40, 40, |x, y| {
            let (x, y) = (x as f32, y as f32);
            let c = |a: f32, b: f32, p: f32| {
                ((0.5 + 0.45 * (a * x + b * y + p).sin()) * 65535.0) as u16
            };
            image::Rgb([c(0.5, 0.2, 0.0), c(0.13, 0.41, 1.0), c(0.29, -0.33, 2.0)])
        });
        let hole = square_hole(40, 40, 14, 14, 8);
        let level = Level {
            w: 40,
            h: 40,
            px: img
                .pixels()
                .map(|p| p.0.map(|v| v as f32 / 65535.0))
                .collect(),
            unknown: hole.clone(),
            target: hole,
        };
        let sources = Sources::new(&level);
        let targets = Targets::new(&level);
        let mut rng = Rng(7);
        let mut field: Vec<_> = targets.list.iter().map(|_| sources.list[0]).collect();
        let mut dist = Vec::new();
        for _ in 0..4 {
            dist = patch_match(&level, &targets, &mut field, &sources, &mut rng);
        }
        let mut exact = 0;
        for (k, &t) in targets.list.iter().enumerate() {
            let best = sources
                .list
                .iter()
                .map(|&s| distance(&level, t, s, f32::MAX))
                .fold(f32::MAX, f32::min);
            assert!(
                dist[k] >= best - 1e-4,
                "no better than the exhaustive search"
            );
            exact += (dist[k] <= best * 1.0001 + 1e-6) as usize;
        }
        eprintln!(
            "{exact} of {} targets found their nearest patch",
            targets.list.len()
        );
        assert!(
            exact * 100 >= targets.list.len() * 90,
            "{exact} of {} targets found their nearest patch",
            targets.list.len()
        );
    }

    #[test]
    fn a_wide_hole_in_a_texture_is_continued_not_blurred() {
        let clean = stripes(160, 120);
        let hole = square_hole(160, 120, 60, 40, 24);
        let mut telea = clean.clone();
        for (p, &m) in telea.pixels_mut().zip(&hole) {
            if m {
                *p = image::Rgb([65535, 65535, 65535]);
            }
        }
        super::super::telea::inpaint(&mut telea, &hole, 5);
        let mut patch = telea.clone();
        assert_eq!(fill_wide(&mut patch, &hole), 1);
        let (a, b) = (
            psnr_in(&telea, &clean, &hole),
            psnr_in(&patch, &clean, &hole),
        );
        eprintln!("24² hole in stripes: Telea {a:.1} dB, patches {b:.1} dB");
        assert!(
            b > a + 8.0 && b > 30.0,
            "Telea {a:.1} dB, patches {b:.1} dB"
        );
        // Nothing outside the hole written.
        for ((p, q), &m) in patch.pixels().zip(telea.pixels()).zip(&hole) {
            if !m {
                assert_eq!(p, q);
            }
        }
    }

    #[test]
    fn narrow_holes_are_left_to_telea_and_a_hole_with_nothing_to_draw_from_is_left() {
        let img = stripes(64, 64);
        // A 5×5 spot: depth 3 < WIDE.
        let line = square_hole(64, 64, 10, 20, 5);
        let mut out = img.clone();
        assert_eq!(fill_wide(&mut out, &line), 0);
        assert_eq!(out, img);
        let all = vec![true; 64 * 64];
        assert_eq!(fill_wide(&mut out, &all), 0);
        assert_eq!(out, img);
    }

    #[test]
    fn a_thin_crack_leaving_a_stain_stays_telea_s_beyond_the_stain() {
        let (w, h) = (200, 100);
        let mut hole = square_hole(w, h, 30, 40, 16);
        for x in 46..190 {
            for y in 47..49 {
                hole[y * w + x] = true; // a 2-px crack from the stain to the right
            }
        }
        let depth = chessboard_depth(&hole, w, h);
        let wide = wide_parts(&hole, &depth, w, h);
        assert!(wide[48 * w + 38], "the stain");
        assert!(wide[48 * w + 46], "the crack's first pixels");
        assert!(!wide[48 * w + 50], "the crack far from the stain");
        let img = stripes(w as u32, h as u32);
        let mut out = img.clone();
        assert_eq!(fill_wide(&mut out, &hole), 1);
        for x in 60..190 {
            assert_eq!(
                out.get_pixel(x, 48),
                img.get_pixel(x, 48),
                "the crack at x = {x}"
            );
        }
    }

    #[test]
    fn the_fill_is_deterministic() {
        let clean = stripes(120, 90);
        let hole = square_hole(120, 90, 50, 30, 16);
        let (mut a, mut b) = (clean.clone(), clean.clone());
        fill_wide(&mut a, &hole);
        fill_wide(&mut b, &hole);
        assert_eq!(a, b);
    }
}
