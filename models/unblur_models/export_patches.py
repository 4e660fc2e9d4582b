"""Forward rewrites applied to loaded PyTorch models before ONNX export, so the exported graph has
only constant convolution weights and no data-dependent scatter.

StyleGAN2 modulated convolution (GFPGAN "clean" arch, GPEN):
    upstream:  w[b] = W * s[b];  w[b] *= rsqrt(sum(w[b]^2) + eps);  grouped conv of x with w[b]
    here:      y = conv(x * s[b], W)  *  rsqrt((s[b]^2) @ sum_k(W^2)^T + eps)
which is the same linear map (the style scales input channels, demodulation scales output
channels), computed with a constant weight. Upsampling variants keep their order of operations:
bilinear resize before the conv (GFPGAN clean), stride-2 transposed conv then blur (GPEN).

Vector quantizers (RestoreFormer++, CodeFormer): nearest code by argmin / the predicted index, then
a Gather from the codebook instead of a one-hot scatter + matmul. ||z||^2 is dropped from the
distance (it does not change the argmin and only adds rounding error).
"""
from __future__ import annotations

import types

import torch
from torch.nn import functional as F


def _const(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().contiguous()


# ------------------------------------------------------------------ StyleGAN2, GFPGAN clean arch

def _gfpgan_clean_forward(self, x, style):
    b, c, _, _ = x.shape
    s = self.modulation(style)  # (b, c_in)
    if self.sample_mode == "upsample":
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    elif self.sample_mode == "downsample":
        x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    out = F.conv2d(x * s.view(b, c, 1, 1), self._unblur_w, padding=self.padding)
    if self.demodulate:
        demod = torch.rsqrt(torch.matmul(s * s, self._unblur_wsq_t) + self.eps)  # (b, c_out)
        out = out * demod.view(b, self.out_channels, 1, 1)
    return out


def patch_gfpgan_clean(model: torch.nn.Module) -> int:
    n = 0
    for m in model.modules():
        if type(m).__name__ == "ModulatedConv2d" and hasattr(m, "sample_mode"):
            w = m.weight[0]  # (c_out, c_in, k, k); the clean arch has no separate scale
            m._unblur_w = _const(w)
            m._unblur_wsq_t = _const(w.pow(2).sum([2, 3]).t())  # (c_in, c_out)
            m.forward = types.MethodType(_gfpgan_clean_forward, m)
            n += 1
    return n


# ------------------------------------------------------------------ StyleGAN2, GPEN (rosinality layout)

def _gpen_forward(self, x, style):
    b, c, _, _ = x.shape
    s = self.modulation(style)
    xs = x * s.view(b, c, 1, 1)
    if self.upsample:
        out = F.conv_transpose2d(xs, self._unblur_wt, padding=0, stride=2)
    elif self.downsample:
        out = F.conv2d(self.blur(xs), self._unblur_w, padding=0, stride=2)
    else:
        out = F.conv2d(xs, self._unblur_w, padding=self.padding)
    if self.demodulate:
        demod = torch.rsqrt(torch.matmul(s * s, self._unblur_wsq_t) + 1e-8)
        out = out * demod.view(b, self.out_channel, 1, 1)
    if self.upsample:
        out = self.blur(out)  # the blur is linear and per channel: same result after demodulation
    return out


def patch_gpen(model: torch.nn.Module) -> int:
    from .gpen_arch import Blur, ModulatedConv2d, Upsample, fir_weight

    n = 0
    for m in model.modules():
        if isinstance(m, (Blur, Upsample)):
            m.fir = _const(fir_weight(m.kernel))  # constant FIR weight, not a Flip in the graph
        if isinstance(m, ModulatedConv2d):
            w = m.scale * m.weight[0]  # (c_out, c_in, k, k)
            m._unblur_w = _const(w)
            m._unblur_wt = _const(w.transpose(0, 1))  # (c_in, c_out, k, k) for conv_transpose2d
            m._unblur_wsq_t = _const(w.pow(2).sum([2, 3]).t())
            m.forward = types.MethodType(_gpen_forward, m)
            n += 1
    return n


# ------------------------------------------------------------------ vector quantizers

def _rf_quantize_forward(self, z):
    b, c, h, w = z.shape
    zf = z.permute(0, 2, 3, 1).reshape(-1, c)
    emb = self.embedding.weight
    d = (emb * emb).sum(1) - 2 * torch.matmul(zf, emb.t())
    idx = torch.argmin(d, dim=1)
    zq = emb[idx].reshape(b, h, w, c).permute(0, 3, 1, 2)
    return zq, torch.zeros((), dtype=z.dtype), None


def patch_restoreformer_vq(model: torch.nn.Module) -> int:
    q = model.quantize
    q.forward = types.MethodType(_rf_quantize_forward, q)
    return 1


def _cf_codebook_feat(self, indices, shape):
    zq = self.embedding.weight[indices.reshape(-1)]
    if shape is not None:
        zq = zq.reshape(shape).permute(0, 3, 1, 2)
    return zq


def patch_codeformer(model: torch.nn.Module) -> int:
    q = model.quantize
    q.get_codebook_feat = types.MethodType(_cf_codebook_feat, q)
    model.forward = types.MethodType(_codeformer_forward, model)
    return 2


def _codeformer_forward(self, x, weight=0.5, **kwargs):
    """CodeFormer's inference path (detach_16, adain, no code_only) with the feature-map sizes
    resolved statically (the upstream forward looks blocks up by str(x.shape[-1]), which does not
    trace) and the token choice as argmax of the logits (same index as top-1 of their softmax)."""
    from spandrel_extra_arches.architectures.CodeFormer.__arch.codeformer import adaptive_instance_normalization

    enc_at = {self.fuse_encoder_block[s]: s for s in self.connect_list}
    gen_at = {self.fuse_generator_block[s]: s for s in self.connect_list}
    enc_feat = {}
    for i, block in enumerate(self.encoder.blocks):
        x = block(x)
        if i in enc_at:
            enc_feat[enc_at[i]] = x
    lq_feat = x
    b = lq_feat.shape[0]
    pos_emb = self.position_emb.unsqueeze(1).repeat(1, b, 1)
    query_emb = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))
    for layer in self.ft_layers:
        query_emb = layer(query_emb, query_pos=pos_emb)
    logits = self.idx_pred_layer(query_emb).permute(1, 0, 2)  # b, hw, n
    top_idx = torch.argmax(logits, dim=2)
    h, w = lq_feat.shape[2], lq_feat.shape[3]
    quant_feat = self.quantize.get_codebook_feat(top_idx, shape=[b, h, w, self.quantize.emb_dim])
    quant_feat = adaptive_instance_normalization(quant_feat, lq_feat)
    x = quant_feat
    for i, block in enumerate(self.generator.blocks):
        x = block(x)
        if i in gen_at and weight > 0:
            x = self.fuse_convs_dict[gen_at[i]](enc_feat[gen_at[i]], x, weight)
    return x, logits, lq_feat
