"""CUDA kernels (numba.cuda) for convolution data movement: im2col and col2im.

One thread per output element; col2im gathers (each input pixel sums the window
entries that read it) instead of scattering, so it needs no atomics and its sums
have a fixed order. Launched on CuPy arrays through __cuda_array_interface__, or on
NumPy arrays under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1).
"""
from numba import cuda

THREADS = 256


def blocks(n):
    return max(1, (n + THREADS - 1) // THREADS)


@cuda.jit
def im2col(x, kh, kw, sh, sw, pt, pl, ho, wo, first, cols):
    # cols[((b - first) * ho + i) * wo + j, (di * kw + dj) * c + ch] = xpad[b, i*sh + di, j*sw + dj, ch]
    t = cuda.grid(1)
    rows, k = cols.shape
    if t >= rows * k:
        return
    row, col = t // k, t % k
    c = x.shape[3]
    ch = col % c
    dj = (col // c) % kw
    di = col // (c * kw)
    j = row % wo
    i = (row // wo) % ho
    b = first + row // (wo * ho)
    hi = i * sh + di - pt
    wj = j * sw + dj - pl
    if 0 <= hi < x.shape[1] and 0 <= wj < x.shape[2]:
        cols[row, col] = x[b, hi, wj, ch]
    else:
        cols[row, col] = 0


@cuda.jit
def col2im(dcols, kh, kw, sh, sw, pt, pl, ho, wo, first, last, dx, zero):
    # dx[b, h, w, ch] = sum of dcols over the windows that read xpad[b, h+pt, w+pl, ch], b in first..last-1
    t = cuda.grid(1)
    n_images = last - first
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    if t >= n_images * h * w * c:
        return
    ch = t % c
    col = (t // c) % w
    row = (t // (c * w)) % h
    b = first + t // (c * w * h)
    total = zero   # typed 0 of dx's dtype: float32 sums stay float32
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
            total += dcols[((b - first) * ho + i) * wo + j, (di * kw + dj) * c + ch]
    dx[b, row, col, ch] = total


@cuda.jit
def depthwise_forward(x, k2, kh, kw, sh, sw, pt, pl, mult, y, zero):
    # y[b, i, j, ch*mult + m] = sum over the window of x[b, hi, wj, ch] * k2[di*kw + dj, ch*mult + m]
    t = cuda.grid(1)
    n, ho, wo, cm = y.shape
    if t >= n * ho * wo * cm:
        return
    q = t % cm
    j = (t // cm) % wo
    i = (t // (cm * wo)) % ho
    b = t // (cm * wo * ho)
    ch = q // mult
    total = zero
    for di in range(kh):
        hi = i * sh + di - pt
        if hi < 0 or hi >= x.shape[1]:
            continue
        for dj in range(kw):
            wj = j * sw + dj - pl
            if 0 <= wj < x.shape[2]:
                total += x[b, hi, wj, ch] * k2[di * kw + dj, q]
    y[b, i, j, q] = total


@cuda.jit
def depthwise_backward_input(dy, k2, kh, kw, sh, sw, pt, pl, mult, dx, zero):
    # dx[b, h, w, ch] = sum over the windows reading this pixel and m of dy[..., ch*mult + m] * k2[di*kw + dj, ch*mult + m]
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
            for m in range(mult):
                total += dy[b, i, j, ch * mult + m] * k2[di * kw + dj, ch * mult + m]
    dx[b, row, col, ch] = total
