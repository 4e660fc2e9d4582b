//! The face stage: prepares each face's aligned input for a network and turns the network's
//! output back into a 512×512 restored face (RGB, 0…1), in template coordinates.
//!
//! Two ways to restore: a face model the user brings (GFPGAN/CodeFormer convention: RGB in
//! −1…1, a fixed 512² or 256² input), or, without one, the super-resolution model run on a crop
//! aligned at the face's own resolution, so that a small face gets the full ×4 treatment.

use crate::Rgb16Image;

use super::align::{to_template, warp, Similarity};
use super::Face;
use crate::resample;

/// Side of a restored face, in template pixels.
pub const FACE: usize = 512;

/// How faces are restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A face restoration model with a square input of this side (512 or 256).
    Model { size: usize },
    /// The super-resolution model, on a crop aligned at the face's own resolution.
    Sr,
}

impl Method {
    /// A face model's side when there is one, else the SR network.
    pub fn for_face_model(side: Option<usize>) -> Method {
        side.map_or(Method::Sr, |size| Method::Model { size })
    }
}

/// One face ready for the network.
#[derive(Clone, Debug)]
pub struct FaceInput {
    /// Photo coordinates → 512 template.
    pub to_template: Similarity,
    /// The network's input shape, NCHW.
    pub shape: [usize; 4],
    /// The network's input, planar.
    pub data: Vec<f32>,
    /// The face's landmarks in the template, for its paste-back mask.
    pub landmarks: [[f64; 2]; 5],
}

/// The side of the SR crop for a face: its resolution in the photo, in steps of 32 so that few
/// plan shapes are built, between 32 and 256.
pub fn sr_crop_side(face: &Face) -> usize {
    let k = to_template(&face.landmarks, FACE).scale(); // template px per photo px
    let native = FACE as f64 / k;
    ((native / 32.0).round() as usize * 32).clamp(32, 256)
}

pub fn prepare(photo: &Rgb16Image, face: &Face, method: Method) -> FaceInput {
    let (side, signed) = match method {
        Method::Model { size } => (size, true),
        Method::Sr => (sr_crop_side(face), false),
    };
    let m = to_template(&face.landmarks, side);
    let crop = warp(photo, &m, side);
    let plane = side * side;
    let mut data = vec![0f32; 3 * plane];
    for (i, p) in crop.iter().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = if signed { p[c] * 2.0 - 1.0 } else { p[c] };
        }
    }
    let to_template = Similarity::scaling(FACE as f64 / side as f64).compose(&m);
    let landmarks = face
        .landmarks
        .map(|p| to_template.apply([p[0] as f64, p[1] as f64]));
    FaceInput {
        to_template,
        shape: [1, 3, side, side],
        data,
        landmarks,
    }
}

/// A network value in the method's range (face models: −1…1, the SR network: 0…1) as 0…1.
fn to_unit(method: Method, v: f32) -> f32 {
    match method {
        Method::Model { .. } => (v + 1.0) / 2.0,
        Method::Sr => v,
    }
}

/// A face's network input as interleaved RGB in 0…1 (what the page shows as "before").
pub fn input_pixels(method: Method, input: &FaceInput) -> Vec<[f32; 3]> {
    let plane = input.shape[2] * input.shape[3];
    (0..plane)
        .map(|j| std::array::from_fn(|c| to_unit(method, input.data[c * plane + j])))
        .collect()
}

/// The network's output (NCHW, planar) as a 512×512 face, interleaved RGB in 0…1.
pub fn finish(method: Method, shape: &[usize], out: &[f32]) -> Vec<[f32; 3]> {
    let (h, w) = (shape[2], shape[3]);
    let plane = h * w;
    let px: Vec<[f32; 3]> = (0..plane)
        .map(|i| std::array::from_fn(|c| to_unit(method, out[c * plane + i]).clamp(0.0, 1.0)))
        .collect();
    if (w, h) == (FACE, FACE) {
        px
    } else {
        resample::rgb_f32(&px, w, h, FACE, FACE)
    }
}
