"""The base class of every callback (Keras's ``keras.callbacks.Callback``) and ``call``, which
runs one hook of every callback; the callbacks themselves are in ``callbacks``."""


class Callback:
    """Override any hook; ``self.model`` and ``self.params`` are set before the loop starts."""

    model = None
    params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    # Keras 2's names of the training-batch hooks
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass


_KERAS2_NAMES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def call(hooks, name, *args):
    """Call hook ``name`` of every callback; ``on_train_batch_*`` also calls Keras 2's
    ``on_batch_*`` of a callback that defines that instead."""
    for hook in hooks:
        getattr(hook, name)(*args)
        old = _KERAS2_NAMES.get(name)
        if old and (old in vars(hook) or getattr(type(hook), old, None) is not getattr(Callback, old)):
            getattr(hook, old)(*args)
