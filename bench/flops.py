"""FLOPs of an ONNX graph at a fixed input shape, counted from the graph itself.

A multiply-add is 2 FLOPs. Conv: 2·(Cin/groups)·Cout·kh·kw·Hout·Wout; ConvTranspose likewise
over its input; MatMul/Gemm: 2·M·N·K. Everything else (activations, adds, resizes) is counted
separately as "other" element operations, once per output element, and is not in `flops`.

    python3 bench/flops.py MODEL.onnx H W        prints JSON
"""

import json
import sys

import numpy as np
import onnx
from onnx import shape_inference


def _dims(vi):
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def count(path, h, w):
    model = onnx.load(path, load_external_data=False)
    g = model.graph
    inits = {t.name: list(t.dims) for t in g.initializer}
    # Fix the (first) real input to [1,3,h,w]
    real = [i for i in g.input if i.name not in inits]
    dims = real[0].type.tensor_type.shape.dim
    for d, v in zip(dims, [1, 3, h, w]):
        d.ClearField("dim_param")
        d.dim_value = v
    try:  # onnxruntime's symbolic inference follows StyleGAN's reshapes; onnx's does not
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # noqa: BLE001 - fall back to onnx's own
        model = shape_inference.infer_shapes(model, data_prop=True)
    g = model.graph
    shapes = dict(inits)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = _dims(vi)
    for n in g.node:  # Constant nodes
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = list(a.t.dims)
    conv = mm = other = 0
    unknown = []
    per_conv = []
    for n in g.node:
        out = shapes.get(n.output[0]) if n.output else None
        if n.op_type in ("Conv", "ConvTranspose"):
            wshape = shapes.get(n.input[1])
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            kattr = next((list(a.ints) for a in n.attribute if a.name == "kernel_shape"), None)
            ishape = shapes.get(n.input[0])
            if (not wshape or None in wshape) and kattr and ishape and out and None not in ishape + out:
                # weights computed at run time (StyleGAN's modulated convs): from the attributes
                if n.op_type == "Conv":
                    wshape = [out[1], ishape[1] // group, *kattr]
                else:
                    wshape = [ishape[1], out[1] // group, *kattr]
            if not wshape or not out or None in out or None in wshape:
                unknown.append(n.name or n.op_type)
                continue
            if n.op_type == "Conv":
                cout, cin_g, *k = wshape
                f = 2 * cin_g * cout * int(np.prod(k)) * int(np.prod(out[2:]))
            else:
                cin, cout_g, *k = wshape
                f = 2 * cin * cout_g * int(np.prod(k)) * int(np.prod(ishape[2:]))
            conv += f
            per_conv.append(f)
        elif n.op_type in ("MatMul", "Gemm"):
            a, b = shapes.get(n.input[0]), shapes.get(n.input[1])
            if not a or not b or not out or None in a or None in b or None in out:
                unknown.append(n.name or n.op_type)
                continue
            trans_a = any(x.name == "transA" and x.i for x in n.attribute)
            k = a[-2] if (n.op_type == "Gemm" and trans_a) else a[-1]
            mm += 2 * int(np.prod(out)) * k
        elif out and None not in out and n.op_type not in ("Constant", "Identity", "Reshape", "Shape"):
            other += int(np.prod(out))
    return {
        "model": path,
        "input": [1, 3, h, w],
        "flops": conv + mm,
        "conv_flops": conv,
        "matmul_flops": mm,
        "other_elements": other,
        "convs": len(per_conv),
        "unknown": unknown,
        "flops_per_input_pixel": (conv + mm) / (h * w),
    }


if __name__ == "__main__":
    print(json.dumps(count(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
