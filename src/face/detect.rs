//! Face detection with YuNet (OpenCV Zoo, 2023mar): one 640×640 pass over a letterboxed copy of
//! the photo, decoding of its anchor-free stride-8/16/32 heads, score threshold and NMS.

use std::borrow::Borrow;

use crate::Rgb16Image;

use super::Face;
use crate::engine::Network;
use crate::error::{Error, Result};
use crate::resample;

/// YuNet's input side.
pub const SIZE: usize = 640;
const STRIDES: [usize; 3] = [8, 16, 32];
/// Default minimum score and NMS overlap.
pub const THRESHOLD: f32 = 0.7;
pub const NMS_IOU: f32 = 0.3;

/// YuNet with its thresholds; owns its network, or borrows one (`Detector<&Network>`).
pub struct Detector<N: Borrow<Network> = Network> {
    net: N,
    /// Minimum score (geometric mean of class and objectness).
    pub threshold: f32,
    /// IoU above which the weaker of two boxes is dropped.
    pub nms_iou: f32,
}

impl<N: Borrow<Network>> Detector<N> {
    pub fn new(net: N) -> Self {
        Detector {
            net,
            threshold: THRESHOLD,
            nms_iou: NMS_IOU,
        }
    }

    pub fn detect(&self, img: &Rgb16Image) -> Result<Vec<Face>> {
        detect(self.net.borrow(), img, self.threshold, self.nms_iou)
    }
}

/// Finds faces with a YuNet network, in the photo's coordinates.
pub fn detect(net: &Network, img: &Rgb16Image, threshold: f32, nms_iou: f32) -> Result<Vec<Face>> {
    let (input, factor) = prepare(img);
    let outputs = net.run(&[1, 3, SIZE, SIZE], input)?;
    let names = net.output_names();
    let named: Vec<(&str, &[f32])> = names
        .iter()
        .map(String::as_str)
        .zip(outputs.iter().map(|o| o.1.as_slice()))
        .collect();
    let mut faces = nms(decode(&named, threshold)?, nms_iou);
    for f in &mut faces {
        f.bbox.iter_mut().for_each(|v| *v *= factor);
        f.landmarks.iter_mut().flatten().for_each(|v| *v *= factor);
    }
    Ok(faces)
}

/// Letterboxes the photo into 640×640 (shrunk to fit, never enlarged; padded with black at the
/// right and bottom), as BGR 0…255 planes. Returns the factor that maps detections back.
pub fn prepare(img: &Rgb16Image) -> (Vec<f32>, f32) {
    let (w, h) = img.dimensions();
    let factor = (w.max(h) as f32 / SIZE as f32).max(1.0);
    let small;
    let src = if factor > 1.0 {
        let (sw, sh) = (
            (w as f32 / factor).round() as u32,
            (h as f32 / factor).round() as u32,
        );
        small = resample::rgb16(img, sw.clamp(1, SIZE as u32), sh.clamp(1, SIZE as u32));
        &small
    } else {
        img
    };
    let plane = SIZE * SIZE;
    let mut data = vec![0f32; 3 * plane];
    for (x, y, p) in src.enumerate_pixels() {
        let i = y as usize * SIZE + x as usize;
        for c in 0..3 {
            // BGR order, 0…255.
            data[(2 - c) * plane + i] = p.0[c] as f32 / 257.0;
        }
    }
    // Map back by the exact per-axis ratio (rounding made them differ slightly).
    let factor = if factor > 1.0 {
        w as f32 / src.width() as f32
    } else {
        1.0
    };
    (data, factor)
}

/// Decodes YuNet's outputs (`cls_8`, `obj_8`, `bbox_8`, `kps_8`, … per stride) into faces in
/// the 640×640 input's coordinates.
pub fn decode(outputs: &[(&str, &[f32])], threshold: f32) -> Result<Vec<Face>> {
    let get = |name: &str| {
        outputs
            .iter()
            .find(|o| o.0 == name)
            .map(|o| o.1)
            .ok_or_else(|| {
                Error::Model(format!(
                    "the face detector has no output '{name}' (is it YuNet 2023mar?)"
                ))
            })
    };
    let mut faces = Vec::new();
    for s in STRIDES {
        let (cls, obj, bbox, kps) = (
            get(&format!("cls_{s}"))?,
            get(&format!("obj_{s}"))?,
            get(&format!("bbox_{s}"))?,
            get(&format!("kps_{s}"))?,
        );
        let cols = SIZE / s;
        let cells = cols * cols;
        if cls.len() != cells || bbox.len() != 4 * cells || kps.len() != 10 * cells {
            return Err(Error::Model(format!(
                "unexpected YuNet output sizes at stride {s}"
            )));
        }
        let sf = s as f32;
        for i in 0..cells {
            let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let (c, r) = ((i % cols) as f32, (i / cols) as f32);
            let b = &bbox[4 * i..4 * i + 4];
            let (cx, cy) = ((c + b[0]) * sf, (r + b[1]) * sf);
            let (w, h) = (b[2].exp() * sf, b[3].exp() * sf);
            let k = &kps[10 * i..10 * i + 10];
            let landmarks = std::array::from_fn(|j| [(k[2 * j] + c) * sf, (k[2 * j + 1] + r) * sf]);
            faces.push(Face {
                bbox: [cx - w / 2.0, cy - h / 2.0, w, h],
                landmarks,
                score,
            });
        }
    }
    Ok(faces)
}

pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Greedy non-maximum suppression, strongest first.
pub fn nms(mut faces: Vec<Face>, max_iou: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(&k.bbox, &f.bbox) <= max_iou) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Face {
        Face {
            bbox: [x, 0.0, 10.0, 10.0],
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    #[test]
    fn nms_keeps_the_strongest_of_overlapping_boxes() {
        let kept = nms(vec![face(0.0, 0.7), face(1.0, 0.9), face(50.0, 0.8)], 0.3);
        assert_eq!(
            kept.iter().map(|f| f.score).collect::<Vec<_>>(),
            vec![0.9, 0.8]
        );
    }

    #[test]
    fn iou_of_disjoint_and_identical_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 1.0, 1.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 4.0, 4.0], &[0.0, 0.0, 4.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!((iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 2.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
