"""ActivityRegularization: the identity, with an L1/L2 penalty on what passes through."""
from .. import regularizers
from .base import Layer


class ActivityRegularization(Layer):
    """y = x; the loss gains (l1 * sum|x| + l2 * sum x**2) / batch size, as Keras's layer of
    this name (its ``activity_regularizer`` is ``regularizers.L1L2(l1, l2)``)."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        if "activity_regularizer" in kwargs:
            raise TypeError("ActivityRegularization sets its activity_regularizer from l1 and l2; give those")
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = self.activity_regularizer.l1, self.activity_regularizer.l2

    def get_config(self):
        config_ = super().get_config()
        del config_["activity_regularizer"]
        return {**config_, "l1": self.l1, "l2": self.l2}
