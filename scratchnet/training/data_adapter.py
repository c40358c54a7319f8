"""Turns what ``fit``/``evaluate``/``predict`` are given into batches.

Two kinds of input: arrays (x, y), cut into batches here; or any iterable of (x, y)
batches (a generator, a list, ``flow_from_directory``), read ``steps`` batches at a time.
"""
import math
import warnings

import numpy as np

from .. import config
from ..arrays import is_device_array, to_host


def is_batch_stream(x, y):
    """An iterable of batches is something iterable, given without y, that is not an array
    (on the host or on a GPU)."""
    return (y is None and not isinstance(x, (np.ndarray, list, tuple, dict)) and not is_device_array(x)
            and not hasattr(x, "__array__") and hasattr(x, "__iter__"))    # a TensorFlow or torch tensor is an array


def check_inputs(x, input_shape, dtype, what="x"):
    """x as a NumPy array of ``dtype`` shaped (N,) + input_shape, or a clear error. A CuPy
    array is copied to the host explicitly (batches go back to the GPU one at a time)."""
    x = to_host(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got an array of dtype {x.dtype}")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {x.shape}); expected at least one sample")
    if input_shape is not None and x.ndim == len(input_shape) and tuple(input_shape)[-1:] == (1,) and \
            tuple(x.shape[1:]) == tuple(input_shape)[:-1]:
        x = x[..., None]       # (N, 28, 28) for a model taking (28, 28, 1): the channel axis added, as Keras 3
    elif input_shape is not None and x.ndim == len(input_shape) + 2 and x.shape[-1] == 1 and \
            tuple(x.shape[1:-1]) == tuple(input_shape):
        x = x[..., 0]          # and a trailing axis of 1 too many dropped
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"{what} has shape {x.shape}; the model expects (N,) + {tuple(input_shape)} "
                         f"= {(None,) + tuple(input_shape)}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise ValueError(f"{what} contains NaN or Inf in {len(bad)} sample(s), the first at index "
                         f"{bad[0]}; expected finite numbers")
    return x.astype(dtype, copy=False) if x.dtype.kind == "f" else x


def num_samples(x):
    """Samples in ``x``: an array, or a list of arrays (one per model input)."""
    return len(x[0]) if isinstance(x, list) else len(x)


def check_lengths(x, *others):
    n = num_samples(x)
    for name, other in zip(("y",) + tuple(f"x[{i}]" for i in range(1, len(others) + 1)), others):
        if len(other) != n:
            raise ValueError(f"x and {name} must hold the same number of samples: x has {n}, "
                             f"{name} has {len(other)}")


def as_input_list(x, names, what):
    """The arrays for a model whose inputs are called ``names``: a list or tuple in that
    order, or a dict keyed by those names (as in Keras)."""
    count = len(names)
    if isinstance(x, dict):
        if set(x) != set(names):
            raise ValueError(f"{what}: the model's inputs are named {sorted(names)}; got a dict with keys "
                             f"{sorted(map(str, x))}")
        return [x[name] for name in names]
    if not isinstance(x, (list, tuple)) or len(x) != count:
        got = f"a list of {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
        raise ValueError(f"{what}: the model has {count} inputs, so it takes a list of {count} arrays; got {got}")
    return list(x)


def take(x, index):
    """x[index] for an array or for each array of a list."""
    return [a[index] for a in x] if isinstance(x, list) else x[index]


def split_at(x, cut):
    """(x[:cut], x[cut:]) for an array or a list of arrays."""
    return take(x, slice(None, cut)), take(x, slice(cut, None))


class ArrayBatches:
    """Batches of (x, y, sample_weight) arrays (the weights None when there are none); a
    fresh order each epoch when shuffling.

    With ``shard=(rank, ranks)`` (data-parallel training), each step takes a global batch of
    ``ranks * batch_size`` samples, exactly the batch one process would take at that batch
    size, and yields this rank's contiguous share of it (``shard_bounds``); ``window`` is then
    (first sample of the share, size of the global batch) for the batch last yielded. Every
    rank draws the same order from the same generator state."""

    def __init__(self, x, y, batch_size, shuffle, dtype, sample_weight=None, shard=None):
        self.x, self.y, self.batch_size, self.shuffle, self.dtype = x, y, batch_size, shuffle, dtype
        self.sample_weight = sample_weight
        self.rank, self.ranks = shard or (0, 1)
        self.global_batch_size = batch_size * self.ranks
        self.steps = math.ceil(num_samples(x) / self.global_batch_size)
        self.window = None

    def __iter__(self):
        n = num_samples(self.x)
        order = config.rng().permutation(n) if self.shuffle else None
        for start in range(0, n, self.global_batch_size):
            total = min(self.global_batch_size, n - start)
            low, high = shard_bounds(total, self.rank, self.ranks)
            if order is None:
                part = slice(start + low, start + high)
            else:
                part = order[start + low:start + high]
            self.window = (low, total)
            yield (take(self.x, part), None if self.y is None else self.y[part],
                   None if self.sample_weight is None else self.sample_weight[part])


def shard_bounds(count, rank, ranks):
    """Rank ``rank``'s [start, stop) of a global batch of ``count`` samples split between
    ``ranks`` processes: contiguous, in rank order, sizes differing by at most one (the last
    rank's share is never empty)."""
    return rank * count // ranks, (rank + 1) * count // ranks


class StreamBatches:
    """Reads ``steps`` batches per pass from an iterable of batches.

    With ``steps`` unknown, one pass is one full iteration. With it known, one iterator is
    kept across passes (so an endless generator continues where it stopped) and a
    re-iterable that runs out is started again; an exhausted one-shot iterator ends the
    pass early with a warning, as in Keras."""

    def __init__(self, data, steps, what):
        self.data, self.what = data, what
        if steps is None and hasattr(data, "__len__"):
            steps = len(data)
        self.steps = steps
        self.ran_out = False
        self._iterator = None

    def __iter__(self):
        if self.steps is None:
            yield from self._full_pass()
            return
        done, fresh = 0, False
        while done < self.steps:
            if self._iterator is None:
                self._iterator, fresh = iter(self.data), True
            try:
                batch = next(self._iterator)
            except StopIteration:
                one_shot = self._iterator is self.data
                self._iterator = None
                if fresh or one_shot:
                    warnings.warn(f"{self.what} ran out of data after {done} of {self.steps} steps; "
                                  f"interrupting. Give steps that the data can provide.", stacklevel=3)
                    self.ran_out = True
                    return
                continue  # a re-iterable reached its end: start it again
            fresh = False
            done += 1
            yield batch

    def _full_pass(self):
        count = 0
        for batch in self.data:
            count += 1
            yield batch
        if count == 0:
            raise ValueError(f"{self.what} produced no batches; a generator can be read only once, "
                             f"so pass steps_per_epoch / validation_steps, or a re-iterable")


def split_batch(batch, what):
    """(x, y, sample_weight) from one batch of a stream; y and sample_weight are None where
    the batch lacks them."""
    if isinstance(batch, (tuple, list)):
        if len(batch) in (2, 3):
            return batch[0], batch[1], batch[2] if len(batch) == 3 else None
        if len(batch) == 1:
            return batch[0], None, None
        raise ValueError(f"each batch of {what} must be (x, y, sample_weight), (x, y) or x; got a "
                         f"{len(batch)}-tuple")
    return batch, None, None


def class_weight_to_sample_weights(y, class_weight, dtype, output_shape=None):
    """Weights from {class index: weight}, as Keras: the class of a sample is its integer
    label, the argmax of a one-hot row, or the rounded value of a single output; classes not
    in the dict weigh 1. One weight per sample, shape (N,), for an (N, K) output.

    For an output with pixels, ``output_shape`` (H, W, K) (a segmentation model's), one weight
    per pixel, shape (N, H, W), from each pixel's class: its integer label in (N, H, W) or
    (N, H, W, 1) targets, the argmax of (N, H, W, K) one-hot ones, or the rounded value of
    binary (N, H, W, 1) ones. Keras 3's fit raises a TypeError for such targets (its
    class_weight takes one label per sample only); this is what its sample weights of
    shape (N, H, W) would do, weighing each pixel's loss by its class."""
    if not hasattr(class_weight, "items"):
        raise ValueError(f"class_weight must be a dict of class index -> weight, got {type(class_weight).__name__}")
    weights = {}
    for key, value in class_weight.items():
        try:
            weights[int(key)] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"class_weight must map integer class indices to numbers; got {key!r}: {value!r}") \
                from None
    labels = np.asarray(y)
    pixel_shape = tuple(output_shape)[:-1] if output_shape is not None else ()

    def fits(shape, pattern):      # None: a size the model leaves open
        return len(shape) == len(pattern) and all(p is None or p == s for s, p in zip(shape, pattern))
    if pixel_shape and fits(labels.shape[1:], pixel_shape + (1,)):
        labels = labels[..., 0]                                      # integer labels, or binary targets
    elif pixel_shape and fits(labels.shape[1:], pixel_shape):
        pass
    elif pixel_shape and fits(labels.shape[1:-1], pixel_shape):
        labels = labels.argmax(axis=-1)                              # one-hot per pixel
    elif labels.ndim > 1:
        labels = labels.argmax(axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
        labels = labels.reshape(len(labels))
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"class_weight needs numeric targets, got dtype {labels.dtype}")
    labels = np.round(labels.astype(np.float64)).astype(np.int64)
    result = np.ones(labels.shape, dtype=dtype)
    for label, weight in weights.items():      # one pass per class, vectorised over the pixels
        result[labels == label] = weight
    return result
