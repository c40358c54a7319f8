"""The normalisation layers, as Keras 3 defines them.

BatchNormalization: gamma, beta, moving_mean, moving_variance (in that order; the moving
statistics are not trainable), batch statistics in training, moving ones in inference, and a
frozen layer (trainable=False) always in inference mode. LayerNormalization and
GroupNormalization: per-sample statistics, gamma then beta. UnitNormalization: no weights.
Normalization (preprocessing): fixed or adapted mean and variance (weights mean, variance,
count when adapted)."""
import numpy as np

from .. import initializers
from ..functions import layer_norm, normalization
from .base import Layer


class BatchNormalization(Layer):
    """Normalise each channel (the last axis) to mean 0 and variance 1, then scale by gamma
    and shift by beta."""

    non_trainable_names = ("moving_mean", "moving_variance")
    penalized_weights = {"gamma": "gamma", "beta": "beta"}

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.set_penalties({"beta_regularizer": beta_regularizer, "gamma_regularizer": gamma_regularizer,
                            "beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint})
        if not 0 <= momentum <= 1:
            raise ValueError(f"{self.describe()}: momentum must be in [0, 1], got {momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"{self.describe()}: epsilon must be positive, got {epsilon!r}")
        self.axis = axis
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        for name in (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer):
            initializers.get(name)   # fail early on typos

    def weight_shapes(self, input_shape):
        axis = self.axis if not isinstance(self.axis, (list, tuple)) else tuple(self.axis)
        if isinstance(axis, tuple) and len(axis) == 1:    # tf.keras 2 writes axis=[3]
            axis = axis[0]
        if axis not in (-1, len(input_shape)):
            raise NotImplementedError(f"{self.describe()}: only the last axis (channels last) is supported, "
                                      f"got axis={self.axis!r} for inputs of shape {(None,) + tuple(input_shape)}")
        c = input_shape[-1]
        shapes = {}
        if self.scale:
            shapes["gamma"] = (c,)
        if self.center:
            shapes["beta"] = (c,)
        shapes["moving_mean"] = (c,)
        shapes["moving_variance"] = (c,)
        return shapes

    def make_function_config(self, input_shape):
        return normalization.Config(self.epsilon, self.momentum, self.backend)

    def uses_batch_statistics(self, training):
        """Whether a call in mode ``training`` normalises with the batch's statistics: in
        training, unless the layer is frozen (then it runs in inference mode, as in Keras 3)."""
        return training and self.trainable

    def _forward(self, x, training):
        return normalization.forward(x, self.params, self.function_config(), self.uses_batch_statistics(training))

    def _backward(self, dy, ctx, need_dx):
        return normalization.backward(dy, ctx, need_dx)

    def state_updates(self, ctx):
        return normalization.state_updates(ctx, self.params)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


def _axes(axis, ndim, layer):
    """``axis`` (an int or a list of them, of the whole shape, batch axis included) as a
    sorted tuple of non-negative axes; ValueError when one is out of range or is the batch."""
    axes = [axis] if isinstance(axis, int) else list(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{layer.describe()}: axis {a} is out of range for inputs of rank {ndim} "
                             f"(expected an axis in [{-ndim}, {ndim}))")
    axes = sorted({a % ndim for a in axes})
    if 0 in axes:
        raise ValueError(f"{layer.describe()}: axis {axis!r} includes the batch axis 0; expected axes of a "
                         f"sample (1 to {ndim - 1}, or negative)")
    return tuple(axes)


class _AffineNormalization(Layer):
    """What LayerNormalization and GroupNormalization share: epsilon, center, scale, and
    gamma then beta (Keras's order) shaped by ``param_shape``."""

    penalized_weights = {"gamma": "gamma", "beta": "beta"}

    def __init__(self, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.set_penalties({"beta_regularizer": beta_regularizer, "gamma_regularizer": gamma_regularizer,
                            "beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint})
        if not epsilon > 0:
            raise ValueError(f"{self.describe()}: epsilon must be positive, got {epsilon!r}")
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        initializers.get(beta_initializer)
        initializers.get(gamma_initializer)

    def weight_shapes(self, input_shape):
        shape = self.param_shape(input_shape)
        shapes = {}
        if self.scale:
            shapes["gamma"] = shape
        if self.center:
            shapes["beta"] = shape
        return shapes

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


class LayerNormalization(_AffineNormalization):
    """Standardise each sample over ``axis`` (the last by default; an int or a list), then
    scale by gamma and shift by beta, both shaped as the normalised axes (Keras 3)."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        if kwargs.pop("rms_scaling", False):
            raise NotImplementedError("LayerNormalization: rms_scaling (deprecated in Keras) is not supported")
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, **kwargs)
        self.axis = axis if isinstance(axis, int) else list(axis)

    def param_shape(self, input_shape):
        shape = (None,) + tuple(input_shape)
        return tuple(shape[a] for a in _axes(self.axis, len(shape), self))

    def make_function_config(self, input_shape):
        return _axes(self.axis, len(input_shape) + 1, self)

    def _forward(self, x, training):
        return layer_norm.layer_norm_forward(x, self.params, self.function_config(), self.epsilon)

    def _backward(self, dy, ctx, need_dx):
        return layer_norm.layer_norm_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class GroupNormalization(_AffineNormalization):
    """Split the channels on ``axis`` into ``groups`` groups and standardise each sample's
    group over its channels and all spatial axes, then a per-channel gamma and beta
    (Keras 3; groups=-1 means one group per channel)."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, **kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"{self.describe()}: axis must be one int, got {axis!r}")
        if not isinstance(groups, int) or not (groups > 0 or groups == -1):
            raise ValueError(f"{self.describe()}: groups must be a positive int (or -1), got {groups!r}")
        self.groups, self.axis = groups, axis

    def _groups(self, input_shape):
        shape = (None,) + tuple(input_shape)
        axis = _axes(self.axis, len(shape), self)[0]
        c = shape[axis]
        if c is None:
            raise ValueError(f"{self.describe()}: axis {self.axis} of the input must have a known size, "
                             f"got input shape {shape}")
        groups = c if self.groups == -1 else self.groups
        if groups > c:
            raise ValueError(f"{self.describe()}: the number of groups ({groups}) cannot be more than the "
                             f"number of channels ({c}) on axis {self.axis}")
        if c % groups:
            raise ValueError(f"{self.describe()}: the number of groups ({groups}) must divide the number of "
                             f"channels ({c}) on axis {self.axis}")
        return groups, axis, c

    def param_shape(self, input_shape):
        return (self._groups(input_shape)[2],)

    def make_function_config(self, input_shape):
        return self._groups(input_shape)[:2]

    def _forward(self, x, training):
        groups, axis = self.function_config()
        return layer_norm.group_norm_forward(x, self.params, groups, axis, self.epsilon)

    def _backward(self, dy, ctx, need_dx):
        return layer_norm.group_norm_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over ``axis``: x / max(||x||, 1e-12) (Keras 3)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis if isinstance(axis, int) else list(axis)

    def make_function_config(self, input_shape):
        return _axes(self.axis, len(input_shape) + 1, self)

    def build(self, input_shape):
        _axes(self.axis, len(tuple(input_shape)) + 1, self)    # fail at build on a bad axis
        super().build(input_shape)

    def _forward(self, x, training):
        return layer_norm.unit_norm_forward(x, self.function_config())

    def _backward(self, dy, ctx, need_dx):
        return layer_norm.unit_norm_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Normalization(Layer):
    """The preprocessing layer: (x - mean) / max(sqrt(variance), 1e-7) per position of the
    kept ``axis`` (the last by default; None for one mean and variance over everything), or
    its inverse with ``invert=True``. ``mean`` and ``variance`` are given, or computed by
    ``adapt(data)``; adapted ones are the layer's weights mean, variance and count (not
    trainable), as Keras 3 keeps them. As in Keras, a layer neither given statistics nor
    adapted normalises with mean 0 and variance 1."""

    non_trainable_names = ("mean", "variance", "count")

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(f"{self.describe()}: give both mean and variance, or neither; got mean={mean!r} and "
                             f"variance={variance!r}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(f"{self.describe()}: mean and variance must have one shape, got "
                                 f"{np.shape(mean)} and {np.shape(variance)}")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(f"{self.describe()}: the rank of mean ({np.ndim(mean)}) cannot exceed the number "
                                 f"of axes kept ({len(self.axis)}, axis={axis!r})")
        self.input_mean, self.input_variance, self.invert = mean, variance, bool(invert)

    def _keep(self, input_shape):
        shape = (None,) + tuple(input_shape)
        keep = _axes(self.axis, len(shape), self) if self.axis else ()
        for d in keep:
            if shape[d] is None:
                raise ValueError(f"{self.describe()}: the kept axis {d} must have a known size, got input shape "
                                 f"{shape}")
        return shape, keep

    def weight_shapes(self, input_shape):
        if self.input_mean is not None:
            return {}
        shape, keep = self._keep(input_shape)
        stat = tuple(shape[d] for d in keep)
        return {"mean": stat, "variance": stat, "count": ()}

    def initializer_for(self, name):
        return "ones" if name == "variance" else "zeros"

    def build(self, input_shape):
        super().build(input_shape)
        if "count" in self.params:     # Keras keeps an integer count (for older saved models)
            self.params["count"] = self.backend.xp.zeros((), dtype=np.int64)

    def make_function_config(self, input_shape):
        shape, keep = self._keep(input_shape)
        broadcast = tuple(shape[d] if d in keep else 1 for d in range(len(shape)))
        if self.input_mean is None:
            return broadcast, None
        mean = np.asarray(self.input_mean, np.float64)
        variance = np.asarray(self.input_variance, np.float64)
        aligned = [1] * len(shape)       # mean's axes meet the kept axes from the right
        for i in range(1, mean.ndim + 1):
            aligned[keep[-i]] = mean.shape[-i]
        xp = self.backend.xp
        fixed = [xp.asarray(np.broadcast_to(a.reshape(aligned), broadcast).astype(self.dtype))
                 for a in (mean, variance)]
        return broadcast, fixed

    def statistics(self):
        broadcast, fixed = self.function_config()
        if fixed is not None:
            return fixed
        return self.params["mean"].reshape(broadcast), self.params["variance"].reshape(broadcast)

    def _forward(self, x, training):
        mean, variance = self.statistics()
        return layer_norm.standardize_forward(x, mean, variance, self.invert)

    def _backward(self, dy, ctx, need_dx):
        return layer_norm.standardize_backward(dy, ctx, need_dx)

    def adapt(self, data):
        """Compute the mean and variance per kept position over ``data``: one array (all of it
        at once), or an iterable of batches (arrays, or (x, y) pairs whose x is used) combined
        batch by batch as Keras combines them."""
        if self.input_mean is not None:
            raise ValueError(f"{self.describe()} was given mean and variance; it cannot also be adapted")
        if hasattr(data, "shape"):
            batches, first = None, np.asarray(data)
        else:
            batches = iter(data)
            first = next(batches, None)
            if first is None:
                raise ValueError(f"{self.describe()}: adapt() got an empty iterable; expected at least one batch")
            first = _batch_of(first)
        if self.built:
            shape, keep = self._keep(self.input_shape)
            for d in keep:
                if first.shape[d] != shape[d]:
                    raise ValueError(f"{self.describe()} was built for inputs of shape {shape}, but adapt() got "
                                     f"data of the incompatible shape {first.shape}")
        else:
            self.ensure_built(tuple(first.shape[1:]))
        _, keep = self._keep(self.input_shape)
        reduce = tuple(d for d in range(first.ndim) if d not in keep)
        if batches is None:
            x = first.astype(self.dtype, copy=False)
            mean, variance = x.mean(axis=reduce), x.var(axis=reduce)
        else:
            total = (np.zeros(self.params["mean"].shape, self.dtype), np.zeros(self.params["mean"].shape, self.dtype), 0)
            for batch in _chain(first, batches):
                batch = batch.astype(self.dtype, copy=False)
                if tuple(batch.shape[d] for d in keep) != tuple(first.shape[d] for d in keep):
                    raise ValueError(f"{self.describe()}: adapt() got a batch of shape {batch.shape}, incompatible "
                                     f"with the first batch's {first.shape}")
                count = int(np.prod([batch.shape[d] for d in reduce])) if reduce else 1
                total = layer_norm.combine_moments(total, batch.mean(axis=reduce), batch.var(axis=reduce), count)
            mean, variance = total[0], total[1]
        xp = self.backend.xp
        self.params["mean"][...] = xp.asarray(np.asarray(mean, self.dtype))
        self.params["variance"][...] = xp.asarray(np.asarray(variance, self.dtype))

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": np.array(self.input_mean).tolist(), "variance": np.array(self.input_variance).tolist()}


def _batch_of(element):
    """The inputs of a dataset element: x of an (x, y) or (x, y, weights) tuple, as NumPy."""
    if isinstance(element, (tuple, list)):
        element = element[0]
    return np.asarray(element)


def _chain(first, rest):
    yield first
    for element in rest:
        yield _batch_of(element)
