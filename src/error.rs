//! The one error type of the core: every failure a user can meet, each with a message that says
//! what went wrong in words a person can act on.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("not an image Unblur can read ({0}); use JPEG, PNG, WebP, GIF, BMP or TIFF")]
    UnknownFormat(String),
    #[error("the file is empty")]
    Empty,
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("the image is too large: {width}×{height} is {mp:.1} megapixels, the limit is {limit_mp} megapixels")]
    TooLarge {
        width: u32,
        height: u32,
        mp: f64,
        limit_mp: u32,
    },
    // Rounded down, so that the scale it names does fit (×5.657 is said as ×5.65, not ×5.66).
    #[error("the result would be too large: {width}×{height}; the largest scale that fits is ×{:.2}", (max_scale * 100.0).floor() / 100.0)]
    OutputTooLarge {
        width: u64,
        height: u64,
        max_scale: f64,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("model error: {0}")]
    Model(String),
    #[error("could not encode the result: {0}")]
    Encode(String),
    #[error("cancelled")]
    Cancelled,
    /// A file could not be read or written; the I/O error is kept as the source.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to overwrite the input file {0}")]
    WouldOverwrite(String),
}

impl Error {
    /// `map_err(Error::io("cannot read x"))`: an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tract_onnx::prelude::TractError> for Error {
    fn from(e: tract_onnx::prelude::TractError) -> Self {
        // tract's chain of contexts is the useful part of its message.
        Error::Model(format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_say_what_was_done_and_keep_their_source() {
        let e = Error::io("cannot read x.jpg")(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(e.to_string(), "cannot read x.jpg: no such file");
        let source = std::error::Error::source(&e).expect("the I/O error is kept");
        assert_eq!(source.to_string(), "no such file");
    }
}
