//! Converts the published face-restorer checkpoints (PyTorch `.pth`) into networks tract runs,
//! on the user's own device: [`pth`] reads the state dict without running its pickle, one module
//! per architecture ([`gfpgan`], [`codeformer`]) builds the graph from it, and [`to_stored`]
//! writes the result as a compact ONNX file (fp16 weights) that loads without converting again.

pub mod codeformer;
pub mod gfpgan;
pub mod graph;
pub mod pth;

use prost::Message;
use tract_onnx::pb::{self, tensor_proto::DataType};
use tract_onnx::prelude::f16;

use crate::error::{Error, Result};

/// Bumped whenever a conversion would come out differently, so that a stored conversion from an
/// older converter is not used (stores key conversions by source sha256 *and* this).
pub const CONVERTER_VERSION: &str = "1";

/// The architectures a checkpoint can be converted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// GFPGAN v1.3 / v1.4 (`GFPGANv1Clean`).
    Gfpgan,
    /// CodeFormer v0.1.0, with its fidelity weight as the constant [`FIDELITY`].
    Codeformer,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Gfpgan => "GFPGAN v1 (clean)",
            Arch::Codeformer => "CodeFormer",
        }
    }

    /// Weights (by name prefix) kept in f32 in the stored form. CodeFormer's encoder decides
    /// which codebook entry each 32×32 patch of the face gets: in fp16 its rounding flips some
    /// of those choices (32.9 dB against PyTorch on the test checkpoint; 65.5 dB with the
    /// encoder in f32), at the cost of 59 MB more stored.
    fn full_precision(self) -> &'static [&'static str] {
        match self {
            Arch::Gfpgan => &[],
            Arch::Codeformer => &["encoder."],
        }
    }
}

/// The name of CodeFormer's fidelity weight `w` in the converted graph: a scalar constant that
/// [`crate::engine::Network::set_scalar`] sets before the plan is built.
pub const FIDELITY: &str = "fidelity";

/// A converted network.
#[derive(Clone)]
pub struct Converted {
    pub arch: Arch,
    pub model: pb::ModelProto,
}

/// Whether bytes are a PyTorch checkpoint rather than an ONNX file: a zip archive, or a bare
/// pickle (PyTorch's legacy format, which [`pth::read`] names in its error).
pub fn is_checkpoint(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        || (bytes.len() > 1 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]))
}

/// The name a conversion is stored under: the source file's sha256 and the converter version,
/// so a fixed converter never meets an old conversion.
pub fn stored_name(source_sha256: &str) -> String {
    format!("{source_sha256}.c{CONVERTER_VERSION}.onnx")
}

/// A face network from a converted (stored) or ONNX file, with CodeFormer's fidelity set
/// (`None`: the model's own default); a fidelity for a model without one is an error.
pub fn face_network(onnx: &[u8], fidelity: Option<f32>) -> Result<crate::engine::Network> {
    let mut net = crate::engine::Network::from_bytes(onnx)?;
    if let Some(w) = fidelity {
        if !(0.0..=1.0).contains(&w) {
            return Err(Error::Invalid(format!(
                "fidelity {w} is not between 0 and 1"
            )));
        }
        net.set_scalar(FIDELITY, w)
            .map_err(|_| Error::Invalid("only CodeFormer has a fidelity setting".into()))?;
    }
    Ok(net)
}

/// Reads a checkpoint and builds its network.
pub fn convert(pth_bytes: &[u8]) -> Result<Converted> {
    let sd = pth::read(pth_bytes)?;
    if gfpgan::detect(&sd) {
        return Ok(Converted {
            arch: Arch::Gfpgan,
            model: gfpgan::build(sd)?,
        });
    }
    if codeformer::detect(&sd) {
        return Ok(Converted {
            arch: Arch::Codeformer,
            model: codeformer::build(sd)?,
        });
    }
    let mut keys: Vec<&String> = sd.keys().collect();
    keys.sort();
    Err(Error::Model(format!(
        "this checkpoint is not GFPGAN v1.3/v1.4 or CodeFormer ({} tensors: {}, …)",
        sd.len(),
        keys.iter()
            .take(3)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The stored form: ONNX with every large weight as fp16 behind a `Cast` (which
/// [`crate::engine::Network`] folds back to f32 on load), half the size of the fp32 graph —
/// except the weights an architecture needs in full precision.
pub fn to_stored(converted: Converted) -> Vec<u8> {
    let Converted { arch, mut model } = converted;
    if let Some(g) = model.graph.as_mut() {
        let mut casts = vec![];
        for t in g.initializer.iter_mut() {
            let n = t.raw_data.len() / 4;
            let keep = arch.full_precision().iter().any(|p| t.name.starts_with(p));
            if t.data_type != DataType::Float as i32 || n < 64 || t.name == FIDELITY || keep {
                continue;
            }
            let half: Vec<u8> = t
                .raw_data
                .chunks_exact(4)
                .flat_map(|b| {
                    f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes()
                })
                .collect();
            let name = std::mem::take(&mut t.name);
            t.name = format!("{name}.f16");
            t.data_type = DataType::Float16 as i32;
            t.raw_data = half;
            casts.push(pb::NodeProto {
                name: format!("{name}.cast"),
                op_type: "Cast".into(),
                input: vec![t.name.clone()],
                output: vec![name],
                attribute: vec![pb::AttributeProto {
                    name: "to".into(),
                    r#type: pb::attribute_proto::AttributeType::Int as i32,
                    i: DataType::Float as i64,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        casts.append(&mut g.node);
        g.node = casts;
    }
    model.encode_to_vec()
}
