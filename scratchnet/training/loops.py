"""The loops of fit, evaluate and predict, with Keras's History, callbacks and progress
bar. Each step is the model's own ``train_step`` / ``test_step`` / ``predict_step``; what
differs when several processes share a step, the loop asks the optimizer's strategy."""
import math
from collections.abc import Mapping

import numpy as np

from ..arrays import to_host
from ..threads import pin_late_libraries
from . import callbacks as callbacks_module
from . import data_adapter, inputs, py_dataset
from .results import TrainingDiverged
from .strategy import strategy_of


def fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
        class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
        validation_freq):
    """Model.fit's loop over epochs and steps (see its docstring)."""
    strategy = strategy_of(model.optimizer)
    verbose = 1 if verbose == "auto" else verbose
    batch_size = batch_size or 32
    if validation_split:
        x, y, sample_weight, validation_data = inputs.split_for_validation(
            model, x, y, sample_weight, class_weight, validation_split)
    train = inputs.batches(model, x, y, batch_size, shuffle, steps_per_epoch, "the training data", sample_weight,
                           class_weight, shard=strategy.shard)
    val = None
    if validation_data is not None:
        vx, vy, vw = (validation_data, None, None) if data_adapter.is_batch_stream(validation_data, None) \
            else inputs.validation_triple(validation_data)
        val = inputs.batches(model, vx, vy, validation_batch_size or batch_size, False, validation_steps,
                             "the validation data", vw, shard=strategy.shard)
    verbose = strategy.verbosity(verbose)
    callbacks = [hook for hook in callbacks or [] if strategy.keep_callback(hook)]
    strategy.start(model, train, val, batch_size)
    history = callbacks_module.History()
    model.history = history
    hooks = callbacks + [history]   # History last, as in Keras: it sees what callbacks add
    start_hooks(model, hooks, {"epochs": epochs, "steps": train.steps, "verbose": verbose})
    reset(train)
    call = callbacks_module.call
    call(hooks, "on_train_begin")
    model.stop_training = False
    for epoch in range(initial_epoch, epochs):
        call(hooks, "on_epoch_begin", epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}")
        bar = callbacks_module.Progbar(train.steps, verbose)
        with strategy.watch(train):
            logs, steps_done, diverged = train_epoch(model, strategy, train, epoch, bar, hooks)
        if steps_done == 0:   # a one-shot iterator ran out (warned); Keras stops here too
            break
        if val is not None and (epoch + 1) % validation_freq == 0 and not diverged:
            logs.update({f"val_{k}": v for k, v in run_evaluation(model, strategy, val, "the validation data",
                                                                  hooks).items()})
        bar.finish(steps_done, logs)
        call(hooks, "on_epoch_end", epoch, logs)
        if model.stop_training or getattr(train, "ran_out", False):
            break
    call(hooks, "on_train_end")
    return history


def train_epoch(model, strategy, train, epoch, bar, hooks):
    """One pass over ``train``: (logs, steps done, whether the loss stopped being finite)."""
    reset_metrics(model)
    loss_sum, seen, step = 0.0, 0, 0
    call = callbacks_module.call
    for step, (xb, yb, wb) in enumerate(inputs.checked(model, train, "the training data",
                                                       strategy.allows_empty_batches), start=1):
        call(hooks, "on_train_batch_begin", step - 1)
        result = model.train_step((xb, yb) if wb is None else (xb, yb, wb))
        pin_late_libraries()
        state = model.compile_state()       # (a model built from its first batch has one only now)
        if isinstance(result, Mapping):     # a train_step of the user's own, reporting its logs (Keras 3)
            logs = dict(result)
            bar.update(step, logs)
            call(hooks, "on_train_batch_end", step - 1, logs)
            seen += 1
            if model.stop_training:
                break
            continue
        if not math.isfinite(result.loss):
            if not any(isinstance(hook, callbacks_module.TerminateOnNaN) for hook in hooks):
                raise TrainingDiverged(
                    f"the loss became {result.loss} at epoch {epoch + 1}, step {step}/{train.steps}; training "
                    f"stopped and that step's update was not applied. Lower the learning rate or check the inputs "
                    f"for extreme values.")
            logs = {"loss": result.loss}       # TerminateOnNaN asked to stop quietly instead
            call(hooks, "on_train_batch_end", step - 1, logs)
            return logs, step, True
        if result.samples == 0:    # a global batch with no readable sample: skipped, as one process skips it
            continue
        loss_sum += result.loss * result.samples
        seen += result.samples
        if result.outputs is not None:         # None on a rank whose share of the batch was empty
            state.update_metrics(yb, result.outputs, wb)
        logs = batch_logs(state, loss_sum / seen)
        bar.update(step, logs)
        call(hooks, "on_train_batch_end", step - 1, logs)
        if model.stop_training:    # a callback stopped training in the middle of the epoch
            break
    if seen == 0:
        if getattr(train, "ran_out", False):
            return {}, 0, False
        raise ValueError("the training data produced no batches")
    if isinstance(result, Mapping):
        return logs, step, False
    strategy.sum_totals(0.0, 0, model.compile_state().metrics)   # the loss is global already; the metrics become so
    return dict(batch_logs(state, loss_sum / seen)), step, False


def run_evaluation(model, strategy, data, what, hooks=()):
    """The loss and metrics over ``data`` in inference mode, calling the test hooks."""
    reset_metrics(model)
    reset(data)
    call = callbacks_module.call
    call(hooks, "on_test_begin")
    loss_sum, seen = None, 0   # loss_sum stays on the device until the end
    for step, (xb, yb, wb) in enumerate(inputs.checked(model, data, what, strategy.allows_empty_batches)):
        call(hooks, "on_test_batch_begin", step)
        if data_adapter.num_samples(xb) == 0:     # this rank's share of a short last batch
            continue
        result = model.test_step((xb, yb) if wb is None else (xb, yb, wb))
        state = model.compile_state()
        if isinstance(result, Mapping):     # a test_step of the user's own: its logs as they are
            logs, seen = dict(result), seen + 1
            if hooks:
                call(hooks, "on_test_batch_end", step, logs)
            continue
        loss_sum = result.loss if loss_sum is None else loss_sum + result.loss
        seen += result.samples
        state.update_metrics(yb, result.outputs, wb)
        if hooks:       # the running loss is read from the device only if a callback looks
            call(hooks, "on_test_batch_end", step, batch_logs(state, (loss_sum, seen)))
    own_logs = seen and loss_sum is None    # the logs of a test_step of the user's own
    loss_sum = 0.0 if loss_sum is None else float(loss_sum)
    loss_sum, seen = strategy.sum_totals(loss_sum, seen, model.compile_state().metrics)
    if seen == 0:
        raise ValueError(f"{what} produced no batches")
    if own_logs:
        call(hooks, "on_test_end", logs)
        return logs
    logs = dict(batch_logs(state, loss_sum / seen))
    call(hooks, "on_test_end", logs)
    return logs


def evaluate(model, x, y, batch_size, verbose, sample_weight, steps, callbacks):
    """Model.evaluate's loop: its logs as a dict."""
    strategy = strategy_of(model.optimizer)
    verbose = strategy.verbosity(1 if verbose == "auto" else verbose)
    data = inputs.batches(model, x, y, batch_size or 32, False, steps, "the evaluation data", sample_weight,
                          shard=strategy.shard)
    strategy.check_evaluation(model, data.steps)
    bar = callbacks_module.Progbar(data.steps, verbose)
    hooks = list(callbacks or [])
    start_hooks(model, hooks, {"steps": data.steps, "verbose": verbose})
    logs = run_evaluation(model, strategy, data, "the evaluation data", hooks)
    bar.finish(data.steps or 0, logs)
    return logs


def predict(model, x, batch_size, verbose, steps, callbacks):
    """Model.predict's loop: the outputs of every batch, joined."""
    batch_size = batch_size or 32
    hooks = list(callbacks or [])
    call = callbacks_module.call
    if py_dataset.is_py_dataset(x):
        stream = py_dataset.PyDatasetBatches(x, steps, "the input", reset_before=False)
        steps = stream.steps
        batches = (inputs.check_x(model, batch[0], what=f"a batch of the input (PyDataset index {stream.index})")
                   for batch in stream)
    elif data_adapter.is_batch_stream(x, None):
        batches = (inputs.check_x(model, data_adapter.split_batch(batch, "the input")[0],
                                  what="a batch of the input")
                   for batch in data_adapter.StreamBatches(x, steps, "the input"))
    else:
        x = inputs.check_x(model, x)
        n = data_adapter.num_samples(x)
        batches = (data_adapter.take(x, slice(start, start + batch_size)) for start in range(0, n, batch_size))
    start_hooks(model, hooks, {"steps": steps, "verbose": verbose})
    call(hooks, "on_predict_begin")
    parts = []
    for step, xb in enumerate(batches):
        call(hooks, "on_predict_batch_begin", step)
        parts.append(model.predict_step(xb))
        call(hooks, "on_predict_batch_end", step, {"outputs": parts[-1]})
    call(hooks, "on_predict_end")
    return join_outputs(parts) if parts else empty_outputs(model)


def reset(data):
    """A PyDataset's reader starts a fresh pass where Keras resets its iterator."""
    if isinstance(data, py_dataset.PyDatasetBatches):
        data.reset()


def reset_metrics(model):
    """Start the metrics' running means again (a model without a graph yet has none)."""
    if model.graph is not None:
        model.compile_state().reset_metrics()


def start_hooks(model, hooks, params):
    for hook in hooks:
        hook.set_model(model)
        if hasattr(hook, "set_params"):
            hook.set_params(params)
        else:
            hook.params = params


def batch_logs(state, loss):
    """The loss and the metrics so far; a metric's value is read (from the device, for the
    GPU backend) only when someone looks at it."""
    return callbacks_module.BatchLogs(loss, state.metrics)


def host_outputs(out):
    return [to_host(o) for o in out] if isinstance(out, list) else to_host(out)


def join_outputs(parts):
    if isinstance(parts[0], list):
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    return np.concatenate(parts)


def empty_outputs(model):
    shapes = [tuple(t.shape[1:]) for t in model.graph.outputs]
    outs = [np.empty((0,) + s, model.dtype) for s in shapes]
    return outs if len(outs) > 1 else outs[0]
