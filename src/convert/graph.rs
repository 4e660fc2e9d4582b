//! A small ONNX graph builder over tract's protobuf types: the architecture modules describe
//! their network layer by layer with it, taking weights from the checkpoint by name, and the
//! result loads in tract like any ONNX file ([`crate::engine::Network::from_proto`]).

use tract_onnx::pb::{self, attribute_proto::AttributeType, tensor_proto::DataType};

use super::pth::{StateDict, Tensor};
use crate::error::{Error, Result};

/// ONNX opset of the graphs built here (LayerNormalization needs 17).
const OPSET: i64 = 17;

/// An ONNX attribute.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

/// A graph under construction, with the checkpoint it takes its weights from.
pub struct Graph {
    sd: StateDict,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    count: usize,
}

impl Graph {
    pub fn new(sd: StateDict) -> Self {
        Graph {
            sd,
            nodes: vec![],
            inits: vec![],
            count: 0,
        }
    }

    /// Takes a tensor out of the checkpoint (each is used once: taking moves it, so the
    /// converter never holds a weight twice).
    pub fn take(&mut self, key: &str) -> Result<Tensor> {
        self.sd.remove(key).ok_or_else(|| {
            Error::Model(format!(
                "the checkpoint has no tensor '{key}': it is not this architecture"
            ))
        })
    }

    /// Takes a tensor and checks its shape.
    pub fn take_shaped(&mut self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.take(key)?;
        if t.shape != shape {
            return Err(Error::Model(format!(
                "tensor '{key}' has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t)
    }

    /// The shape of a checkpoint tensor not taken yet.
    pub fn peek(&self, key: &str) -> Option<Vec<usize>> {
        self.sd.get(key).map(|t| t.shape.clone())
    }

    pub fn has(&self, key: &str) -> bool {
        self.sd.contains_key(key)
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// An f32 constant.
    pub fn constant(&mut self, hint: &str, shape: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        let name = self.fresh(hint);
        self.inits.push(pb::TensorProto {
            name: name.clone(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// An f32 constant with a fixed name (a parameter a loader may set, like CodeFormer's
    /// fidelity).
    pub fn named_constant(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        self.constant(name, shape, data);
        self.inits.last_mut().unwrap().name = name.to_owned();
        name.to_owned()
    }

    /// An i64 constant (shapes, axes, indices).
    pub fn ints(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        self.inits.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![values.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// A checkpoint tensor as a constant, reshaped.
    pub fn weight(&mut self, key: &str, shape: &[usize]) -> Result<String> {
        let t = self.take(key)?;
        if t.data.len() != shape.iter().product::<usize>() {
            return Err(Error::Model(format!(
                "tensor '{key}' has shape {:?}, expected {} values",
                t.shape,
                shape.iter().product::<usize>()
            )));
        }
        Ok(self.constant(key, shape, &t.data))
    }

    /// One node; returns its (single) output.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(op);
        self.nodes.push(pb::NodeProto {
            name: out.clone(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
        out
    }

    // ---- the layers the architectures share

    /// `nn.Conv2d` from `prefix.weight` (and `prefix.bias` where the checkpoint has one).
    pub fn conv(&mut self, x: &str, prefix: &str, stride: i64, pad: [i64; 4]) -> Result<String> {
        let w = self.take(&format!("{prefix}.weight"))?;
        if w.shape.len() != 4 {
            return Err(Error::Model(format!(
                "'{prefix}.weight' is not a convolution weight"
            )));
        }
        let k = w.shape[2] as i64;
        let wn = self.constant(&format!("{prefix}.weight"), &w.shape, &w.data);
        let mut inputs = vec![x.to_owned(), wn];
        if self.has(&format!("{prefix}.bias")) {
            let b = self.weight(&format!("{prefix}.bias"), &[w.shape[0]])?;
            inputs.push(b);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op(
            "Conv",
            &refs,
            vec![
                ("kernel_shape", Attr::Ints(vec![k, k])),
                ("strides", Attr::Ints(vec![stride, stride])),
                ("pads", Attr::Ints(pad.to_vec())),
            ],
        ))
    }

    /// A stride-1 convolution padded to keep the size (`padding = k // 2`).
    pub fn conv_same(&mut self, x: &str, prefix: &str) -> Result<String> {
        let k = self
            .sd
            .get(&format!("{prefix}.weight"))
            .and_then(|w| w.shape.get(2).copied())
            .unwrap_or(1) as i64;
        let p = k / 2;
        self.conv(x, prefix, 1, [p, p, p, p])
    }

    /// `nn.Linear` on a 2-D input (`[n, in]`): Gemm with the weight as stored (`[out, in]`).
    pub fn linear(&mut self, x: &str, prefix: &str) -> Result<String> {
        let w = self.take(&format!("{prefix}.weight"))?;
        let wn = self.constant(&format!("{prefix}.weight"), &w.shape, &w.data);
        let mut inputs = vec![x.to_owned(), wn];
        if self.has(&format!("{prefix}.bias")) {
            inputs.push(self.weight(&format!("{prefix}.bias"), &[w.shape[0]])?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op("Gemm", &refs, vec![("transB", Attr::Int(1))]))
    }

    /// `nn.Linear` on any rank (`[…, in]`): MatMul by the transposed weight, plus the bias.
    pub fn linear_nd(&mut self, x: &str, prefix: &str) -> Result<String> {
        let w = self.take(&format!("{prefix}.weight"))?;
        let (o, i) = (w.shape[0], w.shape[1]);
        let wt = self.constant(
            &format!("{prefix}.weight_t"),
            &[i, o],
            &transpose(&w.data, o, i),
        );
        let y = self.op("MatMul", &[x, &wt], vec![]);
        if self.has(&format!("{prefix}.bias")) {
            let b = self.weight(&format!("{prefix}.bias"), &[o])?;
            return Ok(self.op("Add", &[&y, &b], vec![]));
        }
        Ok(y)
    }

    pub fn leaky(&mut self, x: &str, alpha: f32) -> String {
        self.op("LeakyRelu", &[x], vec![("alpha", Attr::Float(alpha))])
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.op("Add", &[a, b], vec![])
    }

    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.op("Mul", &[a, b], vec![])
    }

    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.ints("shape", shape);
        self.op("Reshape", &[x, &s], vec![])
    }

    /// Bilinear resize by `scale` (PyTorch's `interpolate(..., mode="bilinear",
    /// align_corners=False)`), or nearest with `nearest`.
    pub fn resize(&mut self, x: &str, scale: f32, nearest: bool) -> String {
        let s = self.constant("scales", &[4], &[1.0, 1.0, scale, scale]);
        let attrs = if nearest {
            vec![
                ("mode", Attr::Str("nearest")),
                ("coordinate_transformation_mode", Attr::Str("asymmetric")),
                ("nearest_mode", Attr::Str("floor")),
            ]
        } else {
            vec![
                ("mode", Attr::Str("linear")),
                ("coordinate_transformation_mode", Attr::Str("half_pixel")),
            ]
        };
        self.op("Resize", &[x, "", &s], attrs)
    }

    /// `x[..., start:end]` on one axis.
    pub fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let s = self.ints("start", &[start]);
        let e = self.ints("end", &[end]);
        let a = self.ints("axis", &[axis]);
        self.op("Slice", &[x, &s, &e, &a], vec![])
    }

    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.op("Concat", xs, vec![("axis", Attr::Int(axis))])
    }

    /// The finished model: one f32 input `input` of `shape`, one output `output`. Every
    /// checkpoint tensor must have been used, so that a file of a larger variant is refused
    /// rather than half read.
    pub fn finish(mut self, y: &str, shape: &[usize], what: &str) -> Result<pb::ModelProto> {
        let mut left: Vec<&String> = self.sd.keys().collect();
        if !left.is_empty() {
            left.sort();
            return Err(Error::Model(format!(
                "the checkpoint has {} tensors a {what} does not ({}, …): it is another variant",
                left.len(),
                left[0]
            )));
        }
        self.op("Identity", &[y], vec![]);
        self.nodes.last_mut().unwrap().output = vec!["output".into()];
        let value = |name: &str, shape: Option<&[usize]>| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: shape.map(|s| pb::TensorShapeProto {
                        dim: s
                            .iter()
                            .map(|&d| pb::tensor_shape_proto::Dimension {
                                value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(
                                    d as i64,
                                )),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(pb::ModelProto {
            ir_version: 8,
            producer_name: "unblur".into(),
            producer_version: super::CONVERTER_VERSION.into(),
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            graph: Some(pb::GraphProto {
                name: what.into(),
                node: self.nodes,
                initializer: self.inits,
                input: vec![value("input", Some(shape))],
                output: vec![value("output", None)],
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

/// A row-major `rows × cols` matrix, transposed.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

fn attribute(name: &str, a: Attr) -> pb::AttributeProto {
    let mut p = pb::AttributeProto {
        name: name.into(),
        ..Default::default()
    };
    match a {
        Attr::Int(i) => {
            p.r#type = AttributeType::Int as i32;
            p.i = i;
        }
        Attr::Ints(v) => {
            p.r#type = AttributeType::Ints as i32;
            p.ints = v;
        }
        Attr::Float(f) => {
            p.r#type = AttributeType::Float as i32;
            p.f = f;
        }
        Attr::Str(s) => {
            p.r#type = AttributeType::String as i32;
            p.s = s.as_bytes().to_vec();
        }
    }
    p
}
