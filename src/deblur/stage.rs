//! The deblur stage of one photo as steps, for [`crate::RestoreJob`]: `auto`'s looks at the photo
//! ([`super::Looks`]) → the first tiles (a sample, all of them, or none when the looks decided) →
//! the decision → the rest of the tiles → the deblurred canvas. Tiles may arrive in any order;
//! the canvas is a sum of integers and the statistics are summed in tile order, so neither
//! depends on it.

use crate::error::{Error, Result};
use crate::upscale::TileJob;
use crate::Rgb16Image;

use super::tiles::Geometry;
use super::{DeblurMode, Looks, Stats, Verdict, OVERLAP, SAMPLE_PIXELS, TILE};

pub struct Stage {
    mode: DeblurMode,
    geometry: Geometry,
    /// The blend at 1:1: the network's scale is 1 and so is the output's, so each tile's output
    /// is copied into the canvas as it is (no resampling), weighted by the plan.
    canvas: TileJob,
    first: Vec<usize>,
    /// `auto`'s looks before the network: the crisp edges where the first tiles lie, and the
    /// periodicity of the photo's centre.
    looks: Looks,
    /// Each first tile's statistics, as it arrived.
    stats: Vec<Option<Stats>>,
    done: Vec<bool>,
    verdict: Option<Verdict>,
}

impl Stage {
    /// Plans the stage for `photo`: tiles of [`TILE`] (`tile` = 0: the photo in one piece, as
    /// the options' `tile` 0 asks of every stage). With `auto`, looks at the photo first
    /// ([`Looks`]): when that decides (crisp edges enough where its sample of tiles lies, or a
    /// periodic fine structure), no tile needs to run. `Off` has no stage: an error.
    pub fn new(photo: &Rgb16Image, mode: DeblurMode, tile: usize) -> Result<Stage> {
        if mode == DeblurMode::Off {
            return Err(Error::Invalid("deblur is off: there is no stage".into()));
        }
        let tile = if tile == 0 { 0 } else { TILE };
        let canvas = TileJob::new(photo.width(), photo.height(), 1.0, tile, OVERLAP, 1)?;
        let geometry = Geometry::new(canvas.plan());
        let n = geometry.count();
        let (mut first, mut looks) = ((0..n).collect::<Vec<_>>(), Looks::default());
        if mode == DeblurMode::Auto {
            first = geometry.sample(SAMPLE_PIXELS);
            looks = Looks::take(
                photo,
                first.iter().map(|&i| {
                    let ([x, y, _, _], [ox, oy, w, h]) = (geometry.window(i), geometry.owned(i));
                    [x + ox, y + oy, w, h]
                }),
            );
            if looks.screen().is_some() {
                first.clear(); // decided: no tile is needed
            }
        }
        Ok(Stage {
            mode,
            geometry,
            canvas,
            first,
            looks,
            stats: vec![None; n],
            done: vec![false; n],
            verdict: None,
        })
    }

    pub fn mode(&self) -> DeblurMode {
        self.mode
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn count(&self) -> usize {
        self.geometry.count()
    }

    /// The padded NCHW shape of every tile's input and output.
    pub fn shape(&self) -> [usize; 4] {
        self.geometry.shape()
    }

    /// The tiles to run before the decision.
    pub fn first(&self) -> &[usize] {
        &self.first
    }

    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    fn check(&self, i: usize) -> Result<()> {
        if i >= self.count() {
            return Err(Error::Invalid(format!("there is no deblur tile {i}")));
        }
        Ok(())
    }

    /// Tile `i`'s network input (planar, [`Stage::shape`]).
    pub fn input(&self, photo: &Rgb16Image, i: usize) -> Result<Vec<f32>> {
        self.check(i)?;
        Ok(self.geometry.input(photo, i))
    }

    /// Takes tile `i`'s network output (planar, [`Stage::shape`]): before the decision only a
    /// first tile, measured for it; after it only a tile still to run, when the photo is
    /// deblurred. `photo` is the photo the input was made from (still untouched).
    pub fn accept(&mut self, photo: &Rgb16Image, i: usize, output: &[f32]) -> Result<()> {
        self.check(i)?;
        if self.done[i] {
            return Err(Error::Invalid(format!(
                "deblur tile {i} has already been accepted"
            )));
        }
        match &self.verdict {
            None if !self.first.contains(&i) => {
                return Err(Error::Invalid(format!(
                    "deblur tile {i} is not one of the first: it runs after decide_deblur"
                )))
            }
            Some(v) if !v.applied => {
                return Err(Error::Invalid(
                    "the photo is not deblurred: no deblur tile is needed".into(),
                ))
            }
            _ => {}
        }
        let out = self.geometry.crop(output)?;
        if self.verdict.is_none() {
            let [_, _, w, h] = self.geometry.window(i);
            let input = self.geometry.window_input(photo, i);
            self.stats[i] = Some(Stats::measure(&input, &out, w, h, self.geometry.owned(i)));
        }
        self.canvas.accept(i, &out)?;
        self.done[i] = true;
        Ok(())
    }

    /// Decides once the first tiles are in (`on`: deblur; `auto`: not when its looks decided,
    /// with no first tile, else deblur when the residual is above [`super::TAU_R`]) and returns
    /// the tiles still to run: none when the photo stays as it is, or when every tile ran first.
    /// Asked again, it answers the same.
    pub fn decide(&mut self) -> Result<Vec<usize>> {
        if self.verdict.is_none() {
            let mut total = Stats::default();
            // In tile order, so that the sums do not depend on the order of arrival.
            for &i in &self.first {
                let s = self.stats[i].as_ref().ok_or_else(|| {
                    Error::Invalid(format!(
                        "deblur tile {i} has not arrived: the first tiles come before the decision"
                    ))
                })?;
                total.add(s);
            }
            self.verdict = Some(Verdict::decide(self.mode, self.looks, &total));
        }
        Ok(self.rest())
    }

    /// The tiles still to run after the decision (none before it, or when not deblurring).
    pub fn rest(&self) -> Vec<usize> {
        match &self.verdict {
            Some(v) if v.applied => (0..self.count()).filter(|&i| !self.done[i]).collect(),
            _ => vec![],
        }
    }

    /// Ends the stage: when the verdict deblurs, `photo` becomes the deblurred canvas (every
    /// tile must have arrived), or with a [`Verdict::strength`] under 1 that share of the way
    /// from the photo to it; otherwise it is not touched. Returns the verdict.
    pub fn finish(self, photo: &mut Rgb16Image) -> Result<Verdict> {
        self.ready()?;
        let verdict = self.verdict.expect("decided: ready() says so");
        if verdict.applied {
            let mut out = self.canvas.finish();
            if verdict.strength < 1.0 {
                blend(&mut out, photo, verdict.strength);
            }
            *photo = out;
        }
        Ok(verdict)
    }

    /// Whether [`Stage::finish`] would succeed.
    pub fn ready(&self) -> Result<()> {
        match &self.verdict {
            None => Err(Error::Invalid(
                "the deblur stage ends after its decision (decide_deblur)".into(),
            )),
            Some(v) if v.applied => match self.done.iter().position(|d| !d) {
                Some(i) => Err(Error::Invalid(format!(
                    "deblur tile {i} has not arrived: every tile comes before the end"
                ))),
                None => Ok(()),
            },
            Some(_) => Ok(()),
        }
    }
}

/// `out` ← `photo` + `a`·(`out` − `photo`), rounded; f32 as IEEE has it, so wasm and native agree.
fn blend(out: &mut Rgb16Image, photo: &Rgb16Image, a: f32) {
    assert_eq!(out.dimensions(), photo.dimensions());
    for (o, &p) in out.iter_mut().zip(photo.iter()) {
        let p = p as f32;
        *o = (p + a * (*o as f32 - p)).round().clamp(0.0, 65535.0) as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smooth ramps: no edge at all, so `auto`'s first look never calls it sharp.
    fn photo(w: u32, h: u32) -> Rgb16Image {
        Rgb16Image::from_fn(w, h, |x, y| {
            image::Rgb([(x * 60000 / w) as u16, (y * 60000 / h) as u16, 30000])
        })
    }

    /// Crisp squares of dark and light: sharp at first look.
    fn squares(w: u32, h: u32) -> Rgb16Image {
        Rgb16Image::from_fn(w, h, |x, y| {
            let v = if (x / 24 + y / 24) % 2 == 0 {
                12000
            } else {
                50000
            };
            image::Rgb([v, v, v])
        })
    }

    /// Runs tiles through `net` (a function of the padded input).
    fn run(stage: &mut Stage, p: &Rgb16Image, tiles: &[usize], net: &dyn Fn(&[f32]) -> Vec<f32>) {
        for &i in tiles {
            let out = net(&stage.input(p, i).unwrap());
            stage.accept(p, i, &out).unwrap();
        }
    }

    #[test]
    fn an_identity_network_leaves_auto_undecided_to_deblur_and_on_gives_the_photo_back() {
        let p = photo(600, 300);
        let mut auto = Stage::new(&p, DeblurMode::Auto, TILE).unwrap();
        assert!(auto.count() > 1 && auto.first().len() == auto.count());
        let first = auto.first().to_vec();
        run(&mut auto, &p, &first, &|x| x.to_vec());
        assert_eq!(auto.decide().unwrap(), Vec::<usize>::new());
        let mut kept = p.clone();
        let v = auto.finish(&mut kept).unwrap();
        assert!(
            !v.applied && v.residual == 0.0 && v.anisotropy == 1.0,
            "{v:?}"
        );
        assert_eq!(kept, p);
        // On applies it; an identity network then gives the photo back (the blend sums to one).
        let mut on = Stage::new(&p, DeblurMode::On, TILE).unwrap();
        let first = on.first().to_vec();
        run(&mut on, &p, &first, &|x| x.to_vec());
        assert!(on.decide().unwrap().is_empty());
        let mut out = Rgb16Image::new(1, 1);
        assert!(on.finish(&mut out).unwrap().applied);
        let worst = out
            .as_raw()
            .iter()
            .zip(p.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 2, "{worst}");
    }

    #[test]
    fn the_steps_come_in_order() {
        let p = photo(2000, 1000);
        let mut s = Stage::new(&p, DeblurMode::Auto, TILE).unwrap();
        let first = s.first().to_vec();
        assert!(first.len() < s.count(), "2 MP: a sample");
        let later = (0..s.count()).find(|i| !first.contains(i)).unwrap();
        let shape = s.shape();
        let zeros = vec![0.0; shape.iter().product()];
        let e = s.accept(&p, later, &zeros).unwrap_err().to_string();
        assert!(e.contains("not one of the first"), "{e}");
        assert!(s.decide().unwrap_err().to_string().contains("not arrived"));
        assert!(s.ready().is_err());
        // A network that blacks the photo out: a large residual, so auto deblurs everything.
        run(&mut s, &p, &first, &|x| vec![0.0; x.len()]);
        assert!(s
            .accept(&p, first[0], &zeros)
            .unwrap_err()
            .to_string()
            .contains("already"));
        let rest = s.decide().unwrap();
        assert_eq!(rest.len() + first.len(), s.count());
        assert_eq!(s.decide().unwrap(), rest, "asked again, the same answer");
        assert!(s.ready().unwrap_err().to_string().contains("not arrived"));
        assert!(s.accept(&p, s.count(), &zeros).is_err());
        assert!(
            s.accept(&p, rest[0], &zeros[1..]).is_err(),
            "a short output"
        );
        run(&mut s, &p, &rest, &|x| vec![0.0; x.len()]);
        s.ready().unwrap();
        let mut out = p.clone();
        let v = s.finish(&mut out).unwrap();
        assert!(v.applied && v.residual > 2.0, "{v:?}");
        assert!(out.as_raw().iter().all(|&v| v == 0));
    }

    #[test]
    fn a_partial_strength_takes_that_share_of_the_change() {
        let p = photo(40, 30);
        let mut out = Rgb16Image::from_pixel(40, 30, image::Rgb([0, 65535, 1000]));
        blend(&mut out, &p, 0.25);
        for (o, q) in out.pixels().zip(p.pixels()) {
            for (c, target) in [0f32, 65535.0, 1000.0].into_iter().enumerate() {
                let expect = q[c] as f32 + 0.25 * (target - q[c] as f32);
                assert!((o[c] as f32 - expect).abs() <= 0.5, "{} vs {expect}", o[c]);
            }
        }
    }

    #[test]
    fn auto_calls_a_photo_with_crisp_edges_sharp_without_running_a_tile() {
        let p = squares(700, 400);
        let mut auto = Stage::new(&p, DeblurMode::Auto, TILE).unwrap();
        assert!(auto.count() > 1 && auto.first().is_empty());
        auto.ready().unwrap_err();
        assert!(auto.decide().unwrap().is_empty());
        let mut kept = p.clone();
        let v = auto.finish(&mut kept).unwrap();
        assert!(
            v.screened == Some(super::super::Screen::Crisp) && !v.applied && v.crisp.unwrap() > 0.9,
            "{v:?}"
        );
        assert_eq!(kept, p);
        // `on` runs every tile, whatever the photo looks like; the smooth photo is no sharper
        // for `auto` than the network finds it.
        let on = Stage::new(&p, DeblurMode::On, TILE).unwrap();
        assert_eq!(on.first().len(), on.count());
        let smooth = Stage::new(&photo(700, 400), DeblurMode::Auto, TILE).unwrap();
        assert_eq!(smooth.first().len(), smooth.count());
    }

    #[test]
    fn off_has_no_stage() {
        assert!(Stage::new(&photo(10, 10), DeblurMode::Off, TILE).is_err());
    }
}
