import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import scratchnet
from scratchnet import config

# Our function-scoped fixtures (backend choice, chunk size) hold constants, so sharing them
# between the examples of one @given test is what we want.
_common = dict(deadline=None, max_examples=30, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("default", **_common)
settings.register_profile("ci", derandomize=True, **_common)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# The GPU kernels' tests run under the CUDA simulator, which must be switched on before
# Numba is imported: tests/test_gpu.py runs them in a process of their own.
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["gpu_sim"]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_DIR = SHARED / "mnist"


def require_mnist():
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST files not found in {MNIST_DIR} (../shared is only on the project's machines)")
    return MNIST_DIR


@pytest.fixture
def float64():
    """Layers created inside the test default to float64 (for gradient checks)."""
    config.set_floatx("float64")
    yield
    config.set_floatx("float32")


@pytest.fixture(autouse=True)
def _reset_state():
    scratchnet.set_random_seed(1234)
    yield
    config.set_floatx("float32")
    scratchnet.set_backend("cpu")


@pytest.fixture(params=["numpy", "cpu"])
def backend_name(request):
    """Run the test once on the NumPy reference and once on the Numba kernels."""
    scratchnet.set_backend(request.param)
    return request.param


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.fixture
def web_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
