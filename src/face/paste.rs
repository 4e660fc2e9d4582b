//! Paste-back: each restored face goes back into the upscaled photo through the inverse of its
//! alignment, under a soft elliptical mask built from its landmarks and feathered at the edge,
//! weighted by the face strength.

use crate::Rgb16Image;

use super::align::Similarity;
use super::restore::{FaceInput, FACE};

/// The mask, in template coordinates: an ellipse over the face found from the eyes and mouth
/// (in the template, roughly brow to chin and cheek to cheek), smooth over its outer quarter,
/// and fading out near the crop's border so that nothing outside the crop leaks in.
pub struct Mask {
    cx: f64,
    cy: f64,
    rx: f64,
    ry: f64,
}

impl Mask {
    /// From the face's landmarks mapped into the template.
    pub fn new(lm: &[[f64; 2]; 5]) -> Self {
        let eye = [(lm[0][0] + lm[1][0]) / 2.0, (lm[0][1] + lm[1][1]) / 2.0];
        let mouth = [(lm[3][0] + lm[4][0]) / 2.0, (lm[3][1] + lm[4][1]) / 2.0];
        let eyes = ((lm[1][0] - lm[0][0]).powi(2) + (lm[1][1] - lm[0][1]).powi(2)).sqrt();
        let drop = ((mouth[0] - eye[0]).powi(2) + (mouth[1] - eye[1]).powi(2)).sqrt();
        Mask {
            cx: (eye[0] + mouth[0]) / 2.0,
            cy: (eye[1] + mouth[1]) / 2.0,
            rx: 1.4 * eyes,
            ry: 1.55 * drop.max(0.8 * eyes),
        }
    }

    pub fn at(&self, u: f64, v: f64) -> f64 {
        let r = (((u - self.cx) / self.rx).powi(2) + ((v - self.cy) / self.ry).powi(2)).sqrt();
        let inside = smoothstep(1.0, 0.75, r);
        let border = 24.0;
        let edge = u.min(v).min(FACE as f64 - u).min(FACE as f64 - v);
        inside * smoothstep(0.0, border, edge)
    }
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Blends `face` (512×512, RGB 0…1) into `canvas`. `to_template` maps photo coordinates to the
/// template; `scale` is the canvas's size over the photo's.
pub fn paste(
    canvas: &mut Rgb16Image,
    face: &[[f32; 3]],
    to_template: &Similarity,
    scale: f64,
    mask: &Mask,
    strength: f32,
) {
    let m = to_template.compose(&Similarity::scaling(1.0 / scale));
    let inv = m.inverse();
    let corners = [
        [0.0, 0.0],
        [FACE as f64, 0.0],
        [0.0, FACE as f64],
        [FACE as f64, FACE as f64],
    ]
    .map(|c| inv.apply(c));
    let (w, h) = (canvas.width() as f64, canvas.height() as f64);
    let x0 = corners
        .iter()
        .map(|c| c[0])
        .fold(f64::MAX, f64::min)
        .floor()
        .clamp(0.0, w) as u32;
    let x1 = corners
        .iter()
        .map(|c| c[0])
        .fold(f64::MIN, f64::max)
        .ceil()
        .clamp(0.0, w) as u32;
    let y0 = corners
        .iter()
        .map(|c| c[1])
        .fold(f64::MAX, f64::min)
        .floor()
        .clamp(0.0, h) as u32;
    let y1 = corners
        .iter()
        .map(|c| c[1])
        .fold(f64::MIN, f64::max)
        .ceil()
        .clamp(0.0, h) as u32;
    for y in y0..y1 {
        for x in x0..x1 {
            let [u, v] = m.apply([x as f64 + 0.5, y as f64 + 0.5]);
            if !(0.0..FACE as f64).contains(&u) || !(0.0..FACE as f64).contains(&v) {
                continue;
            }
            let alpha = strength as f64 * mask.at(u, v);
            if alpha <= 0.0 {
                continue;
            }
            let f = sample(face, u, v);
            let p = canvas.get_pixel_mut(x, y);
            for (old, new) in p.0.iter_mut().zip(f) {
                let (o, n) = (*old as f64, new as f64 * 65535.0);
                *old = (o + alpha * (n - o)).round().clamp(0.0, 65535.0) as u16;
            }
        }
    }
}

/// Pastes a restored face back where its input was cut from.
pub fn paste_restored(
    canvas: &mut Rgb16Image,
    input: &FaceInput,
    restored: &[[f32; 3]],
    scale: f64,
    strength: f32,
) {
    paste(
        canvas,
        restored,
        &input.to_template,
        scale,
        &Mask::new(&input.landmarks),
        strength,
    );
}

fn sample(face: &[[f32; 3]], u: f64, v: f64) -> [f32; 3] {
    let (fx, fy) = ((u - 0.5).max(0.0), (v - 0.5).max(0.0));
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(FACE - 1), (y0 + 1).min(FACE - 1));
    let (ax, ay) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
    let at = |x: usize, y: usize| face[y * FACE + x];
    std::array::from_fn(|c| {
        let top = at(x0, y0)[c] * (1.0 - ax) + at(x1, y0)[c] * ax;
        let bottom = at(x0, y1)[c] * (1.0 - ax) + at(x1, y1)[c] * ax;
        top * (1.0 - ay) + bottom * ay
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::align::FFHQ_512;

    fn template_mask() -> Mask {
        Mask::new(&FFHQ_512.map(|p| [p[0] as f64, p[1] as f64]))
    }

    #[test]
    fn mask_covers_the_face_and_fades_out() {
        let m = template_mask();
        for p in FFHQ_512 {
            assert!(
                m.at(p[0] as f64, p[1] as f64) > 0.99,
                "landmark {p:?} not fully inside"
            );
        }
        assert_eq!(m.at(2.0, 2.0), 0.0);
        assert_eq!(m.at(256.0, 511.0), 0.0);
        let mid = m.at(256.0 + 0.87 * m.rx, m.cy);
        assert!(mid > 0.05 && mid < 0.95, "the edge is not feathered: {mid}");
    }

    #[test]
    fn paste_at_full_strength_replaces_the_face_centre_only() {
        let mut canvas = Rgb16Image::from_pixel(512, 512, image::Rgb([0, 0, 0]));
        let face = vec![[1.0f32; 3]; FACE * FACE];
        let id = Similarity::scaling(1.0);
        paste(&mut canvas, &face, &id, 1.0, &template_mask(), 1.0);
        assert_eq!(canvas.get_pixel(256, 300).0, [65535; 3]);
        assert_eq!(canvas.get_pixel(3, 3).0, [0; 3]);
        let mut half = Rgb16Image::from_pixel(512, 512, image::Rgb([0, 0, 0]));
        paste(&mut half, &face, &id, 1.0, &template_mask(), 0.5);
        assert_eq!(half.get_pixel(256, 300).0, [32768; 3]);
    }
}
