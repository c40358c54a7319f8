"""Reference answers to notebook 10's exercises."""
import numpy as np


def conv_transpose(x, w, stride):
    """C^T x for the 'valid' convolution C with kernel w (kh, kw, in, out) and this stride:
    x (N, Ho, Wo, out) -> (N, (Ho - 1) stride + kh, (Wo - 1) stride + kw, in)."""
    n, ho, wo, _ = x.shape
    kh, kw, c_in, _ = w.shape
    out = np.zeros((n, (ho - 1) * stride + kh, (wo - 1) * stride + kw, c_in))
    for i in range(ho):
        for j in range(wo):
            # each input pixel spreads the kernel, scaled by its values, over its window
            spread = np.einsum("nf,abcf->nabc", x[:, i, j], w)                  # (N, kh, kw, in)
            out[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :] += spread
    return out
