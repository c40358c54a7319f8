"""Plain NumPy reference kernels: the oracle every fast kernel is tested against.

Layout is channels-last throughout: images are (N, H, W, C), conv kernels are
(kh, kw, C_in, C_out) as in Keras. ``pads`` is (top, bottom, left, right).

Every function keeps the dtype of its inputs (float32 in, float32 out; float64
in, float64 out). Readability comes first here; speed lives in ``numba_cpu``.
"""
import numpy as np

__all__ = [
    "output_size", "im2col", "col2im",
    "conv2d_forward", "conv2d_backward", "conv2d_backward_input",
    "maxpool2d_forward", "maxpool2d_backward",
    "bias_activation", "bias_activation_backward",
    "adam_update", "rmsprop_update", "dropout_mask",
    "avgpool2d_forward", "avgpool2d_backward",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_inference",
    "projective_transform", "projective_transform_backward", "projective_sampling",
    "bilinear_taps", "resize_bilinear", "resize_bilinear_backward",
]

# Activations the bias_activation kernels apply themselves; layers do the others.
KERNEL_ACTIVATIONS = ("linear", "relu")


def output_size(size, k, stride, pad_before, pad_after):
    """Number of window positions along one axis."""
    return (size + pad_before + pad_after - k) // stride + 1


def _windows(height, width, kh, kw, strides, pads):
    """Yield (i, j, rows, cols): kernel offset (i, j) and the slices of the padded
    image that this offset reads for every output position."""
    sh, sw = strides
    ho = output_size(height, kh, sh, pads[0], pads[1])
    wo = output_size(width, kw, sw, pads[2], pads[3])
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def im2col(x, kh, kw, strides, pads, pad_value=0):
    """Unfold x (N, H, W, C) into (N, Ho, Wo, kh, kw, C): every window's pixels."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    ho = output_size(h, kh, strides[0], pt, pb)
    wo = output_size(w, kw, strides[1], pl, pr)
    cols = np.empty((n, ho, wo, kh, kw, c), dtype=x.dtype)
    for i, j, rows, columns in _windows(h, w, kh, kw, strides, pads):
        cols[:, :, :, i, j, :] = xp[:, rows, columns, :]
    return cols


def col2im(cols, x_shape, strides, pads):
    """Adjoint of im2col: sum (N, Ho, Wo, kh, kw, C) windows back into (N, H, W, C)."""
    n, h, w, c = x_shape
    kh, kw = cols.shape[3], cols.shape[4]
    pt, pb, pl, pr = pads
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=cols.dtype)
    for i, j, rows, columns in _windows(h, w, kh, kw, strides, pads):
        dxp[:, rows, columns, :] += cols[:, :, :, i, j, :]
    return dxp[:, pt:pt + h, pl:pl + w, :]


def conv2d_forward(x, w, strides, pads):
    """y = conv(x, w) (no bias: see bias_activation). Returns (y, cache)."""
    kh, kw, c_in, c_out = w.shape
    cols = im2col(x, kh, kw, strides, pads)
    n, ho, wo = cols.shape[:3]
    y = cols.reshape(n * ho * wo, -1) @ w.reshape(-1, c_out)
    return y.reshape(n, ho, wo, c_out), (cols, x.shape, w, strides, pads)


def conv2d_backward(dy, cache, need_dx=True):
    """Gradients of conv2d_forward: (dx, or None when not needed, and dw)."""
    cols, x_shape, w, strides, pads = cache
    c_out = w.shape[3]
    dy2 = dy.reshape(-1, c_out)
    cols2 = cols.reshape(dy2.shape[0], -1)
    dw = (cols2.T @ dy2).reshape(w.shape)
    dx = None
    if need_dx:
        dcols = (dy2 @ w.reshape(-1, c_out).T).reshape(cols.shape)
        dx = col2im(dcols, x_shape, strides, pads)
    return dx, dw


def check_backward_input(dy, w, x_shape, strides, pads):
    """(ho, wo) of a conv2d_backward_input call, after checking its arguments agree: every
    kernel set calls this, so they refuse the same calls with the same words."""
    if len(x_shape) != 4 or dy.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_backward_input expects dy (N, Ho, Wo, C_out), w (kh, kw, C_in, C_out) and "
                         f"x_shape (N, H, W, C_in); got dy {dy.shape}, w {w.shape}, x_shape {tuple(x_shape)}")
    if pads[0] < 0 or pads[2] < 0:
        raise ValueError(f"conv2d_backward_input: the top and left pads must be >= 0, got pads {tuple(pads)}")
    if dy.dtype != w.dtype:
        raise TypeError(f"conv2d_backward_input: dy and w must have one dtype, got {dy.dtype} and {w.dtype}")
    kh, kw, c_in, c_out = w.shape
    ho = output_size(x_shape[1], kh, strides[0], pads[0], pads[1])
    wo = output_size(x_shape[2], kw, strides[1], pads[2], pads[3])
    want = (x_shape[0], ho, wo, c_out)
    if x_shape[3] != c_in or tuple(dy.shape) != want:
        raise ValueError(f"conv2d_backward_input: a convolution of x {tuple(x_shape)} with w {w.shape} at strides "
                         f"{tuple(strides)}, pads {tuple(pads)} gives dy of shape {want}, got {dy.shape}")
    return ho, wo


def conv2d_backward_input(dy, w, x_shape, strides, pads):
    """dx = dL/dx of y = conv(x, w) from dy = dL/dy and w alone (no x, no cache, no dw):
    col2im(dy @ w^T), the convolution's adjoint, which is a transposed convolution of dy.
    The bottom and right pads may be negative (as a transposed convolution's are): the last
    rows or columns of x are then in no window and get 0."""
    ho, wo = check_backward_input(dy, w, x_shape, strides, pads)
    n, h, width, c = x_shape
    kh, kw, _, c_out = w.shape
    dcols = (dy.reshape(-1, c_out) @ w.reshape(-1, c_out).T).reshape(n, ho, wo, kh, kw, c)
    pt, pb, pl, pr = pads
    inner = (n, h + min(pb, 0), width + min(pr, 0), c)      # the rows and columns windows reach
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dx[:, :inner[1], :inner[2]] = col2im(dcols, inner, strides, (pt, max(pb, 0), pl, max(pr, 0)))
    return dx


def maxpool2d_forward(x, pool, strides, pads):
    """Max over each window; padding never wins. Returns (y, argmax) where argmax is
    the row-major index inside the window of the first maximum (ties go to the first)."""
    kh, kw = pool
    cols = im2col(x, kh, kw, strides, pads, pad_value=-np.inf)
    n, ho, wo = cols.shape[:3]
    cols = cols.reshape(n, ho, wo, kh * kw, -1)
    argmax = cols.argmax(axis=3)
    y = np.take_along_axis(cols, argmax[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return y, argmax.astype(np.int32)


def maxpool2d_backward(dy, argmax, x_shape, pool, strides, pads):
    """Route each dy to the input position its window's argmax names."""
    kh, kw = pool
    n, ho, wo, c = dy.shape
    dcols = np.zeros((n, ho, wo, kh * kw, c), dtype=dy.dtype)
    np.put_along_axis(dcols, argmax[:, :, :, None, :].astype(np.intp), dy[:, :, :, None, :], axis=3)
    return col2im(dcols.reshape(n, ho, wo, kh, kw, c), x_shape, strides, pads)


def _window_counts(x_shape, pool, strides, pads, dtype):
    """How many real (not padding) pixels each window of an average-pooling covers."""
    ones = np.ones((1,) + tuple(x_shape[1:3]) + (1,), dtype=dtype)
    return im2col(ones, pool[0], pool[1], strides, pads).sum(axis=(3, 4))   # (1, Ho, Wo, 1)


def avgpool2d_forward(x, pool, strides, pads):
    """The mean of each window over the real pixels it covers (padding is not counted, as
    in Keras and TensorFlow)."""
    cols = im2col(x, pool[0], pool[1], strides, pads)
    return cols.sum(axis=(3, 4)) / _window_counts(x.shape, pool, strides, pads, x.dtype)


def avgpool2d_backward(dy, x_shape, pool, strides, pads):
    """Each window's dy, divided by its count, back onto the pixels it averaged."""
    share = dy / _window_counts(x_shape, pool, strides, pads, dy.dtype)
    n, ho, wo, c = dy.shape
    dcols = np.broadcast_to(share[:, :, :, None, None, :], (n, ho, wo, pool[0], pool[1], c))
    return col2im(np.ascontiguousarray(dcols), x_shape, strides, pads)


def depthwise_conv2d_forward(x, k, strides, pads):
    """y[..., c*M + m] = sum over the window of x[..., c] * k[:, :, c, m] (k: kh, kw, C, M), as
    Keras's DepthwiseConv2D. Returns (y, cache)."""
    kh, kw, c, m = k.shape
    cols = im2col(x, kh, kw, strides, pads)                        # (N, Ho, Wo, kh, kw, C)
    y = np.einsum("nijabc,abcm->nijcm", cols, k)
    return y.reshape(y.shape[:3] + (c * m,)), (cols, x.shape, k, strides, pads)


def depthwise_conv2d_backward(dy, cache, need_dx=True):
    """(dx or None, dk) for depthwise_conv2d_forward."""
    cols, x_shape, k, strides, pads = cache
    kh, kw, c, m = k.shape
    dy5 = dy.reshape(dy.shape[:3] + (c, m))
    dk = np.einsum("nijabc,nijcm->abcm", cols, dy5)
    dx = col2im(np.einsum("nijcm,abcm->nijabc", dy5, k), x_shape, strides, pads) if need_dx else None
    return dx, dk


def batchnorm_forward(x2, gamma, beta, epsilon, relu=False):
    """Batch normalisation in training, over the rows of x2 (rows, C): y = xhat * gamma + beta
    with xhat = (x - mean) / sqrt(var + epsilon), mean and (biased) var per column, as Keras;
    then max(y, 0) if ``relu``. gamma/beta may be None. Returns (y, mean, var, cache)."""
    mean = x2.mean(axis=0)
    centred = x2 - mean
    var = (centred * centred).mean(axis=0)
    inv_std = 1 / np.sqrt(var + x2.dtype.type(epsilon))
    xhat = centred * inv_std
    y = xhat * gamma if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta
    if relu:
        np.maximum(y, 0, out=y)
    return y, mean, var, (xhat, inv_std, y if relu else None)


def batchnorm_backward(dy2, cache, gamma):
    """(dx, dgamma, dbeta) for batchnorm_forward: with g = dy (where y > 0, after a ReLU),
    dx = gamma * inv_std / n * (n * g - sum(g) - xhat * sum(g * xhat)), sums over rows."""
    xhat, inv_std, rectified = cache
    if rectified is not None:
        dy2 = dy2 * (rectified > 0)
    n = dy2.shape[0]
    dbeta = dy2.sum(axis=0)
    dgamma = (dy2 * xhat).sum(axis=0)
    scale = inv_std if gamma is None else gamma * inv_std
    dx = (scale / dy2.dtype.type(n)) * (dy2 * dy2.dtype.type(n) - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_inference(x2, gamma, beta, mean, var, epsilon, relu=False):
    """Batch normalisation with fixed statistics: (x - mean) / sqrt(var + epsilon) * gamma + beta,
    then max(., 0) if ``relu``."""
    y = (x2 - mean) * (1 / np.sqrt(var + x2.dtype.type(epsilon)))
    if gamma is not None:
        y *= gamma
    if beta is not None:
        y += beta
    if relu:
        np.maximum(y, 0, out=y)
    return y


def bias_activation(z, b, activation):
    """In place: z = activation(z + b) over the last axis; activation is 'linear' or
    'relu'; b may be None. Returns z."""
    if b is not None:
        z += b
    if activation == "relu":
        np.maximum(z, 0, out=z)
    return z


def bias_activation_backward(dy, a, activation, need_db):
    """From dL/da and a = bias_activation(...): (dL/dz, dL/db or None)."""
    dz = dy * (a > 0) if activation == "relu" else dy
    db = dz.reshape(-1, dz.shape[-1]).sum(axis=0) if need_db else None
    return dz, db


def adam_update(p, g, m, v, lr_t, beta_1, beta_2, epsilon):
    """In place: m, v track g and g^2; p -= lr_t * m / (sqrt(v) + epsilon)."""
    m += (1 - beta_1) * (g - m)
    v += (1 - beta_2) * (g * g - v)
    p -= lr_t * m / (np.sqrt(v) + epsilon)


def rmsprop_update(p, g, s, lr, rho, epsilon):
    """In place: s = rho*s + (1-rho)*g^2; p -= lr * g / sqrt(s + epsilon)."""
    s *= rho
    s += (1 - rho) * (g * g)
    p -= lr * g / np.sqrt(s + epsilon)


# Dropout draws its mask from a counter-based generator: element t of a mask is a pure
# function of (seed, t), the splitmix64 finaliser of seed + (t + 1) * golden ratio, so
# every backend (and a GPU thread per element) draws exactly the same mask, with no
# generator state to keep or copy between host and device.
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
RANDOM_BITS = 24    # each element keeps the top 24 bits: a uniform draw on a 2^-24 grid


def dropout_threshold(rate):
    """Keep an element when its 24 random bits, as an integer, are >= this (so P(keep) = 1 - rate
    up to 2^-24)."""
    return np.uint64(int(np.ceil(rate * (1 << RANDOM_BITS))))


def dropout_mask(shape, dtype, rate, seed):
    """The inverted-dropout mask for an array of ``shape``: 1 / (1 - rate) where element t's
    draw from (seed, t) is kept, 0 elsewhere, in ``dtype``."""
    t = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    z = np.uint64(seed) + t * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * MIX_1
    z = (z ^ (z >> np.uint64(27))) * MIX_2
    z ^= z >> np.uint64(31)
    keep = (z >> np.uint64(64 - RANDOM_BITS)) >= dropout_threshold(rate)
    dtype = np.dtype(dtype)
    return np.where(keep, dtype.type(1 / (1 - rate)), dtype.type(0)).reshape(shape)


def conv2d_maxpool_forward(x, w, b, activation, strides, pads, pool, training):
    """y = maxpool(activation(conv(x, w) + b)) over non-overlapping pool[0] x pool[1] windows
    (strides = pool, no padding); activation 'relu' or 'linear', b may be None. What a Conv2D
    followed by such a MaxPooling2D computes, in one call. Returns (y, cache); with
    ``training`` the cache serves conv2d_maxpool_backward."""
    z, conv_cache = conv2d_forward(x, w, strides, pads)
    a = bias_activation(z, b, activation)
    y, argmax = maxpool2d_forward(a, pool, pool, (0, 0, 0, 0))
    return y, (conv_cache, a, argmax, activation, b is not None, pool) if training else None


def conv2d_maxpool_backward(dy, cache, need_dx=True):
    """(dx or None, dw, db or None) for conv2d_maxpool_forward."""
    conv_cache, a, argmax, activation, has_bias, pool = cache
    da = maxpool2d_backward(dy, argmax, a.shape, pool, pool, (0, 0, 0, 0))
    dz, db = bias_activation_backward(da, a, activation, has_bias)
    dx, dw = conv2d_backward(dz, conv_cache, need_dx)
    return dx, dw, db


# ----- projective image transform (RandomRotation, RandomZoom, RandomTranslation) -------------------

def _map_reflect(c, size):
    if size <= 1:
        return np.zeros_like(c)
    period = np.float32(2 * size)
    low = c < 0
    folded = np.where(low, period * np.trunc(-c / period) + c, c)
    folded = np.where(low, np.where(folded < -size, folded + period, -folded - 1), folded)
    wrapped = c - period * np.trunc(c / period)
    folded = np.where(c > size - 1, np.where(wrapped >= size, period - wrapped - 1, wrapped), folded)
    return np.clip(folded, 0, size - 1)


def _map_wrap(c, size):
    # TensorFlow's arithmetic, its divisor size - 1 included, so the pixels match
    if size <= 1:
        return np.zeros_like(c)
    span = np.float32(size - 1)
    low = np.where(c < 0, c + size * (np.trunc(-c / span) + 1), c)
    return np.clip(np.where(c > size - 1, c - size * np.trunc(c / span), low), 0, size - 1)


_FILL_MAPS = {"reflect": _map_reflect, "wrap": _map_wrap, "nearest": lambda c, size: np.clip(c, 0, size - 1),
              "constant": lambda c, size: c}


def projective_sampling(transforms, shape, interpolation, fill_mode):
    """Where each output pixel of a projective transform of images ``shape`` (N, H, W, C)
    reads: (index, weight, outside), index and weight (N, H*W, K) the flat input pixels
    (row * W + column) and their float32 weights (0 for reads outside the image), outside
    (N, H*W) the weight left for the fill value (their sum, exact in float64). K is 4 (bilinear) or 1 (nearest).

    ``transforms`` (N, 8) rows a0 a1 a2 b0 b1 b2 c0 c1: output pixel (x, y) reads input point
    ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, in float32; a
    coordinate outside the image is mapped back by ``fill_mode`` as TensorFlow does
    (reflect: d c b a | a b c d | d c b a; wrap: a b c d | a b c d; nearest: a a | a b c d | d d;
    constant: read as the fill value)."""
    n, height, width = shape[0], shape[1], shape[2]
    t = np.asarray(transforms, np.float32).reshape(n, 8)
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    xs, ys = xs.ravel()[None], ys.ravel()[None]
    col = [t[:, i:i + 1] for i in range(8)]
    k = col[6] * xs + col[7] * ys + np.float32(1)
    at_infinity = k == 0
    k = np.where(at_infinity, np.float32(1), k)
    px = _FILL_MAPS[fill_mode]((col[0] * xs + col[1] * ys + col[2]) / k, width)
    py = _FILL_MAPS[fill_mode]((col[3] * xs + col[4] * ys + col[5]) / k, height)
    if interpolation == "nearest":
        def half_away(c):
            return np.sign(c) * np.floor(np.abs(c) + np.float32(0.5))
        rows, cols = half_away(py)[..., None], half_away(px)[..., None]
        weights = np.ones(rows.shape, np.float32)
    else:
        y0, x0 = np.floor(py), np.floor(px)
        wy1, wx1 = py - y0, px - x0
        wy0, wx0 = np.float32(1) - wy1, np.float32(1) - wx1
        rows = np.stack([y0, y0, y0 + 1, y0 + 1], axis=-1)
        cols = np.stack([x0, x0 + 1, x0, x0 + 1], axis=-1)
        weights = np.stack([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1], axis=-1)
    weights = np.where(at_infinity[..., None], np.float32(0), weights)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    outside = np.where(at_infinity, 1.0, np.where(inside, 0, weights).astype(np.float64).sum(axis=-1))
    index = np.where(inside, rows * width + cols, 0).astype(np.int64)
    return index, np.where(inside, weights, 0).astype(np.float32), outside


def projective_transform(x, transforms, interpolation, fill_mode, fill_value):
    """Images x (N, H, W, C) under one projective transform each (see projective_sampling),
    read with ``interpolation`` ('bilinear' or 'nearest'); same shape and dtype."""
    n, channels = x.shape[0], x.shape[3]
    index, weight, outside = projective_sampling(transforms, x.shape, interpolation, fill_mode)
    flat = x.reshape(n, -1, channels)
    y = np.zeros(flat.shape, x.dtype)
    for k in range(index.shape[2]):
        y += weight[:, :, k, None].astype(x.dtype) * np.take_along_axis(flat, index[:, :, k, None], axis=1)
    y += x.dtype.type(fill_value) * outside[:, :, None].astype(x.dtype)
    return y.reshape(x.shape)


def projective_transform_backward(dy, transforms, interpolation, fill_mode):
    """dL/dx of projective_transform: each output pixel's gradient added back to the input
    pixels it read, by their weights."""
    n, height, width, channels = dy.shape
    index, weight, _ = projective_sampling(transforms, dy.shape, interpolation, fill_mode)
    flat_index = (index + (np.arange(n) * (height * width))[:, None, None]).ravel()
    contributions = (weight[..., None].astype(dy.dtype) * dy.reshape(n, -1, 1, channels)).reshape(-1, channels)
    dx = np.stack([np.bincount(flat_index, contributions[:, c], minlength=n * height * width)
                   for c in range(channels)], axis=1)
    return dx.astype(dy.dtype).reshape(dy.shape)


def bilinear_taps(in_size, out_size, dtype):
    """(first, second, w_first, w_second), one entry per output position, of TensorFlow's
    bilinear resize along one axis (half-pixel centres, no antialiasing): out[i] =
    w_first[i] * in[first[i]] + w_second[i] * in[second[i]]. The weights are computed in
    float32, as TensorFlow's are, then given ``dtype``; at the edges both taps are one pixel."""
    scale = np.float32(in_size / out_size)
    position = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(position)
    lerp = position - floor
    first = np.maximum(floor, 0).astype(np.int64)
    second = np.minimum(floor + 1, in_size - 1).astype(np.int64)
    return first, second, (np.float32(1) - lerp).astype(dtype), lerp.astype(dtype)


def resize_bilinear(x, size):
    """Images (N, H, W, C) resized to (N, size[0], size[1], C) as TensorFlow's bilinear resize
    (half-pixel centres, no antialiasing): rows first, then columns, two taps each."""
    r0, r1, a0, a1 = bilinear_taps(x.shape[1], size[0], x.dtype)
    c0, c1, b0, b1 = bilinear_taps(x.shape[2], size[1], x.dtype)
    rows = a0[:, None, None] * x[:, r0] + a1[:, None, None] * x[:, r1]
    return b0[:, None] * rows[:, :, c0] + b1[:, None] * rows[:, :, c1]


def resize_bilinear_backward(dy, in_size):
    """dL/dx of resize_bilinear from dy: each output pixel's gradient added back onto the
    (up to) four input pixels it read, with their weights; (N, in_size[0], in_size[1], C)."""
    n, out_h, out_w, c = dy.shape
    r0, r1, a0, a1 = bilinear_taps(in_size[0], out_h, dy.dtype)
    c0, c1, b0, b1 = bilinear_taps(in_size[1], out_w, dy.dtype)
    rows = np.zeros((n, out_h, in_size[1], c), dy.dtype)
    np.add.at(rows, (slice(None), slice(None), c0), b0[:, None] * dy)
    np.add.at(rows, (slice(None), slice(None), c1), b1[:, None] * dy)
    dx = np.zeros((n, in_size[0], in_size[1], c), dy.dtype)
    np.add.at(dx, (slice(None), r0), a0[:, None, None] * rows)
    np.add.at(dx, (slice(None), r1), a1[:, None, None] * rows)
    return dx
