"""The Optimizer base class: the learning rate (a number or a schedule), the step count, one
slot dict per weight, and what Keras 3 does around every update rule: loss-scale division,
gradient clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``) and decoupled weight decay
(``weight_decay``: w -= w * weight_decay * learning_rate before the update), in that order;
after the update, each weight's constraint (``kernel_constraint=`` of its layer), as Keras 3's
``apply`` does."""
import re

import numpy as np

from .. import backend
from ..arrays import module_of
from . import schedules as schedules_module


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class Optimizer:
    """Base class of the update rules; subclasses give ``slot_names`` and ``update``."""

    slot_names = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        who = type(self).__name__
        if "lr" in kwargs:   # the Keras 2 spelling, RMSprop(lr=1e-4)
            learning_rate = kwargs.pop("lr")
        if "decay" in kwargs and kwargs["decay"] == 0:
            kwargs.pop("decay")
        if kwargs:
            raise TypeError(f"{who} got unexpected arguments {sorted(kwargs)}")
        if use_ema:
            raise ValueError(f"{who}: scratchnet has no moving average of the weights (use_ema=True); train "
                             f"without it")
        if gradient_accumulation_steps:
            raise ValueError(f"{who}: scratchnet has no gradient accumulation (gradient_accumulation_steps="
                             f"{gradient_accumulation_steps!r}); use a larger batch_size instead")
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise ValueError(f"{who}: only one of clipnorm, clipvalue and global_clipnorm can be set; got {given}")
        for key, value in list(clips.items()) + [("weight_decay", weight_decay),
                                                 ("loss_scale_factor", loss_scale_factor)]:
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{who}: {key} must be a non-negative number or None, got {value!r}")
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay, self.loss_scale_factor = weight_decay, loss_scale_factor
        self.use_ema, self.ema_momentum, self.ema_overwrite_frequency = False, ema_momentum, ema_overwrite_frequency
        self.gradient_accumulation_steps = None
        self._learning_rate = None
        self.learning_rate = learning_rate
        self.name = name or _snake_case(who)
        self.iterations = 0
        self.slots = None
        self._kernels = None
        self._constraints = {}      # id(weight) -> (weight, constraint): what set_constraints was told

    # ----- the learning rate ----------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate of the next update (a schedule's value at ``iterations``)."""
        if isinstance(self._learning_rate, schedules_module.LearningRateSchedule):
            return float(self._learning_rate(self.iterations))
        if callable(self._learning_rate):
            return float(self._learning_rate())
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        who = type(self).__name__
        if isinstance(value, dict):
            value = schedules_module.deserialize(value)
        if isinstance(value, schedules_module.LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules_module.LearningRateSchedule):
            raise TypeError(f"{who} was made with a learning-rate schedule ({self._learning_rate!r}), so its "
                            f"learning rate cannot be set to a number; make it with a number to change it by hand")
        if not (isinstance(value, (int, float, np.floating)) and value > 0):
            raise ValueError(f"{who}: learning_rate must be a positive number or a schedule, got {value!r}")
        self._learning_rate = float(value)

    lr = property(lambda self: self.learning_rate, lambda self, value: setattr(self, "learning_rate", value))

    @property
    def schedule(self):
        """The LearningRateSchedule, or None for a fixed learning rate."""
        return self._learning_rate if isinstance(self._learning_rate, schedules_module.LearningRateSchedule) \
            else None

    # ----- one step -----------------------------------------------------------------------------------
    strategy = None    # how many processes share each step: set by distributed.DistributedOptimizer

    @property
    def communicator(self):
        """The ranks a DistributedOptimizer shares steps with, or None."""
        return getattr(self.strategy, "communicator", None)

    def apply_gradients(self, params, grads, backend_=None, reduced=False):
        """One update of every array in ``params`` (in place) from ``grads``, using the
        kernels of ``backend_`` (the backend the arrays live on; default: the current one).
        An optimizer marked by ``distributed.DistributedOptimizer`` first averages ``grads``
        over the ranks, unless they are ``reduced`` already (as fit's are)."""
        if not reduced and self.strategy is not None and self.strategy.active:
            grads = self.strategy.average_gradients(grads)
        self._kernels = backend_ or backend.current()
        if self.slots is None:
            self.slots = [self.new_slots(p) for p in params]
        if len(self.slots) != len(params):
            raise ValueError(f"{type(self).__name__} was set up for {len(self.slots)} weights, "
                             f"got {len(params)}")
        grads = self._clip(self._unscaled(grads))
        lr = self.learning_rate              # at the step count before this update, as Keras
        if self.weight_decay:
            for p in params:
                p -= p * p.dtype.type(self.weight_decay * lr)
        self.iterations += 1
        self.before_updates()
        for p, g, slot in zip(params, grads, self.slots):
            self.update(p, g, slot, lr)
        if self._constraints:
            for p in params:
                entry = self._constraints.get(id(p))
                if entry is not None and entry[0] is p:
                    p[...] = entry[1](p)

    def set_constraints(self, params, constraints):
        """Project each weight of ``params`` by its constraint (or none, for None) after every
        update from now on, as Keras's optimizer does with its variables' constraints; a
        model's training step (built-in or one's own through ``model.trained_weights()``)
        tells its optimizer its weights' constraints this way."""
        self._constraints = {id(p): (p, c) for p, c in zip(params, constraints) if c is not None}

    def new_slots(self, p):
        """The slots of weight ``p`` before its first update (zeros, where ``p`` lives)."""
        return {name: np.zeros_like(p) for name in self.slot_names}

    def scalar_state(self):
        """{name: number} of the state besides the step count and the slots (saved with them)."""
        return {}

    def set_scalar_state(self, state):
        """Restore what scalar_state gave."""

    def before_updates(self):
        """Work shared by all of one step's updates (Nadam's momentum-schedule product)."""

    def update(self, p, g, slot, lr):
        raise NotImplementedError

    def _unscaled(self, grads):
        if not self.loss_scale_factor:
            return grads
        return [g / g.dtype.type(self.loss_scale_factor) for g in grads]

    def _clip(self, grads):
        if self.clipnorm:
            return [self._scaled_to_norm(g, self._norm(g), self.clipnorm) for g in grads]
        if self.global_clipnorm:
            xp = module_of(grads[0]) if grads else np
            total = xp.sqrt(sum((g * g).sum() for g in grads))
            return [self._scaled_to_norm(g, total, self.global_clipnorm) for g in grads]
        if self.clipvalue:
            xp = module_of(grads[0]) if grads else np
            return [xp.clip(g, -g.dtype.type(self.clipvalue), g.dtype.type(self.clipvalue)) for g in grads]
        return grads

    @staticmethod
    def _norm(g):
        return module_of(g).sqrt((g * g).sum())

    @staticmethod
    def _scaled_to_norm(g, norm, limit):
        # g * limit / max(norm, limit): unchanged below the limit (as Keras's clip_by_norm)
        xp = module_of(g)
        return g * (limit / xp.maximum(norm, limit)).astype(g.dtype)

    # ----- configuration ---------------------------------------------------------------------------------
    def get_config(self):
        learning_rate = schedules_module.serialize(self.schedule) if self.schedule else self.learning_rate
        return {"name": self.name, "learning_rate": learning_rate, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": False, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": None}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        defaults = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                    "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                    "loss_scale_factor": None, "gradient_accumulation_steps": None}
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k != "name" and not (k in defaults and defaults[k] == v))
        return f"{type(self).__name__}({args})"
