"""Optimizers with Keras's update rules and defaults. Each updates weights in place."""
import math

import numpy as np

from . import backend


class Optimizer:
    """Base class: holds the learning rate, the step count and one slot list per weight."""

    def __init__(self, learning_rate=0.001, name=None, **kwargs):
        if "lr" in kwargs:   # the Keras 2 spelling, RMSprop(lr=1e-4)
            learning_rate = kwargs.pop("lr")
        if "decay" in kwargs and kwargs["decay"] == 0:
            kwargs.pop("decay")
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.slots = None
        self._kernels = None

    lr = property(lambda self: self.learning_rate,
                  lambda self, value: setattr(self, "learning_rate", float(value)))

    slot_names = ()

    def apply_gradients(self, params, grads, backend_=None):
        """One update of every array in ``params`` (in place) from ``grads``, using the
        kernels of ``backend_`` (the backend the arrays live on; default: the current one)."""
        self._kernels = backend_ or backend.current()
        if self.slots is None:
            self.slots = [{name: np.zeros_like(p) for name in self.slot_names} for p in params]
        if len(self.slots) != len(params):
            raise ValueError(f"{type(self).__name__} was set up for {len(self.slots)} weights, "
                             f"got {len(params)}")
        self.iterations += 1
        for p, g, slot in zip(params, grads, self.slots):
            self.update(p, g, slot)

    def update(self, p, g, slot):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "learning_rate": self.learning_rate}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """v = momentum*v - lr*g; w += v (Nesterov: w += momentum*v - lr*g)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.slot_names = ("velocity",) if momentum else ()

    def update(self, p, g, slot):
        lr = self.learning_rate
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

    def update(self, p, g, slot):
        s = slot["velocity"]
        if not self.centered and not self.momentum:   # the common case, in one fused kernel
            self._kernels.rmsprop_update(p, g, s, self.learning_rate, self.rho, self.epsilon)
            return
        s *= self.rho
        s += (1 - self.rho) * (g * g)
        denominator = s + self.epsilon
        if self.centered:
            a = slot["average_gradient"]
            a *= self.rho
            a += (1 - self.rho) * g
            denominator -= a * a
        step = self.learning_rate * g / np.sqrt(denominator)
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
            raise NotImplementedError("Adam(amsgrad=True) is not supported")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, p, g, slot):
        t = self.iterations
        lr_t = self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        self._kernels.adam_update(p, g, slot["m"], slot["v"], lr_t, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


_CLASSES = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def get(identifier):
    """An Optimizer from a name ('sgd', 'rmsprop', 'adam'; any case) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _CLASSES:
        return _CLASSES[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; expected one of {sorted(_CLASSES)} "
                     f"or an Optimizer instance")


def get_class(class_name):
    """The optimizer class called ``class_name`` (used when loading model files)."""
    classes = {cls.__name__: cls for cls in (SGD, RMSprop, Adam)}
    if class_name not in classes:
        raise ValueError(f"unknown optimizer class {class_name!r}; expected one of {sorted(classes)}")
    return classes[class_name]
