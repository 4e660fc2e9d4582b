"""RestoreFormer++ (Wang et al., TPAMI 2023) on top of spandrel's RestoreFormer classes.

spandrel ships RestoreFormer (v1). RestoreFormer++ is the same VQ auto-encoder with 4 attention
heads and one extra cross-attention scale in the decoder (`ex_multi_scale_num=1`: decoder attention
at 16 and 32 px). At 32 px the decoder attends to the encoder feature saved before that level's
downsampling (`block_4`), since the encoder has no attention output there. Upstream checkpoints are
PyTorch-Lightning .ckpt files whose weights are prefixed with `vqvae.`.
"""
from __future__ import annotations

import torch


def _spandrel_rf():
    from spandrel.architectures.RestoreFormer.__arch import restoreformer_arch as rf  # noqa: PLC0415

    return rf


def make_decoder_class():
    rf = _spandrel_rf()

    class MultiScaleDecoderTransformer(rf.MultiHeadDecoderTransformer):
        def forward(self, z, hs):
            temb = None
            h = self.conv_in(z)
            if self.enable_mid:
                h = self.mid.block_1(h, temb)
                h = self.mid.attn_1(h, hs["mid_atten"])
                h = self.mid.block_2(h, temb)
            for i_level in reversed(range(self.num_resolutions)):
                for i_block in range(self.num_res_blocks + 1):
                    h = self.up[i_level].block[i_block](h, temb)
                    if len(self.up[i_level].attn) > 0:
                        key = f"block_{i_level}_atten"
                        h = self.up[i_level].attn[i_block](h, hs[key] if key in hs else hs[f"block_{i_level}"])
                if i_level != 0:
                    h = self.up[i_level].upsample(h)
            if self.give_pre_end:
                return h
            h = self.norm_out(h)
            h = rf.nonlinearity(h)
            return self.conv_out(h)

    return MultiScaleDecoderTransformer


def build_restoreformer_pp(*, n_embed=1024, embed_dim=256, ch=64, out_ch=3, ch_mult=(1, 2, 2, 4, 4, 8),
                           num_res_blocks=2, attn_resolutions=(16,), in_channels=3, resolution=512,
                           z_channels=256, double_z=False, enable_mid=True, head_size=4, ex_multi_scale_num=1):
    rf = _spandrel_rf()
    model = rf.RestoreFormer(n_embed=n_embed, embed_dim=embed_dim, ch=ch, out_ch=out_ch, ch_mult=ch_mult,
                             num_res_blocks=num_res_blocks, attn_resolutions=attn_resolutions, dropout=0.0,
                             in_channels=in_channels, resolution=resolution, z_channels=z_channels,
                             double_z=double_z, enable_mid=enable_mid, head_size=head_size)
    dec_attn = list(attn_resolutions)
    for _ in range(ex_multi_scale_num):
        dec_attn = [dec_attn[0], dec_attn[-1] * 2]
    Decoder = make_decoder_class()
    model.decoder = Decoder(ch=ch, out_ch=out_ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks,
                            attn_resolutions=tuple(dec_attn), dropout=0.0, in_channels=in_channels,
                            resolution=resolution, z_channels=z_channels, enable_mid=enable_mid,
                            head_size=head_size)
    model.hyperparameters = dict(head_size=head_size, ex_multi_scale_num=ex_multi_scale_num, ch=ch,
                                 ch_mult=tuple(ch_mult), n_embed=n_embed)
    return model


def strip_lightning(state_dict: dict) -> dict:
    """Keep the `vqvae.` weights of a Lightning checkpoint, without the prefix."""
    if any(k.startswith("vqvae.") for k in state_dict):
        return {k[len("vqvae."):]: v for k, v in state_dict.items() if k.startswith("vqvae.")}
    return state_dict


def restoreformer_pp_architecture():
    from spandrel import Architecture, ImageModelDescriptor, SizeRequirements
    from spandrel.util import get_seq_len

    required = ("quantize.embedding.weight", "encoder.conv_in.weight", "quant_conv.weight",
                "decoder.conv_out.weight")

    def detect(sd) -> bool:
        sd = strip_lightning(sd)
        if not all(k in sd for k in required):
            return False
        # an attention block in the decoder one level above the encoder's last one = the extra scale
        n = get_seq_len(sd, "encoder.down")
        return f"decoder.up.{n - 2}.attn.0.q.weight" in sd

    class RestoreFormerPPArch(Architecture[torch.nn.Module]):
        def __init__(self):
            super().__init__(id="RestoreFormerPP", name="RestoreFormer++", detect=detect)

        def load(self, state_dict):
            sd = strip_lightning(state_dict)
            n_levels = get_seq_len(sd, "encoder.down")
            ch = sd["encoder.conv_in.weight"].shape[0]
            ch_mult = tuple(sd[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] // ch for i in range(n_levels))
            model = build_restoreformer_pp(
                n_embed=sd["quantize.embedding.weight"].shape[0], embed_dim=sd["quantize.embedding.weight"].shape[1],
                ch=ch, out_ch=sd["decoder.conv_out.weight"].shape[0], ch_mult=ch_mult,
                num_res_blocks=get_seq_len(sd, "encoder.down.0.block"),
                in_channels=sd["encoder.conv_in.weight"].shape[1],
                z_channels=sd["quant_conv.weight"].shape[1],
                enable_mid="encoder.mid.block_1.norm1.weight" in sd,
                head_size=4)  # not stored in the weights; 4 is RestoreFormer++'s
            own = set(model.state_dict())
            sd = {k: v for k, v in sd.items() if k in own}
            return ImageModelDescriptor(
                model, sd, architecture=self, purpose="FaceSR", tags=[], supports_half=False,
                supports_bfloat16=True, scale=1, input_channels=3, output_channels=3,
                size_requirements=SizeRequirements(multiple_of=32),
                call_fn=lambda m, img: (m(img * 2 - 1)[0] + 1) / 2)

    return RestoreFormerPPArch()
