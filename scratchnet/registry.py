"""scratchnet's layer and model classes by class name, filled by the classes themselves.

``Layer.__init_subclass__`` registers every subclass scratchnet defines (``Model`` and
``Sequential`` included), so code below ``scratchnet.models`` (saving, export) finds them here
instead of importing them. This module imports nothing of scratchnet. A class defined outside
scratchnet (a user's own layer) is not registered: a model file can name only scratchnet's.
"""

_CLASSES = {}


def register(cls):
    """Record ``cls`` under its class name if scratchnet defines it and the name is public;
    returns ``cls``."""
    own = cls.__module__ == "scratchnet" or cls.__module__.startswith("scratchnet.")
    if own and not cls.__name__.startswith("_"):
        _CLASSES[cls.__name__] = cls
    return cls


def get(name):
    """The registered class called ``name``; ValueError naming the registered ones if none is."""
    if name not in _CLASSES:
        raise ValueError(f"scratchnet has no registered class {name!r} (classes register when their module is "
                         f"imported; import scratchnet first); it has {', '.join(sorted(_CLASSES))}")
    return _CLASSES[name]


__all__ = ["register", "get"]
