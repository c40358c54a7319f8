"""Data-parallel training: the sharding and the random windows in one process (hypothesis),
then real two-rank jobs under mpiexec (one thread per rank): equal to one process at the
doubled batch, exact resume, and failures that end the job instead of hanging it."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scratchnet
from scratchnet import config, data_adapter, layers
from scratchnet.data_adapter import shard_bounds
from scratchnet.functions.dropout import seed_from
from scratchnet.kernels import numba_cpu, numpy_ref

from conftest import require_mnist

JOB = Path(__file__).parent / "mpi" / "fit_job.py"


# ----- in one process ----------------------------------------------------------------------------
@given(st.integers(0, 300), st.integers(1, 8))
def test_shards_tile_the_global_batch_in_rank_order(count, ranks):
    bounds = [shard_bounds(count, rank, ranks) for rank in range(ranks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [high - low for low, high in bounds]
    assert max(sizes) - min(sizes) <= 1
    assert count == 0 or sizes[-1] >= 1      # the last rank is never empty


@given(st.integers(1, 90), st.integers(1, 9), st.integers(1, 4), st.booleans())
def test_sharded_array_batches_are_the_single_process_batches(samples, batch, ranks, shuffle):
    x = np.arange(samples, dtype=np.float32)[:, None]
    y = np.arange(samples)
    config.set_random_seed(3)
    single = [b[1] for b in data_adapter.ArrayBatches(x, y, batch * ranks, shuffle, np.float32)]
    shares = []
    for rank in range(ranks):
        config.set_random_seed(3)
        batches = data_adapter.ArrayBatches(x, y, batch, shuffle, np.float32, shard=(rank, ranks))
        assert batches.steps == len(single)
        windows = []
        shares.append([])
        for _, yb, _ in batches:
            shares[-1].append(yb)
            windows.append(batches.window)
        for (offset, total), whole in zip(windows, single):
            assert total == len(whole) and 0 <= offset <= total
    for step, whole in enumerate(single):
        np.testing.assert_array_equal(np.concatenate([share[step] for share in shares]), whole)


@given(st.integers(1, 40), st.integers(1, 5), st.integers(1, 3), st.booleans())
def test_sharded_image_iterators_give_the_single_process_batches_and_transforms(samples, batch, ranks, shuffle):
    from scratchnet.preprocessing.image import ImageDataGenerator
    x = np.random.default_rng(1).random((samples, 6, 6, 1), dtype=np.float32) * 255
    generator = ImageDataGenerator(rotation_range=30, horizontal_flip=True)
    whole = generator.flow(x, np.arange(samples), batch_size=batch * ranks, shuffle=shuffle, seed=5)
    shards = [generator.flow(x, np.arange(samples), batch_size=batch, shuffle=shuffle, seed=5).shard(rank, ranks)
              for rank in range(ranks)]
    assert all(len(shard) == len(whole) for shard in shards)
    for _ in range(2 * len(whole)):             # two epochs
        xb, yb = next(whole)
        parts = [next(shard) for shard in shards]
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), yb)
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), xb)


@pytest.mark.parametrize("kernels", [numpy_ref, numba_cpu], ids=["numpy", "numba"])
@given(st.integers(1, 6), st.integers(1, 50), st.integers(0, 2**64 - 1), st.floats(0.05, 0.9))
def test_a_shifted_dropout_seed_draws_the_rest_of_the_whole_mask(kernels, samples, per_sample, seed, rate):
    whole = kernels.dropout_mask((samples + 3, per_sample), np.float32, rate, seed)
    for first in range(samples + 3):
        part = kernels.dropout_mask((samples + 3 - first, per_sample), np.float32, rate,
                                    seed_from(seed, first * per_sample))
        np.testing.assert_array_equal(part, whole[first:])


@pytest.mark.parametrize("layer", [lambda: layers.Dropout(0.5), lambda: layers.RandomFlip(),
                                   lambda: layers.RandomRotation(0.2), lambda: layers.RandomZoom(0.3),
                                   lambda: layers.RandomTranslation(0.2, 0.1), lambda: layers.RandomContrast(0.4)],
                         ids=["dropout", "flip", "rotation", "zoom", "translation", "contrast"])
def test_a_share_of_a_global_batch_gets_the_whole_batch_draws(layer):
    x = np.random.default_rng(2).random((7, 9, 9, 2), dtype=np.float32)
    made = layer()
    config.set_random_seed(11)
    whole = np.asarray(made(x, training=True))
    for low, high in ((0, 3), (3, 7), (2, 3)):
        config.set_random_seed(11)
        with config.batch_window(low, len(x)):
            part = np.asarray(made(x[low:high], training=True))
        np.testing.assert_allclose(part, whole[low:high], rtol=0, atol=1e-6)
    assert config.sample_window() is None


def test_the_loss_divides_by_the_global_batch_when_told():
    loss = scratchnet.losses.SparseCategoricalCrossentropy()
    p = np.random.default_rng(0).dirichlet(np.ones(4), 6).astype(np.float64)
    y = loss.prepare_targets(np.array([0, 1, 2, 3, 0, 1]), p.shape, np.float64)
    mean, grad = loss.value_and_grad(y, p)
    part_mean, part_grad = loss.value_and_grad(y[:2], p[:2], batch_size=6)
    rest_mean, rest_grad = loss.value_and_grad(y[2:], p[2:], batch_size=6)
    assert part_mean + rest_mean == pytest.approx(mean, rel=1e-12)
    np.testing.assert_allclose(np.concatenate([part_grad, rest_grad]), grad, rtol=1e-12)


# ----- jobs of two ranks -------------------------------------------------------------------------
def mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'scratchnet[distributed]')")
    found = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if found is None:
        pytest.skip("no mpiexec (pip install 'scratchnet[distributed]' brings MPICH's)")
    return found


def one_thread_each(**extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def run(args, ranks=None, timeout=300, **env):
    command = [mpiexec(), "-n", str(ranks)] if ranks else []
    started = time.monotonic()
    done = subprocess.run(command + [sys.executable] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=one_thread_each(**env))
    done.seconds = time.monotonic() - started
    return done


def saved(path):
    with np.load(path) as f:
        history = json.loads(str(f["history"]))
        return [f[f"arr_{k}"] for k in range(len(f.files) - 1)], history


def relative_difference(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


@pytest.mark.parametrize("model, samples, options, tolerance", [
    ("mnist", 4 * 64, ["--optimizer", "sgd", "--epochs", "1"], 1e-6),
    ("mnist", 4 * 64, ["--float64"], 1e-12),
    ("dropout", 3 * 64 + 1, ["--float64"], 1e-12),
    ("dropout", 3 * 64 + 1, ["--float64", "--seeded", "--evaluate-in-callback"], 1e-12),
    ("segment", 2 * 64, ["--float64", "--epochs", "1"], 1e-12)],
    ids=["mnist-model-float32-sgd", "mnist-model-float64-adam", "dropout-augmentation-and-an-empty-share",
         "seeded-random-layers-and-evaluate-in-a-callback", "segmenter-per-pixel-labels-and-mean-iou"])
def test_two_ranks_train_as_one_process_at_the_doubled_batch(tmp_path, model, samples, options, tolerance):
    # float32: within the allreduce's rounding (SGD: Adam's first steps turn a gradient that
    # cancels to about zero into a full step of either sign, so float32 rounding differences
    # in such a gradient become differences of 2 * lr); float64 shows the steps are the same
    # computation, Adam included. 3 * 64 + 1 samples: the last global batch holds one
    # sample, so rank 0's share of it is empty. The layers' own generators (given seeds) and an
    # evaluate called from a callback in the middle of fit must not change that.
    one = run([JOB, tmp_path / "one.npz", model, 64, samples] + options)
    assert one.returncode == 0, one.stderr
    two = run([JOB, tmp_path / "two.npz", model, 32, samples, "--distributed"] + options, ranks=2)
    assert two.returncode == 0, two.stderr
    (weights_one, history_one), (weights_two, history_two) = saved(tmp_path / "one.npz"), saved(tmp_path / "two.npz")
    assert weights_one[0].dtype == (np.float64 if "--float64" in options else np.float32)
    worst = max(relative_difference(a, b) for a, b in zip(weights_one, weights_two))
    assert worst < tolerance, f"weights differ by {worst:.2e} of their largest value"
    assert history_one.keys() == history_two.keys()
    for key in history_one:
        np.testing.assert_allclose(history_two[key], history_one[key], rtol=max(tolerance, 1e-6), err_msg=key)


def test_ranks_that_run_different_jobs_stop_at_the_start_and_say_why(tmp_path):
    other_model = run([JOB, tmp_path / "x.npz", "wider", 32, 128, "--distributed"], ranks=2)
    assert other_model.returncode != 0
    assert "rank 1 has model architecture" in other_model.stderr
    other_data = run([JOB, tmp_path / "y.npz", "mnist", 32, 256, "--distributed", "--fault", "fewer"], ranks=2)
    assert other_data.returncode != 0
    assert "rank 1 has steps per epoch 3 where rank 0 has 4" in other_data.stderr
    assert "rank 1 has training samples 192 where rank 0 has 256" in other_data.stderr


@pytest.mark.parametrize("fault, said", [("kill", ""), ("raise", "rank 1 broke on purpose"),
                                         ("hang", "waited 10 s for the other ranks")])
def test_a_rank_that_fails_ends_the_whole_job(tmp_path, fault, said):
    done = run([JOB, tmp_path / "x.npz", "mnist", 32, 512, "--distributed", "--fault", fault, "--epochs", "50"],
               ranks=2, timeout=240, SCRATCHNET_DISTRIBUTED_TIMEOUT="10")
    assert done.returncode != 0
    assert said in done.stderr
    assert done.seconds < 120, f"the job took {done.seconds:.0f} s to end"
    assert not (tmp_path / "x.npz").exists()


def test_a_distributed_run_resumes_exactly(tmp_path):
    data = require_mnist()
    common = ["-m", "scratchnet.train", "mnist", "--distributed", "--data", data, "--limit", 512, "--seed", 5]
    straight = run(common + ["--epochs", 2, "--out", tmp_path / "straight"], ranks=2)
    assert straight.returncode == 0, straight.stderr
    first = run(common + ["--epochs", 1, "--out", tmp_path / "resumed"], ranks=2)
    assert first.returncode == 0, first.stderr
    alone = run(["-m", "scratchnet.train", "mnist", "--out", tmp_path / "resumed", "--resume", "--epochs", 2])
    assert alone.returncode == 2
    assert alone.stderr.strip() == ("error: this run trained on 2 rank(s) (global batch 2 x 32), and this job has 1; "
                                    "resume it with: mpiexec -n 2 python -m scratchnet.train mnist --distributed "
                                    "--resume")
    second = run(["-m", "scratchnet.train", "mnist", "--distributed", "--out", tmp_path / "resumed", "--resume",
                  "--epochs", 2], ranks=2)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("Resuming") == 1          # rank 0 alone prints
    a = scratchnet.load_model(tmp_path / "straight" / "model.npz").get_weights()
    b = scratchnet.load_model(tmp_path / "resumed" / "model.npz").get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == sorted(
        p.name for p in (tmp_path / "straight").iterdir())


@pytest.mark.parametrize("nccl", [True, False], ids=["nccl", "cupy-without-nccl"])
def test_on_the_gpu_backend_the_gradients_are_summed_on_the_device_by_nccl(tmp_path, nccl):
    """Strict device arrays and a recording NCCL under the CUDA simulator (tests/mpi/gpu_job.py):
    the same job as on the CPU backend, one NCCL AllReduce per step over every gradient and
    the two numbers beside them, on CuPy's current stream, and no gradient copied to the
    host. Without NCCL, the same job with the flat buffer through the host, said in a warning."""
    job = Path(__file__).parent / "mpi" / "gpu_job.py"
    runs = {}
    for backend in ("gpu", "cpu"):
        done = run([job, tmp_path / f"{backend}.npz", backend] + ([] if nccl else ["--no-nccl"]), ranks=2,
                   NUMBA_ENABLE_CUDASIM="1")
        assert done.returncode == 0, done.stderr
        assert ("the gradient sums go through the host" in done.stderr) == (backend == "gpu" and not nccl)
        with np.load(tmp_path / f"{backend}.npz") as f:
            runs[backend] = {key: f[key] for key in f.files}
    gpu, cpu = runs["gpu"], runs["cpu"]
    assert bool(gpu["on_device"]) and not bool(cpu["on_device"])
    weights = [key for key in gpu if key.startswith("arr_")]
    for key in weights:
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=1e-5, atol=1e-7)
    history_gpu, history_cpu = json.loads(str(gpu["history"])), json.loads(str(cpu["history"]))
    for key in history_cpu:
        np.testing.assert_allclose(history_gpu[key], history_cpu[key], rtol=1e-5, err_msg=key)
    calls = json.loads(str(gpu["calls"]))
    size = sum(gpu[key].size for key in weights) + 2       # every gradient, the loss and the NaN flag
    assert calls == ([[size, 7, 0]] * 4 if nccl else [])   # 2 epochs of 2 steps; float32; the null stream
    assert json.loads(str(cpu["calls"])) == []
    # per step, after the batch is in: in, the two numbers; out, the loss and those two numbers
    # summed (without NCCL, the whole buffer out and back in as well)
    expected = {"to_host": 2, "to_device": 1} if nccl else {"to_host": 3, "to_device": 2}
    assert json.loads(str(gpu["transfers"])) == [expected] * 4


def photo_folders(root, per_class=(21, 5)):
    """train/ and validation/ folders of small random JPEG photos of two classes."""
    from PIL import Image
    rng = np.random.default_rng(4)
    for split, count in zip(("train", "validation"), per_class):
        for label, name in enumerate(("cats", "dogs")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                pixels = rng.integers(0, 256, (60, 52, 3)).astype(np.uint8)
                pixels[..., label] //= 3          # something to learn
                Image.fromarray(pixels).save(folder / f"{name}.{k}.jpg")
    return root


def test_catsdogs_on_two_ranks_is_the_single_process_run_at_the_doubled_batch(tmp_path):
    # 42 photos: global batches of 16, 16 and 10; each rank decodes only its share
    data = photo_folders(tmp_path / "photos")
    common = ["-m", "scratchnet.train", "catsdogs", "--data", data, "--image-size", 48, "--augment", "--seed", 2,
              "--epochs", 2, "--workers", 1]
    one = run(common + ["--batch-size", 16, "--out", tmp_path / "one"])
    assert one.returncode == 0, one.stderr
    two = run(common + ["--batch-size", 8, "--out", tmp_path / "two", "--distributed"], ranks=2)
    assert two.returncode == 0, two.stderr
    histories = [json.loads((tmp_path / name / "history.json").read_text()) for name in ("one", "two")]
    for key in histories[0]["history"]:
        np.testing.assert_allclose(histories[1]["history"][key], histories[0]["history"][key], rtol=1e-4,
                                   err_msg=key)
    assert histories[1]["accuracy"] == histories[0]["accuracy"]
    assert histories[1]["settings"]["ranks"] == 2 and histories[0]["settings"]["ranks"] == 1


def test_the_api_for_training_loops_of_ones_own(tmp_path):
    done = run([Path(__file__).parent / "mpi" / "api_job.py", tmp_path / "found.json"], ranks=2)
    assert done.returncode == 0, done.stderr
    found = json.loads((tmp_path / "found.json").read_text())
    assert found == {"rank": 0, "size": 2, "local_rank": 0, "same_init": True, "sgd_step": [-1.5] * 3,
                     "train_on_batch_alike": True, "counts": [3, 4], "broadcast": {"from": 1, "pi": 3.25}}


def test_a_command_line_error_at_the_start_is_said_once_by_rank_0(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    done = run(["-m", "scratchnet.train", "mnist", "--distributed", "--out", tmp_path / "taken"], ranks=2)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: --out {tmp_path / 'taken'} is not empty; choose a new or empty folder "
                                   f"(nothing in it was changed)")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_image_iterators_shard_only_with_a_seed():
    from scratchnet.preprocessing.image import ImageDataGenerator
    x = np.zeros((10, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"every rank must shuffle and augment alike, so give this iterator a seed"):
        ImageDataGenerator().flow(x, np.arange(10), batch_size=2).shard(0, 2)
    ImageDataGenerator().flow(x, np.arange(10), batch_size=2, shuffle=False).shard(0, 2)   # no draws: no seed needed
    ImageDataGenerator().flow(x, np.arange(10), batch_size=2, seed=1).shard(1, 2)


def test_horovods_callbacks_are_named_with_what_does_their_work():
    from scratchnet import distributed
    with pytest.raises(AttributeError, match=r"no distributed.BroadcastGlobalVariablesCallback; broadcast_model"):
        distributed.BroadcastGlobalVariablesCallback
    with pytest.raises(AttributeError, match=r"no distributed.callbacks; fit itself \(with a DistributedOptimizer"):
        distributed.callbacks
    with pytest.raises(AttributeError, match=r"no distributed.DistributedOptimiser; DistributedOptimizer is the"):
        distributed.DistributedOptimiser
