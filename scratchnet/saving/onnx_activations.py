"""The activations ONNX has no one operator for in both float32 and float64 (swish, gelu,
selu, hard_sigmoid, hard_silu, mish, softsign, exponential, elu with alpha), written out
in elementwise operators onnxruntime's CPU provider runs in either dtype."""
import math

import numpy as np

from .. import activations
from .onnx_builder import OnnxExportError, replace

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def _softplus(builder, x, base, dtype):
    """max(x, 0) + log(1 + exp(-|x|)), which never overflows."""
    zero, one = builder.scalar(f"{base}/zero", 0, dtype), builder.scalar(f"{base}/one", 1, dtype)
    negative_abs = builder.node("Neg", [builder.node("Abs", [x], f"{base}/abs")], f"{base}/neg_abs")
    tail = builder.node("Log", [builder.node("Add", [builder.node("Exp", [negative_abs], f"{base}/exp"), one],
                                             f"{base}/one_plus")], f"{base}/log")
    return builder.node("Add", [builder.node("Max", [x, zero], f"{base}/positive"), tail], f"{base}/softplus")


def _elu(builder, x, base, dtype, alpha, scale=1.0):
    """scale * x where x > 0, else scale * alpha * (exp(x) - 1)."""
    zero, one = builder.scalar(f"{base}/zero", 0, dtype), builder.scalar(f"{base}/one", 1, dtype)
    above = builder.node("Greater", [x, zero], f"{base}/above")
    negative = builder.node("Min", [x, zero], f"{base}/negative")
    below = builder.node("Sub", [builder.node("Exp", [negative], f"{base}/exp"), one], f"{base}/expm1")
    below = builder.node("Mul", [below, builder.scalar(f"{base}/alpha", scale * alpha, dtype)], f"{base}/below")
    top = x if scale == 1.0 else builder.node("Mul", [x, builder.scalar(f"{base}/scale", scale, dtype)],
                                              f"{base}/top")
    return builder.node("Where", [above, top, below], base)


def _hard_sigmoid(builder, x, base, dtype):
    """relu6(x + 3) / 6, as Keras 3."""
    shifted = builder.node("Add", [x, builder.scalar(f"{base}/three", 3, dtype)], f"{base}/shifted")
    clipped = builder.node("Clip", [shifted, builder.scalar(f"{base}/zero", 0, dtype),
                                    builder.scalar(f"{base}/six", 6, dtype)], f"{base}/relu6")
    return builder.node("Div", [clipped, builder.scalar(f"{base}/divisor", 6, dtype)], f"{base}/hard_sigmoid")


def _gelu(builder, x, base, dtype, approximate):
    half = builder.scalar(f"{base}/half", 0.5, dtype)
    one = builder.scalar(f"{base}/one", 1, dtype)
    if approximate:     # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = builder.node("Mul", [builder.node("Mul", [x, x], f"{base}/square"), x], f"{base}/cube")
        inner = builder.node("Add", [x, builder.node("Mul", [cube, builder.scalar(f"{base}/cubic", 0.044715, dtype)],
                                                      f"{base}/cubic_term")], f"{base}/inner")
        inner = builder.node("Mul", [inner, builder.scalar(f"{base}/sqrt_2_over_pi", math.sqrt(2 / math.pi), dtype)],
                             f"{base}/scaled")
        cdf = builder.node("Add", [builder.node("Tanh", [inner], f"{base}/tanh"), one], f"{base}/one_plus")
    else:               # x/2 (1 + erf(x / sqrt 2))
        if np.dtype(dtype) == np.float64:
            raise OnnxExportError(
                f"{base}: the exact gelu needs the ONNX operator Erf in float64, which onnxruntime's CPU "
                f"provider does not implement; export a float32 copy of the model, or use gelu(approximate=True)")
        scaled = builder.node("Mul", [x, builder.scalar(f"{base}/inv_sqrt2", 1 / math.sqrt(2), dtype)], f"{base}/scaled")
        cdf = builder.node("Add", [builder.node("Erf", [scaled], f"{base}/erf"), one], f"{base}/one_plus")
    return builder.node("Mul", [builder.node("Mul", [x, half], f"{base}/half_x"), cdf], base)


_NAMED = ("silu", "gelu", "selu", "hard_sigmoid", "hard_silu", "mish", "softsign", "exponential")


def export_more(builder, activation, x, base):
    """The ONNX subgraph of ``activation`` applied to the Value ``x``, or None when it is not one
    of the activations here."""
    name, dtype, x_name = activation.name, x.dtype, x.name
    if activation is activations.get("gelu").variant(approximate=True):
        return replace(x, _gelu(builder, x_name, base, dtype, True))
    if name.startswith("elu(alpha="):
        return replace(x, _elu(builder, x_name, base, dtype, float(name[len("elu(alpha="):-1])))
    if name not in _NAMED or activation is not activations.get(name):
        return None
    if name == "silu":
        y = builder.node("Mul", [x_name, builder.node("Sigmoid", [x_name], f"{base}/sigmoid")], base)
    elif name == "gelu":
        y = _gelu(builder, x_name, base, dtype, False)
    elif name == "selu":
        y = _elu(builder, x_name, base, dtype, _SELU_ALPHA, _SELU_SCALE)
    elif name == "hard_sigmoid":
        y = _hard_sigmoid(builder, x_name, base, dtype)
    elif name == "hard_silu":
        y = builder.node("Mul", [x_name, _hard_sigmoid(builder, x_name, base, dtype)], base)
    elif name == "mish":
        y = builder.node("Mul", [x_name, builder.node("Tanh", [_softplus(builder, x_name, base, dtype)],
                                                      f"{base}/tanh")], base)
    elif name == "softsign":
        one = builder.scalar(f"{base}/one", 1, dtype)
        y = builder.node("Div", [x_name, builder.node("Add", [builder.node("Abs", [x_name], f"{base}/abs"), one],
                                                      f"{base}/one_plus")], base)
    else:
        y = builder.node("Exp", [x_name], base)
    return replace(x, y)
