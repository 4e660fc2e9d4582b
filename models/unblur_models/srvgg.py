"""Real-ESRGAN's SRVGGNetCompact release checkpoints (`realesr-general-x4v3.pth` and its `-wdn-`
partner) to the ONNX graph Unblur measured and ships.

The models' ONNX in the project's mirror were converted from the published ncnn files, whose
weights are fp16. A `.pth` from the pinned GitHub release holds the same network in fp32. This
writes it in exactly the mirror's layout (node and tensor names, order, opset 13, Conv + PRelu,
DepthToSpace CRD, nearest Resize of the input, Add) with each weight rounded to fp16 as the ncnn
files store it, so that the genuine checkpoint converts to the very bytes the manifest pins, and
everything measured on them (models/fidelity.json) holds for a build made from the release.

The checkpoint is read by spandrel (safe unpickling), which also says which architecture it is;
`check` runs the PyTorch model (with the same rounded weights) against the ONNX on one input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# The mirror's ONNX names its values as PyTorch's exporter numbered them for the ncnn conversion:
# conv k (k even) writes FIRST + 2k, the PReLU after it FIRST + 2k + 1 (k odd), and so on.
FIRST_VALUE = 102
PRODUCER = "ncnn_srvgg_to_onnx"  # the mirror's producer string, kept so that the bytes match


class ConvertError(Exception):
    """A checkpoint that is not the network this converter writes."""


def load(path: Path | str):
    """The spandrel model of a SRVGGNetCompact checkpoint; raises ConvertError on anything else."""
    import spandrel

    try:
        desc = spandrel.ModelLoader().load_from_file(str(path))
    except Exception as e:  # noqa: BLE001 - spandrel raises many kinds on a foreign file
        raise ConvertError(f"{Path(path).name}: not a checkpoint spandrel can read: {e}") from e
    arch = desc.architecture.id
    if arch != "Compact":
        raise ConvertError(f"{Path(path).name}: a {arch} checkpoint, not Real-ESRGAN's SRVGGNetCompact")
    return desc


def state_arrays(desc) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().float().numpy() for k, v in desc.model.state_dict().items()}


def round_fp16(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each weight as the ncnn files store it: rounded to the nearest fp16 (ties to even)."""
    return {k: v.astype(np.float16).astype(np.float32) for k, v in sd.items()}


def to_onnx(sd: dict[str, np.ndarray], scale: int) -> bytes:
    """The mirror-layout ONNX of a SRVGGNetCompact state dict (keys `body.{k}.weight|bias`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    convs = sorted(int(k.split(".")[1]) for k in sd if k.startswith("body.") and k.endswith(".bias"))
    if not convs or convs != list(range(0, 2 * len(convs), 2)):
        raise ConvertError("state dict: expected convolutions at body.0, body.2, ... (SRVGGNetCompact)")
    last = convs[-1]
    for k in range(1, last, 2):
        if f"body.{k}.weight" not in sd or sd[f"body.{k}.weight"].ndim != 1:
            raise ConvertError(f"state dict: body.{k} is not a per-channel PReLU")
    out_ch = sd[f"body.{last}.weight"].shape[0]
    if out_ch != 3 * scale * scale:
        raise ConvertError(f"state dict: the last convolution has {out_ch} channels, not 3 x {scale}^2")

    nodes, inits = [], []
    prev = "data"
    for k in range(last + 1):
        value = str(FIRST_VALUE + 2 * k + (k % 2))
        if k % 2 == 0:
            w, b = f"Conv_{k}_W", f"Conv_{k}_B"
            inits += [numpy_helper.from_array(sd[f"body.{k}.weight"], w),
                      numpy_helper.from_array(sd[f"body.{k}.bias"], b)]
            nodes.append(helper.make_node("Conv", [prev, w, b], [value], name=f"Conv_{k}",
                                          kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        else:
            s = f"PRelu_{k}_slope"
            inits.append(numpy_helper.from_array(sd[f"body.{k}.weight"].reshape(-1, 1, 1), s))
            nodes.append(helper.make_node("PRelu", [prev, s], [value], name=f"PRelu_{k}"))
        prev = value
    shuffled, upsampled = str(FIRST_VALUE + 2 * last + 1), str(FIRST_VALUE + 2 * last + 6)
    nodes.append(helper.make_node("DepthToSpace", [prev], [shuffled], name=f"DepthToSpace_{last + 1}",
                                  blocksize=scale, mode="CRD"))
    scales = f"Resize_{last + 2}_scales"
    inits.append(numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), scales))
    nodes.append(helper.make_node("Resize", ["data", "", scales], [upsampled], name=f"Resize_{last + 2}",
                                  coordinate_transformation_mode="asymmetric", mode="nearest",
                                  nearest_mode="floor"))
    nodes.append(helper.make_node("Add", [shuffled, upsampled], ["output"], name=f"Add_{last + 3}"))
    graph = helper.make_graph(
        nodes, "srvgg",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])],
        initializer=inits)
    model = helper.make_model(graph, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model.SerializeToString()


def convert(pth: Path | str) -> tuple[bytes, object]:
    """(ONNX bytes, spandrel model with the rounded weights loaded) for a release checkpoint."""
    import torch

    desc = load(pth)
    sd = round_fp16(state_arrays(desc))
    data = to_onnx(sd, desc.scale)
    desc.model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    return data, desc


def check(data: bytes, desc, size: int = 24, tol: float = 1e-5) -> float:
    """Relative L2 error of onnxruntime on `data` against the PyTorch model on one seeded input."""
    import onnxruntime as ort
    import torch

    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        ref = desc.model.eval()(torch.from_numpy(x)).numpy()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    got = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
    err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    if not err <= tol:
        raise ConvertError(f"the ONNX differs from PyTorch by {err:.2e} (bar {tol:.0e})")
    return err


def state_dict_from_onnx(path: Path | str) -> dict[str, np.ndarray]:
    """The inverse of `to_onnx` (tests build stand-in release checkpoints with it)."""
    import onnx
    from onnx import numpy_helper

    out = {}
    for t in onnx.load(str(path)).graph.initializer:
        kind, k, part = t.name.split("_")
        if kind == "Conv":
            out[f"body.{k}.{'weight' if part == 'W' else 'bias'}"] = numpy_helper.to_array(t)
        elif kind == "PRelu":
            out[f"body.{k}.weight"] = numpy_helper.to_array(t).reshape(-1)
    return out
