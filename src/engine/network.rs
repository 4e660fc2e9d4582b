//! Runs ONNX networks with tract. Weights are normalised on the protobuf before tract sees it
//! (int8 `DequantizeLinear` and fp16 `Cast` weights folded back to f32; two networks of the same
//! graph interpolated for the denoise slider), then one optimised plan is built per input shape
//! and reused for every tile of that shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tract_onnx::pb::{self, tensor_proto::DataType};
use tract_onnx::prelude::*;

use crate::error::{Error, Result};

type Plan = Arc<TypedRunnableModel>;

/// Time spent in one kind of operator over one run (see [`Network::profile`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct OpTime {
    pub op: String,
    pub nodes: usize,
    pub ms: f64,
}

/// tract's plan options, one policy for the CLI, the page and the tests. tract turns a
/// convolution whose output rows reach 128 points into its direct spatial convolution, which on
/// the super-resolution network's 64-channel 3×3 layers took 1.8× (128²) to 2–3× (256²) the time
/// of im2col and a matrix product natively before the measured GEMM family
/// (`gemm_native`; with it, `make bench` of 2026-12-07: 1.03× and 1.02×, bench/native.py), and
/// 1.00–1.07× in wasm (bench/direct_spatial.mjs): face crops of up to 256² run it, tiles from
/// 128², and every 512² face model. A deployment default, below the environment
/// (`TRACT_DISABLE_DIRECT_SPATIAL`).
fn configure_tract() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if something set the knob to another value first: that one stands.
        let _ = tract_onnx::tract_core::knobs::set_config_global(
            "TRACT_DISABLE_DIRECT_SPATIAL",
            "true",
        );
    });
}

/// A loaded network: its (normalised) protobuf and the plans built from it so far.
pub struct Network {
    proto: pb::ModelProto,
    plans: Mutex<HashMap<Vec<usize>, Plan>>,
}

impl Network {
    /// Loads an ONNX model from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut proto = parse(bytes)?;
        fold_weights(&mut proto)?;
        Ok(Self::from_proto(proto))
    }

    /// Loads two models of the same graph and interpolates every weight: `(1 - t)·a + t·b`.
    /// This is Real-ESRGAN's "deep network interpolation" (`dni`), done once at load time.
    pub fn interpolated(a: &[u8], b: &[u8], t: f32) -> Result<Self> {
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::Invalid(format!(
                "interpolation weight {t} is not in 0…1"
            )));
        }
        let mut pa = parse(a)?;
        let mut pb_ = parse(b)?;
        fold_weights(&mut pa)?;
        fold_weights(&mut pb_)?;
        let ga = pa
            .graph
            .as_mut()
            .ok_or_else(|| Error::Model("model has no graph".into()))?;
        let gb = pb_
            .graph
            .as_ref()
            .ok_or_else(|| Error::Model("model has no graph".into()))?;
        let others: HashMap<&str, &pb::TensorProto> = gb
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        for wa in ga.initializer.iter_mut() {
            let wb = others.get(wa.name.as_str()).ok_or_else(|| {
                Error::Model(format!(
                    "the models differ: '{}' is missing in the second",
                    wa.name
                ))
            })?;
            if wa.dims != wb.dims || wa.data_type != wb.data_type {
                return Err(Error::Model(format!(
                    "the models differ at weight '{}'",
                    wa.name
                )));
            }
            if wa.data_type != DataType::Float as i32 {
                continue; // shapes and indices: identical by the check above
            }
            let va = floats(wa)?;
            let vb = floats(wb)?;
            let mixed: Vec<f32> = va.iter().zip(&vb).map(|(x, y)| x + t * (y - x)).collect();
            set_floats(wa, &mixed);
        }
        Ok(Self::from_proto(pa))
    }

    /// A network from a protobuf built in memory (a converted checkpoint, [`crate::convert`]).
    pub fn from_model(mut proto: pb::ModelProto) -> Result<Self> {
        fold_weights(&mut proto)?;
        Ok(Self::from_proto(proto))
    }

    fn from_proto(proto: pb::ModelProto) -> Self {
        Network {
            proto,
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// Sets a named scalar constant of the graph (CodeFormer's fidelity `w`) before any plan is
    /// built from it; an error if the graph has no such constant.
    pub fn set_scalar(&mut self, name: &str, value: f32) -> Result<()> {
        let t = self
            .proto
            .graph
            .as_mut()
            .and_then(|g| g.initializer.iter_mut().find(|t| t.name == name))
            .ok_or_else(|| Error::Model(format!("this model has no parameter '{name}'")))?;
        set_floats(t, &[value]);
        self.plans.lock().unwrap().clear();
        Ok(())
    }

    /// The plan for one input shape, built (and optimised) the first time it is asked for.
    pub fn plan(&self, shape: &[usize]) -> Result<Plan> {
        if let Some(p) = self.plans.lock().unwrap().get(shape) {
            return Ok(p.clone());
        }
        configure_tract();
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        super::gemm_wasm::link();
        #[cfg(target_arch = "x86_64")]
        super::gemm_native::choose();
        let model = optimized_plan(&self.proto, shape)?;
        self.plans
            .lock()
            .unwrap()
            .insert(shape.to_vec(), model.clone());
        Ok(model)
    }

    /// Runs the network on one f32 input; returns every output as (shape, data).
    pub fn run(&self, shape: &[usize], data: Vec<f32>) -> Result<Vec<(Vec<usize>, Vec<f32>)>> {
        let plan = self.plan(shape)?;
        let input = Tensor::from_shape(shape, &data)?;
        let outputs = plan.run(tvec!(input.into()))?;
        outputs
            .into_iter()
            .map(|t| {
                let t = t.cast_to::<f32>()?;
                Ok((
                    t.shape().to_vec(),
                    t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec(),
                ))
            })
            .collect()
    }

    #[cfg(feature = "bench")]
    /// Runs the network once on one f32 input, timing every node of its optimised plan with
    /// `now` (milliseconds; the caller's clock, since wasm has none of its own). Returns the time
    /// summed per operator kind, largest first: where a tile's time goes.
    pub fn profile(
        &self,
        shape: &[usize],
        data: Vec<f32>,
        now: impl Fn() -> f64,
    ) -> Result<Vec<OpTime>> {
        let plan = self.plan(shape)?;
        let input = Tensor::from_shape(shape, &data)?;
        let mut state = tract_onnx::tract_core::plan::SimpleState::new(&plan)?;
        let mut by_kind: HashMap<String, OpTime> = HashMap::new();
        state.run_plan_with_eval(tvec!(input.into()), |ctx, op_state, node, inputs| {
            let t = now();
            let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            let ms = now() - t;
            let kind = node.op().name().to_string();
            let e = by_kind.entry(kind.clone()).or_insert(OpTime {
                op: kind,
                nodes: 0,
                ms: 0.0,
            });
            e.nodes += 1;
            e.ms += ms;
            out
        })?;
        let mut v: Vec<OpTime> = by_kind.into_values().collect();
        v.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        Ok(v)
    }

    /// tract's decluttered model of this network (see [`decluttered`]): what the GPU engine
    /// lowers (`engine::gpu`).
    pub fn decluttered(&self, dims: &[Option<usize>]) -> Result<TypedModel> {
        Ok(decluttered(&self.proto, dims)?)
    }

    /// Output names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.proto
            .graph
            .as_ref()
            .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default()
    }

    /// The declared input shape, where the model fixes it (`None` for a symbolic axis).
    pub fn input_shape(&self) -> Vec<Option<usize>> {
        use pb::tensor_shape_proto::dimension::Value;
        let Some(input) = self.proto.graph.as_ref().and_then(|g| {
            let inits: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
            g.input.iter().find(|i| !inits.contains(&i.name.as_str()))
        }) else {
            return vec![];
        };
        let Some(pb::type_proto::Value::TensorType(tt)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return vec![];
        };
        tt.shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// tract's optimised, runnable plan of `proto` for one input shape.
pub(crate) fn optimized_plan(proto: &pb::ModelProto, shape: &[usize]) -> TractResult<Plan> {
    let dims: Vec<Option<usize>> = shape.iter().map(|&d| Some(d)).collect();
    let mut model = decluttered(proto, &dims)?;
    natural_constants(&mut model)?;
    // Decluttered already: only codegen is left (`into_optimized` would declutter again).
    model.optimize()?;
    model.into_runnable()
}

/// tract's decluttered model of `proto` (before code generation: every weight a constant), for
/// an f32 input of these dimensions; `None` is a symbolic axis (`d0`, `d1`, … by position), so
/// that one graph serves every tile size.
fn decluttered(proto: &pb::ModelProto, dims: &[Option<usize>]) -> TractResult<TypedModel> {
    let mut model = tract_onnx::onnx().model_for_proto_model(proto)?;
    let shape: TVec<TDim> = dims
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Some(d) => d.to_dim(),
            None => model.symbols.sym(&format!("d{i}")).to_dim(),
        })
        .collect();
    model = model.with_input_fact(0, f32::fact(shape).into())?;
    model.into_typed()?.into_decluttered()
}

/// Gives every constant of a decluttered model natural (row-major) strides. tract broadcasts a
/// lower-rank operand by inserting unit axes, and `Tensor::insert_axis` gives the new axis the
/// stride of the one after it: a PReLU slope of shape [64,1,1] becomes [1,64,1,1] with strides
/// [1,1,1,1]. tract's per-channel multiply then leaves its vector kernel for a generic path that
/// calls a closure per element — 18% of a super-resolution tile natively (91 → 10 ms at 96²,
/// `bench/native.py`'s profile). Only unit axes differ, so re-deriving the strides for the same
/// shape keeps every value where it is.
fn natural_constants(model: &mut TypedModel) -> TractResult<()> {
    use tract_onnx::tract_core::ops::konst::Const;
    for node in model.nodes.iter_mut() {
        let Some(k) = node.op_as::<Const>() else {
            continue;
        };
        let t = k.val();
        if k.exotic_fact().is_some() || t.strides() == &*Tensor::natural_strides(t.shape()) {
            continue;
        }
        let fixed = Arc::new((**t).clone().into_shape(t.shape())?);
        node.op = Box::new(Const::new(fixed.clone())?);
        node.outputs[0].fact.konst = Some(fixed);
    }
    Ok(())
}

fn parse(bytes: &[u8]) -> Result<pb::ModelProto> {
    if bytes.is_empty() {
        return Err(Error::Model("the model file is empty".into()));
    }
    tract_onnx::onnx()
        .proto_model_for_read(&mut &*bytes)
        .map_err(|e| Error::Model(format!("not a readable ONNX model: {e}")))
}

/// Replaces weight-only `DequantizeLinear(const)` and `Cast(const f16)` nodes by the f32
/// initializer they compute, so that every network reaches tract (and `interpolated`) as f32.
fn fold_weights(proto: &mut pb::ModelProto) -> Result<()> {
    let Some(graph) = proto.graph.as_mut() else {
        return Err(Error::Model("model has no graph".into()));
    };
    let mut index: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut keep = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let consts: Option<Vec<&pb::TensorProto>> = node
            .input
            .iter()
            .map(|n| index.get(n).map(|&i| &graph.initializer[i]))
            .collect();
        let folded = match (node.op_type.as_str(), consts) {
            ("DequantizeLinear", Some(c)) if c.len() >= 2 => {
                let axis = int_attr(&node, "axis").unwrap_or(1);
                Some(dequantize(c[0], c[1], c.get(2).copied(), axis)?)
            }
            ("Cast", Some(c)) if c.len() == 1 && int_attr(&node, "to") == Some(1) => {
                Some(floats(c[0])?)
            }
            _ => None,
        };
        match folded {
            Some(values) => {
                let src = &graph.initializer[index[&node.input[0]]];
                let mut t = pb::TensorProto {
                    name: node.output[0].clone(),
                    dims: src.dims.clone(),
                    ..Default::default()
                };
                set_floats(&mut t, &values);
                index.insert(t.name.clone(), graph.initializer.len());
                graph.initializer.push(t);
            }
            None => keep.push(node),
        }
    }
    graph.node = keep;
    // Drop the now unused quantized sources so that tract does not load them.
    let used: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    graph
        .initializer
        .retain(|t| used.contains(t.name.as_str()) || outputs.contains(&t.name));
    Ok(())
}

fn int_attr(node: &pb::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn dequantize(
    q: &pb::TensorProto,
    scale: &pb::TensorProto,
    zero: Option<&pb::TensorProto>,
    axis: i64,
) -> Result<Vec<f32>> {
    let values = floats(q)?;
    let scales = floats(scale)?;
    let zeros = match zero {
        Some(z) => floats(z)?,
        None => vec![0.0; scales.len()],
    };
    if scales.len() == 1 {
        return Ok(values.iter().map(|v| (v - zeros[0]) * scales[0]).collect());
    }
    let rank = q.dims.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let inner: usize = q.dims[axis + 1..].iter().product::<i64>() as usize;
    let n = q.dims[axis] as usize;
    if scales.len() != n {
        return Err(Error::Model(format!(
            "'{}': {} scales for axis of {n}",
            q.name,
            scales.len()
        )));
    }
    Ok(values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / inner) % n;
            (v - zeros[c]) * scales[c]
        })
        .collect())
}

/// The values of a weight tensor as f32, whatever its storage (raw bytes or typed fields).
fn floats(t: &pb::TensorProto) -> Result<Vec<f32>> {
    let raw = &t.raw_data;
    let dt = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
    let v = match dt {
        DataType::Float if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DataType::Float => t.float_data.clone(),
        DataType::Float16 if !raw.is_empty() => raw
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        DataType::Float16 => t
            .int32_data
            .iter()
            .map(|&b| f16::from_bits(b as u16).to_f32())
            .collect(),
        DataType::Int8 if !raw.is_empty() => raw.iter().map(|&b| b as i8 as f32).collect(),
        DataType::Uint8 if !raw.is_empty() => raw.iter().map(|&b| b as f32).collect(),
        DataType::Int8 | DataType::Uint8 | DataType::Int32 => {
            t.int32_data.iter().map(|&v| v as f32).collect()
        }
        other => {
            return Err(Error::Model(format!(
                "weight '{}' has unsupported type {other:?}",
                t.name
            )))
        }
    };
    Ok(v)
}

fn set_floats(t: &mut pb::TensorProto, values: &[f32]) {
    t.data_type = DataType::Float as i32;
    t.float_data.clear();
    t.int32_data.clear();
    t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
}
