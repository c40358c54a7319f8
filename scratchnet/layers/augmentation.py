"""Data augmentation layers, named and parametrised as Keras's: RandomFlip, RandomRotation,
RandomZoom, RandomTranslation, RandomContrast, RandomCrop.

They transform images only in training: ``fit`` augments each batch anew, while ``predict``
and ``evaluate`` pass images through unchanged (RandomCrop takes the centred window there).
Called directly, ``layer(images)`` or ``model(images)`` augments, as in Keras, unless
``training=False`` is given. Each layer splits its work as Keras's do:
``get_random_transformation`` draws the parameters of a batch, ``transform_images`` applies
given parameters (so a transformation drawn by Keras can be replayed here). The transforms
are linear in the pixels and have exact backward passes (scratchnet.functions.image_transform).
"""
import math

import numpy as np

from .. import config
from ..arrays import to_host
from ..functions import image_transform as transform
from .preprocessing import ImageLayer, aspect_window


class RandomImageLayer(ImageLayer):
    """Base of the augmentation layers: a seed, and training-only transformation. Subclasses
    name the backward function of the transform they apply (the context is its context, or
    None where the images passed through unchanged)."""

    training_by_default = True      # a direct call augments, as Keras's call(training=True)
    backward_function = None

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"{self.describe()}: seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None

    def _generator(self, seed):
        if seed is None:
            return self._rng or config.rng()
        return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def get_random_transformation(self, images, training=True, seed=None):
        """The parameters of one random transformation of the batch ``images`` (a dict of
        arrays, keyed as Keras's), or None when not training. ``seed`` (an int or a
        numpy Generator) overrides the layer's own generator for this draw."""
        if not training:
            return None
        return self._draw(tuple(images.shape), self._generator(seed))

    def transform_images(self, images, transformation, training=True):
        """``images`` (N, H, W, C) under ``transformation`` (from get_random_transformation,
        or Keras's with the same keys); unchanged when not training."""
        x = self.backend.xp.asarray(images, dtype=self.dtype)
        if not training or transformation is None:
            return self._inference(x)[0]
        return self._apply(x, transformation)[0]

    def _forward(self, x, training):
        if not training:
            return self._inference(x)
        return self._apply(x, self._draw_for_batch(x.shape))

    def _draw_for_batch(self, shape):
        """A draw for the batch being trained on; for a process's share of a global batch
        (data-parallel training), the share of the draw for the whole global batch."""
        window = config.sample_window()
        if window is None:
            return self._draw(tuple(shape), self._generator(None))
        offset, total = window
        drawn = self._draw((total,) + tuple(shape[1:]), self._generator(None))
        if not isinstance(drawn, dict):      # one draw for the whole batch (RandomCrop's window)
            return drawn
        return {key: value[offset:offset + shape[0]] for key, value in drawn.items()}

    def _inference(self, x):
        return x, None

    def _backward(self, dy, ctx, need_dx):
        if ctx is None:
            return (dy if need_dx else None), {}
        return type(self).backward_function(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _factor_pair(factor, bounds, name, who, open_low=False):
    """Keras's reading of a factor: a number f gives (-|f|, |f|) clipped to ``bounds``, a pair
    is sorted; every value must lie within ``bounds`` (above the low one if ``open_low``)."""
    low, high = bounds
    def valid(v):
        return isinstance(v, (int, float, np.integer, np.floating)) and \
            (low < v if open_low else low <= v) and v <= high
    if isinstance(factor, (list, tuple)) and len(factor) == 2 and all(valid(v) for v in factor):
        return tuple(sorted(float(v) for v in factor))
    if not isinstance(factor, (list, tuple)) and valid(factor):
        f = abs(float(factor))
        return (max(-f, low), f)
    interval = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
    raise ValueError(f"{who}: {name} must be a number or a pair of numbers in {interval}, got {factor!r}")


class RandomFlip(RandomImageLayer):
    """Flip images at random in training: ``mode`` 'horizontal' (left-right), 'vertical'
    (top-bottom) or 'horizontal_and_vertical' (both at once, as Keras: one coin per image)."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")
    backward_function = transform.flip_backward

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in self.MODES:
            raise ValueError(f"{self.describe()}: mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def _draw(self, shape, rng):
        return {"flips": rng.uniform(size=(shape[0], 1, 1, 1)) <= 0.5}

    def _apply(self, x, t):
        flips = to_host(t["flips"]).reshape(-1).astype(bool)
        rows = flips if self.mode != "horizontal" else np.zeros_like(flips)
        cols = flips if self.mode != "vertical" else np.zeros_like(flips)
        return transform.flip_forward(x, rows, cols)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _AffineLayer(RandomImageLayer):
    """Augmentation by a projective transform per image (rotation, zoom, translation)."""

    backward_function = transform.projective_backward

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if fill_mode not in transform.FILL_MODES:
            raise ValueError(f"{self.describe()}: fill_mode must be one of {transform.FILL_MODES}, got {fill_mode!r}")
        if interpolation not in transform.INTERPOLATIONS:
            raise ValueError(f"{self.describe()}: interpolation must be one of {transform.INTERPOLATIONS}, "
                             f"got {interpolation!r}")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def make_function_config(self, input_shape):
        return transform.Projective(self.interpolation, self.fill_mode, self.fill_value, self.backend)

    def _apply(self, x, t):
        return transform.projective_forward(x, self.matrices(t, x.shape), self.function_config())

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "fill_value": self.fill_value,
                "interpolation": self.interpolation}


class RandomRotation(_AffineLayer):
    """Rotate each image in training by an angle drawn uniformly from ``factor`` (fractions of
    a full turn: 0.1 means up to 36 degrees either way) about its centre."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _factor_pair(factor, (-1, 1), "factor", self.describe())

    def _draw(self, shape, rng):
        low, high = self.factor
        return {"angle": rng.uniform(low * 360.0, high * 360.0, size=shape[0]).astype(np.float32)}

    @staticmethod
    def matrices(t, shape):
        """Rotation by ``angle`` degrees about the image centre, as Keras builds it."""
        angle = np.asarray(to_host(t["angle"]), np.float32).reshape(-1) * np.float32(math.pi / 180.0)
        cx, cy = np.float32(0.5 * (shape[2] - 1)), np.float32(0.5 * (shape[1] - 1))
        cos, sin = np.cos(angle), np.sin(angle)
        zero = np.zeros_like(angle)
        return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, zero, zero], axis=1)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineLayer):
    """Zoom each image in training by a factor drawn from 1 + ``height_factor`` (and 1 +
    ``width_factor``; without it, the same zoom both ways). Positive values zoom out, negative
    values zoom in: RandomZoom(0.2) shows between 80% and 120% of the image."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        who = self.describe()
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, (-1, 1), "height_factor", who, open_low=True)
        self._width = None if width_factor is None else _factor_pair(width_factor, (-1, 1), "width_factor", who,
                                                                      open_low=True)

    def _draw(self, shape, rng):
        height = rng.uniform(1 + self._height[0], 1 + self._height[1], size=(shape[0], 1)).astype(np.float32)
        width = height if self._width is None else \
            rng.uniform(1 + self._width[0], 1 + self._width[1], size=(shape[0], 1)).astype(np.float32)
        return {"height_zoom": height, "width_zoom": width}

    @staticmethod
    def matrices(t, shape):
        zx = np.asarray(to_host(t["width_zoom"]), np.float32).reshape(-1)
        zy = np.asarray(to_host(t["height_zoom"]), np.float32).reshape(-1)
        zero = np.zeros_like(zx)
        x_offset = np.float32((shape[2] - 1) / 2) * (1 - zx)
        y_offset = np.float32((shape[1] - 1) / 2) * (1 - zy)
        return np.stack([zx, zero, x_offset, zero, zy, y_offset, zero, zero], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": _plain(self.height_factor),
                "width_factor": _plain(self.width_factor)}


class RandomTranslation(_AffineLayer):
    """Shift each image in training by fractions of its height and width drawn from
    ``height_factor`` and ``width_factor`` (0.1: up to 10% either way)."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        who = self.describe()
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, (-1, 1), "height_factor", who)
        self._width = _factor_pair(width_factor, (-1, 1), "width_factor", who)

    def _draw(self, shape, rng):
        dy = rng.uniform(self._height[0], self._height[1], size=(shape[0], 1)) * shape[1]
        dx = rng.uniform(self._width[0], self._width[1], size=(shape[0], 1)) * shape[2]
        return {"translations": np.concatenate([dx, dy], axis=1).astype(np.float32)}

    @staticmethod
    def matrices(t, shape):
        shift = np.asarray(to_host(t["translations"]), np.float32).reshape(-1, 2)
        one, zero = np.ones(len(shift), np.float32), np.zeros(len(shift), np.float32)
        return np.stack([one, zero, -shift[:, 0], zero, one, -shift[:, 1], zero, zero], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": _plain(self.height_factor),
                "width_factor": _plain(self.width_factor)}


class RandomContrast(RandomImageLayer):
    """Scale each image's deviation from its mean (per channel) in training by a factor drawn
    from [1 - lower, 1 + upper], where ``factor`` is f (lower = upper = f, as Keras documents
    it) or (lower, upper); the result is clipped to ``value_range``."""

    backward_function = transform.contrast_backward

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = self.describe()
        if isinstance(factor, (list, tuple)):
            self.factor = _factor_pair(factor, (0, 1), "factor", who)
        else:
            self.factor = (_factor_pair(factor, (0, 1), "factor", who)[1],) * 2
        if not (isinstance(value_range, (list, tuple)) and len(value_range) == 2 and value_range[0] < value_range[1]):
            raise ValueError(f"{who}: value_range must be (low, high) with low < high, got {value_range!r}")
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def _draw(self, shape, rng):
        lower, upper = self.factor
        return {"contrast_factor": rng.uniform(1 - lower, 1 + upper, size=(shape[0], 1, 1, 1)).astype(np.float32)}

    def _apply(self, x, t):
        factors = self.backend.xp.asarray(to_host(t["contrast_factor"]).reshape(-1))
        return transform.contrast_forward(x, factors, *self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class RandomCrop(RandomImageLayer):
    """In training, a random ``height`` x ``width`` window of the batch (one window for the
    whole batch, as Keras); at inference, and in training for images not larger than the
    window, the largest centred window of that aspect ratio, resized to (height, width).
    (Keras 3 documents that inference behaviour but returns the uncropped images; tf.keras 2
    did as documented, and a model's later layers need one output shape.)"""

    backward_function = transform.resize_backward

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{self.describe()}: {name} must be a positive int, got {value!r}")
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, self.check_image_shape(input_shape)[2])

    def _draw(self, shape, rng):
        height, width = shape[1], shape[2]
        if height > self.height and width > self.width:
            return (int(rng.integers(0, height - self.height + 1)), int(rng.integers(0, width - self.width + 1)))
        return None

    def transform_images(self, images, transformation, training=True):
        x = self.backend.xp.asarray(images, dtype=self.dtype)
        return (self._apply(x, transformation) if training and transformation is not None
                else self._inference(x))[0]

    def _forward(self, x, training):
        t = self._draw_for_batch(x.shape) if training else None
        return self._apply(x, t) if t is not None else self._inference(x)

    def _apply(self, x, t):
        top, left = (int(v) for v in t)
        window = transform.Window(top, left, self.height, self.width)
        return transform.resize_forward(x, (self.height, self.width), window)

    def _inference(self, x):
        size = (self.height, self.width)
        return transform.resize_forward(x, size, aspect_window(x.shape[1:3], size, crop=True))

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


__all__ = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomCrop"]
