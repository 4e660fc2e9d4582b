//! Unblur's patch: PReLU as one in-place pass over its input (f32).
//!
//! Upstream wires PReLU as three operators — `x·slope`, `0 > x`, and a select between them —
//! each a full pass over the activation and each with its own output buffer. Real-ESRGAN's compact
//! networks put a PReLU after every convolution, so those passes were ~11 % of a tile natively and
//! more in wasm, where the 64-channel activations of a 256² tile (17 MB each) do not fit in any
//! cache. This operator computes the same values (the same multiply, only where `x < 0`) in place.
use tract_hir::internal::*;
use tract_hir::tract_core::ndarray::Zip;

#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct PReluF32;

impl Op for PReluF32 {
    fn name(&self) -> StaticName {
        "PReluF32".into()
    }
    op_as_typed_op!();
}

impl EvalOp for PReluF32 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, slope) = args_2!(inputs);
        let mut x = x.into_tensor();
        let shape: TVec<usize> = x.shape().into();
        // The common case: one slope per channel of axis `axis`, the rest of the slope's axes 1.
        let non_unit: TVec<usize> =
            (0..slope.rank()).filter(|&i| slope.shape()[i] != 1).collect();
        let natural = x.strides() == &*Tensor::natural_strides(x.shape());
        if natural && slope.rank() == shape.len() && non_unit.len() <= 1 {
            let axis = non_unit.first().copied().unwrap_or(0);
            let slopes: Vec<f32> = slope.to_plain_array_view::<f32>()?.iter().copied().collect();
            if slopes.len() == 1 || slopes.len() == shape[axis] {
                let inner: usize = shape[axis + 1..].iter().product();
                let mut plain = x.try_as_plain_ram_mut()?;
                let data = plain.as_slice_mut::<f32>()?;
                if inner > 0 {
                    for (block, chunk) in data.chunks_exact_mut(inner).enumerate() {
                        let a = slopes[if slopes.len() == 1 { 0 } else { block % shape[axis] }];
                        // A select, not a branch: the loop vectorises.
                        for v in chunk {
                            let x = *v;
                            *v = if x < 0.0 { x * a } else { x };
                        }
                    }
                }
                return Ok(tvec!(x.into_tvalue()));
            }
        }
        let slope = slope.to_plain_array_view::<f32>()?;
        let mut view = x.to_plain_array_view_mut::<f32>()?;
        Zip::from(&mut view).and_broadcast(&slope).for_each(|v, &a| {
            if *v < 0.0 {
                *v *= a
            }
        });
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for PReluF32 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 2);
        ensure!(inputs[0].datum_type == f32::datum_type());
        ensure!(inputs[1].datum_type == f32::datum_type());
        ensure!(inputs[0].rank() == inputs[1].rank());
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}
