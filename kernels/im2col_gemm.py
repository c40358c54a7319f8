"""Convolution as im2col + GEMM, in chunks of images, shared by the CPU and GPU backends.

The backends supply the array module (NumPy or CuPy) and two launchers,
``im2col(x, geometry, first, last, cols)`` and ``col2im(dcols, geometry, first, last, dx)``,
that unfold images first..last-1 into rows of ``cols`` and fold them back. The unfolded
matrix lives in a buffer the layer keeps (``workspace``) of at most ``chunk_bytes``; a
batch larger than that goes through in chunks, and its backward pass unfolds each chunk
again instead of keeping hundreds of MB alive between forward and backward.
"""
from .numpy_ref import output_size


def buffer(xp, workspace, name, shape, dtype):
    """A view of a reusable buffer in ``workspace``: grows when needed, never shrinks."""
    size = 1
    for d in shape:
        size *= int(d)
    buf = workspace.get(name)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = workspace[name] = xp.empty(size, dtype)
    return buf[:size].reshape(shape)


def geometry(x_shape, w_shape, strides, pads):
    """(kh, kw, sh, sw, pad_top, pad_left, ho, wo): everything a launcher needs."""
    kh, kw = w_shape[0], w_shape[1]
    ho = output_size(x_shape[1], kh, strides[0], pads[0], pads[1])
    wo = output_size(x_shape[2], kw, strides[1], pads[2], pads[3])
    return (kh, kw, strides[0], strides[1], pads[0], pads[2], ho, wo)


def _images_per_chunk(n, rows_per_image, row_bytes, chunk_bytes):
    return min(n, max(1, chunk_bytes // max(1, rows_per_image * row_bytes)))


def conv2d_forward(x, w, strides, pads, workspace, *, xp, im2col, chunk_bytes):
    """y = conv(x, w). Returns (y, cache)."""
    x = xp.ascontiguousarray(x)
    n, c_out = x.shape[0], w.shape[3]
    geo = geometry(x.shape, w.shape, strides, pads)
    rows, k = geo[6] * geo[7], w.shape[0] * w.shape[1] * w.shape[2]
    workspace = {} if workspace is None else workspace
    w2 = xp.ascontiguousarray(w.reshape(k, c_out))
    y = xp.empty((n * rows, c_out), x.dtype)
    per = _images_per_chunk(n, rows, k * x.dtype.itemsize, chunk_bytes)
    cols = buffer(xp, workspace, "cols", (per * rows, k), x.dtype)
    for first in range(0, n, per):
        last = min(n, first + per)
        part = cols[:(last - first) * rows]
        im2col(x, geo, first, last, part)
        xp.matmul(part, w2, out=y[first * rows:last * rows])
    # one chunk: backward reuses cols as they are; several: it unfolds each chunk again
    kept = cols if per >= n else None
    return y.reshape(n, geo[6], geo[7], c_out), (x, w, strides, pads, kept)


def conv2d_backward(dy, cache, need_dx, workspace, *, xp, im2col, col2im, chunk_bytes):
    """(dx or None, dw) for conv2d_forward, chunk by chunk as in the forward pass."""
    x, w, strides, pads, kept = cache
    n, c_out = x.shape[0], w.shape[3]
    geo = geometry(x.shape, w.shape, strides, pads)
    rows, k = geo[6] * geo[7], w.shape[0] * w.shape[1] * w.shape[2]
    workspace = {} if workspace is None else workspace
    dy2 = xp.ascontiguousarray(dy).reshape(n * rows, c_out)
    w2 = w.reshape(k, c_out)
    dx = xp.empty(x.shape, x.dtype) if need_dx else None
    dw = xp.zeros((k, c_out), x.dtype)
    per = n if kept is not None else _images_per_chunk(n, rows, k * x.dtype.itemsize, chunk_bytes)
    cols = kept if kept is not None else buffer(xp, workspace, "cols", (per * rows, k), x.dtype)
    dcols = buffer(xp, workspace, "dcols", (per * rows, k), x.dtype) if need_dx else None
    partial = buffer(xp, workspace, "dw", (k, c_out), x.dtype) if per < n else dw
    for first in range(0, n, per):
        last = min(n, first + per)
        dy_part = dy2[first * rows:last * rows]
        part = cols[:(last - first) * rows]
        if kept is None:
            im2col(x, geo, first, last, part)
        xp.matmul(part.T, dy_part, out=partial)
        if partial is not dw:
            dw += partial
        if need_dx:
            dpart = dcols[:(last - first) * rows]
            xp.matmul(dy_part, w2.T, out=dpart)
            col2im(dpart, geo, first, last, dx)
    return dx, dw.reshape(w.shape)
