"""Where a sliding window lands on an image: Keras's 'valid' and 'same' padding and the
output size they give, for the convolutions, the poolings and the fused ConvPool step.

    window = Window(extent=(3, 3), strides=(2, 2), padding="same")
    pads, (ho, wo) = window.place((28, 28, 1), layer)     # layer: who to name in an error

This module imports nothing of scratchnet: layers and the ONNX exporter read it, kernels
take the pads it computes.
"""
from dataclasses import dataclass
from typing import NamedTuple

PADDINGS = ("valid", "same")


def output_size(size, k, stride, pad_before, pad_after):
    """Number of positions of a window of ``k`` along an axis of ``size``, padded as given."""
    return (size + pad_before + pad_after - k) // stride + 1


def shape_fits(expected, got):
    """Whether per-sample shape ``got`` fits ``expected``: the same rank and the same size on
    every axis ``expected`` knows (None, an image's unknown height or width, takes any size).
    Lists of shapes (a layer with several inputs) fit pairwise."""
    if isinstance(expected, list) or isinstance(got, list):
        return (isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got)
                and all(shape_fits(e, g) for e, g in zip(expected, got)))
    return len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got))


def has_unknown_size(shape):
    """Whether a per-sample shape (or a list of them) has an axis of unknown size (None)."""
    if isinstance(shape, list):
        return any(has_unknown_size(s) for s in shape)
    return shape is not None and any(d is None for d in shape)


def padding_amounts(size, k, stride, padding):
    """(before, after) padding along one axis. 'same' follows TensorFlow: the output has
    ceil(size / stride) positions and any odd padding goes after."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def check_padding(layer, padding):
    """``padding`` in lower case, or ValueError naming ``layer`` unless 'valid' or 'same'."""
    padding = padding.lower() if isinstance(padding, str) else padding
    if padding not in PADDINGS:
        raise ValueError(f"{layer.describe()}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def check_data_format(layer, data_format):
    """ValueError naming ``layer`` unless ``data_format`` is channels-last (or not given)."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer.describe()}: only data_format='channels_last' (N, H, W, C) is "
                         f"supported, got {data_format!r}")


class Placement(NamedTuple):
    """A window placed on an input: the padding (top, bottom, left, right) and the output's
    (rows, columns)."""
    pads: tuple
    size: tuple


def image_shape(layer, input_shape):
    """Per-sample ``input_shape`` as (height, width, channels), or a ValueError naming ``layer``."""
    if len(input_shape) != 3:
        raise ValueError(f"{layer.describe()} expects inputs shaped (height, width, channels), got "
                         f"{(None,) + tuple(input_shape)}")
    return tuple(input_shape)


@dataclass(frozen=True)
class Window:
    """A window covering ``extent`` (rows, columns: a dilated kernel's extent, for a dilated
    one) moved ``strides`` at a time over (H, W, C) inputs, with Keras's ``padding``."""
    extent: tuple
    strides: tuple
    padding: str

    def pads(self, height, width):
        """(top, bottom, left, right) for an input of ``height`` x ``width``."""
        return (padding_amounts(height, self.extent[0], self.strides[0], self.padding)
                + padding_amounts(width, self.extent[1], self.strides[1], self.padding))

    def place(self, input_shape, layer):
        """The Placement on per-sample ``input_shape`` (H, W, C); ValueError naming ``layer``
        for an input that is not an image or that the window does not fit. Along an axis of
        unknown size (None) the padding and the output size are None: known per call."""
        h, w, _ = image_shape(layer, input_shape)
        if h is None or w is None:
            return self._place_unknown(h, w)
        pads = self.pads(h, w)
        ho = output_size(h, self.extent[0], self.strides[0], pads[0], pads[1])
        wo = output_size(w, self.extent[1], self.strides[1], pads[2], pads[3])
        if ho < 1 or wo < 1:
            raise ValueError(f"{layer.describe()}: a {self.extent} window with padding {self.padding!r} "
                             f"does not fit an input of {h}x{w}; use a smaller window or padding='same'")
        return Placement(pads, (ho, wo))

    def _place_unknown(self, h, w):
        """The Placement where the height or the width is not known yet."""
        pads, size = (), ()
        for axis, length in enumerate((h, w)):
            if length is None:
                pads, size = pads + (None, None), size + (None,)
            else:
                before, after = padding_amounts(length, self.extent[axis], self.strides[axis], self.padding)
                pads += (before, after)
                size += (output_size(length, self.extent[axis], self.strides[axis], before, after),)
                if size[-1] < 1:
                    raise ValueError(f"a {self.extent} window with padding {self.padding!r} does not fit an input "
                                     f"of {length} on axis {axis}; use a smaller window or padding='same'")
        return Placement(pads, size)


def window_geometry(layer, input_shape, extent):
    """(pads, (rows, columns)) of a ``layer`` with ``strides`` and ``padding`` sliding a window
    of ``extent`` over ``input_shape``: ``Window(...).place`` for a layer's attributes."""
    return Window(extent, layer.strides, layer.padding).place(input_shape, layer)
