//! Lowering: tract's decluttered model → a [`Graph`] of GPU steps.
//!
//! The decluttered model is tract's own normal form of the ONNX graph: weights are constants,
//! 1×1 convolutions are `EinSum`s, `DepthToSpace`/`SpaceToDepth` are reshapes around an axis
//! move (so both DCR and CRD come as the permutation tract itself chose), nearest integer
//! upsampling is `NearestUpsample`. Each supported node becomes one step; reshapes become
//! aliases (the same buffer, another shape). Two fusions save a pass over the activation each:
//! a per-channel constant `Add`/`Mul` straight after a convolution folds into its bias and
//! weights, and a PReLU or LeakyReLU straight after one runs in its epilogue.
//! Anything else is [`GpuError::Unsupported`]: the network then runs on the CPU.
//!
//! Shapes stay symbolic ([`TDim`]): one graph serves every tile size; [`Graph::shapes`] evaluates
//! them for one input shape.

use std::collections::HashMap;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;
use tract_onnx::tract_core::ops;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::nn::resize::{NearestUpsample, Resize};

use super::GpuError;

pub type ValueId = usize;

/// A value: its symbolic shape, and the value whose buffer it shares, if it is a reshape.
#[derive(Clone, Debug)]
pub struct Value {
    pub shape: Vec<TDim>,
    pub alias_of: Option<ValueId>,
}

/// An activation run in a convolution's epilogue or on its own.
#[derive(Clone, Debug, PartialEq)]
pub enum Act {
    None,
    /// One slope per channel (axis 1), or one for all.
    PRelu(Vec<f32>),
    Leaky(f32),
    Sigmoid,
    /// `x·sigmoid(x)`.
    Silu,
    Tanh,
}

impl Act {
    /// The activation's code in conv.wgsl and eltwise.wgsl, and its parameter.
    pub fn code(&self) -> (u32, f32) {
        match self {
            Act::None => (0, 0.0),
            Act::PRelu(_) => (1, 0.0),
            Act::Leaky(a) => (2, *a),
            Act::Sigmoid => (3, 0.0),
            Act::Silu => (4, 0.0),
            Act::Tanh => (5, 0.0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Mul,
    Sub,
    Div,
    Max,
    Min,
}

/// A 2-D convolution, NCHW, groups of 1, dilation 1; weights OIHW, one bias per output channel.
#[derive(Clone, Debug)]
pub struct ConvStep {
    pub x: ValueId,
    pub y: ValueId,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub co: usize,
    pub ci: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding before the first row and column (the end padding follows from the output
    /// shape).
    pub pad: [usize; 2],
    pub act: Act,
}

/// The resampling of a `Resize` or `NearestUpsample`, over the last two axes.
#[derive(Clone, Debug)]
pub enum Resampling {
    /// `out[i] = in[i / s]` on each axis.
    Nearest([usize; 2]),
    /// tract's core `Resize`, with its scales input when it has one: the per-axis plans come
    /// from tract itself ([`Resize::plan_axis`]), so that indices and weights are its own.
    Core(Box<Resize>, Option<Vec<f32>>),
}

#[derive(Clone, Debug)]
pub enum Step {
    Conv(ConvStep),
    /// Two values of one shape.
    Binary {
        a: ValueId,
        b: ValueId,
        y: ValueId,
        op: BinOp,
    },
    /// A value and a constant broadcast along one axis (or a scalar); `const_first` for
    /// `c - x`, `c / x`.
    BinaryConst {
        a: ValueId,
        y: ValueId,
        op: BinOp,
        values: Vec<f32>,
        axis: Option<usize>,
        const_first: bool,
    },
    Act {
        x: ValueId,
        y: ValueId,
        act: Act,
    },
    /// `y`'s axis `k` is `x`'s axis `perm[k]`.
    Permute {
        x: ValueId,
        y: ValueId,
        perm: Vec<usize>,
    },
    Concat {
        xs: Vec<ValueId>,
        y: ValueId,
        axis: usize,
    },
    /// `y[.., i, ..] = x[.., start + i·stride, ..]` on `axis`.
    Slice {
        x: ValueId,
        y: ValueId,
        axis: usize,
        start: TDim,
        stride: usize,
    },
    Pad {
        x: ValueId,
        y: ValueId,
        pads: Vec<(usize, usize)>,
        mode: PadKind,
    },
    Resize {
        x: ValueId,
        y: ValueId,
        how: Resampling,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadKind {
    Constant(f32),
    Reflect,
    Edge,
}

/// A network as GPU steps over values; one input, one output.
#[derive(Clone, Debug)]
pub struct Graph {
    pub values: Vec<Value>,
    pub steps: Vec<Step>,
    pub input: ValueId,
    pub output: ValueId,
    /// The symbolic axes of the input: (axis, symbol).
    symbols: Vec<(usize, Symbol)>,
}

impl Graph {
    /// Every value's shape for one input shape.
    pub fn shapes(&self, input: &[usize]) -> Result<Vec<Vec<usize>>, GpuError> {
        let declared = &self.values[self.input].shape;
        if declared.len() != input.len() {
            return Err(GpuError::Input(format!(
                "the network takes rank {} inputs, got {input:?}",
                declared.len()
            )));
        }
        let sv = self.symbol_values(input);
        let shapes = self
            .values
            .iter()
            .map(|v| {
                v.shape
                    .iter()
                    .map(|d| Ok(d.eval(&sv).to_usize()?))
                    .collect::<TractResult<Vec<usize>>>()
            })
            .collect::<TractResult<Vec<_>>>()
            .map_err(|e| GpuError::Input(format!("shape {input:?}: {e}")))?;
        if shapes[self.input] != input {
            return Err(GpuError::Input(format!(
                "the network takes {:?}, got {input:?}",
                declared
            )));
        }
        Ok(shapes)
    }

    /// The values of the input's symbolic axes for one input shape.
    pub fn symbol_values(&self, input: &[usize]) -> SymbolValues {
        let mut sv = SymbolValues::default();
        for (axis, s) in &self.symbols {
            if let Some(&d) = input.get(*axis) {
                sv.set(s, d as i64);
            }
        }
        sv
    }

    /// The value whose buffer `v` uses.
    pub fn root(&self, mut v: ValueId) -> ValueId {
        while let Some(a) = self.values[v].alias_of {
            v = a;
        }
        v
    }
}

fn unsupported(node: &TypedNode, why: impl Into<String>) -> GpuError {
    GpuError::Unsupported {
        op: node.op().name().to_string(),
        node: node.name.clone(),
        why: why.into(),
    }
}

/// What an outlet of the tract model is on the GPU side.
#[derive(Clone)]
enum Operand {
    Value(ValueId),
    Const(Arc<Tensor>),
}

fn floats(t: &Tensor) -> TractResult<Vec<f32>> {
    let t = t.cast_to::<f32>()?;
    // The logical order whatever the strides (tract's broadcast constants have odd ones).
    Ok(t.to_plain_array_view::<f32>()?.iter().copied().collect())
}

struct Lowering<'m> {
    model: &'m TypedModel,
    g: Graph,
    map: HashMap<OutletId, Operand>,
    /// Which step wrote each value (for the fusions).
    producer: HashMap<ValueId, usize>,
}

/// Lowers a decluttered tract model (f32, one input, one output).
pub fn lower(model: &TypedModel) -> Result<Graph, GpuError> {
    let inputs = model.input_outlets()?;
    let outputs = model.output_outlets()?;
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(GpuError::Unsupported {
            op: "graph".into(),
            node: String::new(),
            why: format!(
                "{} inputs and {} outputs (one each)",
                inputs.len(),
                outputs.len()
            ),
        });
    }
    let input_fact = model.outlet_fact(inputs[0])?;
    let symbols = input_fact
        .shape
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match d {
            TDim::Sym(s) => Some((i, s.clone())),
            _ => None,
        })
        .collect();
    let mut l = Lowering {
        model,
        g: Graph {
            values: vec![],
            steps: vec![],
            input: 0,
            output: 0,
            symbols,
        },
        map: HashMap::new(),
        producer: HashMap::new(),
    };
    for id in model.eval_order()? {
        l.node(&model.nodes[id])?;
    }
    l.g.input = l.value(inputs[0], &model.nodes[inputs[0].node])?;
    let out_node = &model.nodes[outputs[0].node];
    l.g.output = l.value(outputs[0], out_node)?;
    if l.g.input == l.g.output {
        return Err(unsupported(out_node, "the output is the input"));
    }
    Ok(l.g)
}

impl Lowering<'_> {
    fn new_value(&mut self, shape: &ShapeFact, alias_of: Option<ValueId>) -> ValueId {
        self.g.values.push(Value {
            shape: shape.iter().cloned().collect(),
            alias_of,
        });
        self.g.values.len() - 1
    }

    fn out_value(&mut self, node: &TypedNode) -> ValueId {
        let v = self.new_value(&node.outputs[0].fact.shape, None);
        self.map
            .insert(OutletId::new(node.id, 0), Operand::Value(v));
        v
    }

    fn push(&mut self, y: ValueId, step: Step) {
        self.producer.insert(y, self.g.steps.len());
        self.g.steps.push(step);
    }

    fn operand(&self, o: OutletId) -> Option<&Operand> {
        self.map.get(&o)
    }

    fn value(&self, o: OutletId, node: &TypedNode) -> Result<ValueId, GpuError> {
        match self.map.get(&o) {
            Some(Operand::Value(v)) => Ok(*v),
            Some(Operand::Const(_)) => {
                Err(unsupported(node, "a constant where a tensor was expected"))
            }
            None => Err(unsupported(node, "an input the GPU engine did not produce")),
        }
    }

    fn konst(&self, o: OutletId, node: &TypedNode) -> Result<Arc<Tensor>, GpuError> {
        match self.map.get(&o) {
            Some(Operand::Const(t)) => Ok(t.clone()),
            _ => Err(unsupported(node, "a non-constant weight")),
        }
    }

    /// The convolution step that produced `v`, if nothing else reads `v` and it has no
    /// activation yet: a candidate for a fusion.
    fn fusable_conv(&self, node: &TypedNode, v: ValueId) -> Option<usize> {
        let input = node
            .inputs
            .iter()
            .find(|o| matches!(self.map.get(o), Some(Operand::Value(x)) if *x == v))?;
        let readers = self.model.nodes[input.node].outputs[input.slot]
            .successors
            .len();
        let is_output = self.model.output_outlets().ok()?.contains(input);
        if readers != 1 || is_output || self.g.values[v].alias_of.is_some() {
            return None;
        }
        let s = *self.producer.get(&v)?;
        match &self.g.steps[s] {
            Step::Conv(c) if c.y == v && c.act == Act::None => Some(s),
            _ => None,
        }
    }

    fn node(&mut self, node: &TypedNode) -> Result<(), GpuError> {
        let op = node.op();
        let out = OutletId::new(node.id, 0);
        if op.is::<ops::source::TypedSource>() {
            if node.outputs[0].fact.datum_type != f32::datum_type() {
                return Err(unsupported(node, "a non-f32 input"));
            }
            self.out_value(node);
            return Ok(());
        }
        if let Some(k) = &node.outputs[0].fact.konst {
            self.map.insert(out, Operand::Const(k.clone()));
            return Ok(());
        }
        if node.outputs.len() != 1 {
            return Err(unsupported(node, "several outputs"));
        }
        if node.outputs[0].fact.datum_type != f32::datum_type() {
            return Err(unsupported(
                node,
                format!("type {:?}", node.outputs[0].fact.datum_type),
            ));
        }
        let rank = node.outputs[0].fact.rank();
        if let Some(conv) = op.downcast_ref::<Conv>() {
            return self.conv(node, conv);
        }
        if let Some(e) = op.downcast_ref::<ops::einsum::EinSum>() {
            return self.einsum(node, e);
        }
        if op.name() == "PReluF32" {
            let slope = floats(&*self.konst(node.inputs[1], node)?)?;
            let channels = node.outputs[0]
                .fact
                .shape
                .get(1)
                .and_then(|d| d.to_usize().ok());
            if slope.len() != 1 && (rank < 2 || channels != Some(slope.len())) {
                return Err(unsupported(node, "a slope that is not per channel"));
            }
            return self.act(node, Act::PRelu(slope));
        }
        if let Some(ew) = op.downcast_ref::<ops::element_wise::ElementWiseOp>() {
            if let Some(lr) = ew.0.downcast_ref::<ops::nn::LeakyRelu>() {
                return self.act(node, Act::Leaky(lr.alpha));
            }
            let act = match &*ew.0.name() {
                "Sigmoid" => Act::Sigmoid,
                "Silu" => Act::Silu,
                "Tanh" => Act::Tanh,
                other => return Err(unsupported(node, format!("element-wise {other}"))),
            };
            return self.act(node, act);
        }
        if let Some(bin) = op.downcast_ref::<ops::binary::TypedBinOp>() {
            let bop = match bin.0.name() {
                "Add" => BinOp::Add,
                "Mul" => BinOp::Mul,
                "Sub" => BinOp::Sub,
                "Div" => BinOp::Div,
                "Max" => BinOp::Max,
                "Min" => BinOp::Min,
                other => return Err(unsupported(node, format!("binary {other}"))),
            };
            return self.binary(node, bop);
        }
        if let Some(c) = op.downcast_ref::<ops::array::TypedConcat>() {
            let xs = node
                .inputs
                .iter()
                .map(|&i| self.value(i, node))
                .collect::<Result<Vec<_>, _>>()?;
            let y = self.out_value(node);
            self.push(
                y,
                Step::Concat {
                    xs,
                    y,
                    axis: c.axis,
                },
            );
            return Ok(());
        }
        if let Some(a) = op.downcast_ref::<AxisOp>() {
            let x = self.value(node.inputs[0], node)?;
            return match a {
                AxisOp::Move(from, to) => {
                    let mut perm: Vec<usize> = (0..rank).collect();
                    let moved = perm.remove(*from);
                    perm.insert(*to, moved);
                    let y = self.out_value(node);
                    self.push(y, Step::Permute { x, y, perm });
                    Ok(())
                }
                // Adding, removing or regrouping axes keeps the row-major order of the data.
                _ => {
                    let v = self.new_value(&node.outputs[0].fact.shape, Some(x));
                    self.map.insert(out, Operand::Value(v));
                    Ok(())
                }
            };
        }
        if op.is::<ops::identity::Identity>() {
            let x = self.value(node.inputs[0], node)?;
            self.map.insert(out, Operand::Value(x));
            return Ok(());
        }
        if let Some(d) = op.downcast_ref::<ops::Downsample>() {
            if d.stride <= 0 {
                return Err(unsupported(node, "a negative stride"));
            }
            let x = self.value(node.inputs[0], node)?;
            let y = self.out_value(node);
            let step = Step::Slice {
                x,
                y,
                axis: d.axis,
                start: d.modulo.to_dim(),
                stride: d.stride as usize,
            };
            self.push(y, step);
            return Ok(());
        }
        if let Some(s) = op.downcast_ref::<ops::array::Slice>() {
            let x = self.value(node.inputs[0], node)?;
            let y = self.out_value(node);
            let step = Step::Slice {
                x,
                y,
                axis: s.axis,
                start: s.start.clone(),
                stride: 1,
            };
            self.push(y, step);
            return Ok(());
        }
        if let Some(p) = op.downcast_ref::<ops::array::Pad>() {
            let mode = match &p.mode {
                ops::array::PadMode::Constant(v) => PadKind::Constant(floats(v)?[0]),
                ops::array::PadMode::Reflect => PadKind::Reflect,
                ops::array::PadMode::Edge => PadKind::Edge,
            };
            let x = self.value(node.inputs[0], node)?;
            let y = self.out_value(node);
            self.push(
                y,
                Step::Pad {
                    x,
                    y,
                    pads: p.pads.clone(),
                    mode,
                },
            );
            return Ok(());
        }
        if let Some(u) = op.downcast_ref::<NearestUpsample>() {
            if rank < 2 || u.scales[..rank - 2].iter().any(|&s| s != 1) {
                return Err(unsupported(
                    node,
                    "an upsampling of other axes than the last two",
                ));
            }
            let x = self.value(node.inputs[0], node)?;
            let y = self.out_value(node);
            let how = Resampling::Nearest([u.scales[rank - 2], u.scales[rank - 1]]);
            self.push(y, Step::Resize { x, y, how });
            return Ok(());
        }
        if let Some(r) = op.downcast_ref::<Resize>() {
            return self.resize(node, r);
        }
        Err(unsupported(node, "not implemented on the GPU"))
    }

    fn conv(&mut self, node: &TypedNode, conv: &Conv) -> Result<(), GpuError> {
        use tract_onnx::tract_core::ops::nn::DataFormat;
        let ps = &conv.pool_spec;
        if conv.group != 1 || conv.q_params.is_some() {
            return Err(unsupported(node, "grouped or quantized"));
        }
        if ps.data_format != DataFormat::NCHW || ps.kernel_shape.len() != 2 {
            return Err(unsupported(node, "not a 2-D NCHW convolution"));
        }
        if ps.dilations().iter().any(|&d| d != 1) {
            return Err(unsupported(node, "dilated"));
        }
        let pad = match &ps.padding {
            PaddingSpec::Valid => [0, 0],
            PaddingSpec::Explicit(b, _) | PaddingSpec::ExplicitOnnxPool(b, _, false) => {
                [b[0], b[1]]
            }
            other => return Err(unsupported(node, format!("padding {other:?}"))),
        };
        let strides = ps.strides();
        let stride = [strides[0], strides[1]];
        let kernel = self.konst(node.inputs[1], node)?;
        let kernel = kernel.cast_to::<f32>()?;
        let view = kernel.to_plain_array_view::<f32>()?;
        if view.ndim() != 4 {
            return Err(unsupported(node, "a kernel of rank other than 4"));
        }
        // OIHW order, whatever tract keeps.
        let oihw = match conv.kernel_fmt {
            KernelFormat::OIHW => view,
            KernelFormat::HWIO => view.permuted_axes(vec![3, 2, 0, 1]),
            KernelFormat::OHWI => view.permuted_axes(vec![0, 3, 1, 2]),
        };
        let (co, ci, kh, kw) = (
            oihw.shape()[0],
            oihw.shape()[1],
            oihw.shape()[2],
            oihw.shape()[3],
        );
        let weights: Vec<f32> = oihw.iter().copied().collect();
        let bias = floats(&*self.konst(node.inputs[2], node)?)?;
        let bias = match bias.len() {
            1 => vec![bias[0]; co],
            n if n == co => bias,
            n => return Err(unsupported(node, format!("{n} biases for {co} channels"))),
        };
        let x = self.value(node.inputs[0], node)?;
        let y = self.out_value(node);
        let step = ConvStep {
            x,
            y,
            weights,
            bias,
            co,
            ci,
            kernel: [kh, kw],
            stride,
            pad,
            act: Act::None,
        };
        self.push(y, Step::Conv(step));
        Ok(())
    }

    /// tract's form of a 1×1 convolution: `EinSum` of an NCHW tensor and an [O,I] (or [I,O])
    /// constant.
    fn einsum(&mut self, node: &TypedNode, e: &ops::einsum::EinSum) -> Result<(), GpuError> {
        let no = || unsupported(node, "not a 1×1 convolution");
        if e.q_params.is_some() || node.inputs.len() != 2 || node.outputs[0].fact.rank() != 4 {
            return Err(no());
        }
        let Some(Operand::Value(x)) = self.operand(node.inputs[0]).cloned() else {
            return Err(no());
        };
        let Some(Operand::Const(k)) = self.operand(node.inputs[1]).cloned() else {
            return Err(no());
        };
        if k.rank() != 2 {
            return Err(no());
        }
        // Each axis: in x at position p, in k at q, in the output at r.
        let (mut i_in_k, mut o_in_k) = (None, None);
        for axis in e.axes.iter_all_axes() {
            let (a, b, c) = (&axis.inputs[0], &axis.inputs[1], &axis.outputs[0]);
            match (a.as_slice(), b.as_slice(), c.as_slice()) {
                ([1], [q], []) => i_in_k = Some(*q),
                ([], [q], [1]) => o_in_k = Some(*q),
                ([p], [], [r]) if p == r && *p != 1 => {}
                _ => return Err(no()),
            }
        }
        let (Some(iq), Some(oq)) = (i_in_k, o_in_k) else {
            return Err(no());
        };
        let k = k.cast_to::<f32>()?;
        let view = k.to_plain_array_view::<f32>()?;
        let oi = if oq == 0 && iq == 1 {
            view
        } else {
            view.reversed_axes()
        };
        let (co, ci) = (oi.shape()[0], oi.shape()[1]);
        let weights: Vec<f32> = oi.iter().copied().collect();
        let y = self.out_value(node);
        let step = ConvStep {
            x,
            y,
            weights,
            bias: vec![0.0; co],
            co,
            ci,
            kernel: [1, 1],
            stride: [1, 1],
            pad: [0, 0],
            act: Act::None,
        };
        self.push(y, Step::Conv(step));
        Ok(())
    }

    fn act(&mut self, node: &TypedNode, act: Act) -> Result<(), GpuError> {
        let x = self.value(node.inputs[0], node)?;
        if let Some(s) = self.fusable_conv(node, x) {
            if let Step::Conv(c) = &mut self.g.steps[s] {
                c.act = act;
            }
            self.map
                .insert(OutletId::new(node.id, 0), Operand::Value(x));
            return Ok(());
        }
        let y = self.out_value(node);
        self.push(y, Step::Act { x, y, act });
        Ok(())
    }

    fn binary(&mut self, node: &TypedNode, op: BinOp) -> Result<(), GpuError> {
        let a = self.operand(node.inputs[0]).cloned();
        let b = self.operand(node.inputs[1]).cloned();
        let out_shape = node.outputs[0].fact.shape.clone();
        match (a, b) {
            (Some(Operand::Value(a)), Some(Operand::Value(b))) => {
                let same = |v: ValueId| {
                    self.g.values[v].shape == out_shape.iter().cloned().collect::<Vec<_>>()
                };
                if !same(a) || !same(b) {
                    return Err(unsupported(node, "a broadcast between two tensors"));
                }
                let y = self.out_value(node);
                self.push(y, Step::Binary { a, b, y, op });
                Ok(())
            }
            (Some(Operand::Value(a)), Some(Operand::Const(c))) => {
                self.binary_const(node, op, a, &c, false)
            }
            (Some(Operand::Const(c)), Some(Operand::Value(a))) => {
                self.binary_const(node, op, a, &c, true)
            }
            _ => Err(unsupported(node, "inputs the GPU engine did not produce")),
        }
    }

    fn binary_const(
        &mut self,
        node: &TypedNode,
        op: BinOp,
        a: ValueId,
        c: &Tensor,
        const_first: bool,
    ) -> Result<(), GpuError> {
        let shape = self.g.values[a].shape.clone();
        if node.outputs[0]
            .fact
            .shape
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            != shape
            || c.rank() > shape.len()
        {
            return Err(unsupported(node, "a constant that broadcasts the tensor"));
        }
        let offset = shape.len() - c.rank();
        let non_unit: Vec<usize> = (0..c.rank()).filter(|&i| c.shape()[i] != 1).collect();
        let axis = match non_unit.as_slice() {
            [] => None,
            [i] if shape[offset + i] == c.shape()[*i].to_dim() => Some(offset + i),
            _ => {
                return Err(unsupported(
                    node,
                    "a constant that varies along several axes",
                ))
            }
        };
        let values = floats(c)?;
        // A per-channel Add or Mul after a convolution: folded into its bias and weights.
        let foldable = matches!(op, BinOp::Add | BinOp::Mul)
            || (!const_first && matches!(op, BinOp::Sub | BinOp::Div));
        if foldable && matches!(axis, None | Some(1)) {
            if let Some(s) = self.fusable_conv(node, a) {
                let Step::Conv(conv) = &mut self.g.steps[s] else {
                    unreachable!()
                };
                let per = conv.weights.len() / conv.co;
                for o in 0..conv.co {
                    let v = values[if values.len() == 1 { 0 } else { o }];
                    match op {
                        BinOp::Add => conv.bias[o] += v,
                        BinOp::Sub => conv.bias[o] -= v,
                        BinOp::Max | BinOp::Min => unreachable!(),
                        BinOp::Mul | BinOp::Div => {
                            let f = if op == BinOp::Mul { v } else { 1.0 / v };
                            conv.bias[o] *= f;
                            conv.weights[o * per..(o + 1) * per]
                                .iter_mut()
                                .for_each(|w| *w *= f);
                        }
                    }
                }
                self.map
                    .insert(OutletId::new(node.id, 0), Operand::Value(a));
                return Ok(());
            }
        }
        let y = self.out_value(node);
        self.push(
            y,
            Step::BinaryConst {
                a,
                y,
                op,
                values,
                axis,
                const_first,
            },
        );
        Ok(())
    }

    fn resize(&mut self, node: &TypedNode, r: &Resize) -> Result<(), GpuError> {
        let rank = node.outputs[0].fact.rank();
        let x = self.value(node.inputs[0], node)?;
        let in_shape = &self.g.values[x].shape;
        let out_shape = &node.outputs[0].fact.shape;
        if rank < 2 || (0..rank - 2).any(|i| in_shape[i] != out_shape[i]) {
            return Err(unsupported(
                node,
                "a resize of other axes than the last two",
            ));
        }
        let scales = match r.optional_scales_input {
            Some(i) if i < node.inputs.len() => {
                let s = floats(&*self.konst(node.inputs[i], node)?)?;
                (s.len() == rank).then_some(s)
            }
            _ => None,
        };
        let y = self.out_value(node);
        let how = Resampling::Core(Box::new(r.clone()), scales);
        self.push(y, Step::Resize { x, y, how });
        Ok(())
    }
}
