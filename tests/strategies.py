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
