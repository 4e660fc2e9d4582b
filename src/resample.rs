//! High-quality resampling (Lanczos-3, by `fast_image_resize`) of the few pixel layouts the
//! pipeline uses, and the bilinear sampler used by the face warps.

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::F32x3;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{ImageBuffer, Luma};

use crate::Rgb16Image;

fn lanczos() -> ResizeOptions {
    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
}

/// Resizes 16-bit RGB.
pub fn rgb16(img: &Rgb16Image, w: u32, h: u32) -> Rgb16Image {
    let mut dst = Rgb16Image::new(w, h);
    Resizer::new()
        .resize(img, &mut dst, &lanczos())
        .expect("same pixel type");
    dst
}

/// Resizes a 16-bit single-channel plane (alpha).
pub fn luma16(
    img: &ImageBuffer<Luma<u16>, Vec<u16>>,
    w: u32,
    h: u32,
) -> ImageBuffer<Luma<u16>, Vec<u16>> {
    let mut dst = ImageBuffer::new(w, h);
    Resizer::new()
        .resize(img, &mut dst, &lanczos())
        .expect("same pixel type");
    dst
}

/// Resamples a planar (CHW) RGB f32 image: the source window `crop` (left, top, width, height,
/// in source pixels, fractional allowed) onto `w`×`h` pixels, returned interleaved (HWC).
pub fn planar_window(
    chw: &[f32],
    sw: usize,
    sh: usize,
    crop: [f64; 4],
    w: usize,
    h: usize,
) -> Vec<[f32; 3]> {
    let plane = sw * sh;
    let px: Vec<F32x3> = (0..plane)
        .map(|i| F32x3::new([chw[i], chw[plane + i], chw[2 * plane + i]]))
        .collect();
    let src = TypedImageRef::new(sw as u32, sh as u32, &px).expect("buffer matches size");
    let mut dst = TypedImage::<F32x3>::new(w as u32, h as u32);
    // Rounding can push the window a hair past the source: clamp it in.
    let (left, top) = (crop[0].clamp(0.0, sw as f64), crop[1].clamp(0.0, sh as f64));
    let (cw, ch) = (crop[2].min(sw as f64 - left), crop[3].min(sh as f64 - top));
    let opts = lanczos().crop(left, top, cw, ch);
    Resizer::new()
        .resize_typed(&src, &mut dst, &opts)
        .expect("same pixel type");
    dst.pixels().iter().map(|p| p.0).collect()
}

/// Resizes an interleaved RGB f32 image.
pub fn rgb_f32(px: &[[f32; 3]], sw: usize, sh: usize, w: usize, h: usize) -> Vec<[f32; 3]> {
    let px: Vec<F32x3> = px.iter().map(|&p| F32x3::new(p)).collect();
    let src = TypedImageRef::new(sw as u32, sh as u32, &px).expect("buffer matches size");
    let mut dst = TypedImage::<F32x3>::new(w as u32, h as u32);
    Resizer::new()
        .resize_typed(&src, &mut dst, &lanczos())
        .expect("same pixel type");
    dst.pixels().iter().map(|p| p.0).collect()
}

/// Bilinear sample of a 16-bit RGB image at continuous coordinates (pixel centres at +0.5),
/// in 0…1, edges replicated.
pub fn bilinear(img: &Rgb16Image, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (ax, ay) = (fx - x0, fy - y0);
    let at = |xi: i64, yi: i64| {
        img.get_pixel(xi.clamp(0, w - 1) as u32, yi.clamp(0, h - 1) as u32)
            .0
    };
    let (x0, y0) = (x0 as i64, y0 as i64);
    let (p00, p10, p01, p11) = (
        at(x0, y0),
        at(x0 + 1, y0),
        at(x0, y0 + 1),
        at(x0 + 1, y0 + 1),
    );
    let mut out = [0f32; 3];
    for c in 0..3 {
        let top = p00[c] as f32 * (1.0 - ax) + p10[c] as f32 * ax;
        let bottom = p01[c] as f32 * (1.0 - ax) + p11[c] as f32 * ax;
        out[c] = (top * (1.0 - ay) + bottom * ay) / 65535.0;
    }
    out
}
