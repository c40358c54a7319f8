"""scratchnet.utils.PyDataset (and its old name Sequence) through fit / evaluate / predict,
against real Keras 3: the same steps per epoch, the same on_epoch_begin / on_epoch_end calls,
and from the same weights with SGD (no shuffling) the same losses and weights after every
epoch, so the same batches in the same order; workers=2 reads ahead in threads and changes
none of it; a batch of the wrong structure is refused naming its index."""
import os
import warnings

import numpy as np
import pytest

from scratchnet import callbacks, layers, models, utils
from scratchnet.training import py_dataset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BATCH = 4


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def recording(base, n, log, name, endless=False, bad=None, **kwargs):
    """A PyDataset of ``base`` (Keras's or ours) with ``n`` batches of (x, y), writing down
    every __getitem__ index and epoch hook in ``log``; ``endless``: num_batches None."""
    class Recording(base):
        def __init__(self):
            super().__init__(**kwargs)
            rng = np.random.default_rng(len(name) + (n or 0))
            self.x = rng.standard_normal((64 * BATCH, 3)).astype(np.float32)
            self.y = rng.standard_normal((64 * BATCH, 1)).astype(np.float32)

        def __getitem__(self, index):
            log.append((name, "get", int(index)))
            if bad is not None and index == bad[0]:
                return bad[1]
            part = slice(index * BATCH % len(self.x), index * BATCH % len(self.x) + BATCH)
            return self.x[part], self.y[part]

        def on_epoch_begin(self):
            log.append((name, "begin"))

        def on_epoch_end(self):
            log.append((name, "end"))
    if endless:
        Recording.num_batches = property(lambda self: None)
    else:
        Recording.__len__ = lambda self: n
    return Recording()


def counter(base):
    class Counter(base):
        def __init__(self):
            super().__init__()
            self.steps, self.weights = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            self.steps[-1] += 1

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append([np.array(w) for w in self.model.get_weights()])
    return Counter()


def pair(keras):
    """Keras's Dense model and ours with the same starting weights (the same on every call),
    compiled with SGD and MSE."""
    keras.utils.set_random_seed(0)
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    ours = models.Sequential([layers.Input((3,)), layers.Dense(1)])
    ours.set_weights(theirs.get_weights())
    for model in (theirs, ours):
        model.compile(optimizer="sgd", loss="mse")
    return theirs, ours


def hooks(log, name):
    return [entry[1] for entry in log if entry[0] == name and entry[1] != "get"]


def indices_per_epoch(log, name):
    """Our reads of ``name`` between each on_epoch_begin and on_epoch_end."""
    epochs, current = [], None
    for entry in log:
        if entry[0] != name:
            continue
        if entry[1] == "begin":
            current = []
        elif entry[1] == "end" and current is not None:
            epochs.append(current)
            current = None
        elif entry[1] == "get":
            current.append(entry[2])
    return epochs


def fit_both(keras, n, epochs, steps_per_epoch=None, validation=None, validation_steps=None, workers=1,
             endless=False):
    theirs, ours = pair(keras)
    results = []
    for model, base, cb_base in ((theirs, keras.utils.PyDataset, keras.callbacks.Callback),
                                 (ours, utils.PyDataset, callbacks.Callback)):
        log, count = [], counter(cb_base)
        train = recording(base, n, log, "train", endless=endless, workers=workers)
        val = None if validation is None else recording(base, validation, log, "val", workers=workers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = model.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=val,
                                validation_steps=validation_steps, shuffle=False, verbose=0, callbacks=[count])
        results.append((log, count, history.history))
    return results


def assert_same_training(keras_run, our_run):
    (klog, kcount, khist), (olog, ocount, ohist) = keras_run, our_run
    assert ocount.steps == kcount.steps
    for name in ("train", "val"):
        assert hooks(olog, name) == hooks(klog, name)
    assert set(ohist) == set(khist)
    for key in khist:
        np.testing.assert_allclose(ohist[key], khist[key], rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(ocount.weights, kcount.weights):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps_per_epoch, expected", [
    (None, [[0, 1, 2], [0, 1, 2], [0, 1, 2]]),
    (2, [[0, 1], [2], [0, 1]]),        # the pass carries on across epochs; it ends an epoch early
    (3, [[0, 1, 2]] * 3),
    (5, [[0, 1, 2]] * 3),              # more steps than batches: each epoch ends at the last batch
])
def test_fit_reads_the_batches_keras_reads_with_the_same_hooks_losses_and_weights(steps_per_epoch, expected):
    keras = real_keras()
    keras_run, our_run = fit_both(keras, 3, 3, steps_per_epoch, validation=2)
    assert_same_training(keras_run, our_run)
    assert indices_per_epoch(our_run[0], "train") == expected
    assert indices_per_epoch(our_run[0], "val") == [[0, 1]] * 3
    assert hooks(our_run[0], "train") == ["end"] + ["begin", "end"] * 3    # Keras's reset ends an epoch first


def test_validation_steps_start_each_validation_at_batch_zero_as_keras():
    keras = real_keras()
    keras_run, our_run = fit_both(keras, 2, 2, validation=3, validation_steps=2)
    assert_same_training(keras_run, our_run)
    assert indices_per_epoch(our_run[0], "val") == [[0, 1], [0, 1]]


def test_an_endless_dataset_continues_across_epochs_as_keras():
    keras = real_keras()
    keras_run, our_run = fit_both(keras, None, 3, steps_per_epoch=2, endless=True)
    assert_same_training(keras_run, our_run)
    assert indices_per_epoch(our_run[0], "train") == [[0, 1], [2, 3], [4, 5]]


@pytest.mark.parametrize("steps_per_epoch", [None, 2])
def test_two_workers_give_the_same_batches_in_the_same_order(steps_per_epoch):
    keras = real_keras()
    keras_run, one = fit_both(keras, 5, 2, steps_per_epoch, validation=2)
    _, two = fit_both(keras, 5, 2, steps_per_epoch, validation=2, workers=2)
    assert_same_training(keras_run, two)
    assert_same_training(one, two)
    assert [sorted(e) for e in indices_per_epoch(two[0], "train")] == indices_per_epoch(one[0], "train")


def test_evaluate_and_predict_match_keras():
    keras = real_keras()
    theirs, ours = pair(keras)
    got = []
    for model, base in ((theirs, keras.utils.PyDataset), (ours, utils.PyDataset)):
        log = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = model.evaluate(recording(base, 3, log, "e"), verbose=0, return_dict=True)
            part = model.evaluate(recording(base, 3, log, "s"), steps=2, verbose=0, return_dict=True)
            predicted = model.predict(recording(base, 3, log, "p"), verbose=0)
        got.append((whole["loss"], part["loss"], predicted, [hooks(log, n) for n in "esp"], log))
    (k_whole, k_part, k_pred, k_hooks, _), (o_whole, o_part, o_pred, o_hooks, olog) = got
    np.testing.assert_allclose([o_whole, o_part], [k_whole, k_part], rtol=1e-5)
    np.testing.assert_allclose(o_pred, k_pred, rtol=1e-5, atol=1e-6)
    assert o_pred.shape == (3 * BATCH, 1)
    assert o_hooks == k_hooks == [["end", "begin", "end"], ["end", "begin", "end"], ["begin", "end"]]
    assert indices_per_epoch(olog, "s") == [[0, 1]]


def test_keras_own_py_dataset_trains_a_scratchnet_model():
    keras = real_keras()
    log = []
    model = models.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(recording(keras.utils.PyDataset, 3, log, "k"), epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2
    assert indices_per_epoch(log, "k") == [[0, 1, 2], [0, 1, 2]]


def test_shuffle_reorders_the_batches_each_epoch_and_reads_each_once():
    log = []
    model = models.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(recording(utils.PyDataset, 8, log, "t"), epochs=4, verbose=0)      # shuffle=True by default
    epochs = indices_per_epoch(log, "t")
    assert all(sorted(e) == list(range(8)) for e in epochs)
    assert any(e != list(range(8)) for e in epochs)


def test_sequence_is_py_dataset_and_forgetting_super_init_warns():
    assert utils.Sequence is utils.PyDataset

    class Bare(utils.PyDataset):
        def __init__(self):
            pass
    with pytest.warns(UserWarning, match=r"super\(\).__init__"):
        assert Bare().workers == 1


def test_use_multiprocessing_reads_in_forked_processes_in_order_as_keras():
    """Keras reads in a process pool too: __getitem__ runs in other processes (so the
    parent's log records no reads), and the batches arrive in order."""
    class Where(utils.PyDataset):
        def __len__(self):
            return 7

        def __getitem__(self, index):
            return np.full((2, 3), index, np.float32), np.zeros((2, 1), np.float32), np.full(2, os.getpid())
    reader = py_dataset.PyDatasetBatches(Where(workers=2, use_multiprocessing=True, max_queue_size=2), None,
                                         "the data")
    for _ in range(2):
        batches = list(reader)
        assert [int(x[0, 0]) for x, _, _ in batches] == list(range(7))
        assert os.getpid() not in {int(pid[0]) for _, _, pid in batches}
    runs = []
    for kwargs in (dict(), dict(workers=2, use_multiprocessing=True)):
        log = []
        model = models.Sequential([layers.Input((3,)), layers.Dense(1, kernel_initializer="ones")])
        model.compile(optimizer="sgd", loss="mse")
        with pytest.warns(UserWarning, match=r"PyDataset of the training data ran out .* 3 batches, fewer than "
                                             r"steps_per_epoch=2"):
            history = model.fit(recording(utils.PyDataset, 3, log, "t", **kwargs), epochs=2, steps_per_epoch=2,
                                validation_data=recording(utils.PyDataset, 2, log, "v", **kwargs), shuffle=False,
                                verbose=0)
        runs.append((history.history, model.get_weights(), hooks(log, "t"), [e[2] for e in log if e[1] == "get"]))
    (h1, w1, t1, got1), (h2, w2, t2, got2) = runs
    assert h2 == h1 and t2 == t1 and all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert got1 and not got2         # the reads happened in the workers


@pytest.mark.parametrize("bad, message", [
    ((np.zeros((4, 3)),) * 4, r"__getitem__\(1\) must return .*got a 4-tuple"),
    ("not a batch", r"__getitem__\(1\) must return .*got str"),
    ((np.zeros((4, 5), np.float32), np.zeros((4, 1), np.float32)), r"PyDataset index 1.*shape \(4, 5\)"),
])
def test_a_wrong_batch_is_refused_naming_its_index(bad, message):
    model = models.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    for kwargs in (dict(), dict(workers=2), dict(workers=2, use_multiprocessing=True)):
        with pytest.raises(ValueError, match=message):
            model.fit(recording(utils.PyDataset, 3, [], "t", bad=(1, bad), **kwargs), shuffle=False, verbose=0)


def test_targets_or_weights_beside_a_py_dataset_are_refused():
    model = models.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="y is not accepted with a PyDataset"):
        model.fit(recording(utils.PyDataset, 3, [], "t"), np.zeros((12, 1)), verbose=0)


def test_two_workers_read_at_most_max_queue_size_ahead():
    import threading
    import time
    state = {"inflight": 0, "most": 0, "read": 0, "used": 0, "ahead": 0}
    lock = threading.Lock()

    class Slow(utils.PyDataset):
        def __len__(self):
            return 12

        def __getitem__(self, index):
            with lock:
                state["inflight"] += 1
                state["most"] = max(state["most"], state["inflight"])
                state["read"] += 1
                state["ahead"] = max(state["ahead"], state["read"] - state["used"])
            time.sleep(0.01)
            with lock:
                state["inflight"] -= 1
            return np.full((2, 3), index, np.float32), np.zeros((2, 1), np.float32)
    reader = py_dataset.PyDatasetBatches(Slow(workers=2, max_queue_size=3), None, "the data")
    seen = []
    for x, _ in reader:
        seen.append(int(x[0, 0]))
        state["used"] += 1
        time.sleep(0.01)
    assert seen == list(range(12))
    assert state["most"] == 2 and state["ahead"] <= 3
