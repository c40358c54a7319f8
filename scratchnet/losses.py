"""Loss functions with their gradients, named as in ``keras.losses``.

Each loss returns the batch mean (Keras's 'sum over batch size') and its gradient with
respect to the model output. When the model's last activation is the one a loss can
absorb (sigmoid for binary, softmax for categorical cross-entropy) the model hands the
loss the logits instead, and the loss uses the fused log-sum-exp form: finite for
logits of any size, and with the simple gradient ``activation(z) - y``.
"""
import numpy as np

from .arrays import module_of, to_host

EPSILON = 1e-7  # Keras's clip for probabilities


def _sigmoid(z):
    return np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _clip(p):
    """Clipped probabilities and a mask of where the clip did nothing (gradient flows)."""
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    return pc, (pc == p)


def _as_float(y, dtype, loss_name):
    y = to_host(y)   # targets are checked on the host (a device array is copied explicitly)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{loss_name} expects numeric targets, got dtype {y.dtype}")
    y = y.astype(dtype, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{loss_name}: targets contain NaN or Inf")
    return y


def _reshape_like(y, output_shape, loss_name):
    """Targets shaped like the outputs; (N,) targets fit (N, 1) outputs."""
    output_shape = tuple(output_shape)
    if y.shape != output_shape and y.size == np.prod(output_shape) and y.shape[:1] == output_shape[:1]:
        y = y.reshape(output_shape)
    if y.shape != output_shape:
        raise ValueError(f"{loss_name}: targets of shape {y.shape} do not match outputs of "
                         f"shape {output_shape}")
    return y


class Loss:
    """Base class. Subclasses implement ``prepare_targets``, ``_from_logits`` and
    ``_from_probabilities``, each returning (per-sample loss, gradient of their sum)."""

    fused_activation = None   # the output activation this loss can take the logits of

    def __init__(self, from_logits=False, name=None):
        self.from_logits = from_logits
        self.name = name or self.default_name

    def __call__(self, y_true, y_pred):
        """Mean loss of a batch, as a float (``y_pred`` on the host or the device)."""
        xp = module_of(y_pred)
        if xp is np:
            y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float64)
        y = self.prepare_targets(to_host(y_true), y_pred.shape, y_pred.dtype)
        return self.value_and_grad(xp.asarray(y), y_pred)[0]

    def value_and_grad(self, y_true, y_pred, from_logits=None):
        """(mean loss over the batch as a float, d(mean loss)/d(y_pred)); y_true already
        prepared. The float is the one copy from the device a training step makes."""
        logits = self.from_logits if from_logits is None else from_logits
        per_sample, grad = (self._from_logits if logits else self._from_probabilities)(y_true, y_pred)
        n = y_pred.shape[0]
        grad /= grad.dtype.type(n)
        return float(per_sample.sum(dtype=np.float64) / n), grad

    def total(self, y_true, y_pred, from_logits=None):
        """Sum of the per-sample losses of a batch, as a 0-d float64 array where the
        outputs are (evaluation adds these up on the device and reads the sum once)."""
        logits = self.from_logits if from_logits is None else from_logits
        per_sample, _ = (self._from_logits if logits else self._from_probabilities)(y_true, y_pred)
        return per_sample.sum(dtype=np.float64)

    def prepare_targets(self, y, output_shape, dtype):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}

    def __repr__(self):
        return f"<{type(self).__name__} from_logits={self.from_logits}>"


class BinaryCrossentropy(Loss):
    """-(y log p + (1-y) log(1-p)), averaged over the last axis then the batch."""

    default_name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def prepare_targets(self, y, output_shape, dtype):
        y = _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{self.name} expects targets in [0, 1], got values from "
                             f"{y.min()} to {y.max()}")
        return y

    def _from_logits(self, y, z):
        # log(1 + exp(-|z|)) + max(z, 0) - z*y  ==  -(y log s(z) + (1-y) log(1-s(z)))
        per_element = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        k = z.shape[-1]
        return per_element.mean(axis=-1), (_sigmoid(z) - y) / z.dtype.type(k)

    def _from_probabilities(self, y, p):
        pc, inside = _clip(p)
        per_element = -(y * np.log(pc) + (1 - y) * np.log1p(-pc))
        k = p.shape[-1]
        grad = (-y / pc + (1 - y) / (1 - pc)) * inside / p.dtype.type(k)
        return per_element.mean(axis=-1), grad


class CategoricalCrossentropy(Loss):
    """-sum(y log p) over the last axis, y one-hot (or any distribution)."""

    default_name = "categorical_crossentropy"
    fused_activation = "softmax"

    def prepare_targets(self, y, output_shape, dtype):
        y_arr = to_host(y)
        if y_arr.ndim == 1 and len(output_shape) == 2 and output_shape[1] > 1:
            raise ValueError(f"{self.name} expects one-hot targets of shape {tuple(output_shape)}, "
                             f"got integer labels of shape {y_arr.shape}; use "
                             f"sparse_categorical_crossentropy for those")
        y = _as_float(y_arr, dtype, self.name)
        if y.shape != tuple(output_shape):
            raise ValueError(f"{self.name}: targets of shape {y.shape} do not match outputs of "
                             f"shape {tuple(output_shape)}")
        return y

    def _from_logits(self, y, z):
        log_p = _log_softmax(z)
        total = y.sum(axis=-1, keepdims=True)
        return -(y * log_p).sum(axis=-1), np.exp(log_p) * total - y

    def _from_probabilities(self, y, p):
        s = p.sum(axis=-1, keepdims=True)
        q = p / s
        qc, inside = _clip(q)
        dq = -y / qc * inside
        return -(y * np.log(qc)).sum(axis=-1), (dq - (dq * q).sum(axis=-1, keepdims=True)) / s


class SparseCategoricalCrossentropy(Loss):
    """-log p[label] with integer labels in [0, classes)."""

    default_name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def prepare_targets(self, y, output_shape, dtype):
        y = to_host(y)
        n, classes = output_shape[0], output_shape[-1]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"{self.name} expects integer labels of shape ({n},), got {y.shape}")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all() or (y != np.round(y)).any():
                raise ValueError(f"{self.name} expects integer class labels, got non-integer values")
        elif y.dtype.kind not in "biu":
            raise TypeError(f"{self.name} expects integer class labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(f"{self.name}: labels must be in [0, {classes}) for a {classes}-class "
                             f"output, got values from {y.min()} to {y.max()}")
        return y.astype(np.intp)

    def _from_logits(self, y, z):
        log_p = _log_softmax(z)
        rows = module_of(z).arange(z.shape[0])
        grad = np.exp(log_p)
        grad[rows, y] -= 1
        return -log_p[rows, y], grad

    def _from_probabilities(self, y, p):
        rows = module_of(p).arange(p.shape[0])
        s = p.sum(axis=-1, keepdims=True)
        q = p / s
        qc, inside = _clip(q[rows, y])
        dq = np.zeros_like(p)
        dq[rows, y] = -1 / qc * inside
        return -np.log(qc), (dq - (dq * q).sum(axis=-1, keepdims=True)) / s


class MeanSquaredError(Loss):
    """mean((y - p)^2) over the last axis."""

    default_name = "mean_squared_error"

    def prepare_targets(self, y, output_shape, dtype):
        return _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)

    def _from_probabilities(self, y, p):
        diff = p - y
        return (diff * diff).mean(axis=-1), 2 * diff / p.dtype.type(p.shape[-1])

    _from_logits = _from_probabilities


_CLASSES = {cls.default_name: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                               SparseCategoricalCrossentropy, MeanSquaredError)}
_ALIASES = {"mse": "mean_squared_error"}


def get_class(class_name):
    """The Loss class called ``class_name`` (used when loading model files)."""
    classes = {cls.__name__: cls for cls in _CLASSES.values()}
    if class_name not in classes:
        raise ValueError(f"unknown loss class {class_name!r}; expected one of {sorted(classes)}")
    return classes[class_name]


def get(identifier):
    """A Loss instance from a Keras name ('binary_crossentropy', ...) or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name in _CLASSES:
            return _CLASSES[name]()
    valid = sorted(_CLASSES) + sorted(_ALIASES)
    raise ValueError(f"unknown loss {identifier!r}; expected one of {valid} or a Loss instance")


def _per_sample(loss_class):
    def function(y_true, y_pred, from_logits=False):
        loss = loss_class(from_logits=from_logits)
        xp = module_of(y_pred)
        y_pred = xp.asarray(y_pred)
        y_pred = y_pred.astype(np.result_type(y_pred.dtype, np.float32), copy=False)
        y = xp.asarray(loss.prepare_targets(y_true, y_pred.shape, y_pred.dtype))
        fn = loss._from_logits if from_logits else loss._from_probabilities
        return fn(y, y_pred)[0]
    function.__name__ = loss_class.default_name
    function.__doc__ = f"Per-sample {loss_class.default_name}, as keras.losses.{loss_class.default_name}."
    return function


binary_crossentropy = _per_sample(BinaryCrossentropy)
categorical_crossentropy = _per_sample(CategoricalCrossentropy)
sparse_categorical_crossentropy = _per_sample(SparseCategoricalCrossentropy)
mean_squared_error = mse = _per_sample(MeanSquaredError)
