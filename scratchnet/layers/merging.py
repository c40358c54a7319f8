"""Add, Multiply, Concatenate: layers called on a list of tensors, with Keras's shape rules."""
from ..functions import merge
from .base import Layer, shape_text


def broadcast_shape(layer, shapes):
    """Keras's rule for Add and Multiply: axes aligned from the end, a size-1 axis stretches."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for shape in shapes:
        padded = (1,) * (ndim - len(shape)) + tuple(shape)
        for i, size in enumerate(padded):
            if size == 1 or size is None and out[i] != 1:
                continue            # stretched, or an unknown size (None) beside a known one or another None
            if out[i] not in (1, None) and size != out[i]:
                raise ValueError(f"{layer.describe()}: inputs have incompatible shapes. Received shapes "
                                 f"{', '.join(shape_text(s) for s in shapes)}")
            out[i] = size
    return tuple(out)


class _Merge(Layer):
    takes_list = True

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{self.describe()} should be called on a list of at least 2 inputs")
        return broadcast_shape(self, input_shape)


class Add(_Merge):
    """The sum of its inputs."""

    def _forward(self, xs, training):
        return merge.add_forward(xs, self.params, None, training)

    def _backward(self, dy, ctx, need_dx):
        return merge.add_backward(dy, ctx, need_dx)


class Multiply(_Merge):
    """The elementwise product of its inputs."""

    def _forward(self, xs, training):
        return merge.multiply_forward(xs, self.params, None, training)

    def _backward(self, dy, ctx, need_dx):
        return merge.multiply_backward(dy, ctx, need_dx)


class Concatenate(Layer):
    """Its inputs side by side along ``axis`` (default: the last, the channels)."""

    takes_list = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _sample_axis(self, ndim):
        if self.axis == 0:
            raise ValueError(f"{self.describe()}: axis 0 is the batch axis; concatenate along another one")
        axis = self.axis if self.axis < 0 else self.axis - 1   # counted with the batch axis, as in Keras
        if not -ndim <= axis < ndim:
            raise ValueError(f"{self.describe()}: axis {self.axis} is out of range for inputs with {ndim + 1} axes")
        return axis % ndim

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 1:
            raise ValueError(f"{self.describe()} should be called on a list of at least 1 input")
        ndim = len(input_shape[0])
        axis = self._sample_axis(ndim)
        for shape in input_shape[1:]:
            if len(shape) != ndim or any(a != b and a is not None and b is not None
                                         for i, (a, b) in enumerate(zip(shape, input_shape[0])) if i != axis):
                raise ValueError(f"{self.describe()} requires inputs with matching shapes except for the "
                                 f"concatenation axis. Received: input_shape={shape_text(list(input_shape))}")
        out = [next((s[i] for s in input_shape if s[i] is not None), None) for i in range(ndim)]
        sizes = [s[axis] for s in input_shape]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def _forward(self, xs, training):
        return merge.concatenate_forward(xs, self.params, self._sample_axis(xs[0].ndim - 1) + 1, training)

    def _backward(self, dy, ctx, need_dx):
        return merge.concatenate_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """Functional form: ``add([a, b])`` is ``Add()([a, b])``."""
    return Add(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)
