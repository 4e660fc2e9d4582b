//! CodeFormer v0.1.0 (a VQGAN encoder, a transformer that predicts codebook entries, the VQGAN
//! generator, and controllable feature fusion) built as an ONNX graph from its checkpoint.
//!
//! It follows the upstream module (`codeformer_arch.py`; spandrel_extra_arches carries the same
//! code) block by block: the blocks of the encoder and the generator are recognised from the
//! checkpoint's keys, the fusion blocks from `fuse_convs_dict.*`. The fidelity weight `w` is the
//! scalar constant [`super::FIDELITY`], set at load time: `w` multiplies each fusion's residual,
//! so `w = 0` gives the codebook's face and `w = 1` the most faithful one. Two rewrites of the
//! same maths, as `models/export.py` proved fast in tract: the chosen code is the argmax of the
//! logits (the top-1 of their softmax) gathered from the codebook, instead of a one-hot matmul;
//! the batch of one is dropped inside the transformer (tokens × channels).

use super::graph::{Attr, Graph};
use super::pth::StateDict;
use crate::error::{Error, Result};

/// Attention heads of the transformer (not in the checkpoint; upstream fixes 8).
const HEADS: usize = 8;
const SIZE: usize = 512;

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

fn shape(sd: &StateDict, key: &str) -> Result<Vec<usize>> {
    sd.get(key)
        .map(|t| t.shape.clone())
        .ok_or_else(|| Error::Model(format!("the checkpoint has no tensor '{key}'")))
}

pub fn build(sd: StateDict) -> Result<tract_onnx::pb::ModelProto> {
    let pos = shape(&sd, "position_emb")?; // [tokens, dim]
    let (tokens, dim) = (pos[0], pos[1]);
    let emb = shape(&sd, "quantize.embedding.weight")?; // [codes, emb_dim]
    let layers = (0..)
        .take_while(|i| sd.contains_key(&format!("ft_layers.{i}.norm1.weight")))
        .count();
    let fuse_sizes: Vec<usize> = [16, 32, 64, 128, 256, 512]
        .into_iter()
        .filter(|s| sd.contains_key(&format!("fuse_convs_dict.{s}.scale.0.weight")))
        .collect();
    let side = (tokens as f64).sqrt() as usize;
    if side * side != tokens || dim % HEADS != 0 {
        return Err(Error::Model(format!(
            "CodeFormer with {tokens} tokens of {dim} is not a variant Unblur knows"
        )));
    }
    let mut g = Graph::new(sd);

    // encoder, keeping the features the fusion blocks read (after the block where the
    // resolution is the fusion's: upstream's `fuse_encoder_block`)
    let fuse_encoder_block = |s: usize| match s {
        512 => 2,
        256 => 5,
        128 => 8,
        64 => 11,
        32 => 14,
        _ => 18,
    };
    let mut enc_feats = vec![];
    let mut x = "input".to_owned();
    let mut res = SIZE;
    for i in 0.. {
        let p = format!("encoder.blocks.{i}");
        if !block_exists(&g, &p) {
            break;
        }
        x = block(&mut g, &x, &p, &mut res)?;
        for &s in &fuse_sizes {
            if fuse_encoder_block(s) == i {
                enc_feats.push((s, x.clone()));
            }
        }
    }
    let lq_feat = x; // [1, emb_dim, side, side]

    // transformer over the tokens: [tokens, dim]
    let flat = g.reshape(&lq_feat, &[emb[1] as i64, tokens as i64]);
    let flat = g.op(
        "Transpose",
        &[&flat],
        vec![("perm", Attr::Ints(vec![1, 0]))],
    );
    let mut q = g.linear_nd(&flat, "feat_emb")?;
    let pos_emb = g.weight("position_emb", &[tokens, dim])?;
    for l in 0..layers {
        q = transformer_layer(&mut g, &q, &pos_emb, &format!("ft_layers.{l}"), tokens, dim)?;
    }
    let n = layer_norm(&mut g, &q, "idx_pred_layer.0", dim)?;
    let logits = g.linear_nd(&n, "idx_pred_layer.1")?; // [tokens, codes]
    let idx = g.op(
        "ArgMax",
        &[&logits],
        vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))],
    );
    let book = g.weight("quantize.embedding.weight", &emb)?;
    let quant = g.op("Gather", &[&book, &idx], vec![("axis", Attr::Int(0))]); // [tokens, emb_dim]
    let quant = g.op(
        "Transpose",
        &[&quant],
        vec![("perm", Attr::Ints(vec![1, 0]))],
    );
    let quant = g.reshape(&quant, &[1, emb[1] as i64, side as i64, side as i64]);
    let quant = adain(&mut g, &quant, &lq_feat, tokens);

    // generator, fusing the encoder's features after the blocks of `fuse_generator_block`
    let fuse_generator_block = |s: usize| match s {
        16 => 6,
        32 => 9,
        64 => 12,
        128 => 15,
        256 => 18,
        _ => 21,
    };
    let w = g.named_constant(super::FIDELITY, &[1], &[0.5]);
    let mut x = quant;
    let mut res = side;
    for i in 0.. {
        let p = format!("generator.blocks.{i}");
        if !block_exists(&g, &p) {
            break;
        }
        x = block(&mut g, &x, &p, &mut res)?;
        if let Some((s, enc)) = enc_feats
            .iter()
            .find(|(s, _)| fuse_generator_block(*s) == i)
            .cloned()
        {
            if s != res {
                return Err(Error::Model(format!(
                    "CodeFormer fusion at {s} meets the generator at {res}"
                )));
            }
            x = fuse(&mut g, &enc, &x, &format!("fuse_convs_dict.{s}"), &w)?;
        }
    }
    g.finish(&x, &[1, 3, SIZE, SIZE], "CodeFormer")
}

fn block_exists(g: &Graph, p: &str) -> bool {
    ["weight", "norm1.weight", "q.weight", "conv.weight"]
        .iter()
        .any(|k| g.has(&format!("{p}.{k}")))
}

/// One block of the VQGAN encoder or generator, told apart by its keys.
fn block(g: &mut Graph, x: &str, p: &str, res: &mut usize) -> Result<String> {
    if g.has(&format!("{p}.norm1.weight")) {
        return res_block(g, x, p);
    }
    if g.has(&format!("{p}.q.weight")) {
        return attn_block(g, x, p, *res);
    }
    if g.has(&format!("{p}.conv.weight")) {
        if p.starts_with("encoder") {
            // Downsample: pad right and bottom by one, stride-2 conv
            *res /= 2;
            return g.conv(x, &format!("{p}.conv"), 2, [0, 0, 1, 1]);
        }
        *res *= 2; // Upsample: nearest ×2, conv
        let up = g.resize(x, 2.0, true);
        return g.conv_same(&up, &format!("{p}.conv"));
    }
    let is_norm = g.peek(&format!("{p}.weight")).is_some_and(|s| s.len() == 1);
    if is_norm {
        return group_norm(g, x, p);
    }
    g.conv_same(x, p)
}

/// `GroupNorm(32, C, eps=1e-6)`: InstanceNormalization over 32 groups, then the affine.
fn group_norm(g: &mut Graph, x: &str, p: &str) -> Result<String> {
    let c = g.peek(&format!("{p}.weight")).unwrap_or_default()[0];
    let groups = 32;
    let r = g.reshape(x, &[1, groups, -1]);
    let ones = g.constant("ones", &[groups as usize], &vec![1.0; groups as usize]);
    let zeros = g.constant("zeros", &[groups as usize], &vec![0.0; groups as usize]);
    let n = g.op(
        "InstanceNormalization",
        &[&r, &ones, &zeros],
        vec![("epsilon", Attr::Float(1e-6))],
    );
    let shape = g.op("Shape", &[x], vec![]);
    let n = g.op("Reshape", &[&n, &shape], vec![]);
    let gamma = g.weight(&format!("{p}.weight"), &[1, c, 1, 1])?;
    let beta = g.weight(&format!("{p}.bias"), &[1, c, 1, 1])?;
    let y = g.mul(&n, &gamma);
    Ok(g.add(&y, &beta))
}

fn swish(g: &mut Graph, x: &str) -> String {
    let s = g.op("Sigmoid", &[x], vec![]);
    g.mul(x, &s)
}

/// VQGAN's `ResBlock`: (norm, swish, conv) twice, plus the input (through a 1×1 conv where the
/// channel count changes).
fn res_block(g: &mut Graph, x: &str, p: &str) -> Result<String> {
    let h = group_norm(g, x, &format!("{p}.norm1"))?;
    let h = swish(g, &h);
    let h = g.conv_same(&h, &format!("{p}.conv1"))?;
    let h = group_norm(g, &h, &format!("{p}.norm2"))?;
    let h = swish(g, &h);
    let h = g.conv_same(&h, &format!("{p}.conv2"))?;
    let skip = if g.has(&format!("{p}.conv_out.weight")) {
        g.conv_same(x, &format!("{p}.conv_out"))?
    } else {
        x.to_owned()
    };
    Ok(g.add(&h, &skip))
}

/// VQGAN's single-head spatial self-attention.
fn attn_block(g: &mut Graph, x: &str, p: &str, res: usize) -> Result<String> {
    let c = g.peek(&format!("{p}.q.weight")).unwrap_or_default()[0];
    let hw = (res * res) as i64;
    let h = group_norm(g, x, &format!("{p}.norm"))?;
    let q = g.conv_same(&h, &format!("{p}.q"))?;
    let k = g.conv_same(&h, &format!("{p}.k"))?;
    let v = g.conv_same(&h, &format!("{p}.v"))?;
    let q = g.reshape(&q, &[c as i64, hw]);
    let q = g.op("Transpose", &[&q], vec![("perm", Attr::Ints(vec![1, 0]))]); // [hw, c]
    let k = g.reshape(&k, &[c as i64, hw]);
    let w = g.op("MatMul", &[&q, &k], vec![]); // [hw, hw]
    let scale = g.constant("scale", &[1], &[(c as f32).powf(-0.5)]);
    let w = g.mul(&w, &scale);
    let w = g.op("Softmax", &[&w], vec![("axis", Attr::Int(1))]);
    let v = g.reshape(&v, &[c as i64, hw]);
    let wt = g.op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
    let h = g.op("MatMul", &[&v, &wt], vec![]); // [c, hw]
    let h = g.reshape(&h, &[1, c as i64, res as i64, res as i64]);
    let h = g.conv_same(&h, &format!("{p}.proj_out"))?;
    Ok(g.add(x, &h))
}

fn layer_norm(g: &mut Graph, x: &str, p: &str, dim: usize) -> Result<String> {
    let w = g.weight(&format!("{p}.weight"), &[dim])?;
    let b = g.weight(&format!("{p}.bias"), &[dim])?;
    Ok(g.op(
        "LayerNormalization",
        &[x, &w, &b],
        vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-5))],
    ))
}

/// `TransformerSALayer`: pre-norm multi-head self-attention (queries and keys carry the
/// position embedding), then a GELU MLP; both residual. `x` is [tokens, dim].
fn transformer_layer(
    g: &mut Graph,
    x: &str,
    pos: &str,
    p: &str,
    tokens: usize,
    dim: usize,
) -> Result<String> {
    let head = dim / HEADS;
    let n = layer_norm(g, x, &format!("{p}.norm1"), dim)?;
    let qk = g.add(&n, pos);
    // in_proj holds the q, k and v projections stacked: split them into three linears
    let w = g.take_shaped(&format!("{p}.self_attn.in_proj_weight"), &[3 * dim, dim])?;
    let b = g.take_shaped(&format!("{p}.self_attn.in_proj_bias"), &[3 * dim])?;
    let proj = |g: &mut Graph, x: &str, part: usize| {
        let rows = &w.data[part * dim * dim..(part + 1) * dim * dim];
        let t = super::graph::transpose(rows, dim, dim);
        let wt = g.constant(&format!("{p}.in_proj_t"), &[dim, dim], &t);
        let bias = g.constant(
            &format!("{p}.in_proj_b"),
            &[dim],
            &b.data[part * dim..(part + 1) * dim],
        );
        let y = g.op("MatMul", &[x, &wt], vec![]);
        let y = g.add(&y, &bias);
        let y = g.reshape(&y, &[tokens as i64, HEADS as i64, head as i64]);
        g.op(
            "Transpose",
            &[&y],
            vec![("perm", Attr::Ints(vec![1, 0, 2]))],
        ) // [heads, tokens, head]
    };
    let q = proj(g, &qk, 0);
    let k = proj(g, &qk, 1);
    let v = proj(g, &n, 2);
    let kt = g.op(
        "Transpose",
        &[&k],
        vec![("perm", Attr::Ints(vec![0, 2, 1]))],
    );
    let s = g.op("MatMul", &[&q, &kt], vec![]);
    let scale = g.constant("scale", &[1], &[(head as f32).powf(-0.5)]);
    let s = g.mul(&s, &scale);
    let s = g.op("Softmax", &[&s], vec![("axis", Attr::Int(-1))]);
    let a = g.op("MatMul", &[&s, &v], vec![]); // [heads, tokens, head]
    let a = g.op(
        "Transpose",
        &[&a],
        vec![("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    let a = g.reshape(&a, &[tokens as i64, dim as i64]);
    let a = g.linear_nd(&a, &format!("{p}.self_attn.out_proj"))?;
    let x = g.add(x, &a);
    let n = layer_norm(g, &x, &format!("{p}.norm2"), dim)?;
    let h = g.linear_nd(&n, &format!("{p}.linear1"))?;
    let h = gelu(g, &h);
    let h = g.linear_nd(&h, &format!("{p}.linear2"))?;
    Ok(g.add(&x, &h))
}

/// Exact GELU: x · ½ · (1 + erf(x / √2)).
fn gelu(g: &mut Graph, x: &str) -> String {
    let r = g.constant("inv_sqrt2", &[1], &[std::f32::consts::FRAC_1_SQRT_2]);
    let e = g.mul(x, &r);
    let e = g.op("Erf", &[&e], vec![]);
    let one = g.constant("one", &[1], &[1.0]);
    let e = g.add(&e, &one);
    let half = g.constant("half", &[1], &[0.5]);
    let e = g.mul(&e, &half);
    g.mul(x, &e)
}

/// Adaptive instance normalisation: the codebook features take the per-channel mean and
/// (unbiased, as `torch.var`) standard deviation of the degraded face's features.
fn adain(g: &mut Graph, content: &str, style: &str, n: usize) -> String {
    let stats = |g: &mut Graph, x: &str| {
        let mean = g.op(
            "ReduceMean",
            &[x],
            vec![("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(1))],
        );
        let d = g.op("Sub", &[x, &mean], vec![]);
        let d2 = g.mul(&d, &d);
        let var = g.op(
            "ReduceMean",
            &[&d2],
            vec![("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(1))],
        );
        let unbias = g.constant("unbias", &[1], &[n as f32 / (n as f32 - 1.0)]);
        let var = g.mul(&var, &unbias);
        let eps = g.constant("eps", &[1], &[1e-5]);
        let var = g.add(&var, &eps);
        let std = g.op("Sqrt", &[&var], vec![]);
        (d, std, mean)
    };
    let (cd, cstd, _) = stats(g, content);
    let (_, sstd, smean) = stats(g, style);
    let y = g.op("Div", &[&cd, &cstd], vec![]);
    let y = g.mul(&y, &sstd);
    g.add(&y, &smean)
}

/// `Fuse_sft_block`: a ResBlock on the encoder and decoder features together gives a scale and
/// a shift; the decoder feature gets `w` times the SFT residual.
fn fuse(g: &mut Graph, enc: &str, dec: &str, p: &str, w: &str) -> Result<String> {
    let cat = g.concat(&[enc, dec], 1);
    let e = res_block(g, &cat, &format!("{p}.encode_enc"))?;
    let branch = |g: &mut Graph, which: &str| -> Result<String> {
        let h = g.conv_same(&e, &format!("{p}.{which}.0"))?;
        let h = g.leaky(&h, 0.2);
        g.conv_same(&h, &format!("{p}.{which}.2"))
    };
    let scale = branch(g, "scale")?;
    let shift = branch(g, "shift")?;
    let r = g.mul(dec, &scale);
    let r = g.add(&r, &shift);
    let r = g.mul(&r, w);
    Ok(g.add(dec, &r))
}
