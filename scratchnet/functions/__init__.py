"""Stateless differentiable functions: the math under the layers.

Every function here is a pair

    y, ctx = forward(x, params, config, training=False)
    dx, dparams = backward(dy, ctx, need_dx=True)

``params`` is a dict of arrays (a layer's weights), ``config`` a small frozen dataclass
(strides, padding, activation, the backend whose kernels to use...). ``ctx`` holds what
the backward pass of *that call* needs, and nothing else remembers the call: a layer
owns parameters and configuration only, so one model can serve many threads, and one
layer can be called twice in a graph. A context with several parts is a NamedTuple whose
fields say what each is (``conv.ConvContext``, ``normalization.NormContext``...); what a
kernel keeps for its own backward pass stays opaque inside it. ``dparams`` has the names
of ``params``.
"""
