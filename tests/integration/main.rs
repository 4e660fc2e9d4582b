//! The integration tests, one binary: each module is one area, on the real built models and the
//! real dev photos. One binary rather than one per file because each links all of tract (~30 MB);
//! seven of them took minutes of CI to link, and the loaded models (`common`) are now shared.

mod common;

mod bad_inputs;
mod cli;
mod cli_models;
mod convert;
mod deblur;
mod exported_models;
mod face_model;
#[cfg(feature = "gpu")]
mod gpu;
mod pipeline;
mod repair;
