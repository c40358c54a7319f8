"""The update rules, with Keras 3's formulas, defaults and slot names. Each updates a weight
in place from its gradient ``g`` and the step's learning rate ``lr``; ``self.iterations`` is
the number of this update (1 for the first)."""
import math

import numpy as np

from .base import Optimizer


class SGD(Optimizer):
    """v = momentum*v - lr*g; w += v (Nesterov: w += momentum*v - lr*g)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.slot_names = ("velocity",) if momentum else ()

    def update(self, p, g, slot, lr):
        if not self.momentum:
            p -= lr * g
            return
        v = slot["velocity"]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            p += self.momentum * v - lr * g
        else:
            p += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """s = rho*s + (1-rho)*g^2; w -= lr * g / sqrt(s + epsilon) (with optional momentum)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), epsilon, centered
        self.slot_names = ("velocity",) + (("momentum",) if momentum else ()) + \
                          (("average_gradient",) if centered else ())

    def update(self, p, g, slot, lr):
        s = slot["velocity"]
        if not self.centered and not self.momentum:   # the common case, in one fused kernel
            self._kernels.rmsprop_update(p, g, s, lr, self.rho, self.epsilon)
            return
        s *= self.rho
        s += (1 - self.rho) * (g * g)
        denominator = s + self.epsilon
        if self.centered:
            a = slot["average_gradient"]
            a *= self.rho
            a += (1 - self.rho) * g
            denominator -= a * a
        step = lr * g / np.sqrt(denominator)
        if self.momentum:
            m = slot["momentum"]
            m *= self.momentum
            m += step
            step = m
        p -= step

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """m, v: moving averages of g and g^2; w -= lr_t * m / (sqrt(v) + epsilon) with
    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        if amsgrad:
            raise ValueError(f"{type(self).__name__}: scratchnet has no AMSGrad variant (amsgrad=True); "
                             f"Adam without it is the nearest")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, p, g, slot, lr):
        t = self.iterations
        lr_t = lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        self._kernels.adam_update(p, g, slot["m"], slot["v"], lr_t, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": False}


class AdamW(Adam):
    """Adam with decoupled weight decay (w -= w * weight_decay * lr before each update;
    Keras's default weight_decay=0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number, got None (use Adam for none)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat), as Keras: the momentum schedule
    u_t = beta_1 (1 - 0.5 * 0.96^t) and its running product."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.u_product = 1.0

    def _u(self, t):
        return self.beta_1 * (1 - 0.5 * 0.96 ** t)

    def before_updates(self):
        self.u_product *= self._u(self.iterations)

    def scalar_state(self):
        return {"u_product": self.u_product}

    def set_scalar_state(self, state):
        self.u_product = float(state.get("u_product", 1.0))

    def update(self, p, g, slot, lr):
        t = self.iterations
        u_t, u_next = self._u(t), self._u(t + 1)
        m, v = slot["m"], slot["v"]
        m += (g - m) * p.dtype.type(1 - self.beta_1)
        v += (g * g - v) * p.dtype.type(1 - self.beta_2)
        m_hat = m * p.dtype.type(u_next / (1 - self.u_product * u_next)) + \
            g * p.dtype.type((1 - u_t) / (1 - self.u_product))
        v_hat = v / p.dtype.type(1 - self.beta_2 ** t)
        p -= m_hat * p.dtype.type(lr) / (np.sqrt(v_hat) + p.dtype.type(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """a += g^2; w -= lr * g / sqrt(a + epsilon), a starting at initial_accumulator_value."""

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def new_slots(self, p):
        return {"accumulator": np.full_like(p, self.initial_accumulator_value)}

    def update(self, p, g, slot, lr):
        a = slot["accumulator"]
        a += g * g
        p -= p.dtype.type(lr) * g / np.sqrt(a + p.dtype.type(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Zeiler's rule, as Keras: a = rho a + (1-rho) g^2; d = -sqrt(b + eps) / sqrt(a + eps) g;
    b = rho b + (1-rho) d^2; w += lr d (Keras's default learning_rate=0.001)."""

    slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update(self, p, g, slot, lr):
        t = p.dtype.type
        a, b = slot["accumulated_grad"], slot["accumulated_delta_var"]
        a *= t(self.rho)
        a += t(1 - self.rho) * (g * g)
        delta = -np.sqrt(b + t(self.epsilon)) * g / np.sqrt(a + t(self.epsilon))
        b *= t(self.rho)
        b += t(1 - self.rho) * (delta * delta)
        p += t(lr) * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adam with the infinity norm: m = b1 m + (1-b1) g; u = max(b2 u, |g|);
    w -= lr m / ((1 - b1^t)(u + epsilon))."""

    slot_names = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, p, g, slot, lr):
        t = p.dtype.type
        m, u = slot["m"], slot["u"]
        m += (g - m) * t(1 - self.beta_1)
        np.maximum(u * t(self.beta_2), np.abs(g), out=u)
        p -= t(lr) * m / (t(1 - self.beta_1 ** self.iterations) * (u + t(self.epsilon)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
