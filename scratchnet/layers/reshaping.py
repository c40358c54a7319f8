"""Reshape, ZeroPadding2D, Cropping2D and UpSampling2D."""
import math

from ..functions import resample, reshape
from ..geometry import check_data_format, image_shape
from .base import Layer, as_pair


def _plus(size, amount):
    """An axis's size after ``amount`` rows or columns are added (None: unknown until the model runs)."""
    return None if size is None else size + amount


def _times(size, factor):
    return None if size is None else size * factor


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one axis may be -1: inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in target_shape) > 1 or any(d < -1 or d == 0 for d in target_shape):
            raise ValueError(f"{self.describe()}: target_shape may hold one -1 and otherwise positive sizes, "
                             f"got {target_shape}")
        self.target_shape = target_shape

    def compute_output_shape(self, input_shape):
        if None in input_shape:       # the inferred axis is unknown until the model runs
            return tuple(None if d == -1 else d for d in self.target_shape)
        total = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if total % known:
                raise ValueError(f"{self.describe()}: cannot reshape {total} values per sample into "
                                 f"{self.target_shape}")
            return tuple(total // known if d == -1 else d for d in self.target_shape)
        if known != total:
            raise ValueError(f"{self.describe()}: the total size must be unchanged: input shape "
                             f"{tuple(input_shape)} ({total} values), target shape {self.target_shape} ({known})")
        return self.target_shape

    def _forward(self, x, training):
        shape = self.output_shape if None not in self.output_shape else self.compute_output_shape(x.shape[1:])
        return reshape.reshape_forward(x, self.params, shape, training)

    def _backward(self, dy, ctx, need_dx):
        return reshape.reshape_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


def _pad_pair(value, what):
    if isinstance(value, int):
        return (value, value)
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 0 for v in pair):
        raise ValueError(f"{what} must be an int or a pair of non-negative ints, got {value!r}")
    return pair


class ZeroPadding2D(Layer):
    """Rows and columns of zeros around each image: ``padding`` is p, (rows, columns) or
    ((top, bottom), (left, right)), as in Keras."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(self, data_format)
        if isinstance(padding, int):
            pads = ((padding, padding), (padding, padding))
        else:
            if len(tuple(padding)) != 2:
                raise ValueError(f"{self.describe()}: `padding` should have two elements, got {padding!r}")
            pads = tuple(_pad_pair(p, f"{self.describe()}: padding") for p in padding)
        if any(v < 0 for pair in pads for v in pair):
            raise ValueError(f"{self.describe()}: padding must not be negative, got {padding!r}")
        self.padding = pads

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects inputs shaped (height, width, channels), got "
                             f"{(None,) + tuple(input_shape)}")
        (top, bottom), (left, right) = self.padding
        return (_plus(input_shape[0], top + bottom), _plus(input_shape[1], left + right), input_shape[2])

    def _forward(self, x, training):
        return reshape.zero_pad_forward(x, self.params, self.padding, training)

    def _backward(self, dy, ctx, need_dx):
        return reshape.zero_pad_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


def _crop_pair(value, what):
    """Keras's standardize_tuple(value, 2, allow_zero=True): an int or two non-negative ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if hasattr(value, "__len__") else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, int) and v >= 0 for v in pair):
        raise ValueError(f"{what} must be a non-negative int or a pair of them, got {value!r}")
    return pair


class Cropping2D(Layer):
    """Rows and columns cut from the edges of each image: ``cropping`` is c, (rows, columns)
    (each cut from both sides) or ((top, bottom), (left, right)), as in Keras. The backward
    pass pads the gradient with zeros where the crop cut."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(self, data_format)
        who = self.describe()
        if isinstance(cropping, int):
            if cropping < 0:
                raise ValueError(f"{who}: cropping must not be negative, got {cropping!r}")
            crops = ((cropping, cropping), (cropping, cropping))
        elif hasattr(cropping, "__len__") and len(cropping) == 2:
            crops = (_crop_pair(cropping[0], f"{who}: cropping's rows entry"),
                     _crop_pair(cropping[1], f"{who}: cropping's columns entry"))
        else:
            raise ValueError(f"{who}: cropping must be an int, a pair (rows, columns) or a pair of pairs "
                             f"((top, bottom), (left, right)), got {cropping!r}")
        self.cropping = crops

    def compute_output_shape(self, input_shape):
        h, w, c = image_shape(self, input_shape)
        (top, bottom), (left, right) = self.cropping
        if h is not None and top + bottom >= h or w is not None and left + right >= w:
            raise ValueError(f"{self.describe()}: cropping {self.cropping} leaves nothing of input "
                             f"{(None,) + tuple(input_shape)}: it must cut fewer than {h} rows and {w} columns")
        return (_plus(h, -top - bottom), _plus(w, -left - right), c)

    def _forward(self, x, training):
        return reshape.crop_forward(x, self.params, self.cropping, training)

    def _backward(self, dy, ctx, need_dx):
        return reshape.crop_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping, "data_format": "channels_last"}


class UpSampling2D(Layer):
    """Each image made ``size`` = (sh, sw) times larger, as Keras 3: 'nearest' repeats rows and
    columns; 'bilinear' resizes to (H*sh, W*sw) as TensorFlow does (half-pixel centres)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        check_data_format(self, data_format)
        self.size = as_pair(size, f"{self.describe()}: size")
        method = interpolation.lower() if isinstance(interpolation, str) else interpolation
        if method not in resample.INTERPOLATIONS:
            raise ValueError(f"{self.describe()}: interpolation must be one of {resample.INTERPOLATIONS} "
                             f"(scratchnet has no bicubic, lanczos or area upsampling), got {interpolation!r}")
        self.interpolation = method

    def compute_output_shape(self, input_shape):
        h, w, c = image_shape(self, input_shape)
        return (_times(h, self.size[0]), _times(w, self.size[1]), c)

    def _forward(self, x, training):
        return resample.upsample_forward(x, self.params, self.size, self.interpolation, training, self.backend)

    def _backward(self, dy, ctx, need_dx):
        return resample.upsample_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": "channels_last",
                "interpolation": self.interpolation}
