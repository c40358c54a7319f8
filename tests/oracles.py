"""Independent loop-by-loop definitions, slow and obvious, for checking the kernels; and the small
model built alike in Keras and scratchnet that several Keras comparisons start from."""
import numpy as np


def conv2d_naive(x, w, b, strides, pads):
    n, h, wd, c = x.shape
    kh, kw, _, c_out = w.shape
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (h + pt + pb - kh) // strides[0] + 1
    wo = (wd + pl + pr - kw) // strides[1] + 1
    y = np.zeros((n, ho, wo, c_out), dtype=np.float64)
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                window = xp[s, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw, :]
                y[s, i, j] = np.tensordot(window, w, axes=3) + (0 if b is None else b)
    return y


def maxpool_naive(x, pool, strides, pads):
    """Max of each window and, as a flat (h, w) position in x, where the first maximum is."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = pads
    ho = (h + pt + pb - pool[0]) // strides[0] + 1
    wo = (w + pl + pr - pool[1]) // strides[1] + 1
    y = np.zeros((n, ho, wo, c), dtype=x.dtype)
    where = np.zeros((n, ho, wo, c), dtype=np.int64)
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    best, best_at = -np.inf, -1
                    for a in range(pool[0]):
                        for bb in range(pool[1]):
                            r, q = i * strides[0] + a - pt, j * strides[1] + bb - pl
                            if 0 <= r < h and 0 <= q < w and x[s, r, q, ch] > best:
                                best, best_at = x[s, r, q, ch], r * w + q
                    y[s, i, j, ch], where[s, i, j, ch] = best, best_at
    return y, where


def maxpool_backward_naive(dy, where, x_shape):
    n, h, w, c = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for s, i, j, ch in np.ndindex(*dy.shape):
        pos = where[s, i, j, ch]
        dx[s, pos // w, pos % w, ch] += dy[s, i, j, ch]
    return dx


def dropout_mask_naive(shape, rate, seed):
    """The splitmix64-based mask in Python integers (exact modulo 2**64), element by element."""
    mask64 = (1 << 64) - 1
    size = int(np.prod(shape))
    keep = np.zeros(size, dtype=bool)
    for t in range(size):
        z = (seed + (t + 1) * 0x9E3779B97F4A7C15) & mask64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask64
        z ^= z >> 31
        keep[t] = (z >> 40) / 2**24 >= rate
    return np.where(keep, 1 / (1 - rate), 0.0).reshape(shape)


def avgpool_naive(x, pool, strides, pads):
    """Mean of each window over the pixels inside the image (padding not counted)."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = pads
    ho = (h + pt + pb - pool[0]) // strides[0] + 1
    wo = (w + pl + pr - pool[1]) // strides[1] + 1
    y = np.zeros((n, ho, wo, c), dtype=x.dtype)
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                rows = [r for r in range(i * strides[0] - pt, i * strides[0] - pt + pool[0]) if 0 <= r < h]
                cols = [q for q in range(j * strides[1] - pl, j * strides[1] - pl + pool[1]) if 0 <= q < w]
                y[s, i, j] = x[s][np.ix_(rows, cols)].reshape(-1, c).mean(axis=0)
    return y


def depthwise_naive(x, k, strides, pads):
    """y[..., c*M + m] = sum over the window of x[..., c] * k[:, :, c, m], loop by loop."""
    n, h, w, c = x.shape
    kh, kw, _, m = k.shape
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (h + pt + pb - kh) // strides[0] + 1
    wo = (w + pl + pr - kw) // strides[1] + 1
    y = np.zeros((n, ho, wo, c * m), dtype=np.float64)
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                window = xp[s, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw, :]
                for ch in range(c):
                    for q in range(m):
                        y[s, i, j, ch * m + q] = (window[:, :, ch] * k[:, :, ch, q]).sum()
    return y


def dense_twins(keras, activation="softmax", units=3):
    """(Keras's, scratchnet's) Input(5) -> Dense(4, tanh) -> Dense(units, activation): the same
    model in both, scratchnet's with Keras's initial weights."""
    import scratchnet

    def build(lib):
        return lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, activation="tanh"),
                               lib.layers.Dense(units, activation=activation)])
    theirs, ours = build(keras), build(scratchnet)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return theirs, ours
