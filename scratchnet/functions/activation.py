"""a = activation(z + bias): the bias and the activation that end Dense, Conv2D and
friends. The backend applies the bias and the activations it has a kernel for ('linear',
'relu') in one fused pass over z; any other activation is applied after, by NumPy."""
import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import activations


@dataclass(frozen=True)
class Plan:
    """How one call applies its activation: ``kernel`` is the name the fused kernel applies
    ('linear' or 'relu'), ``after`` the Activation applied next (or None)."""
    kernel: str
    after: object


class ActivationContext(NamedTuple):
    """What ``backward`` needs of a call: how it applied the activation, its output ``a``,
    whether a bias was added, the backend whose kernels ran, and the activation's input
    (kept only for an activation whose derivative needs it: swish, gelu, ...)."""
    how: Plan
    output: object
    has_bias: bool
    backend: object
    input: object = None


@functools.lru_cache(maxsize=None)
def plan(activation, backend):
    """The Plan for ``activation`` on ``backend`` (worked out once per pair)."""
    if activation is None or activation.name == "linear":
        return Plan("linear", None)
    if activation.name in backend.kernel_activations:
        return Plan(activation.name, None)
    return Plan("linear", activation)


def forward(z, bias, activation, backend, input_=None):
    """(a, ctx). ``z`` may be overwritten: pass a fresh array, or ``input_`` (the layer's own
    input, which must never be changed) so that z is copied when it shares memory with it."""
    how = plan(activation, backend)
    if bias is not None or how.kernel != "linear":
        shared = input_ is not None and (z is input_ or np.may_share_memory(z, input_))
        if shared and bias is None and how.kernel == "relu":   # one pass into a new array, not a copy and a pass
            z = backend.xp.maximum(z, z.dtype.type(0))
        else:
            z = backend.bias_activation(z.copy() if shared else z, bias, how.kernel)
    a = how.after.forward(z) if how.after is not None else z
    kept = z if how.after is not None and how.after.needs_input else None
    return a, ActivationContext(how, a, bias is not None, backend, kept)


def backward(da, ctx):
    """(dz, dbias or None) from dL/da and the ActivationContext of the call."""
    how, a = ctx.how, ctx.output
    if how.after is not None:
        da = how.after.gradient(da, a, ctx.input)
    if ctx.has_bias or how.kernel != "linear":
        return ctx.backend.bias_activation_backward(da, a, how.kernel, ctx.has_bias)
    return da, None


def linear():
    """The identity activation."""
    return activations.get("linear")
