"""The notebooks' exercises and their checkers. Each exercise is a function the learner
writes in a notebook cell tagged "exercise" (it starts as a stub that raises
NotImplementedError); the cell after it calls ``check(function)``, which runs the function on
fresh random float64 inputs and compares what it returns with the definition: finite
differences for every gradient (``scratchnet.gradcheck``), direct loops for forward passes.

The reference answers live in ``solutions/``; the test suite runs every notebook with them
filled in, and checks that each checker refuses a wrong answer."""
import numpy as np

from scratchnet import gradcheck

CHECKS = {}     # exercise name -> its checker


def check(function):
    """Check the learner's ``function`` (found by its name); prints what passed, raises
    AssertionError saying what is wrong, or NotImplementedError if it is still a stub."""
    name = function.__name__
    if name not in CHECKS:
        raise KeyError(f"no exercise is called {name!r}; the exercises are {sorted(CHECKS)}")
    CHECKS[name](function)
    print(f"{name}: correct")


def checker(function):
    CHECKS[function.__name__.removeprefix("check_")] = function
    return function


def _close(what, got, expected, tol=1e-7):
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: expected shape {expected.shape}, got {got.shape}"
    error = gradcheck.relative_error(got, expected, tiny=1e-12)
    assert error < tol, f"{what}: largest relative difference {error:.1e} from the expected values"


def _like_differences(what, analytic, f, x):
    """``analytic`` against central differences of the scalar f() in x (changed in place)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    assert analytic.shape == x.shape, f"{what}: expected shape {x.shape}, got {analytic.shape}"
    error = gradcheck.compare_with_differences(analytic, f, x, scale=abs(f()) + 1.0)
    assert error < gradcheck.TOLERANCE, \
        f"{what}: largest relative difference {error:.1e} from central differences (the bar is {gradcheck.TOLERANCE})"


def _rng():
    return np.random.default_rng(2026)


# ----- notebook 1: a dense layer and softmax cross-entropy ------------------------------------
def _mean_cross_entropy(z, y):
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


@checker
def check_softmax_cross_entropy(softmax_cross_entropy):
    rng = _rng()
    for n, k, scale in ((4, 3, 1.0), (7, 5, 3.0), (3, 4, 400.0)):   # the last: exp(z) would overflow unshifted
        z = rng.standard_normal((n, k)) * scale
        y = rng.integers(0, k, n)
        loss, dz = softmax_cross_entropy(z.copy(), y)
        _close(f"the loss for {n}x{k} logits of scale {scale:g}", loss, _mean_cross_entropy(z, y))
        if scale < 100:
            _like_differences(f"dL/dz for {n}x{k} logits", dz, lambda: _mean_cross_entropy(z, y), z)
        else:                                     # differences cannot resolve these: the formula instead
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            _close("dL/dz for logits of scale 400", dz, (p - np.eye(k)[y]) / n)


@checker
def check_dense_backward(dense_backward):
    rng = _rng()
    n, d, k = 5, 4, 3
    x, w, b = rng.standard_normal((n, d)), rng.standard_normal((d, k)), rng.standard_normal(k)
    r = rng.standard_normal((n, k))               # L = sum(r * (x W + b)), so dL/dz = r
    dw, db, dx = dense_backward(r.copy(), x.copy(), w.copy())
    loss = lambda: float((r * (x @ w + b)).sum())
    _like_differences("dW", dw, loss, w)
    _like_differences("db", db, loss, b)
    _like_differences("dx", dx, loss, x)


# ----- notebook 2: convolution as im2col + matrix multiply ------------------------------------
def _conv_by_loops(x, w, b, stride):
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.empty((n, ho, wo, f))
    for i in range(ho):
        for j in range(wo):
            window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(window, w, axes=3) + b
    return y


def _conv_cases():
    rng = _rng()
    for shape, kernel, stride in (((2, 5, 6, 3), (3, 3, 3, 4), 1), ((1, 7, 7, 2), (3, 2, 2, 3), 2),
                                  ((2, 4, 4, 1), (2, 2, 1, 2), 2)):
        yield rng.standard_normal(shape), rng.standard_normal(kernel), rng.standard_normal(kernel[-1]), stride


@checker
def check_conv_forward(conv_forward):
    for x, w, b, stride in _conv_cases():
        _close(f"conv_forward of x {x.shape}, w {w.shape}, stride {stride}", conv_forward(x.copy(), w.copy(),
                                                                                          b.copy(), stride),
               _conv_by_loops(x, w, b, stride))


@checker
def check_conv_backward(conv_backward):
    for x, w, b, stride in _conv_cases():
        r = _rng().standard_normal(_conv_by_loops(x, w, b, stride).shape)   # L = sum(r * y)
        dx, dw, db = conv_backward(r.copy(), x.copy(), w.copy(), stride)
        loss = lambda: float((r * _conv_by_loops(x, w, b, stride)).sum())
        where = f"for x {x.shape}, w {w.shape}, stride {stride}"
        _like_differences(f"dx {where}", dx, loss, x)
        _like_differences(f"dw {where}", dw, loss, w)
        _like_differences(f"db {where}", db, loss, b)


# ----- notebook 3: max-pooling and ReLU backward ----------------------------------------------
def _pool_by_loops(x, pool, stride):
    n, h, w, c = x.shape
    ho, wo = (h - pool) // stride + 1, (w - pool) // stride + 1
    y = np.empty((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            y[:, i, j, :] = x[:, i * stride:i * stride + pool, j * stride:j * stride + pool, :].max(axis=(1, 2))
    return y


@checker
def check_maxpool_backward(maxpool_backward):
    rng = _rng()
    for shape, pool, stride in (((2, 4, 4, 3), 2, 2), ((1, 7, 7, 2), 3, 2), ((1, 5, 6, 1), 2, 1)):
        x = rng.permutation(np.prod(shape)).reshape(shape) / 10.0     # no ties: the derivative exists everywhere
        r = rng.standard_normal(_pool_by_loops(x, pool, stride).shape)
        dx = maxpool_backward(r.copy(), x.copy(), pool, stride)
        _like_differences(f"dx for x {shape}, pool {pool}, stride {stride}", dx,
                          lambda: float((r * _pool_by_loops(x, pool, stride)).sum()), x)


@checker
def check_relu_backward(relu_backward):
    rng = _rng()
    z = rng.standard_normal((4, 6))
    z[np.abs(z) < 0.1] = 0.5                     # away from the kink
    da = rng.standard_normal(z.shape)
    _like_differences("dz", relu_backward(da.copy(), z.copy()), lambda: float((da * np.maximum(z, 0)).sum()), z)
    assert np.all(relu_backward(da, np.zeros_like(z)) == 0), "dz at z = 0: expected 0 (the convention here)"


# ----- notebook 4: what fit does at every step ------------------------------------------------
@checker
def check_adam_step(adam_step):
    from scratchnet import optimizers
    rng = _rng()
    w = rng.standard_normal((3, 4))
    reference, optimizer = w.copy(), optimizers.Adam(learning_rate=0.01)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 6):                         # five steps: the bias corrections change every step
        g = rng.standard_normal(w.shape)
        w, m, v = adam_step(w.copy(), g.copy(), m.copy(), v.copy(), t, lr=0.01)
        optimizer.apply_gradients([reference], [g])
        _close(f"the weights after step {t} (against scratchnet's Adam)", w, reference, tol=1e-10)


# ----- notebook 7: batch normalization's backward pass ----------------------------------------
def _batchnorm(x, gamma, beta, eps):
    xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
    return gamma * xhat + beta


@checker
def check_batchnorm_backward(batchnorm_backward):
    rng = _rng()
    for n, c, eps in ((16, 3, 1e-3), (5, 4, 1e-5)):
        x = rng.standard_normal((n, c)) * rng.uniform(0.1, 5, c) + rng.standard_normal(c)
        gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
        g = rng.standard_normal((n, c))            # L = sum(g * y)
        dx, dgamma, dbeta = batchnorm_backward(g.copy(), x.copy(), gamma.copy(), eps)
        loss = lambda: float((g * _batchnorm(x, gamma, beta, eps)).sum())
        _like_differences(f"dx ({n} samples, {c} channels)", dx, loss, x)
        _like_differences("dgamma", dgamma, loss, gamma)
        _like_differences("dbeta", dbeta, loss, beta)


# ----- notebook 10: the transposed convolution ------------------------------------------------
@checker
def check_conv_transpose(conv_transpose):
    rng = _rng()
    for shape, kernel, stride in (((2, 3, 3, 4), (3, 3, 2, 4), 2), ((1, 4, 5, 3), (2, 2, 1, 3), 2),
                                  ((1, 3, 3, 2), (3, 3, 2, 2), 1)):
        x = rng.standard_normal(shape)                              # C's output, C^T's input
        w = rng.standard_normal(kernel)                             # C's kernel (kh, kw, in, out)
        out = conv_transpose(x.copy(), w.copy(), stride)
        kh, kw = kernel[:2]
        expected_shape = (shape[0], (shape[1] - 1) * stride + kh, (shape[2] - 1) * stride + kw, kernel[2])
        assert out.shape == expected_shape, f"C^T x for x {shape}: expected shape {expected_shape}, got {out.shape}"
        z = rng.standard_normal(expected_shape)                     # <C z, x> = <z, C^T x>
        _close(f"<C z, x> against <z, C^T x> for x {shape}, kernel {kernel}, stride {stride}",
               (z * out).sum(), (_conv_by_loops(z, w, np.zeros(kernel[3]), stride) * x).sum(), tol=1e-10)


# ----- notebook 11: the inspector's measures ---------------------------------------------------
@checker
def check_dead_relu_fraction(dead_relu_fraction):
    assert np.isclose(dead_relu_fraction(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])), 2 / 3), \
        "features 0 and 2 are zero for both samples: expected 2/3"
    images = np.zeros((2, 3, 3, 4))
    images[1, 2, 2, 1] = 0.5
    assert np.isclose(dead_relu_fraction(images), 0.75), \
        "an image's unit is a channel: 3 of 4 channels are zero everywhere, expected 0.75"
    rng = _rng()
    values = np.maximum(rng.standard_normal((8, 5, 5, 6)) - 2.5, 0)
    expected = np.mean([not values[..., c].any() for c in range(6)])
    assert np.isclose(dead_relu_fraction(values), expected), f"expected {expected} for random ReLU outputs"


# ----- notebook 5: a kernel of your own ---------------------------------------------------------
@checker
def check_im2col_loops(im2col_loops):
    from scratchnet.kernels import numpy_ref
    rng = _rng()
    for shape, kh, kw in (((2, 5, 6, 3), 3, 3), ((1, 4, 4, 1), 2, 2), ((3, 7, 5, 2), 3, 1)):
        x = rng.standard_normal(shape)
        _close(f"the windows of x {shape}, {kh}x{kw}", im2col_loops(x.copy(), kh, kw),
               numpy_ref.im2col(x, kh, kw, (1, 1), (0, 0, 0, 0)), tol=1e-12)     # copies: exactly equal


# ----- notebook 6: a sigmoid output and binary cross-entropy -----------------------------------
def _mean_binary_crossentropy(z, y):
    # -[y log s(z) + (1 - y) log(1 - s(z))] = log(1 + e^z) - y z, computed without overflow
    return float(np.mean(np.logaddexp(0, z) - y * z))


@checker
def check_sigmoid_binary_crossentropy(sigmoid_binary_crossentropy):
    rng = _rng()
    z = rng.standard_normal(7) * 2
    y = rng.integers(0, 2, 7).astype(float)
    loss, dz = sigmoid_binary_crossentropy(z.copy(), y)
    _close("the loss", loss, _mean_binary_crossentropy(z, y))
    _like_differences("dL/dz", dz, lambda: _mean_binary_crossentropy(z, y), z)
    big = np.array([-60.0, -30.0, 30.0, 60.0])       # exp(60) is fine, but 1 - sigmoid(60) rounds to 0
    loss, dz = sigmoid_binary_crossentropy(big.copy(), np.array([1.0, 0.0, 1.0, 0.0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dz)), \
        "large logits: the loss must stay finite (write it with the logits, not with log(sigmoid))"
    _close("the loss for logits of +-30 and +-60", loss, _mean_binary_crossentropy(big, np.array([1.0, 0, 1, 0])))


# ----- notebook 9: Grad-CAM ------------------------------------------------------------------------
@checker
def check_grad_cam_heatmap(grad_cam_heatmap):
    rng = _rng()
    activation = np.maximum(rng.standard_normal((3, 5, 5, 8)), 0)
    grads = rng.standard_normal((3, 5, 5, 8))
    weights = grads.mean(axis=(1, 2), keepdims=True)
    heat = np.maximum((weights * activation).sum(axis=-1), 0)
    expected = heat / heat.reshape(3, -1).max(axis=1).reshape(3, 1, 1)
    _close("the heat maps (N, H, W)", grad_cam_heatmap(activation.copy(), grads.copy()), expected)
    silent = grad_cam_heatmap(activation, -np.abs(grads) * (activation > 0))   # every channel votes against
    assert np.all(silent == 0), "where nothing contributes (every weighted sum <= 0) the map must be 0, not nan"


# ----- notebook 8: BatchNormalization in a frozen base ------------------------------------------
@checker
def check_batchnorm_inference(batchnorm_inference):
    from scratchnet import layers
    rng = _rng()
    x = rng.standard_normal((2, 4, 4, 3)) * 3 + 1
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    layer = layers.BatchNormalization(epsilon=1e-3, dtype="float64")
    layer.build((4, 4, 3))
    layer.set_weights([gamma, beta, mean, var])
    expected, _ = layer.forward(x, training=False)
    _close("the output (against scratchnet's BatchNormalization in inference mode)",
           batchnorm_inference(x.copy(), gamma, beta, mean, var, 1e-3), np.asarray(expected))
    batch_stats = (gamma * (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-3) + beta)
    assert not np.allclose(batchnorm_inference(x, gamma, beta, mean, var, 1e-3), batch_stats), \
        "in inference the layer uses its moving mean and variance, not the batch's"
