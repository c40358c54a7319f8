"""Hypothesis strategies for window geometries: the shapes of the issue's test matrix."""
from hypothesis import assume, strategies as st

from scratchnet.geometry import padding_amounts


@st.composite
def window_case(draw, max_batch=4, max_channels=4, max_size=9, max_kernel=5, max_stride=3):
    """(n, h, w, c, (kh, kw), (sh, sw), padding, pads) with at least one output position."""
    n = draw(st.integers(1, max_batch))
    c = draw(st.integers(1, max_channels))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    strides = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    padding = draw(st.sampled_from(["valid", "same"]))
    if padding == "valid":
        assume(kernel[0] <= h and kernel[1] <= w)
    pads = padding_amounts(h, kernel[0], strides[0], padding) + padding_amounts(w, kernel[1], strides[1], padding)
    return n, h, w, c, kernel, strides, padding, pads


@st.composite
def cut_window_case(draw, **sizes):
    """(n, h, w, c, (kh, kw), (sh, sw), pads): a window_case whose bottom and right pads are
    lowered by up to stride + kernel - 1 (keeping one window), so that they are often negative,
    as a transposed convolution's are: the last rows or columns are then in no window."""
    n, h, w, c, kernel, strides, _, (pt, pb, pl, pr) = draw(window_case(**sizes))
    cut_b = draw(st.integers(0, min(h + pt + pb - kernel[0], strides[0] + kernel[0] - 1)))
    cut_r = draw(st.integers(0, min(w + pl + pr - kernel[1], strides[1] + kernel[1] - 1)))
    return n, h, w, c, kernel, strides, (pt, pb - cut_b, pl, pr - cut_r)
