//! CodeFormer v0.1.0 built as an ONNX graph from its checkpoint's state dict.

use super::pth::StateDict;
use crate::error::{Error, Result};

/// Whether a checkpoint is a CodeFormer one (spandrel_extra_arches' test).
pub fn detect(sd: &StateDict) -> bool {
    [
        "position_emb",
        "idx_pred_layer.1.weight",
        "quantize.embedding.weight",
        "ft_layers.0.self_attn.in_proj_weight",
        "encoder.blocks.0.weight",
    ]
    .iter()
    .all(|k| sd.contains_key(*k))
}

pub fn build(_sd: StateDict) -> Result<tract_onnx::pb::ModelProto> {
    Err(Error::Model(
        "CodeFormer conversion is not there yet".into(),
    ))
}
