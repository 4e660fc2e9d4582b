//! Old-photo repair: the damaged pixels of a photo (scratches, cracks, dust, spots), given as a
//! [`Mask`], filled from their surroundings at the photo's own resolution, before faces are
//! detected and the photo is upscaled, so that a crack neither hides a face nor gets sharpened.
//!
//! The mask is in the upright frame (after the photo's EXIF orientation) at the photo's exact
//! size; it is widened by [`DILATE`] pixels to take in a scratch's soft edge, and only the pixels
//! of the widened mask are written: every other pixel stays bit-exact. Defects a few pixels wide
//! (scratches, cracks, dust) are filled by Telea's fast marching ([`telea`]); wider holes (torn
//! corners, stains, large spots), which diffusion would blur, by patches of the photo around them
//! ([`patch`], PatchMatch as content-aware fill does), started from Telea's fill.
//! The mask comes from the user or from the damage detector ([`detect`]).

pub mod detect;
pub mod patch;
pub mod telea;

use crate::error::{Error, Result};
use crate::Rgb16Image;

/// How far the mask is widened before the fill, in pixels (a square): a drawn or detected mask
/// rarely covers the faint fringe of a scratch, and a fringe left behind shows as a ghost line.
pub const DILATE: usize = 1;

/// The radius of the neighbourhood each filled pixel is drawn from (`cv2.inpaint`'s
/// `inpaintRadius`).
pub const RADIUS: usize = 5;

/// Which pixels of a photo are damaged: row-major, in the photo's upright frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Mask {
    width: u32,
    height: u32,
    damaged: Vec<bool>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mask({}×{}, {} damaged)",
            self.width,
            self.height,
            self.count()
        )
    }
}

impl Mask {
    /// A mask from one value a pixel, row-major (a grayscale image's samples, or a page's
    /// brush layer): nonzero is damaged.
    pub fn new(width: u32, height: u32, values: &[u8]) -> Result<Mask> {
        if values.len() as u64 != width as u64 * height as u64 {
            return Err(Error::Invalid(format!(
                "a {width}×{height} repair mask has {} values, not {}",
                values.len(),
                width as u64 * height as u64
            )));
        }
        Ok(Mask {
            width,
            height,
            damaged: values.iter().map(|&v| v != 0).collect(),
        })
    }

    /// A mask from an image file (any format Unblur reads; its own EXIF orientation applied):
    /// a pixel is damaged where any colour channel is nonzero, unless it is fully transparent.
    pub fn decode(bytes: &[u8]) -> Result<Mask> {
        let image = crate::image_io::decode(bytes)?;
        let alpha = image.alpha.as_ref().map(|a| a.as_raw());
        let damaged = image
            .rgb
            .as_raw()
            .chunks_exact(3)
            .enumerate()
            .map(|(i, p)| p.iter().any(|&v| v != 0) && alpha.is_none_or(|a| a[i] != 0))
            .collect();
        Ok(Mask {
            width: image.width(),
            height: image.height(),
            damaged,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// How many pixels are marked damaged.
    pub fn count(&self) -> usize {
        self.damaged.iter().filter(|&&v| v).count()
    }

    /// Row-major, true where damaged.
    pub fn damaged(&self) -> &[bool] {
        &self.damaged
    }

    /// The mask must be the photo's size, in the same (upright) frame.
    pub fn check_fits(&self, width: u32, height: u32) -> Result<()> {
        if (self.width, self.height) == (width, height) {
            return Ok(());
        }
        let turned = if (self.width, self.height) == (height, width) {
            " (it is turned a quarter: draw the mask on the photo as it is shown, upright)"
        } else {
            ""
        };
        Err(Error::Invalid(format!(
            "the repair mask is {}×{} but the photo is {width}×{height} (upright, after its EXIF \
             orientation); the mask must be the photo's size{turned}",
            self.width, self.height
        )))
    }

    /// The mask widened by `by` pixels in every direction (a (2·by+1)² square).
    pub fn dilated(&self, by: usize) -> Mask {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut rows = vec![false; w * h];
        for y in 0..h {
            let row = &self.damaged[y * w..(y + 1) * w];
            for x in 0..w {
                let (a, b) = (x.saturating_sub(by), (x + by).min(w - 1));
                rows[y * w + x] = row[a..=b].iter().any(|&v| v);
            }
        }
        let mut damaged = vec![false; w * h];
        for y in 0..h {
            let (a, b) = (y.saturating_sub(by), (y + by).min(h - 1));
            for x in 0..w {
                damaged[y * w + x] = (a..=b).any(|yy| rows[yy * w + x]);
            }
        }
        Mask {
            width: self.width,
            height: self.height,
            damaged,
        }
    }
}

/// Repairs `rgb` where `mask` says it is damaged: the mask widened by [`DILATE`], then filled by
/// [`telea::inpaint`] with [`RADIUS`] and its wide parts again by [`patch::fill_wide`]. Pixels
/// outside the widened mask are not written. A mask of another size than the photo is an error
/// naming both sizes; so is one that, widened, leaves no pixel to fill from (the fill would
/// silently change nothing).
pub fn repair(rgb: &mut Rgb16Image, mask: &Mask) -> Result<()> {
    mask.check_fits(rgb.width(), rgb.height())?;
    if mask.count() == 0 {
        return Ok(());
    }
    let hole = mask.dilated(DILATE);
    if hole.damaged().iter().all(|&d| d) {
        return Err(Error::Invalid(format!(
            "the repair mask marks the whole photo (widened by {DILATE} px, as the fill widens \
             it): no undamaged pixel is left to fill it from; mark only the damage"
        )));
    }
    // Telea everywhere first: the whole fill of thin defects, and the coarse start of the wide.
    telea::inpaint(rgb, hole.damaged(), RADIUS);
    patch::fill_wide(rgb, hole.damaged());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_of_another_size_names_both_sizes() {
        let mask = Mask::new(4, 3, &[0; 12]).unwrap();
        let mut rgb = Rgb16Image::new(3, 4);
        let e = repair(&mut rgb, &mask).unwrap_err().to_string();
        assert!(
            e.contains("4×3") && e.contains("3×4") && e.contains("turned"),
            "{e}"
        );
        assert!(Mask::new(4, 3, &[0; 11]).is_err());
    }

    #[test]
    fn a_mask_that_leaves_nothing_to_fill_from_says_so_and_one_pixel_is_enough() {
        // 5×5, every pixel marked but a 3×3 block: widened by 1 px, its centre alone is left.
        let mut rgb = Rgb16Image::from_fn(5, 5, |x, y| {
            image::Rgb([x as u16 * 1000, y as u16 * 1000, 7])
        });
        let mut all = [255u8; 25];
        let e = repair(&mut rgb.clone(), &Mask::new(5, 5, &all).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("whole photo") && e.contains("mark only the damage"),
            "{e}"
        );
        for y in 1..4 {
            for x in 1..4 {
                all[y * 5 + x] = 0;
            }
        }
        repair(&mut rgb, &Mask::new(5, 5, &all).unwrap()).unwrap();
        // Filled from the one pixel left: every pixel takes the centre's colour.
        assert!(
            rgb.pixels().all(|p| p.0 == [2000, 2000, 7]),
            "{:?}",
            rgb.as_raw()
        );
    }

    #[test]
    fn dilation_widens_by_a_square() {
        let mut v = vec![0u8; 7 * 5];
        v[2 * 7 + 3] = 255;
        let d = Mask::new(7, 5, &v).unwrap().dilated(1);
        assert_eq!(d.count(), 9);
        assert!(d.damaged()[7 + 2] && d.damaged()[3 * 7 + 4] && !d.damaged()[2 * 7 + 1]);
    }

    #[test]
    fn a_decoded_mask_is_nonzero_and_not_transparent() {
        let img = image::RgbaImage::from_fn(3, 1, |x, _| match x {
            0 => image::Rgba([0, 0, 0, 255]),
            1 => image::Rgba([0, 9, 0, 255]),
            _ => image::Rgba([255, 255, 255, 0]),
        });
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let m = Mask::decode(&png).unwrap();
        assert_eq!(m.damaged(), &[false, true, false]);
    }
}
