//! GFPGAN v1.3 / v1.4 (`GFPGANv1Clean`: a U-Net whose decoder features modulate a StyleGAN2
//! generator through SFT) built as an ONNX graph from its checkpoint's state dict.
//!
//! It follows the upstream module layer by layer (`gfpganv1_clean_arch.py` in GFPGAN, the same
//! code in spandrel), with two rewrites of the same maths that tract runs far faster, as
//! `models/export.py` proved:
//! - a modulated convolution is `conv(x · s, W) · rsqrt((s²) · Σₖ W² + ε)` with the constant
//!   weight `W`, instead of a per-sample weight `W · s` in a grouped convolution;
//! - the noise of each style convolution is the stored buffer (`randomize_noise=False`), times
//!   its strength, folded into one constant.

use super::graph::Graph;
use super::pth::StateDict;
use crate::error::Result;

/// Channels of the U-Net (`unet_narrow = 0.5`) and of the StyleGAN2 decoder, by resolution.
fn channels(res: usize, unet: bool) -> usize {
    let c = match res {
        4..=32 => 512,
        64 => 512,
        128 => 256,
        256 => 128,
        512 => 64,
        _ => unreachable!(),
    };
    if unet {
        c / 2
    } else {
        c
    }
}

const SIZE: usize = 512;
const LOG_SIZE: usize = 9;
const STYLE: usize = 512;
/// `(log_size * 2 - 2)` latent rows, one per style layer.
const LATENTS: usize = LOG_SIZE * 2 - 2;

/// Whether a checkpoint is a GFPGAN clean-architecture one (spandrel's test).
pub fn detect(sd: &StateDict) -> bool {
    sd.contains_key("toRGB.0.weight") && sd.contains_key("stylegan_decoder.style_mlp.1.weight")
}

pub fn build(sd: StateDict) -> Result<tract_onnx::pb::ModelProto> {
    let mut g = Graph::new(sd);
    // toRGB (intermediate images, only for training) and the style MLP (input_is_latent) are
    // not part of inference; drop them so that `finish` sees every other tensor used.
    for i in 0..LOG_SIZE - 2 {
        g.take(&format!("toRGB.{i}.weight"))?;
        g.take(&format!("toRGB.{i}.bias"))?;
    }
    for i in 1..=8 {
        g.take(&format!("stylegan_decoder.style_mlp.{}.weight", 2 * i - 1))?;
        g.take(&format!("stylegan_decoder.style_mlp.{}.bias", 2 * i - 1))?;
    }

    // encoder
    let mut feat = g.conv(
        "input",
        "conv_body_first",
        1,
        [0, 0, 0, 0], // 1×1
    )?;
    feat = g.leaky(&feat, 0.2);
    let mut skips = vec![];
    for i in 0..LOG_SIZE - 2 {
        feat = res_block(&mut g, &feat, &format!("conv_body_down.{i}"), 0.5)?;
        skips.insert(0, feat.clone());
    }
    feat = g.conv_same(&feat, "final_conv")?;
    feat = g.leaky(&feat, 0.2);

    // style code: one latent row per style layer
    let flat = g.reshape(&feat, &[1, -1]);
    let code = g.linear(&flat, "final_linear")?;
    let code = g.reshape(&code, &[LATENTS as i64, STYLE as i64]);
    let latent: Vec<String> = (0..LATENTS as i64)
        .map(|i| g.slice(&code, 0, i, i + 1))
        .collect();

    // decoder of the U-Net: SFT conditions
    let mut conditions = vec![];
    for (i, skip) in skips.iter().enumerate() {
        feat = g.add(&feat, skip);
        feat = res_block(&mut g, &feat, &format!("conv_body_up.{i}"), 2.0)?;
        for which in ["condition_scale", "condition_shift"] {
            let c = g.conv_same(&feat, &format!("{which}.{i}.0"))?;
            let c = g.leaky(&c, 0.2);
            conditions.push(g.conv_same(&c, &format!("{which}.{i}.2"))?);
        }
    }

    // StyleGAN2 generator with SFT on half the channels
    let d = "stylegan_decoder";
    let c4 = channels(4, false);
    let mut out = g.weight(&format!("{d}.constant_input.weight"), &[1, c4, 4, 4])?;
    out = style_conv(
        &mut g,
        &out,
        &latent[0],
        &format!("{d}.style_conv1"),
        0,
        false,
    )?;
    let mut skip = to_rgb(&mut g, &out, &latent[1], &format!("{d}.to_rgb1"), None)?;
    let mut i = 1;
    for j in 0..LOG_SIZE - 2 {
        out = style_conv(
            &mut g,
            &out,
            &latent[i],
            &format!("{d}.style_convs.{}", 2 * j),
            2 * j + 1,
            true,
        )?;
        if i < conditions.len() {
            let c = channels(1 << (j + 3), false);
            let same = g.slice(&out, 1, 0, (c / 2) as i64);
            let sft = g.slice(&out, 1, (c / 2) as i64, c as i64);
            let sft = g.mul(&sft, &conditions[i - 1]);
            let sft = g.add(&sft, &conditions[i]);
            out = g.concat(&[&same, &sft], 1);
        }
        out = style_conv(
            &mut g,
            &out,
            &latent[i + 1],
            &format!("{d}.style_convs.{}", 2 * j + 1),
            2 * j + 2,
            false,
        )?;
        skip = to_rgb(
            &mut g,
            &out,
            &latent[i + 2],
            &format!("{d}.to_rgbs.{j}"),
            Some(&skip),
        )?;
        i += 2;
    }
    g.finish(&skip, &[1, 3, SIZE, SIZE], "GFPGAN v1 (clean)")
}

/// GFPGAN's `ResBlock`: conv, bilinear resize, conv, plus a resized 1×1 skip.
fn res_block(g: &mut Graph, x: &str, p: &str, scale: f32) -> Result<String> {
    let out = g.conv_same(x, &format!("{p}.conv1"))?;
    let out = g.leaky(&out, 0.2);
    let out = g.resize(&out, scale, false);
    let out = g.conv_same(&out, &format!("{p}.conv2"))?;
    let out = g.leaky(&out, 0.2);
    let xs = g.resize(x, scale, false);
    let skip = g.conv(&xs, &format!("{p}.skip"), 1, [0, 0, 0, 0])?;
    Ok(g.add(&out, &skip))
}

/// A modulated convolution: the style scales the input channels, the constant weight convolves,
/// and (with `demodulate`) each output channel is scaled back to unit norm. `gain` multiplies
/// the demodulation (StyleConv's √2).
fn modulated_conv(
    g: &mut Graph,
    x: &str,
    style: &str,
    p: &str,
    demodulate: bool,
    upsample: bool,
    gain: f32,
) -> Result<String> {
    let w = g.take(&format!("{p}.weight"))?;
    let [_, c_out, c_in, k, _] = w.shape[..] else {
        return Err(crate::Error::Model(format!(
            "'{p}.weight' is not a modulated convolution weight"
        )));
    };
    let s = g.linear(style, &format!("{p}.modulation"))?; // [1, c_in]
    let x = if upsample {
        g.resize(x, 2.0, false)
    } else {
        x.to_owned()
    };
    let s4 = g.reshape(&s, &[1, c_in as i64, 1, 1]);
    let xs = g.mul(&x, &s4);
    let wn = g.constant(&format!("{p}.weight"), &[c_out, c_in, k, k], &w.data);
    let pad = (k / 2) as i64;
    let out = g.op(
        "Conv",
        &[&xs, &wn],
        vec![
            (
                "kernel_shape",
                super::graph::Attr::Ints(vec![k as i64, k as i64]),
            ),
            ("pads", super::graph::Attr::Ints(vec![pad; 4])),
        ],
    );
    if !demodulate {
        return Ok(out);
    }
    // Σₖ W², transposed to [c_in, c_out]
    let kk = k * k;
    let mut wsq = vec![0f32; c_in * c_out];
    for o in 0..c_out {
        for i in 0..c_in {
            let base = (o * c_in + i) * kk;
            wsq[i * c_out + o] = w.data[base..base + kk].iter().map(|v| v * v).sum();
        }
    }
    let wsq = g.constant(&format!("{p}.wsq"), &[c_in, c_out], &wsq);
    let ss = g.mul(&s, &s);
    let norm = g.op("MatMul", &[&ss, &wsq], vec![]);
    let eps = g.constant("eps", &[1], &[1e-8]);
    let norm = g.add(&norm, &eps);
    let norm = g.op("Sqrt", &[&norm], vec![]);
    let gain = g.constant("gain", &[1], &[gain]);
    let demod = g.op("Div", &[&gain, &norm], vec![]);
    let demod = g.reshape(&demod, &[1, c_out as i64, 1, 1]);
    Ok(g.mul(&out, &demod))
}

/// StyleGAN2's `StyleConv`: modulated conv · √2, plus stored noise · strength, plus bias, leaky ReLU.
fn style_conv(
    g: &mut Graph,
    x: &str,
    style: &str,
    p: &str,
    noise_index: usize,
    upsample: bool,
) -> Result<String> {
    let out = modulated_conv(
        g,
        x,
        style,
        &format!("{p}.modulated_conv"),
        true,
        upsample,
        std::f32::consts::SQRT_2,
    )?;
    let strength = g.take_shaped(&format!("{p}.weight"), &[1])?.data[0];
    let noise = g.take(&format!("stylegan_decoder.noises.noise{noise_index}"))?;
    let scaled: Vec<f32> = noise.data.iter().map(|v| v * strength).collect();
    let noise = g.constant("noise", &noise.shape, &scaled);
    let out = g.add(&out, &noise);
    let bias = g.take(&format!("{p}.bias"))?;
    let bias = g.constant(&format!("{p}.bias"), &bias.shape, &bias.data);
    let out = g.add(&out, &bias);
    Ok(g.leaky(&out, 0.2))
}

/// `ToRGB`: a 1×1 modulated conv without demodulation, plus bias, plus the upsampled skip.
fn to_rgb(g: &mut Graph, x: &str, style: &str, p: &str, skip: Option<&str>) -> Result<String> {
    let out = modulated_conv(
        g,
        x,
        style,
        &format!("{p}.modulated_conv"),
        false,
        false,
        1.0,
    )?;
    let bias = g.take(&format!("{p}.bias"))?;
    let bias = g.constant(&format!("{p}.bias"), &bias.shape, &bias.data);
    let out = g.add(&out, &bias);
    Ok(match skip {
        Some(s) => {
            let up = g.resize(s, 2.0, false);
            g.add(&out, &up)
        }
        None => out,
    })
}
