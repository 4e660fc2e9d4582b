"""The architectures models/export.py knows: how to build one with random weights, which spandrel
architecture must load it, which forward to export and which rewrites to apply first."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

_REGISTERED = False


def register_spandrel_extras() -> None:
    """Add CodeFormer (spandrel_extra_arches), GPEN and RestoreFormer++ (ours) to spandrel's registry."""
    global _REGISTERED
    if _REGISTERED:
        return
    from spandrel import MAIN_REGISTRY, ArchSupport

    try:
        import spandrel_extra_arches

        spandrel_extra_arches.install(ignore_duplicates=True)
    except ImportError:
        pass  # CodeFormer then reports that spandrel_extra_arches is missing
    from .gpen_arch import gpen_architecture
    from .rfpp_arch import restoreformer_pp_architecture

    for arch, before in ((gpen_architecture(), ()), (restoreformer_pp_architecture(), ("RestoreFormer",))):
        if MAIN_REGISTRY.get(arch.id) is None:
            MAIN_REGISTRY.add(ArchSupport.from_architecture(arch, before=before))
    _REGISTERED = True


@dataclass
class ArchSpec:
    name: str
    spandrel_id: str                       # the architecture spandrel must detect
    build_random: Callable[[], torch.nn.Module]
    forward: Callable                      # (model, x, opts) -> output tensor
    face: bool = True                      # RGB [-1, 1] 512x512; else RGB [0, 1] tiles
    size: int = 512
    patches: list = field(default_factory=list)
    note: str = ""


def _gfpgan():
    from spandrel.architectures.GFPGAN import GFPGAN

    return GFPGAN()


def _codeformer():
    try:
        from spandrel_extra_arches.architectures.CodeFormer import CodeFormer
    except ImportError as e:
        raise RuntimeError("CodeFormer needs the PyPI package spandrel_extra_arches "
                           "(pip install -r models/requirements-export.txt)") from e
    return CodeFormer()


def _gpen():
    from .gpen_arch import GPEN

    return GPEN(size=512, channel_multiplier=2, narrow=1)


def _rfpp():
    from .rfpp_arch import build_restoreformer_pp

    return build_restoreformer_pp()


def _rrdb_x4():
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(scale=4)


def _rrdb_x2():
    from spandrel.architectures.ESRGAN import ESRGAN

    # RealESRGAN_x2plus: pixel-unshuffle by 2, then the x4 body (12 input channels)
    return ESRGAN(in_nc=12, scale=4, shuffle_factor=2)


def _patch(name):
    def apply(model):
        from . import export_patches

        return getattr(export_patches, name)(model)

    apply.__name__ = name
    return apply


ARCHS: dict[str, ArchSpec] = {
    "gfpgan": ArchSpec(
        "gfpgan", "GFPGAN", _gfpgan,
        forward=lambda m, x, o: m(x, return_rgb=False, randomize_noise=False)[0],
        patches=[_patch("patch_gfpgan_clean")],
        note="GFPGAN v1.3/v1.4 clean arch; stored noise buffers"),
    "codeformer": ArchSpec(
        "codeformer", "CodeFormer", _codeformer,
        forward=lambda m, x, o: m(x, weight=o.get("fidelity", 0.5))[0],
        patches=[_patch("patch_codeformer")],
        note="fidelity weight fixed at export"),
    "gpen-bfr-512": ArchSpec(
        "gpen-bfr-512", "GPEN", _gpen,
        forward=lambda m, x, o: m(x),
        patches=[_patch("patch_gpen")],
        note="noise = encoder features (deterministic)"),
    "restoreformer++": ArchSpec(
        "restoreformer++", "RestoreFormerPP", _rfpp,
        forward=lambda m, x, o: m(x)[0],
        patches=[_patch("patch_restoreformer_vq")]),
    "rrdbnet-x4": ArchSpec(
        "rrdbnet-x4", "ESRGAN", _rrdb_x4, forward=lambda m, x, o: m(x), face=False, size=64,
        note="RealESRGAN_x4plus"),
    "rrdbnet-x2": ArchSpec(
        "rrdbnet-x2", "ESRGAN", _rrdb_x2, forward=lambda m, x, o: m(x), face=False, size=64,
        note="RealESRGAN_x2plus"),
}


def load_model(spec: ArchSpec, weights: str | None, seed: int = 0, trust_pickle: bool = False) -> torch.nn.Module:
    """Load weights (a file, or a random state dict of the default architecture) through spandrel."""
    import spandrel

    register_spandrel_extras()
    loader = spandrel.ModelLoader()
    if weights is None:
        torch.manual_seed(seed)
        state_dict = {k: v.clone() for k, v in spec.build_random().state_dict().items()}
        # Default inits leave some tensors at zero (biases, noise strengths, position embeddings),
        # which would hide their paths from --check; give those small seeded random values.
        g = torch.Generator().manual_seed(seed + 12345)
        for k, v in state_dict.items():
            if v.is_floating_point() and v.numel() and not v.any():
                state_dict[k] = 0.1 * torch.randn(v.shape, generator=g, dtype=v.dtype)
        desc = loader.load_from_state_dict(state_dict)
    else:
        try:
            desc = loader.load_from_file(weights)
        except Exception as e:  # noqa: BLE001
            if not trust_pickle:
                raise RuntimeError(f"spandrel could not load {weights}: {e} "
                                   "(if the file is a trusted full pickle, retry with --trust-pickle)") from e
            raw = torch.load(weights, map_location="cpu", weights_only=False)  # noqa: S614 - user opted in
            desc = loader.load_from_state_dict(spandrel.canonicalize_state_dict(raw))
    got = str(desc.architecture.id)
    if got != spec.spandrel_id:
        raise RuntimeError(f"weights were detected as spandrel architecture {got!r}, expected {spec.spandrel_id!r}")
    model = desc.model
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
