"""Weight-only compression of ONNX models, in the two shapes the Rust loader folds back.

int8: every Conv weight W (float, >= MIN_ELEMS elements) becomes
        W_quant (INT8, dims of W), W_scale (FLOAT [out_ch]), W_zero_point (INT8 [out_ch], zeros)
        DequantizeLinear(W_quant, W_scale, W_zero_point, axis=0) -> W
      per-output-channel symmetric (scale = max|W[c]| / 127). Opset raised to >= 13 (axis).
fp16: every float initializer W with >= MIN_ELEMS elements becomes
        W_f16 (FLOAT16) ; Cast(W_f16, to=FLOAT) -> W

The rest of the graph is untouched: consumers still read a tensor named W.
Constant nodes holding a tensor are first turned into initializers of the same name,
so models exported with weights as Constant nodes are handled the same way.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_ELEMS = 1024
INT8_MIN_OPSET = 13


def _numel(t: TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def hoist_constants(model: onnx.ModelProto) -> int:
    """Move `Constant(value=tensor)` nodes of the main graph into initializers. Returns count."""
    g = model.graph
    keep, moved = [], 0
    for node in g.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.attribute) == 1 \
                and node.attribute[0].name == "value":
            t = TensorProto()
            t.CopyFrom(node.attribute[0].t)
            t.name = node.output[0]
            g.initializer.append(t)
            moved += 1
        else:
            keep.append(node)
    if moved:
        del g.node[:]
        g.node.extend(keep)
    return moved


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 1


# Lowest IR version that can carry a given default-domain opset.
_IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


def ensure_opset(model: onnx.ModelProto, minimum: int) -> onnx.ModelProto:
    """Return a model at opset >= minimum (version converter; plain bump if it cannot convert)."""
    if _opset(model) >= minimum:
        return model
    try:
        from onnx import version_converter

        converted = version_converter.convert_version(model, minimum)
        onnx.checker.check_model(converted)
        model = converted
    except Exception:  # noqa: BLE001 - fall back to a plain bump of the default domain
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = minimum
    model.ir_version = max(model.ir_version, _IR_FOR_OPSET.get(_opset(model), 7))
    return model


def _drop_graph_inputs(model: onnx.ModelProto, names: set) -> None:
    """Old exporters list initializers as graph inputs too; drop the ones we replaced."""
    g = model.graph
    kept = [i for i in g.input if i.name not in names]
    if len(kept) != len(g.input):
        del g.input[:]
        g.input.extend(kept)


def _replace_initializers(model: onnx.ModelProto, replace: dict) -> None:
    """replace: name -> (list of new initializers, new node producing `name`)."""
    g = model.graph
    kept = [t for t in g.initializer if t.name not in replace]
    new_inits, new_nodes = [], []
    for inits, node in replace.values():
        new_inits.extend(inits)
        new_nodes.append(node)
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    # Producers first, so the node list stays topologically sorted.
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(new_nodes + nodes)
    _drop_graph_inputs(model, set(replace))


def quantize_int8(src: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(src)
    hoist_constants(model)
    model = ensure_opset(model, INT8_MIN_OPSET)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    conv_weights = []
    for node in g.node:
        if node.op_type == "Conv" and node.domain in ("", "ai.onnx") and len(node.input) > 1:
            w = node.input[1]
            if w in inits and w not in conv_weights:
                conv_weights.append(w)
    replace = {}
    for name in conv_weights:
        t = inits[name]
        if t.data_type != TensorProto.FLOAT or _numel(t) < MIN_ELEMS or len(t.dims) < 2:
            continue
        w = numpy_helper.to_array(t).astype(np.float32)
        out_ch = w.shape[0]
        absmax = np.abs(w.reshape(out_ch, -1)).max(axis=1)
        scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
        bshape = (out_ch,) + (1,) * (w.ndim - 1)
        q = np.clip(np.rint(w / scale.reshape(bshape)), -127, 127).astype(np.int8)
        zp = np.zeros(out_ch, dtype=np.int8)
        q_t = numpy_helper.from_array(q, name + "_quant")
        s_t = numpy_helper.from_array(scale, name + "_scale")
        z_t = numpy_helper.from_array(zp, name + "_zero_point")
        node = helper.make_node(
            "DequantizeLinear", [q_t.name, s_t.name, z_t.name], [name],
            name=name + "_dequantize", axis=0)
        replace[name] = ([q_t, s_t, z_t], node)
    _replace_initializers(model, replace)
    return model


def convert_fp16(src: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(src)
    hoist_constants(model)
    g = model.graph
    replace = {}
    for t in g.initializer:
        if t.data_type != TensorProto.FLOAT or _numel(t) < MIN_ELEMS:
            continue
        w = numpy_helper.to_array(t).astype(np.float32)
        f16 = np.clip(w, -65504.0, 65504.0).astype(np.float16)
        h_t = numpy_helper.from_array(f16, t.name + "_f16")
        node = helper.make_node("Cast", [h_t.name], [t.name], name=t.name + "_cast", to=TensorProto.FLOAT)
        replace[t.name] = ([h_t], node)
    _replace_initializers(model, replace)
    return model


def count_patterns(model: onnx.ModelProto) -> dict:
    """How many DequantizeLinear / Cast-of-initializer weight nodes a model holds."""
    inits = {t.name for t in model.graph.initializer}
    dq = sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits)
    cast = sum(1 for n in model.graph.node if n.op_type == "Cast" and n.input[0] in inits)
    return {"dequantize": dq, "cast": cast}
