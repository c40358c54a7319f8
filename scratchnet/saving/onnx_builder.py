"""The ONNX graph being written: its tensors (``Value``: rank, dtype, NHWC or NCHW layout) and
the ``Builder`` that appends nodes and initializers under unique names, transposing a tensor
to the other layout at most once each way."""
from dataclasses import dataclass

import numpy as np

NCHW = (0, 3, 1, 2)     # ONNX axis i of an NCHW tensor is axis NCHW[i] of the model's NHWC one
TO_NHWC = (0, 2, 3, 1)

# ONNX operators onnxruntime's CPU provider runs in float32 only (measured with onnxruntime
# 1.32; tests/test_onnx.py checks that this is still so). Its Elu, Softplus and LeakyRelu lack
# float64 kernels too: in float64 they are written with other operators.
NO_FLOAT64_KERNEL = ("Conv", "ConvTranspose", "AveragePool", "Resize")


class OnnxExportError(ValueError):
    """A model that cannot be written as ONNX: a layer the exporter does not know, or one it
    cannot express as the model computes it."""



@dataclass(frozen=True)
class Value:
    """A tensor of the ONNX graph: the model's tensor of that rank, laid out as the model has
    it (NHWC) or, for a 4-D one, as NCHW."""
    name: str
    dtype: np.dtype
    rank: int
    nchw: bool = False

    def axis(self, model_axis):
        """The ONNX axis holding the model's axis ``model_axis`` (which may be negative)."""
        axis = model_axis % self.rank
        return NCHW.index(axis) if self.nchw else axis


class Builder:
    """The nodes and initializers written so far, unique names, and each tensor's other layout
    once made (a tensor is transposed at most once each way)."""

    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers = [], []
        self.scope = ""                 # "outer_model/" while a model inside a model is written
        self._names = set()
        self._weights = {}              # (layer id, key) -> initializer: a layer called twice shares them
        self._layouts = {}              # (name, nchw) -> Value

    def reserve(self, base):
        """A name no other tensor has, ``base`` if free (else base_1, base_2, ...)."""
        name, count = base, 0
        while name in self._names:
            count += 1
            name = f"{base}_{count}"
        self._names.add(name)
        return name

    def node(self, op_type, inputs, base=None, output=None, **attributes):
        """Append a node; returns its output's name (``output``, or a new one from ``base``)."""
        output = output or self.reserve(f"{self.scope}{base or op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def constant(self, base, array):
        """An initializer holding ``array``; returns its name."""
        name = self.reserve(f"{self.scope}{base}")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, layer, key, make):
        """The initializer ``key`` of ``layer`` (``make()`` gives its array the first time)."""
        if (id(layer), key) not in self._weights:
            self._weights[id(layer), key] = self.constant(f"{layer.name}/{key}", make())
        return self._weights[id(layer), key]

    def scalar(self, base, value, dtype):
        return self.constant(base, np.asarray(value, dtype=dtype))

    def axes(self, base, axes):
        return self.constant(base, np.asarray(axes, dtype=np.int64))

    def nchw(self, value):
        """``value`` as NCHW (a 4-D tensor)."""
        return self._layout(value, True)

    def nhwc(self, value):
        """``value`` in the model's own layout."""
        return self._layout(value, False)

    def _layout(self, value, nchw):
        if value.nchw == nchw:
            return value
        key = (value.name, nchw)
        if key not in self._layouts:
            name = self.node("Transpose", [value.name], f"{value.name}/{'nchw' if nchw else 'nhwc'}",
                             perm=list(NCHW if nchw else TO_NHWC))
            self._layouts[key] = Value(name, value.dtype, value.rank, nchw)
            self._layouts[name, value.nchw] = value
        return self._layouts[key]

    def cast(self, value, dtype):
        """``value`` in ``dtype``, as a layer converts its input to its own dtype."""
        if value.dtype == dtype:
            return value
        to = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return Value(self.node("Cast", [value.name], f"{value.name}/cast", to=to), np.dtype(dtype), value.rank,
                     value.nchw)

    def reduce(self, op_type, value, axes, keepdims, base):
        """ReduceMean / ReduceMax over ``axes`` (an attribute before opset 18, an input since)."""
        if self.opset >= 18:
            return self.node(op_type, [value.name, self.axes(f"{base}/axes", axes)], base, keepdims=int(keepdims))
        return self.node(op_type, [value.name], base, axes=list(axes), keepdims=int(keepdims))


def check_float64_kernel(op_type, layer, dtype):
    if np.dtype(dtype) == np.float64 and op_type in NO_FLOAT64_KERNEL:
        raise OnnxExportError(
            f"{layer.describe()} is float64 and needs the ONNX operator {op_type} in float64, which "
            f"onnxruntime's CPU provider does not implement; export a float32 copy of the model instead")



def replace(x, name):
    """A Value like ``x`` (same dtype, rank and layout) named ``name``."""
    return Value(name, x.dtype, x.rank, x.nchw)


__all__ = ["NCHW", "TO_NHWC", "NO_FLOAT64_KERNEL", "OnnxExportError", "Value", "Builder", "check_float64_kernel",
           "replace"]
