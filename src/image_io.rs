//! Bytes ⇄ photo: decoding with limits, EXIF orientation, alpha, grayscale and 16-bit handling,
//! and encoding with EXIF and ICC carried over.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{
    DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits,
};

use crate::error::{Error, Result};
use crate::Rgb16Image;

/// The largest photo accepted, in pixels. Beyond this the output (×2 and more) no longer fits in a
/// browser tab's memory, so it is refused up front with a clear message.
pub const MAX_INPUT_PIXELS: u64 = 40_000_000;
/// The largest result produced, in pixels (an RGB canvas of 16-bit samples: 6 bytes a pixel).
pub const MAX_OUTPUT_PIXELS: u64 = 200_000_000;

/// Memory a restoration holds per output pixel at its peak: the 16-bit canvas, the 8-bit photo
/// it becomes, and the encoder's buffers and file beside them.
pub const BYTES_PER_OUTPUT_PIXEL: u64 = 18;

/// The most output pixels a device can hold: a third of its memory (`memory_gb`, the browser's
/// `navigator.deviceMemory`, rounded and capped at 8; `None` where it is not told: 2 GiB), at
/// most 2.5 GiB (a wasm32 heap holds 4 GiB, and the networks need their share), and never more
/// than [`MAX_OUTPUT_PIXELS`].
pub fn output_limit(memory_gb: Option<f64>) -> u64 {
    let gib = (1u64 << 30) as f64;
    let budget = memory_gb
        .map_or(2.0 * gib, |m| m * gib / 3.0)
        .min(2.5 * gib);
    MAX_OUTPUT_PIXELS.min((budget / BYTES_PER_OUTPUT_PIXEL as f64) as u64)
}

/// A decoded photo, ready for restoration: colour as 16-bit RGB (8-bit photos are widened
/// losslessly), alpha kept apart, and what is needed to write it back the way it came.
#[derive(Clone)]
pub struct Photo {
    pub rgb: Rgb16Image,
    pub alpha: Option<image::ImageBuffer<image::Luma<u16>, Vec<u16>>>,
    /// The photo has no colour (a grayscale file, or RGB with equal channels).
    pub gray: bool,
    /// The source had more than 8 bits per sample.
    pub sixteen_bit: bool,
    /// Raw EXIF (TIFF header onwards), orientation already reset to 1.
    pub exif: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
    pub format: Option<ImageFormat>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Photo({}×{}, alpha: {}, gray: {}, 16-bit: {})",
            self.width(),
            self.height(),
            self.alpha.is_some(),
            self.gray,
            self.sixteen_bit
        )
    }
}

impl Photo {
    pub fn width(&self) -> u32 {
        self.rgb.width()
    }
    pub fn height(&self) -> u32 {
        self.rgb.height()
    }
}

/// Reads only the header: the format and the dimensions, after EXIF orientation.
pub fn probe(bytes: &[u8]) -> Result<(ImageFormat, u32, u32)> {
    let (format, mut decoder) = decoder(bytes)?;
    let (w, h) = decoder.dimensions();
    check_input_size(w, h)?;
    // Orientations 5–8 turn the photo a quarter: the upright photo is h×w.
    let turned = matches!(
        decoder.orientation(),
        Ok(Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH)
    );
    Ok(if turned {
        (format, h, w)
    } else {
        (format, w, h)
    })
}

fn decoder(bytes: &[u8]) -> Result<(ImageFormat, impl ImageDecoder + '_)> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(Error::io("cannot read the image"))?;
    let format = reader
        .format()
        .ok_or_else(|| Error::UnknownFormat("unrecognised file signature".into()))?;
    // Dimensions are checked by `check_input_size` (for a clear message); the allocation cap
    // catches whatever a decoder would allocate beyond the pixels.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_INPUT_PIXELS * 8 + (64 << 20));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(decode_error)?;
    Ok((format, decoder))
}

/// A JPEG's scan must be followed by its end marker: the decoder pads a truncated scan with grey
/// instead of failing, so truncation is caught here. (0xFF in scan data is stuffed as FF 00, so
/// neither marker can occur inside it.)
fn check_jpeg_complete(bytes: &[u8]) -> Result<()> {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let ends = last_scan.is_some_and(|s| bytes[s..].windows(2).any(|w| w == [0xFF, 0xD9]));
    if !ends {
        return Err(Error::Corrupt("the file ends too early".into()));
    }
    Ok(())
}

fn check_input_size(w: u32, h: u32) -> Result<()> {
    let px = w as u64 * h as u64;
    if w == 0 || h == 0 {
        return Err(Error::Corrupt(format!(
            "the image claims a size of {w}×{h}"
        )));
    }
    if px > MAX_INPUT_PIXELS {
        return Err(Error::TooLarge {
            width: w,
            height: h,
            mp: px as f64 / 1e6,
            limit_mp: (MAX_INPUT_PIXELS / 1_000_000) as u32,
        });
    }
    Ok(())
}

fn decode_error(e: image::ImageError) -> Error {
    use image::ImageError as E;
    match e {
        E::Unsupported(u) => Error::UnknownFormat(u.to_string()),
        E::Limits(l) => Error::Corrupt(format!("it exceeds the decoder's limits ({l})")),
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Corrupt("the file ends too early".into())
        }
        other => Error::Corrupt(other.to_string()),
    }
}

/// Decodes a photo: checks the size before any pixel is allocated, applies EXIF orientation.
pub fn decode(bytes: &[u8]) -> Result<Photo> {
    let (format, mut decoder) = decoder(bytes)?;
    let (w, h) = decoder.dimensions();
    check_input_size(w, h)?;
    if format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let icc = decoder.icc_profile().ok().flatten();
    let mut exif = decoder.exif_metadata().ok().flatten();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    if let Some(exif) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(exif);
    }
    let color = decoder.color_type();
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    img.apply_orientation(orientation);

    let sixteen_bit = color.bytes_per_pixel() / color.channel_count() > 1;
    let (w, h) = (img.width(), img.height());
    // One conversion: with alpha, split a single RGBA16 copy into colour and alpha.
    let (rgb, alpha) = if color.has_alpha() {
        let rgba = img.into_rgba16();
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        let mut alpha = Vec::with_capacity(w as usize * h as usize);
        for p in rgba.as_raw().chunks_exact(4) {
            rgb.extend_from_slice(&p[..3]);
            alpha.push(p[3]);
        }
        let rgb = Rgb16Image::from_raw(w, h, rgb).expect("size matches");
        (rgb, image::ImageBuffer::from_raw(w, h, alpha))
    } else {
        (img.into_rgb16(), None)
    };
    // An alpha channel that is fully opaque carries nothing: drop it.
    let alpha = alpha.filter(|a: &image::ImageBuffer<image::Luma<u16>, Vec<u16>>| {
        a.pixels().any(|p| p.0[0] != u16::MAX)
    });
    let gray = !color.has_color() || rgb.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]);
    Ok(Photo {
        rgb,
        alpha,
        gray,
        sixteen_bit,
        exif,
        icc,
        format: Some(format),
    })
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Png,
    #[serde(alias = "jpeg")]
    Jpg,
    Webp,
}

impl OutputFormat {
    /// Every output format, in the order the page offers them (the first is the default).
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Png, OutputFormat::Jpg, OutputFormat::Webp];

    /// Its name for people.
    pub fn label(self) -> &'static str {
        match self {
            OutputFormat::Png => "PNG",
            OutputFormat::Jpg => "JPEG",
            OutputFormat::Webp => "WebP",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpg => "jpg",
            OutputFormat::Webp => "webp",
        }
    }
    /// The restored file's name: `<stem>-unblur-x<scale>.<ext>` (the CLI's and the page's).
    pub fn output_name(self, stem: &str, scale: f32) -> String {
        // At most two decimals, no trailing zeros: ×2, ×2.5, ×2.33.
        let s = format!("{:.2}", scale);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{stem}-unblur-x{s}.{}", self.extension())
    }

    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(OutputFormat::Png),
            "jpg" | "jpeg" => Ok(OutputFormat::Jpg),
            "webp" => Ok(OutputFormat::Webp),
            _ => Err(Error::Invalid(format!(
                "unknown format '{s}' (png, jpg or webp)"
            ))),
        }
    }
}

/// Encodes a restored photo. PNG keeps 16 bits when the source had them; JPEG has no alpha, so a
/// transparent photo is flattened onto white; WebP is lossless.
pub fn encode(photo: &Photo, format: OutputFormat, jpeg_quality: u8) -> Result<Vec<u8>> {
    let (w, h) = photo.rgb.dimensions();
    let deep = photo.sixteen_bit && format == OutputFormat::Png;
    let alpha = if format == OutputFormat::Jpg {
        None
    } else {
        photo.alpha.as_ref()
    };
    let flatten = format == OutputFormat::Jpg && photo.alpha.is_some();
    let channels = match (photo.gray, alpha.is_some()) {
        (true, false) => 1,
        (true, true) => 2,
        (false, false) => 3,
        (false, true) => 4,
    };
    // Samples go straight into the encoder's byte layout: 16-bit native-endian (the PNG encoder
    // swaps to big-endian) or rounded to 8 bits. One buffer, no intermediate copy.
    let mut bytes: Vec<u8> =
        Vec::with_capacity(w as usize * h as usize * channels * if deep { 2 } else { 1 });
    let mut push = |v: u16| {
        if deep {
            bytes.extend(v.to_ne_bytes());
        } else {
            bytes.push(((v as u32 * 255 + 32767) / 65535) as u8);
        }
    };
    for (i, p) in photo.rgb.pixels().enumerate() {
        let [mut r, mut g, mut b] = p.0.map(|v| v as f32);
        if flatten {
            let a = photo.alpha.as_ref().unwrap().as_raw()[i] as f32 / 65535.0;
            let white = 65535.0 * (1.0 - a);
            (r, g, b) = (r * a + white, g * a + white, b * a + white);
        }
        if photo.gray {
            push((0.2126 * r + 0.7152 * g + 0.0722 * b).round().min(65535.0) as u16);
        } else {
            [r, g, b]
                .into_iter()
                .for_each(|v| push(v.round().min(65535.0) as u16));
        }
        if let Some(a) = alpha {
            push(a.as_raw()[i]);
        }
    }
    let color = match (channels, deep) {
        (1, false) => ExtendedColorType::L8,
        (2, false) => ExtendedColorType::La8,
        (3, false) => ExtendedColorType::Rgb8,
        (4, false) => ExtendedColorType::Rgba8,
        (1, true) => ExtendedColorType::L16,
        (2, true) => ExtendedColorType::La16,
        (3, true) => ExtendedColorType::Rgb16,
        _ => ExtendedColorType::Rgba16,
    };
    let mut out = Vec::new();
    let enc_err = |e: image::ImageError| Error::Encode(e.to_string());
    match format {
        OutputFormat::Png => {
            let mut enc = image::codecs::png::PngEncoder::new(&mut out);
            add_metadata(&mut enc, photo);
            enc.write_image(&bytes, w, h, color).map_err(enc_err)?;
        }
        OutputFormat::Jpg => {
            let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out,
                jpeg_quality.clamp(1, 100),
            );
            add_metadata(&mut enc, photo);
            enc.write_image(&bytes, w, h, color).map_err(enc_err)?;
        }
        OutputFormat::Webp => {
            let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            add_metadata(&mut enc, photo);
            enc.write_image(&bytes, w, h, color).map_err(enc_err)?;
        }
    }
    Ok(out)
}

fn add_metadata(enc: &mut impl ImageEncoder, photo: &Photo) {
    // Metadata is a courtesy: an encoder that cannot carry it still writes the pixels.
    if let Some(icc) = &photo.icc {
        let _ = enc.set_icc_profile(icc.clone());
    }
    if let Some(exif) = &photo.exif {
        let _ = enc.set_exif_metadata(exif.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_carry_the_scale_with_at_most_two_decimals() {
        assert_eq!(OutputFormat::Png.output_name("01", 2.0), "01-unblur-x2.png");
        assert_eq!(
            OutputFormat::Jpg.output_name("a b", 2.5),
            "a b-unblur-x2.5.jpg"
        );
        assert_eq!(
            OutputFormat::Webp.output_name("x", 7.0 / 3.0),
            "x-unblur-x2.33.webp"
        );
        assert_eq!(OutputFormat::Png.output_name("x", 1.0), "x-unblur-x1.png");
    }
}
