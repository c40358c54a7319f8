"""Convolution as im2col + GEMM, in chunks of images, shared by the CPU and GPU backends.

The backends supply the array module (NumPy or CuPy), optionally the product
``gemm(a, b, out=...)`` (the array module's ``matmul`` if not), and two launchers,
``im2col(x, geometry, first, last, cols)`` and ``col2im(dcols, geometry, first, last, dx)``,
that unfold images first..last-1 into rows of ``cols`` and fold them back. The unfolded
matrix lives in a buffer of at most ``chunk_bytes``; a batch larger than that goes through
in chunks, and its backward pass unfolds each chunk again instead of keeping hundreds of MB
alive between forward and backward. ``conv2d_backward_input`` is the backward pass's dx on its
own (dy and the kernel in, no cache): a transposed convolution's forward pass.
"""
from .numpy_ref import check_backward_input, output_size


def lane_buffer(xp, name, shape, dtype):
    """A new array for one lane's ``name`` (cols, dcols, z or dw): the one place where the
    drivers below allocate their scratch memory, so that a test can see how much they take."""
    return xp.empty(shape, dtype)


def geometry(x_shape, w_shape, strides, pads):
    """(kh, kw, sh, sw, pad_top, pad_left, ho, wo): everything a launcher needs."""
    kh, kw = w_shape[0], w_shape[1]
    ho = output_size(x_shape[1], kh, strides[0], pads[0], pads[1])
    wo = output_size(x_shape[2], kw, strides[1], pads[2], pads[3])
    return (kh, kw, strides[0], strides[1], pads[0], pads[2], ho, wo)


def _pointwise(geo, pads):
    """A 1x1 kernel at stride 1 without padding: im2col and col2im are the identity."""
    return geo[:6] == (1, 1, 1, 1, 0, 0) and tuple(pads) == (0, 0, 0, 0)


def _images_per_chunk(n, rows_per_image, row_bytes, chunk_bytes):
    return min(n, max(1, chunk_bytes // max(1, rows_per_image * row_bytes)))


def conv2d_forward(x, w, strides, pads, *, xp, im2col, chunk_bytes, lanes=None, gemm=None):
    """y = conv(x, w). Returns (y, cache)."""
    gemm = gemm or xp.matmul
    x = xp.ascontiguousarray(x)
    n, c_out = x.shape[0], w.shape[3]
    geo = geometry(x.shape, w.shape, strides, pads)
    rows, k = geo[6] * geo[7], w.shape[0] * w.shape[1] * w.shape[2]
    w2 = xp.ascontiguousarray(w.reshape(k, c_out))
    y = xp.empty((n * rows, c_out), x.dtype)
    ranges = lane_ranges(n, 2 * n * rows * k * c_out, lanes)

    def lane(first, last):
        """Images first..last-1, in chunks; returns the unfolded rows when they fit one chunk."""
        if _pointwise(geo, pads):     # a 1x1 kernel's unfolded rows are the pixels themselves
            pixels = x.reshape(n * rows, k)[first * rows:last * rows]
            gemm(pixels, w2, out=y[first * rows:last * rows])
            return pixels
        per = _images_per_chunk(last - first, rows, k * x.dtype.itemsize, chunk_bytes)
        cols = lane_buffer(xp, "cols", (per * rows, k), x.dtype)
        for start in range(first, last, per):
            stop = min(last, start + per)
            part = cols[:(stop - start) * rows]
            im2col(x, geo, start, stop, part)
            gemm(part, w2, out=y[start * rows:stop * rows])
        # one chunk: backward reuses cols as they are; several: it unfolds each chunk again
        return cols if per >= last - first else None

    kept = _run(lanes, [lambda r=r: lane(*r) for r in ranges])
    return y.reshape(n, geo[6], geo[7], c_out), (x, w, strides, pads, ranges, kept)


def conv2d_backward(dy, cache, need_dx, *, xp, im2col, col2im, chunk_bytes, lanes=None, gemm=None):
    """(dx or None, dw) for conv2d_forward, lane by lane and chunk by chunk as in the forward pass."""
    gemm = gemm or xp.matmul
    x, w, strides, pads, ranges, kept = cache
    n, c_out = x.shape[0], w.shape[3]
    geo = geometry(x.shape, w.shape, strides, pads)
    rows, k = geo[6] * geo[7], w.shape[0] * w.shape[1] * w.shape[2]
    turned = _transposed_pads(geo, pads, w.shape, x.shape) if need_dx else None
    if turned is not None:
        return _backward_by_turning(xp.ascontiguousarray(dy), x, w, turned, xp=xp, im2col=im2col,
                                    chunk_bytes=chunk_bytes, lanes=lanes, gemm=gemm)
    dy2 = xp.ascontiguousarray(dy).reshape(n * rows, c_out)
    w2 = w.reshape(k, c_out)
    dx = xp.empty(x.shape, x.dtype) if need_dx else None

    def lane(first, last, kept_cols):
        """This lane's images' dx (written in place) and its share of dw."""
        per = last - first if kept_cols is not None else _images_per_chunk(last - first, rows,
                                                                             k * x.dtype.itemsize, chunk_bytes)
        cols = kept_cols if kept_cols is not None else lane_buffer(xp, "cols", (per * rows, k), x.dtype)
        pointwise = _pointwise(geo, pads)
        dcols = lane_buffer(xp, "dcols", (per * rows, k), x.dtype) if need_dx and not pointwise else None
        dw = xp.zeros((k, c_out), x.dtype)
        partial = lane_buffer(xp, "dw", (k, c_out), x.dtype) if per < last - first else dw
        for start in range(first, last, per):
            stop = min(last, start + per)
            dy_part = dy2[start * rows:stop * rows]
            part = cols[:(stop - start) * rows]
            if kept_cols is None:
                im2col(x, geo, start, stop, part)
            gemm(part.T, dy_part, out=partial)
            if partial is not dw:
                dw += partial
            if need_dx:
                _fold_chunk(dy_part, w2, dcols, geo, start, stop, dx, gemm, col2im)
        return dw

    parts = _run(lanes, [lambda r=r, c=c: lane(*r, c) for r, c in zip(ranges, kept)])
    dw = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    return dx, dw.reshape(w.shape)


def _transposed_pads(geo, pads, w_shape, x_shape):
    """Pads under which dx is a plain stride-1 convolution of dy with the kernel turned by
    180 degrees and its channel axes swapped, or None where that does not pay or apply.

    At stride 1, dx[h] = sum_di dy[h + pad_top - di] w[di]: a correlation of dy, padded by
    kh - 1 - pad_top above (and likewise on every side), with the turned kernel. Unfolding dy
    once then gives both dx and dw (_backward_by_turning), where the default path unfolds x
    again, multiplies with an inner dimension of c_out alone (little arithmetic per byte) and
    folds kh*kw*c_in columns back. dy's columns are kh*kw*c_out wide, so the turn pays up to
    c_out = 2 * c_in (measured on U-Net shapes: 1.5-3x at c_out <= c_in, 1.8x and 0.9x at
    2 * c_in, 0.85x at 4 * c_in). The turned product runs over x's pixels, the default one over
    y's: the turn needs x no more than a quarter larger than y ('same' padding, or 'valid' on
    big images; MNIST's 5x5 -> 3x3 'valid' convolution ran 2.3x slower turned). It needs
    stride 1 and pads of at most the kernel's size - 1."""
    kh, kw, sh, sw = geo[:4]
    c_in, c_out = w_shape[2], w_shape[3]
    if (sh, sw) != (1, 1) or _pointwise(geo, pads) or c_out > 2 * c_in:
        return None
    if 4 * x_shape[1] * x_shape[2] > 5 * geo[6] * geo[7]:
        return None
    turned = (kh - 1 - pads[0], kh - 1 - pads[1], kw - 1 - pads[2], kw - 1 - pads[3])
    return turned if min(turned) >= 0 else None


def _backward_by_turning(dy, x, w, turned_pads, *, xp, im2col, chunk_bytes, lanes, gemm):
    """(dx, dw) of a stride-1 convolution from one unfolding of dy (see _transposed_pads):
    dx = cols(dy) @ the turned kernel, and dw from x^T @ cols(dy), the same columns. Row q of
    cols(dy) holds the dy values that pixel q of x reached, tap (kh-1-di, kw-1-dj) for tap
    (di, dj) of the kernel, so x^T @ cols(dy) is dw with its taps turned. No unfolding of x
    and no col2im: the default path unfolds x again and folds kh*kw*c_in columns back."""
    n, h, wd, c_in = x.shape
    kh, kw, _, c_out = w.shape
    rows, k = h * wd, kh * kw * c_out
    turned_w = xp.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(k, c_in)
    geo = geometry(dy.shape, (kh, kw, c_out, c_in), (1, 1), turned_pads)    # its output: x's pixels
    x2 = x.reshape(n * rows, c_in)
    dx = xp.empty(x.shape, x.dtype)
    dx2 = dx.reshape(n * rows, c_in)

    def lane(first, last):
        """This lane's images' dx (written in place) and its share of x^T @ cols(dy)."""
        per = _images_per_chunk(last - first, rows, k * x.dtype.itemsize, chunk_bytes)
        cols = lane_buffer(xp, "cols", (per * rows, k), x.dtype)
        total = xp.zeros((c_in, k), x.dtype)
        partial = lane_buffer(xp, "dw", (c_in, k), x.dtype) if per < last - first else total
        for start in range(first, last, per):
            stop = min(last, start + per)
            part = cols[:(stop - start) * rows]
            im2col(dy, geo, start, stop, part)
            gemm(part, turned_w, out=dx2[start * rows:stop * rows])
            gemm(x2[start * rows:stop * rows].T, part, out=partial)
            if partial is not total:
                total += partial
        return total

    parts = _run(lanes, [lambda r=r: lane(*r) for r in lane_ranges(n, 4 * n * rows * k * c_in, lanes)])
    turned_dw = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    dw = turned_dw.reshape(c_in, kh, kw, c_out)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
    return dx, xp.ascontiguousarray(dw)


def _fold_chunk(dy_part, w2, dcols, geo, start, stop, dx, gemm, col2im):
    """dx[start:stop] = col2im(dy_part @ w2^T): the input gradient of images start..stop-1,
    through the buffer dcols; without one (a pointwise kernel) the product is dx itself."""
    rows = geo[6] * geo[7]
    if dcols is None:                  # folding back is the identity
        gemm(dy_part, w2.T, out=dx.reshape(dx.shape[0] * rows, w2.shape[0])[start * rows:stop * rows])
        return
    dpart = dcols[:(stop - start) * rows]
    gemm(dy_part, w2.T, out=dpart)
    col2im(dpart, geo, start, stop, dx)


def conv2d_backward_input(dy, w, x_shape, strides, pads, *, xp, col2im, chunk_bytes, lanes=None, gemm=None):
    """dL/dx of y = conv(x, w) from dy and w only: conv2d_backward's dx, with its lanes,
    chunks and launchers, but no forward pass, no cache and no weight gradient."""
    gemm = gemm or xp.matmul
    check_backward_input(dy, w, x_shape, strides, pads)
    n, c_out = x_shape[0], w.shape[3]
    geo = geometry(x_shape, w.shape, strides, pads)
    rows, k = geo[6] * geo[7], w.shape[0] * w.shape[1] * w.shape[2]
    dy2 = xp.ascontiguousarray(dy).reshape(n * rows, c_out)
    w2 = xp.ascontiguousarray(w).reshape(k, c_out)
    dx = xp.empty(tuple(x_shape), dy.dtype)
    pointwise = _pointwise(geo, pads)

    def lane(first, last):
        per = _images_per_chunk(last - first, rows, k * dy.dtype.itemsize, chunk_bytes)
        dcols = None if pointwise else lane_buffer(xp, "dcols", (per * rows, k), dy.dtype)
        for start in range(first, last, per):
            stop = min(last, start + per)
            _fold_chunk(dy2[start * rows:stop * rows], w2, dcols, geo, start, stop, dx, gemm, col2im)

    _run(lanes, [lambda r=r: lane(*r) for r in lane_ranges(n, 2 * n * rows * k * c_out, lanes)])
    return dx


def matmul(a, b, *, xp, lanes=None, gemm=None):
    """a @ b, its rows split between the lanes when the product is big enough."""
    gemm = gemm or xp.matmul
    ranges = lane_ranges(a.shape[0], 2 * a.shape[0] * a.shape[1] * b.shape[1], lanes)
    if len(ranges) == 1:
        return gemm(a, b)
    out = xp.empty((a.shape[0], b.shape[1]), xp.result_type(a, b))
    _run(lanes, [lambda r=r: gemm(a[r[0]:r[1]], b, out=out[r[0]:r[1]]) for r in ranges])
    return out


# ----- convolution + activation + max-pooling, fused --------------------------------------
# A Conv2D followed by a MaxPooling2D whose windows do not overlap runs band by band: a band is
# the conv rows under one row of pooling windows (see numba_conv's band kernels). For each chunk
# of bands: unfold, one GEMM, then bias + activation + pooling while the GEMM's output is still
# in cache. Neither the convolution's output nor its gradient ever exists whole.
# The backend passes its band launchers, each called on chunk q0..q1-1 of the bands:
#   im2col_bands(x, geometry, pool, hp, wc, q0, q1, cols)       unfold the bands' windows into cols
#   pool_bands(z, bias, relu, pool, hp, wp, q0, q1, y, argmax)  y = maxpool(act(z + bias)), argmax if kept
#   unpool_bands(dy, y, argmax, relu, pool, hp, wp, q0, q1, dz) dz = dy through the pooling and act
#   col2im_bands(dcols, geometry, pool, hp, wc, q0, q1, dx)     dx += the bands' windows folded back
# and bias_gradient(dy, y, relu): db from the pooled arrays, once per call.

def pooled_geometry(geo, pool):
    """(hp, wp, wc): pooled rows and columns, and conv columns the pooling windows cover."""
    hp, wp = geo[6] // pool[0], geo[7] // pool[1]
    return hp, wp, wp * pool[1]


def _band_plan(x, w, strides, pads, pool, chunk_bytes):
    """(geometry, (hp, wp, wc), k, rows per band, bands per chunk) of a fused call."""
    geo = geometry(x.shape, w.shape, strides, pads)
    hp, wp, wc = pooled_geometry(geo, pool)
    k = w.shape[0] * w.shape[1] * w.shape[2]
    band_rows = pool[0] * wc
    row_bytes = (k + w.shape[3]) * x.dtype.itemsize
    per = min(max(x.shape[0] * hp, 1), max(1, chunk_bytes // max(1, band_rows * row_bytes)))
    return geo, (hp, wp, wc), k, band_rows, per


def band_chunks(first_band, last_band, per):
    """(q0, q1) chunks of bands first_band..last_band-1, at most ``per`` bands each and as
    even as that allows: 1600 rows at 1480 per chunk go as 800 + 800, not 1480 + a 120-row
    tail whose small GEMM runs slower per row."""
    bands = last_band - first_band
    count = -(-bands // per)
    for i in range(count):
        yield first_band + bands * i // count, first_band + bands * (i + 1) // count


def lane_ranges(n, flops, lanes):
    """Image ranges of the lanes a batch of ``n`` splits into: two halves when ``lanes`` (a
    backend's lane runner) is given and the work is at least ``lanes.min_flops``, else one.
    The split depends on the work only, never on the threads that run it."""
    if lanes is None or n < 2 or flops < lanes.min_flops:
        return [(0, n)]
    half = (n + 1) // 2
    return [(0, half), (half, n)]


def _run(lanes, tasks):
    if len(tasks) == 1:
        return [tasks[0]()]
    return lanes.run(tasks)


def conv2d_maxpool_forward(x, w, b, activation, strides, pads, pool, training, *, xp, im2col_bands, pool_bands,
                           chunk_bytes, lanes=None, gemm=None):
    """maxpool(activation(conv(x, w) + b)), activation 'relu' or 'linear'. Returns (y, cache)."""
    gemm = gemm or xp.matmul
    x = xp.ascontiguousarray(x)
    n, c_out = x.shape[0], w.shape[3]
    geo, (hp, wp, wc), k, band_rows, per = _band_plan(x, w, strides, pads, pool, chunk_bytes)
    w2 = xp.ascontiguousarray(w.reshape(k, c_out))
    bias = b if b is not None else xp.zeros(c_out, x.dtype)
    relu = activation == "relu"
    y = xp.empty((n, hp, wp, c_out), x.dtype)
    argmax = xp.empty(y.shape, xp.int32) if training else None

    def lane(first, last):
        cols = lane_buffer(xp, "cols", (per * band_rows, k), x.dtype)
        z = lane_buffer(xp, "z", (per * band_rows, c_out), x.dtype)
        for q0, q1 in band_chunks(first * hp, last * hp, per):
            m = (q1 - q0) * band_rows
            im2col_bands(x, geo, pool, hp, wc, q0, q1, cols[:m])
            gemm(cols[:m], w2, out=z[:m])
            pool_bands(z[:m], bias, relu, pool, hp, wp, q0, q1, y, argmax)

    ranges = lane_ranges(n, 2 * n * hp * band_rows * k * c_out, lanes)
    _run(lanes, [lambda r=r: lane(*r) for r in ranges])
    return y, (x, w, b is not None, relu, strides, pads, pool, y, argmax)


def conv2d_maxpool_backward(dy, cache, need_dx, *, xp, im2col_bands, unpool_bands, col2im_bands, bias_gradient,
                            chunk_bytes, lanes=None, gemm=None):
    """(dx or None, dw, db or None) for conv2d_maxpool_forward, band chunk by band chunk."""
    gemm = gemm or xp.matmul
    x, w, has_bias, relu, strides, pads, pool, y, argmax = cache
    if argmax is None:
        raise ValueError("conv2d_maxpool_backward needs the cache of a training call (training=True), "
                         "got the cache of an inference call, which keeps no argmax")
    n, c_out = x.shape[0], w.shape[3]
    geo, (hp, wp, wc), k, band_rows, per = _band_plan(x, w, strides, pads, pool, chunk_bytes)
    dy = xp.ascontiguousarray(dy)
    w2 = w.reshape(k, c_out)
    dx = xp.zeros(x.shape, x.dtype) if need_dx else None

    def lane(first, last):
        """This lane's images' dx (written in place) and its share of dw."""
        cols = lane_buffer(xp, "cols", (per * band_rows, k), x.dtype)
        dz = lane_buffer(xp, "z", (per * band_rows, c_out), x.dtype)
        dcols = lane_buffer(xp, "dcols", (per * band_rows, k), x.dtype) if need_dx else None
        partial = lane_buffer(xp, "dw", (k, c_out), x.dtype)
        dw = xp.zeros((k, c_out), x.dtype)
        for q0, q1 in band_chunks(first * hp, last * hp, per):
            m = (q1 - q0) * band_rows
            im2col_bands(x, geo, pool, hp, wc, q0, q1, cols[:m])
            unpool_bands(dy, y, argmax, relu, pool, hp, wp, q0, q1, dz[:m])
            gemm(cols[:m].T, dz[:m], out=partial)
            dw += partial
            if need_dx:
                gemm(dz[:m], w2.T, out=dcols[:m])
                col2im_bands(dcols[:m], geo, pool, hp, wc, q0, q1, dx)
        return dw

    ranges = lane_ranges(n, 2 * n * hp * band_rows * k * c_out * (2 if need_dx else 1), lanes)
    parts = _run(lanes, [lambda r=r: lane(*r) for r in ranges])
    dw = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    db = bias_gradient(dy, y, relu) if has_bias else None
    return dx, dw.reshape(w.shape), db
