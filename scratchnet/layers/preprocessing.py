"""Preprocessing layers that are part of the model, named as Keras's: Rescaling, and Resizing
(both in training and inference alike). The random augmentation layers, which transform only
in training, are in ``augmentation``."""
import numpy as np

from ..functions import image_transform as transform
from ..graph import SymbolicTensor
from .base import Layer


class Rescaling(Layer):
    """y = x * scale + offset (e.g. Rescaling(1 / 255) turns 0..255 pixels into 0..1), in
    training and inference alike. ``scale`` and ``offset`` are numbers, or one per channel
    (lists broadcast along the last axis, as NumPy broadcasts)."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = _number_or_list(scale, "scale", self), _number_or_list(offset, "offset", self)

    def compute_output_shape(self, input_shape):
        for name, value in (("scale", self.scale), ("offset", self.offset)):
            if isinstance(value, list) and len(value) not in (1, input_shape[-1]):
                raise ValueError(f"{self.describe()}: {name} has {len(value)} values, the input's last axis "
                                 f"{input_shape[-1]} (shape {(None,) + tuple(input_shape)})")
        return tuple(input_shape)

    def _value(self, value, x):
        return x.dtype.type(value) if isinstance(value, float) else self.backend.xp.asarray(value, dtype=x.dtype)

    def _forward(self, x, training):
        return x * self._value(self.scale, x) + self._value(self.offset, x), None

    def _backward(self, dy, ctx, need_dx):
        return (dy * self._value(self.scale, dy) if need_dx else None), {}

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


def _number_or_list(value, name, layer):
    if isinstance(value, (list, tuple, np.ndarray)):
        values = np.asarray(value, dtype=np.float64).reshape(-1)
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"{layer.describe()}: {name} must be finite numbers, got {value!r}")
        return [float(v) for v in values]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{layer.describe()}: {name} must be a number or one per channel, got {value!r}") from None


class ImageLayer(Layer):
    """Base of the layers that take batches of images (N, height, width, channels). Called
    directly on one image (height, width, channels) they treat it as a batch of one, as
    Keras's image layers do."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self.describe()}: scratchnet computes channels_last (NHWC) images only: expected "
                             f"data_format='channels_last', got {data_format!r}")

    def check_image_shape(self, input_shape):
        """``input_shape`` (per sample) as (height, width, channels), or a clear error."""
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects images shaped (batch, height, width, channels), got "
                             f"{(None,) + tuple(input_shape)}")
        return tuple(input_shape)

    def compute_output_shape(self, input_shape):
        return self.check_image_shape(input_shape)

    def __call__(self, inputs, training=None):
        single = not isinstance(inputs, (SymbolicTensor, list, tuple)) and getattr(inputs, "ndim", 0) == 3
        if single:
            return super().__call__(inputs[None], training)[0]
        return super().__call__(inputs, training)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}


class Resizing(ImageLayer):
    """Resize images to (height, width) as Keras does (TensorFlow's resize: half-pixel centres,
    no antialiasing), optionally first cropping (``crop_to_aspect_ratio``) or padding with
    ``fill_value`` (``pad_to_aspect_ratio``) to the target's aspect ratio."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False, **kwargs):
        super().__init__(**kwargs)
        who = self.describe()
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
        if interpolation not in transform.INTERPOLATIONS:
            raise ValueError(f"{who}: interpolation must be one of {transform.INTERPOLATIONS} (scratchnet has no "
                             f"bicubic or lanczos resizing), got {interpolation!r}")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f"{who}: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True")
        if fill_mode != "constant":
            raise ValueError(f"{who}: fill_mode must be 'constant' (the only one Keras's Resizing takes), "
                             f"got {fill_mode!r}")
        if antialias:
            raise ValueError(f"{who}: scratchnet has no antialiased resizing; expected antialias=False, got True")
        self.height, self.width, self.interpolation = int(height), int(width), interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value, self.antialias = fill_mode, float(fill_value), False

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, self.check_image_shape(input_shape)[2])

    def _forward(self, x, training):
        size = (self.height, self.width)
        window = aspect_window(x.shape[1:3], size, self.crop_to_aspect_ratio, self.pad_to_aspect_ratio)
        return transform.resize_forward(x, size, window, self.interpolation, self.fill_value)

    def _backward(self, dy, ctx, need_dx):
        return transform.resize_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


def aspect_window(in_size, size, crop=False, pad=False):
    """The Window a resize of ``in_size`` to ``size`` reads: the whole image, its largest
    centred crop of the target aspect ratio, or the image padded to that ratio (Keras's
    integer arithmetic)."""
    height, width = in_size
    target_height, target_width = size
    if crop:
        crop_height = max(min(height, int(width * target_height / target_width)), 1)
        crop_width = max(min(width, int(height * target_width / target_height)), 1)
        return transform.Window(int((height - crop_height) / 2), int((width - crop_width) / 2), crop_height, crop_width)
    if pad:
        pad_height = max(height, int(width * target_height / target_width))
        pad_width = max(width, int(height * target_width / target_height))
        return transform.Window(0, 0, height, width, int((pad_height - height) / 2), int((pad_width - width) / 2))
    return transform.Window(0, 0, height, width)
