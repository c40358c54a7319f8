"""CUDA kernels (numba.cuda) for max-pooling with a stored argmax.

Forward: one thread per output element. Backward gathers: one thread per input pixel
sums dy over the windows whose argmax names that pixel (no atomics, fixed order).
The window search is written out here and in cuda_conv.col2im rather than shared as a
device function: compiling a kernel that calls a device function to PTX makes numba-cuda
initialise the CUDA driver, which a machine without a GPU cannot do."""
from numba import cuda


@cuda.jit
def maxpool_forward(x, kh, kw, sh, sw, pt, pl, y, argmax, lowest):
    # y = max over each window (padding never wins); argmax = row-major index of the first max
    t = cuda.grid(1)
    n, ho, wo, c = y.shape
    if t >= n * ho * wo * c:
        return
    ch = t % c
    j = (t // c) % wo
    i = (t // (c * wo)) % ho
    b = t // (c * wo * ho)
    best = lowest
    best_at = 0
    for di in range(kh):
        hi = i * sh + di - pt
        if hi < 0 or hi >= x.shape[1]:
            continue
        for dj in range(kw):
            wj = j * sw + dj - pl
            if 0 <= wj < x.shape[2]:
                v = x[b, hi, wj, ch]
                if v > best:
                    best = v
                    best_at = di * kw + dj
    y[b, i, j, ch] = best
    argmax[b, i, j, ch] = best_at


@cuda.jit
def maxpool_backward(dy, argmax, kh, kw, sh, sw, pt, pl, dx, zero):
    # dx[b, h, w, ch] = sum of dy over the windows whose argmax is this pixel
    t = cuda.grid(1)
    n, h, w, c = dx.shape
    if t >= n * h * w * c:
        return
    ch = t % c
    col = (t // c) % w
    row = (t // (c * w)) % h
    b = t // (c * w * h)
    ho, wo = dy.shape[1], dy.shape[2]
    total = zero
    for di in range(kh):
        top = row + pt - di
        if top < 0 or top % sh != 0:
            continue
        i = top // sh
        if i >= ho:
            continue
        for dj in range(kw):
            left = col + pl - dj
            if left < 0 or left % sw != 0:
                continue
            j = left // sw
            if j < wo and argmax[b, i, j, ch] == di * kw + dj:
                total += dy[b, i, j, ch]
    dx[b, row, col, ch] = total


@cuda.jit
def avgpool_forward(x, kh, kw, sh, sw, pt, pl, y, zero, one):
    # y = mean over each window of the real pixels it covers (padding not counted)
    t = cuda.grid(1)
    n, ho, wo, c = y.shape
    if t >= n * ho * wo * c:
        return
    ch = t % c
    j = (t // c) % wo
    i = (t // (c * wo)) % ho
    b = t // (c * wo * ho)
    total = zero
    count = zero
    for di in range(kh):
        hi = i * sh + di - pt
        if hi < 0 or hi >= x.shape[1]:
            continue
        for dj in range(kw):
            wj = j * sw + dj - pl
            if 0 <= wj < x.shape[2]:
                total += x[b, hi, wj, ch]
                count += one
    y[b, i, j, ch] = total / count


@cuda.jit
def avgpool_backward(dy, kh, kw, sh, sw, pt, pl, dx, zero, one):
    # dx[b, h, w, ch] = sum over the windows covering this pixel of dy / (real pixels in the window)
    t = cuda.grid(1)
    n, h, w, c = dx.shape
    if t >= n * h * w * c:
        return
    ch = t % c
    col = (t // c) % w
    row = (t // (c * w)) % h
    b = t // (c * w * h)
    ho, wo = dy.shape[1], dy.shape[2]
    total = zero
    for di in range(kh):
        top = row + pt - di
        if top < 0 or top % sh != 0:
            continue
        i = top // sh
        if i >= ho:
            continue
        for dj in range(kw):
            left = col + pl - dj
            if left < 0 or left % sw != 0:
                continue
            j = left // sw
            if j >= wo:
                continue
            count = zero
            for ei in range(kh):
                hi = i * sh + ei - pt
                if 0 <= hi < h:
                    for ej in range(kw):
                        wj = j * sw + ej - pl
                        if 0 <= wj < w:
                            count += one
            total += dy[b, i, j, ch] / count
    dx[b, row, col, ch] = total
