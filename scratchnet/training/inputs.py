"""The data a model is given, checked and put into batches: inputs of the model's shapes
and dtype, targets the loss can read, sample weights, and the batches fit and evaluate
iterate, each an (x, y, sample_weight) triple on the model's device."""
from .. import losses as losses_module
from ..arrays import to_host, to_module
from ..geometry import has_unknown_size
from . import data_adapter, py_dataset


def check_x(model, x, what="x"):
    """x as host arrays of the model's dtype: one array, or a list for several inputs. A
    Sequential model without an input shape yet builds itself for ``x``."""
    if model.graph is None:
        x = data_adapter.check_inputs(x, None, model.dtype, what)
        model.build_from_data(x.shape)
        return x
    shapes = model.input_shapes()
    if isinstance(x, dict) or len(shapes) > 1:
        xs = data_adapter.as_input_list(x, [t.node.layer.name for t in model.graph.inputs], what)
    if len(shapes) == 1:
        x = data_adapter.check_inputs(xs[0] if isinstance(x, dict) else x, shapes[0], model.dtype, what)
        if has_unknown_size(shapes[0]):
            model.check_input_shape(tuple(x.shape[1:]), got=str(x.shape))   # every layer takes this size
        return x
    xs = [data_adapter.check_inputs(a, s, model.dtype, f"{what}[{i}]") for i, (a, s) in enumerate(zip(xs, shapes))]
    data_adapter.check_lengths(xs[0], *xs[1:])
    if has_unknown_size(shapes):
        model.check_input_shape([tuple(a.shape[1:]) for a in xs], got=str([a.shape for a in xs]))
    return xs


def output_shape(model, x):
    """The per-sample shape of the model's single output for the (checked) inputs ``x``
    (their size fixes the output's where the model takes any size), or for ``x`` samples."""
    if isinstance(x, int):
        return tuple(model.single_output_shape("fit"))
    return tuple(model.single_output_shape("fit", [a.shape for a in x] if isinstance(x, list) else x.shape))


def prepare_targets(model, y, x, what=None):
    """y as the loss reads it, for the model's single output on the (checked) inputs ``x``,
    or on ``x`` samples; a ValueError names ``what`` data it is about (the training or the
    validation data)."""
    model.compile_state()      # settled first: a Sequential model built from this data decides its head now
    n = x if isinstance(x, int) else data_adapter.num_samples(x)
    try:
        return model.loss.prepare_targets(y, (n,) + output_shape(model, x), model.dtype)
    except ValueError as error:
        if what is None:
            raise
        raise ValueError(f"{what}: {error}") from None


def sample_weights(model, y, x, sample_weight, class_weight, what):
    """The weights (host, the model's dtype) from ``sample_weight`` or from ``class_weight``
    and the raw labels ``y``, for the (checked) inputs ``x``; None for neither. One per
    sample, or, for a model whose output has pixels (N, H, W, K), one per pixel where they
    are given so or come from class_weight."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("give class_weight or sample_weight, not both (as in Keras)")
    if sample_weight is None and class_weight is None:
        return None
    shape = output_shape(model, x)
    if class_weight is not None:
        return data_adapter.class_weight_to_sample_weights(to_host(y), class_weight, model.dtype, shape)
    return losses_module.check_sample_weight(to_host(sample_weight), data_adapter.num_samples(x), model.dtype,
                                             f"the sample weights of {what}", pixel_shape=shape[:-1])


def batches(model, x, y, batch_size, shuffle, steps, what, sample_weight=None, class_weight=None, shard=None):
    """The batches of fit / evaluate: arrays cut into ``batch_size`` (this process's
    ``shard`` of each global batch, for data-parallel training), or a stream of batches
    passed through (``steps`` of them), each checked as it comes (``checked``), or a
    PyDataset's batches by index (``py_dataset.PyDatasetBatches``)."""
    if py_dataset.is_py_dataset(x):
        for name, given in (("y", y), ("sample_weight", sample_weight)):
            if given is not None:
                raise ValueError(f"{what}: {name} is not accepted with a PyDataset x (as in Keras); its "
                                 f"__getitem__ returns (x, y) or (x, y, sample_weight)")
        stream = py_dataset.PyDatasetBatches(x, steps, what, shuffle)
        stream.class_weight = class_weight
        return stream
    if data_adapter.is_batch_stream(x, y):
        if sample_weight is not None:
            raise ValueError(f"{what}: sample_weight goes with x and y arrays; a stream of batches gives "
                             f"its weights as the third item of each batch, (x, y, sample_weight)")
        stream = data_adapter.StreamBatches(x, steps, what)
        stream.class_weight = class_weight
        return stream
    if y is None:
        raise ValueError(f"{what}: y is missing; pass (x, y) arrays or an iterable of (x, y) batches")
    x = check_x(model, x, what if what != "the training data" else "x")
    data_adapter.check_lengths(x, y)
    y_checked = prepare_targets(model, y, x, what)       # the targets first: a weight is made from a valid label
    weights = sample_weights(model, y, x, sample_weight, class_weight, what)
    y = y_checked
    return data_adapter.ArrayBatches(x, y, batch_size, shuffle, model.dtype, weights, shard=shard)


def check_batch(model, batch, what, class_weight=None):
    """One (x, y[, sample_weight]) batch as a checked (x, y, sample_weight) triple on the host."""
    xb, yb, wb = data_adapter.split_batch(batch, what)
    if yb is None:
        raise ValueError(f"each batch of {what} must be an (x, y) pair; got x alone")
    xb = check_x(model, xb, what=f"a batch of {what}")
    data_adapter.check_lengths(xb, yb)
    y_checked = prepare_targets(model, yb, xb, f"a batch of {what}")
    return xb, y_checked, sample_weights(model, yb, xb, wb, class_weight, f"a batch of {what}")


def checked(model, data, what, allow_empty=False):
    """Iterate (x, y, sample_weight) batches of ``data``, checking those that come from a
    stream, and moving each to the model's device (once per step: the GPU backend's only
    copy). With ``allow_empty``, an empty batch from a stream passes unchecked (a
    data-parallel rank's empty share of a short last batch)."""
    stream = isinstance(data, data_adapter.StreamBatches)
    class_weight = getattr(data, "class_weight", None)
    for batch in data:
        if stream and allow_empty and _is_empty(batch):
            yield data_adapter.split_batch(batch, what)
            continue
        index = getattr(data, "index", None)      # a PyDataset's batch: its errors name its index
        xb, yb, wb = check_batch(model, batch, what if index is None else f"{what} (PyDataset index {index})",
                                 class_weight) if stream else batch
        yield to_device(model, xb), to_device(model, yb), None if wb is None else to_device(model, wb)


def to_device(model, a):
    if isinstance(a, list):
        return [to_module(v, model.backend.xp) for v in a]
    return to_module(a, model.backend.xp)


def validation_triple(validation_data):
    """(x, y, sample_weight or None) from fit's ``validation_data`` tuple."""
    items = tuple(validation_data)
    if len(items) not in (2, 3):
        raise ValueError(f"validation_data must be (x_val, y_val), (x_val, y_val, val_sample_weight) or an "
                         f"iterable of batches; got a tuple of {len(items)} items")
    return items if len(items) == 3 else items + (None,)


def split_for_validation(model, x, y, sample_weight, class_weight, validation_split):
    """(x, y, sample_weight, validation_data): the last ``validation_split`` of the samples
    kept apart for validation, as Keras does (with their sample weights)."""
    if data_adapter.is_batch_stream(x, y):
        raise ValueError("validation_split needs arrays; with batches pass validation_data")
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    x = check_x(model, x) if isinstance(x, dict) else x
    x = [to_host(a) for a in x] if isinstance(x, list) else to_host(x)
    y = to_host(y)
    data_adapter.check_lengths(x, y)
    cut = int(len(y) * (1 - validation_split))   # Keras keeps the last samples for validation
    (x, vx), (y, vy) = data_adapter.split_at(x, cut), (y[:cut], y[cut:])
    validation_data = (vx, vy)
    if sample_weight is not None:                 # the weights split with their samples (checked with each part)
        if class_weight is not None:
            raise ValueError("give class_weight or sample_weight, not both (as in Keras)")
        sample_weight = to_host(sample_weight)
        if sample_weight.ndim == 0 or len(sample_weight) != len(y) + len(vy):
            raise ValueError(f"the sample weights of the training data must hold one number per sample (or one "
                             f"per pixel) for each of the {len(y) + len(vy)} samples; got shape "
                             f"{sample_weight.shape}")
        sample_weight, validation_data = sample_weight[:cut], (vx, vy, sample_weight[cut:])
    return x, y, sample_weight, validation_data


def _is_empty(batch):
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    x = x[0] if isinstance(x, (list, tuple)) else x
    return len(x) == 0
