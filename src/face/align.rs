//! Alignment: the similarity transform (rotation, uniform scale, translation) that best maps a
//! face's 5 landmarks onto the FFHQ template, fitted by least squares as GFPGAN and CodeFormer
//! do, and the warps through it.

use crate::Rgb16Image;

use crate::resample::bilinear;

/// The FFHQ 5-point template for a 512×512 crop (GFPGAN's `face_template`).
pub const FFHQ_512: [[f32; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// `p' = [a −b; b a]·p + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// Least-squares fit of `dst ≈ S(src)`.
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Self {
        assert_eq!(src.len(), dst.len());
        let n = src.len() as f64;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
            (sx / n, sy / n)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (x, y) = (s[0] as f64 - msx, s[1] as f64 - msy);
            let (u, v) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
            num_a += x * u + y * v;
            num_b += x * v - y * u;
            den += x * x + y * y;
        }
        let den = den.max(1e-12);
        let (a, b) = (num_a / den, num_b / den);
        Similarity {
            a,
            b,
            tx: mdx - (a * msx - b * msy),
            ty: mdy - (b * msx + a * msy),
        }
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    pub fn inverse(&self) -> Self {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f64 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// `self` after `other`: `p ↦ self(other(p))`.
    pub fn compose(&self, other: &Similarity) -> Similarity {
        Similarity {
            a: self.a * other.a - self.b * other.b,
            b: self.b * other.a + self.a * other.b,
            tx: self.a * other.tx - self.b * other.ty + self.tx,
            ty: self.b * other.tx + self.a * other.ty + self.ty,
        }
    }

    /// Uniform scaling about the origin.
    pub fn scaling(s: f64) -> Similarity {
        Similarity {
            a: s,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        }
    }
}

/// The transform from photo coordinates to a `size`×`size` aligned crop.
pub fn to_template(landmarks: &[[f32; 2]; 5], size: usize) -> Similarity {
    let k = size as f32 / 512.0;
    let dst: Vec<[f32; 2]> = FFHQ_512.iter().map(|p| [p[0] * k, p[1] * k]).collect();
    Similarity::fit(landmarks, &dst)
}

/// Cuts the aligned `size`×`size` crop out of the photo (bilinear, edges replicated), as
/// interleaved RGB in 0…1. `m` maps photo coordinates to crop coordinates.
pub fn warp(img: &Rgb16Image, m: &Similarity, size: usize) -> Vec<[f32; 3]> {
    let inv = m.inverse();
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            let p = inv.apply([x as f64 + 0.5, y as f64 + 0.5]);
            out.push(bilinear(img, p[0] as f32, p[1] as f32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        let truth = Similarity {
            a: 1.7 * 0.3f64.cos(),
            b: 1.7 * 0.3f64.sin(),
            tx: 40.0,
            ty: -12.5,
        };
        let src: Vec<[f32; 2]> = FFHQ_512.to_vec();
        let dst: Vec<[f32; 2]> = src
            .iter()
            .map(|p| {
                let q = truth.apply([p[0] as f64, p[1] as f64]);
                [q[0] as f32, q[1] as f32]
            })
            .collect();
        let fit = Similarity::fit(&src, &dst);
        for (got, want) in [
            (fit.a, truth.a),
            (fit.b, truth.b),
            (fit.tx, truth.tx),
            (fit.ty, truth.ty),
        ] {
            assert!((got - want).abs() < 1e-3, "{fit:?} vs {truth:?}");
        }
        assert!((fit.scale() - 1.7).abs() < 1e-4);
    }

    #[test]
    fn inverse_and_compose_round_trip() {
        let m = Similarity {
            a: 0.8,
            b: -0.4,
            tx: 3.0,
            ty: 7.0,
        };
        let id = m.compose(&m.inverse());
        let p = id.apply([123.0, -45.0]);
        assert!((p[0] - 123.0).abs() < 1e-9 && (p[1] + 45.0).abs() < 1e-9);
    }
}
