"""Keras's serialized form of a small built-in object (a regularizer, a constraint):
{'module', 'class_name', 'config', 'registered_name'}, written for and read from model files
by class name only: nothing in a file is run, and an object of one's own is not saved."""


def serialize(obj, classes, module, kind):
    """Keras 3's form of ``obj`` (one of ``classes``, {name: class}); None for None."""
    if obj is None:
        return None
    name = type(obj).__name__
    if classes.get(name) is not type(obj):
        raise ValueError(f"{obj!r} is a {kind} of one's own: a model file keeps only the built-in ones "
                         f"({', '.join(sorted(classes))}), so it cannot be saved")
    return {"module": module, "class_name": name, "config": obj.get_config(), "registered_name": None}


def deserialize(config, classes, kind, where):
    """The object a config dict (Keras 3's or tf.keras 2's form) describes, made from one of
    ``classes`` ({name: class}) with the config's settings; ValueError naming ``where``."""
    name = config.get("class_name")
    cls = classes.get(name)
    settings = config.get("config") or {}
    if cls is None or not isinstance(settings, dict):
        raise ValueError(f"{where}: unknown {kind} {name!r} (registered as {config.get('registered_name')!r}); "
                         f"scratchnet reads {', '.join(sorted(k for k in classes if k[0].isupper()))}")
    try:
        return cls(**settings)
    except TypeError as error:
        raise ValueError(f"{where}: {name} does not take {sorted(settings)}: {error}") from None


class KerasObject:
    """What a regularizer and a constraint share: a config, a rebuild from it, equality by
    class and config, and a repr that shows the config."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__
