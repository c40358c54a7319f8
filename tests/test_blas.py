"""scratchnet/kernels/blas.py: the CPU kernels' product is a @ b, on MKL when it is installed and
chosen, on NumPy's BLAS otherwise; which one runs is the user's to choose."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnet.kernels import blas, numba_cpu

seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


def mkl_or_skip():
    if blas.name() != "mkl":
        pytest.skip("MKL is not in use here (the mkl package is not installed, SCRATCHNET_BLAS=numpy, "
                    "or the CPU is not an Intel one): pip install 'scratchnet[mkl]'")


def laid_out(rng, rows, cols, dtype, transposed, padded):
    """A (rows, cols) operand: row-major, or the transpose of a row-major (cols, rows) one,
    with a padded leading dimension (a slice of a wider array) if asked."""
    shape = (cols, rows) if transposed else (rows, cols)
    wide = rng.standard_normal((shape[0], shape[1] + (3 if padded else 0))).astype(dtype)
    view = wide[:, :shape[1]]
    return view.T if transposed else view


@settings(max_examples=60, deadline=None)
@given(m=st.integers(2, 90), k=st.integers(2, 90), n=st.integers(2, 90), dtype=dtypes, ta=st.booleans(),
       tb=st.booleans(), padded=st.booleans(), given_out=st.booleans(), seed=seeds)
def test_mkl_product_equals_numpys(monkeypatch, m, k, n, dtype, ta, tb, padded, given_out, seed):
    mkl_or_skip()
    monkeypatch.setattr(blas, "MIN_MKL_WORK", 0)       # small shapes too, so every layout is tried
    rng = np.random.default_rng(seed)
    a, b = laid_out(rng, m, k, dtype, ta, padded), laid_out(rng, k, n, dtype, tb, padded)
    out = np.full((m, n + 2), np.nan, dtype)[:, :n] if given_out else None
    result = blas.matmul(a, b, out=out)
    if given_out:
        assert result is out and np.isnan(out.base[:, n:]).all()     # nothing written past the view
    assert result.dtype == dtype and result.shape == (m, n)
    tolerance = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(result, a.astype(np.float64) @ b.astype(np.float64), **tolerance)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 300), k=st.integers(2, 300), n=st.integers(2, 130), dtype=dtypes,
       offset=st.integers(0, 15), seed=seeds)
def test_mkl_bits_do_not_depend_on_where_the_operands_sit(monkeypatch, m, k, n, dtype, offset, seed):
    # the lanes and the one-thread path hand MKL the same operands at other addresses: 1 and 2
    # threads give the same bits only if MKL's do not depend on alignment
    mkl_or_skip()
    monkeypatch.setattr(blas, "MIN_MKL_WORK", 0)
    rng = np.random.default_rng(seed)
    a, b, dy = (rng.standard_normal(shape).astype(dtype) for shape in ((m, k), (k, n), (m, n)))

    def moved(array):
        """The same values at another address (``offset`` elements past a 64-byte boundary)."""
        if not array.flags.c_contiguous:        # a transposed view: move what it views
            return moved(array.T).T
        size = np.dtype(dtype).itemsize
        raw = np.empty(array.nbytes + 64 + offset * size, np.uint8)
        start = (-raw.ctypes.data) % 64 + offset * size
        copy = raw[start:start + array.nbytes].view(dtype).reshape(array.shape)
        copy[...] = array
        return copy
    for x, y in ((a, b), (a.T, dy), (dy, b.T)):      # forward, kernel gradient, input gradient
        np.testing.assert_array_equal(blas.matmul(moved(x), moved(y)), blas.matmul(x, y))


@pytest.mark.parametrize("case", ["int", "mixed", "strided", "vector", "tiny", "overlap"])
def test_what_mkl_cannot_take_as_it_is_goes_to_numpy(case):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 48)).astype(np.float32), rng.standard_normal((48, 40)).astype(np.float32)
    out = None
    if case == "int":
        a, b = a.astype(np.int64), b.astype(np.int64)
    elif case == "mixed":
        b = b.astype(np.float64)
    elif case == "strided":
        a = rng.standard_normal((64, 96)).astype(np.float32)[:, ::2]
    elif case == "vector":
        b = b[:, :1]
    elif case == "tiny":
        a, b = a[:4, :4], b[:4, :4]
    else:
        out = np.zeros((64, 64), np.float32)
        a = out[:, :48]
        b = rng.standard_normal((48, 64)).astype(np.float32)
    expected = np.matmul(a, b)
    result = blas.matmul(a, b, out=out)
    np.testing.assert_array_equal(result, expected)     # NumPy's own product, bit for bit
    assert result.dtype == expected.dtype


def test_the_cpu_backends_products_run_on_the_chosen_library(monkeypatch):
    calls = []
    real = blas.matmul
    monkeypatch.setattr(blas, "matmul", lambda a, b, out=None: calls.append(a.shape) or real(a, b, out=out))
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((3, 3, 3, 4)).astype(np.float32)
    y, cache = numba_cpu.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0))
    numba_cpu.conv2d_backward(y, cache)
    numba_cpu.matmul(x.reshape(2, -1), np.ones((108, 5), np.float32))
    assert len(calls) == 4     # forward, dW, dX, dense


@pytest.mark.parametrize("setting, expected", [("numpy", "numpy"), (" NumPy ", "numpy")])
def test_scratchnet_blas_numpy_keeps_numpys(monkeypatch, setting, expected):
    monkeypatch.setattr(blas, "_mkl", None)
    monkeypatch.setenv("SCRATCHNET_BLAS", setting)
    assert blas.name() == expected


def test_a_bad_choice_or_a_missing_mkl_says_what_to_do(monkeypatch):
    monkeypatch.setattr(blas, "_mkl", None)
    monkeypatch.setenv("SCRATCHNET_BLAS", "openblas")
    with pytest.raises(ValueError, match=r"SCRATCHNET_BLAS must be 'mkl', 'numpy' or unset, got 'openblas'"):
        blas.name()
    monkeypatch.setenv("SCRATCHNET_BLAS", "mkl")
    monkeypatch.setattr(blas, "_mkl_files", lambda: [])
    with pytest.raises(ImportError, match=r"SCRATCHNET_BLAS=mkl, but the mkl package is not installed: "
                                          r"pip install 'scratchnet\[mkl\]'"):
        blas.name()
    monkeypatch.delenv("SCRATCHNET_BLAS")
    assert blas.name() == "numpy"          # unset, without the package: NumPy's, silently


def test_an_mkl_already_running_threaded_is_left_alone(monkeypatch):
    class ThreadedMKL:          # MKL started by another library with its OpenMP layer (0)
        def MKL_Set_Threading_Layer(self, layer):
            return 0
    monkeypatch.setattr(blas, "_mkl", None)
    monkeypatch.delenv("SCRATCHNET_BLAS", raising=False)
    monkeypatch.setattr(blas, "_mkl_files", lambda: ["libmkl_rt.so.2"])
    monkeypatch.setattr(blas, "_intel_cpu", lambda: True)
    monkeypatch.setattr(blas.ctypes, "CDLL", lambda path: ThreadedMKL())
    with pytest.warns(RuntimeWarning, match="NumPy's BLAS instead"):
        assert blas.name() == "numpy"
