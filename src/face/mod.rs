//! Faces: find them (YuNet), align each to the FFHQ template, restore, paste back.

pub mod align;
pub mod detect;
pub mod paste;
pub mod restore;

/// A detected face, in the photo's pixel coordinates.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Face {
    /// x, y, width, height.
    pub bbox: [f32; 4],
    /// Eyes (left and right as seen in the photo), nose tip, mouth corners (left, right).
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
}
