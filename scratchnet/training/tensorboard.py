"""keras.callbacks.TensorBoard: event files that the ``tensorboard`` program reads, written by
tensorboardX (``pip install 'scratchnet[tensorboard]'``); no TensorFlow needed.

Two runs, ``log_dir/train`` and ``log_dir/validation``, with Keras 3's tag names:

- ``epoch_<name>`` at step = the epoch (from 0): every log of the epoch, ``val_`` ones in
  validation without their prefix, and ``epoch_learning_rate`` in train;
- ``batch_<name>`` in train every ``update_freq`` training batches, at step = the batch's number
  counted from 1 over the whole ``fit``;
- ``evaluation_<name>_vs_iterations`` in validation after each evaluation, at step = the
  optimizer's iterations;
- ``<layer>/<weight>/histogram`` (after ``<model>/`` for a Sequential, as in Keras) every
  ``histogram_freq`` epochs, and with ``write_images`` ``<layer>/<weight>/image``;
- ``keras``: the model's Keras config, which TensorBoard's graph dashboard draws.
"""
import itertools
import os
import time
import warnings

import numpy as np

from ..arrays import to_host
from .callback_base import Callback

HISTOGRAM_BUCKETS = 30        # tf.summary.histogram's default
IMAGE_MIN_SIDE = 32           # a weight drawn smaller than this is enlarged (pixels repeated)


def _event_writing():
    """tensorboardX's file writer, Event message and summary module, or an ImportError that
    says how to get them. Its synchronous writer: the queued one's flush() leaves events
    still in its queue, and it names files by the second alone."""
    try:
        from tensorboardX import summary
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
    except ImportError as error:
        raise ImportError("callbacks.TensorBoard writes its event files with tensorboardX, which is not "
                          "installed: pip install 'scratchnet[tensorboard]' (or pip install tensorboardX)") from error
    return EventsWriter, Event, summary


_FILE_NUMBERS = itertools.count()      # with the process id, a new file's name is its own


class EventFiles:
    """The event files of a log folder's runs (sub-folders such as 'train'), each opened on
    first use under a name of its own (time, host, process, number), written as it goes."""

    def __init__(self, log_dir):
        self.log_dir = os.fspath(log_dir)
        self._events_writer, self._event, self.summaries = _event_writing()
        self._open = {}

    def write(self, run, summary, step):
        """Append a tensorboardX ``Summary`` (see ``summaries``) to ``run`` at ``step``."""
        if run not in self._open:
            folder = os.path.join(self.log_dir, run)
            os.makedirs(folder, exist_ok=True)
            self._open[run] = self._events_writer(os.path.join(folder, "events"),
                                                  f".{os.getpid()}.{next(_FILE_NUMBERS)}")
        self._open[run].write_event(self._event(summary=summary, step=int(step), wall_time=time.time()))

    def scalar(self, run, tag, value, step):
        self.write(run, self.summaries.scalar(tag, float(value)), step)

    def flush(self):
        for writer in self._open.values():
            writer.flush()

    def close(self):
        for writer in self._open.values():
            writer.close()
        self._open = {}


class TensorBoard(Callback):
    """Logs for TensorBoard, as keras.callbacks.TensorBoard (see the module's docstring for what
    is written where); run ``tensorboard --logdir <log_dir>`` to watch them.

    ``profile_batch`` and ``embeddings_freq`` are checked as Keras checks them, but scratchnet
    writes no profiler trace (``benchmarks/profile_layers.py`` times every layer) and has no
    Embedding layer to project: a non-zero value warns and is otherwise ignored."""

    writes_files = True     # in data-parallel training, on rank 0 only

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        self.log_dir = os.fspath(log_dir)
        self._files = EventFiles(self.log_dir)
        self.histogram_freq = _frequency(histogram_freq, "histogram_freq")
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = _update_freq(update_freq)
        self.profile_batch = _profile_range(profile_batch)
        self.embeddings_freq = _frequency(embeddings_freq, "embeddings_freq")
        self.embeddings_metadata = embeddings_metadata
        if self.profile_batch != (0, 0):
            warnings.warn(f"TensorBoard: scratchnet writes no profiler trace, profile_batch={profile_batch!r} is "
                          f"ignored (benchmarks/profile_layers.py times every layer)", stacklevel=2)
        if self.embeddings_freq:
            warnings.warn(f"TensorBoard: scratchnet has no Embedding layer to project, embeddings_freq="
                          f"{embeddings_freq!r} is ignored", stacklevel=2)
        self._graph_pending = False
        self._global_train_batch = 0
        self._batch_started = self._epoch_started = 0.0
        self._epoch_first_iteration = 0

    # ----- Keras's hooks -----------------------------------------------------------------
    def set_model(self, model):
        self._files.close()           # a new fit or evaluate starts new event files, as in Keras
        self.model = model
        self._graph_pending = self.write_graph

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0

    def on_train_end(self, logs=None):
        self._files.close()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        self._batch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._graph_pending:     # the model is built by now, even one built from its first batch
            self._graph_pending = False
            self._write_graph()
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._batch_started
            self._files.scalar("train", "batch_steps_per_second", 1.0 / seconds, step)
        for name, value in _scalars(logs):
            self._files.scalar("train", "batch_" + name, value, step)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()
        self._epoch_first_iteration = self._iterations() or 0

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(_scalars(logs))
        train = {name: value for name, value in logs.items() if not name.startswith("val_")}
        rate = self._learning_rate()
        if rate is not None:
            train["learning_rate"] = rate
        if self.write_steps_per_second:
            steps = (self._iterations() or 0) - self._epoch_first_iteration
            train["steps_per_second"] = steps / (time.perf_counter() - self._epoch_started)
        for name, value in train.items():
            self._files.scalar("train", "epoch_" + name, value, epoch)
        for name, value in logs.items():
            if name.startswith("val_"):
                self._files.scalar("validation", "epoch_" + name[len("val_"):], value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)
        self._files.flush()       # each epoch is on disk when it ends

    def on_test_end(self, logs=None):
        step = self._iterations()
        if step is None:
            return
        for name, value in _scalars(logs):
            self._files.scalar("validation", f"evaluation_{name}_vs_iterations", value, step)
        self._files.flush()

    # ----- what is read from the model ---------------------------------------------------
    def _iterations(self):
        optimizer = getattr(self.model, "optimizer", None)
        return getattr(optimizer, "iterations", None)

    def _learning_rate(self):
        optimizer = getattr(self.model, "optimizer", None)
        return None if optimizer is None else float(optimizer.learning_rate)

    def _write_weights(self, epoch):
        for path, values in weight_paths(self.model):
            values = to_host(values)
            summaries = self._files.summaries
            finite = values[np.isfinite(values)]
            if finite.size:
                self._files.write("train", summaries.histogram(path + "/histogram", finite, HISTOGRAM_BUCKETS), epoch)
            image = weight_image(values) if self.write_images else None
            if image is not None:
                self._files.write("train", summaries.image(path + "/image", image, dataformats="HWC"), epoch)

    def _write_graph(self):
        """The model's Keras config under the tag 'keras', as Keras writes it for TensorBoard's
        graph dashboard (its 'graph_keras_model' plugin)."""
        try:
            config = self.model.to_json()
        except Exception as error:      # as Keras: a model that cannot be described is still trained
            warnings.warn(f"TensorBoard: the model's config could not be written, so no graph: {error}")
            return
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="graph_keras_model",
                                                                          content=b"1"))
        tensor = TensorProto(dtype="DT_STRING", string_val=[config.encode()])
        summary = Summary(value=[Summary.Value(tag="keras", metadata=metadata, tensor=tensor)])
        self._files.write("train", summary, 0)


def weight_paths(model, prefix=""):
    """(Keras 3's path, array) of every weight: 'layer/weight', after the model's name where the
    model is a Sequential (Keras builds a Sequential's layers inside its name scope, a
    functional model's before it exists); a nested model's layers by the same rule."""
    if type(model).__name__ == "Sequential":
        prefix += model.name + "/"
    seen = set()
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if hasattr(layer, "layers"):
            yield from weight_paths(layer, prefix)
        else:
            for name in layer.params:
                yield f"{prefix}{layer.name}/{name}", layer.params[name]


def _scalars(logs):
    """(name, float) of every log that is one number (a custom train_step may log arrays)."""
    for name, value in (logs or {}).items():
        value = np.asarray(to_host(value))
        if value.size == 1 and np.issubdtype(value.dtype, np.number):
            yield name, float(value.reshape(()))


def weight_image(weights):
    """A weight drawn as Keras draws it, as one picture (height, width, channels) of floats in
    [0, 1] scaled from the weight's own minimum and maximum, or None where Keras draws nothing:
    a bias as one row, a dense kernel with its longer side across, each filter of a
    one-channel convolution in grey and, beyond Keras, each filter of a first convolution on
    RGB(A) images in colour. Several filters sit side by side, eight to a row, one pixel
    apart; small ones are enlarged to at least IMAGE_MIN_SIDE pixels."""
    w = np.squeeze(np.asarray(weights, dtype=np.float64))
    if not np.all(np.isfinite(w)) or w.size == 0:
        return None
    if w.ndim == 1:
        tiles = w.reshape(1, 1, -1, 1)
    elif w.ndim == 2:
        tiles = (w.T if w.shape[0] > w.shape[1] else w)[None, :, :, None]
    elif w.ndim == 3:                                   # (height, width, filters)
        tiles = np.transpose(w, (2, 0, 1))[..., None]
    elif w.ndim == 4 and w.shape[2] in (3, 4):          # (height, width, colours, filters)
        tiles = np.transpose(w, (3, 0, 1, 2))
    else:
        return None
    low, high = tiles.min(), tiles.max()
    tiles = (tiles - low) / (high - low) if high > low else np.full_like(tiles, 0.5)
    grow = -(-IMAGE_MIN_SIDE // max(tiles.shape[1:3]))
    tiles = tiles.repeat(grow, axis=1).repeat(grow, axis=2)
    count, height, width, channels = tiles.shape
    columns = min(count, 8)
    rows = -(-count // columns)
    gap = 1 if count > 1 else 0
    picture = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap, channels))
    for i, tile in enumerate(tiles):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        picture[top:top + height, left:left + width] = tile
    return picture


def _frequency(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"TensorBoard's {name} must be a whole number of epochs >= 0 (0 turns it off); "
                         f"got {value!r}")
    return int(value)


def _update_freq(value):
    if value == "batch":
        return 1
    if value == "epoch":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"TensorBoard's update_freq must be 'epoch', 'batch' or a whole number of batches >= 1; "
                         f"got {value!r}")
    return int(value)


def _profile_range(value):
    """(first, last) batch to profile, checked as Keras checks it; (0, 0) is off."""
    expected = ("TensorBoard's profile_batch must be a whole number >= 0 or a pair of them (first, last) with "
                "first <= last, or the same as a string 'first,last'")
    parts = value.split(",") if isinstance(value, str) else value
    if isinstance(parts, (int, np.integer)) and not isinstance(parts, bool):
        parts = (parts, parts)
    try:
        first, last = (int(part) for part in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{expected}; got {value!r}") from None
    if first < 0 or last < first:
        raise ValueError(f"{expected}; got {value!r}")
    return first, last
