"""The Layer base class: parameters, configuration, shapes, and the call.

A layer owns its weights (``params``, in Keras's order) and its configuration, and
nothing about any one call: ``forward(x, training)`` returns the output and a context,
``backward(dy, ctx)`` returns dL/dx and the weight gradients from that context. The math
lives in ``scratchnet.functions``. Calling a layer on a symbolic tensor (from ``Input``)
adds a node to a graph; calling it on an array runs it.
"""
import re
import threading

import numpy as np

from .. import activations, backend, config, constraints, regularizers
from ..arrays import as_tensor, to_host, to_module
from ..geometry import has_unknown_size, shape_fits
from ..graph import Node, SymbolicTensor, flatten_tensors
from ..registry import register

unique_name, clear_session = config.unique_name, config.clear_session

CONFIGS_KEPT = 8    # function configurations a layer keeps, one per image size met (unknown-size inputs)


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def as_pair(value, what):
    """Accept 3 or (3, 3); return a pair of positive ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def shape_text(shape):
    """(None, 28, 28, 1) for a per-sample shape (28, 28, 1); lists for several inputs."""
    if isinstance(shape, list):
        return "[" + ", ".join(shape_text(s) for s in shape) + "]"
    return str((None,) + tuple(shape))


class Layer:
    """Base of every layer. Subclasses give ``weight_shapes``, ``compute_output_shape``,
    ``_forward(x, training) -> (y, ctx)`` and ``_backward(dy, ctx, need_dx) -> (dx, grads)``."""

    has_activation = False      # takes an ``activation`` argument
    takes_list = False          # called on a list of tensors (Add, Concatenate, ...)
    is_input = False
    non_trainable_names = ()    # weights no optimizer changes (BatchNormalization's moving statistics)
    training_by_default = False  # the mode of a call that says neither training=True nor False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register(cls)   # saving finds layer and model classes by name, without importing models

    penalized_weights = {}      # {weight name: the prefix of its Keras arguments}, e.g. {'kernel': 'kernel'}

    def __init__(self, name=None, input_shape=None, dtype=None, activation=None, trainable=True,
                 activity_regularizer=None, **kwargs):
        if "batch_input_shape" in kwargs:
            input_shape = tuple(kwargs.pop("batch_input_shape"))[1:]
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        if "batch_size" in kwargs:
            kwargs.pop("batch_size")
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self.dtype = config.float_dtype(dtype or config.floatx(), f"the dtype of layer {name or type(self).__name__!r}")
        # the Keras 2 way of giving a first layer its input: Sequential reads it
        self.declared_input_shape = tuple(None if d is None else int(d) for d in input_shape) \
            if input_shape is not None else None
        self.activation = activations.get(activation) if self.has_activation else None
        self._trainable = bool(trainable)
        self.activity_regularizer = regularizers.get(activity_regularizer, f"{self.describe()}: activity_regularizer")
        self.params = {}
        self.built = False
        self.input_shape = None       # per sample (no batch axis); a list for layers taking a list
        self.output_shape = None
        self._inbound_nodes = []
        self._backend_name = None     # fixed when the weights are created; model.to() changes it
        self._configs = {}            # function configurations made (function_config)
        self._build_lock = threading.Lock()

    # ----- construction -------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for per-sample inputs of ``input_shape``."""
        from .. import initializers
        input_shape = [tuple(s) for s in input_shape] if self.takes_list else tuple(input_shape)
        self.output_shape = self.compute_output_shape(input_shape)
        self._backend_name = self._backend_name or backend.current().name
        xp = self.backend.xp
        params = {}
        for name, shape in self.weight_shapes(input_shape).items():
            self._check_known(name, shape, input_shape)
            if self.regularizer_for(name) is not None:
                self.regularizer_for(name).check(shape, f"{self.describe()}: {self.penalized_weights[name]}_regularizer")
            values = initializers.get(self.initializer_for(name))(tuple(shape), self.dtype)
            params[name] = xp.asarray(values)
        self.params = params
        self.input_shape = input_shape
        self.built = True

    def _check_known(self, weight, shape, input_shape):
        """ValueError, naming this layer and the axis, when the shape of ``weight`` depends on
        an input axis of unknown size (a Dense after Flatten of an image of unknown size)."""
        if all(d is not None for d in shape):
            return
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        axes = [f"axis {i + 1}" for s in shapes for i, d in enumerate(s) if d is None]
        raise ValueError(f"{self.describe()} needs a known size on its input's {', '.join(axes)} to make its "
                         f"{weight!r} weight, got input shape {shape_text(input_shape)}: a layer with weights sized "
                         f"by the input cannot follow an image of unknown height or width (Input(shape=(None, "
                         f"None, C))); give the Input a fixed size, or reduce the image first (e.g. "
                         f"GlobalAveragePooling2D instead of Flatten)")

    def ensure_built(self, input_shape, got=None):
        """Build once, for this input shape (safe from several threads); a built layer
        checks that ``input_shape`` is the one it was built for."""
        if not self.built:
            with self._build_lock:
                if not self.built:
                    self.build(input_shape)
                    return
        self.check_input_shape(input_shape, got)

    def unbuild(self):
        """Forget the weights and shapes of a build (a model that failed to build undoes its
        layers' builds with this)."""
        self.params, self.built, self.input_shape, self.output_shape = {}, False, None, None
        self._backend_name, self._configs = None, {}

    def set_penalties(self, arguments):
        """Keep Keras's NAME_regularizer and NAME_constraint arguments ({argument: value}) for
        the weights of ``penalized_weights`` (a name fails now, not at build)."""
        for argument, value in arguments.items():
            module = regularizers if argument.endswith("_regularizer") else constraints
            setattr(self, argument, module.get(value, f"{self.describe()}: {argument}"))

    def regularizer_for(self, name):
        """The penalty on weight ``name`` (its NAME_regularizer argument), or None."""
        prefix = self.penalized_weights.get(name)
        return getattr(self, f"{prefix}_regularizer", None) if prefix else None

    def constraint_for(self, name):
        """The projection applied to weight ``name`` after each update (NAME_constraint), or None."""
        prefix = self.penalized_weights.get(name)
        return getattr(self, f"{prefix}_constraint", None) if prefix else None

    @property
    def losses(self):
        """The penalties on this layer's trainable weights as they are now, as Keras's
        ``layer.losses`` (an activity penalty is counted in the loss of each step instead)."""
        return [layer.regularizer_for(name)(layer.params[name]) for layer, name in self.weight_pairs(trainable=True)
                if layer.regularizer_for(name) is not None]

    def initializer_for(self, name):
        """The initializer of weight ``name`` (an attribute NAME_initializer, by default)."""
        return getattr(self, f"{name}_initializer", "zeros")

    def weight_shapes(self, input_shape):
        """{name: shape} of the weights this layer creates for ``input_shape``, in Keras's order."""
        return {}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def check_input_shape(self, input_shape, got=None):
        """ValueError unless ``input_shape`` (per sample) fits what the layer was built for
        (an axis built as None takes any size); ``got`` is the whole shape to show, batch axis
        included, when known."""
        expected = self.input_shape
        shape = [tuple(s) for s in input_shape] if self.takes_list else tuple(input_shape)
        if expected is not None and shape != expected and not shape_fits(expected, shape):
            raise ValueError(f"{self.describe()} expected input of shape {shape_text(expected)}, got "
                             f"{got if got is not None else shape_text(shape)}")

    def to(self, name):
        """Move this layer's weights to backend ``name`` ('cpu', 'numpy', 'gpu')."""
        target = backend.get(name)
        self.params = {k: to_module(v, target.xp) for k, v in self.params.items()}
        self._backend_name = name
        return self

    # ----- the call -------------------------------------------------------------------
    def forward(self, inputs, training=False):
        """(outputs, ctx) for a batch; ``ctx`` is what ``backward`` needs for this call."""
        if self.takes_list:
            shapes = [tuple(x.shape[1:]) for x in inputs]
            if not self.built or shapes != self.input_shape:
                self.ensure_built(shapes, str([tuple(x.shape) for x in inputs]))
            inputs = [x if x.dtype == self.dtype else x.astype(self.dtype) for x in inputs]
        else:
            if not self.built or inputs.shape[1:] != self.input_shape:
                self.ensure_built(tuple(inputs.shape[1:]), str(tuple(inputs.shape)))
            if inputs.dtype != self.dtype:
                inputs = inputs.astype(self.dtype)
        return self._forward(inputs, training)

    def function_config(self, input_shape=None):
        """The configuration this layer's function is called with, made once per backend and
        activation; for a layer built for images of unknown size, once per per-sample
        ``input_shape`` of a call (its padding depends on the size), the last CONFIGS_KEPT."""
        key = (self._backend_name, self.activation)
        unknown = has_unknown_size(self.input_shape)
        if unknown and input_shape is not None:
            key += (tuple(input_shape),)
        configs = self._configs
        config_ = configs.get(key)
        if config_ is None:
            if len(configs) >= CONFIGS_KEPT:
                del configs[next(iter(configs))]     # the oldest
            config_ = configs[key] = self.make_function_config(
                tuple(input_shape) if unknown and input_shape is not None else self.input_shape)
        return config_

    def make_function_config(self, input_shape):
        """The function configuration for per-sample inputs of ``input_shape``."""
        return None

    def backward(self, dy, ctx, need_dx=True):
        """(dL/dx or None, {weight name: dL/dweight}) from dL/dy and the call's ``ctx``."""
        return self._backward(dy, ctx, need_dx)

    def _forward(self, x, training):
        return x, None

    def _backward(self, dy, ctx, need_dx):
        return dy, {}

    def state_updates(self, ctx):
        """{weight name: new value} a training call asks to store (moving statistics),
        computed from the weights as they are now."""
        return {}

    def apply_state_updates(self, ctx):
        for name, value in self.state_updates(ctx).items():
            self.params[name][...] = value

    def without_activation(self):
        """This layer with a linear activation, sharing its weights: what a compiled model
        runs for its output when the loss takes logits (the fused head)."""
        import copy
        twin = copy.copy(self)
        twin.activation = activations.get("linear")
        twin._configs = {}
        return twin

    def __call__(self, inputs, training=None):
        tensors = flatten_tensors(inputs)
        symbolic = [isinstance(t, SymbolicTensor) for t in tensors]
        if any(symbolic):
            if not all(symbolic):
                raise TypeError(f"{self.describe()} was called on a mix of symbolic tensors and arrays")
            return self._call_symbolic(inputs, tensors, training)
        if self.takes_list:
            arrays = [to_module(x, self.backend.xp) for x in tensors]
        else:
            if len(tensors) != 1 or isinstance(inputs, (list, tuple)) and len(inputs) != 1:
                raise ValueError(f"{self.describe()} takes one input, got {len(tensors)}")
            arrays = to_module(tensors[0], self.backend.xp)
        training = self.training_by_default if training is None else bool(training)
        out, ctx = self.forward(arrays, training=training)
        if training:   # a training call updates moving statistics, as in Keras
            self.apply_state_updates(ctx)
        return as_tensor(out)

    def _call_symbolic(self, inputs, tensors, training=None):
        if not self.takes_list and len(tensors) != 1:
            raise ValueError(f"{self.describe()} takes one input, got {len(tensors)}")
        shapes = [t.shape[1:] for t in tensors]
        shape = shapes if self.takes_list else shapes[0]
        source = ", ".join(t.node.layer.name if t.node else "an input" for t in tensors)
        try:
            self.ensure_built(shape)
        except ValueError as error:
            raise ValueError(f"{error} (from layer(s) {source})") from None
        out_shape = self.compute_output_shape([tuple(s) for s in shape] if self.takes_list else tuple(shape))
        outputs = [SymbolicTensor((None,) + tuple(s), self.dtype, name=f"{self.name}/output_{i}")
                   for i, s in enumerate(out_shape if isinstance(out_shape, list) else [out_shape])]
        Node(self, tensors, outputs, training)
        return outputs if isinstance(out_shape, list) else outputs[0]

    # ----- the graph this layer is in -------------------------------------------------
    def _node_attribute(self, attribute, what):
        if not self._inbound_nodes:
            raise AttributeError(f"{self.describe()} has never been called on a symbolic tensor, so it has no "
                                 f"{what}; call it on Input(...) or put it in a model with a known input shape")
        values = getattr(self._inbound_nodes[0], attribute)
        return values[0] if len(values) == 1 else list(values)

    @property
    def input(self):
        """The symbolic input tensor(s) of this layer's first call in a graph."""
        return self._node_attribute("inputs", "input")

    @property
    def output(self):
        """The symbolic output tensor(s) of this layer's first call in a graph."""
        return self._node_attribute("outputs", "output")

    # ----- weights ----------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    def get_weights(self):
        """Copies of the weights as NumPy arrays (from the GPU if they live there)."""
        return [to_host(p).copy() for p in self.params.values()]

    def set_weights(self, weights):
        expected = [tuple(p.shape) for p in self.params.values()]
        got = [tuple(np.shape(w)) for w in weights]
        if expected != got:
            raise ValueError(f"{self.describe()} expects weights of shapes {expected}, got {got}")
        xp = self.backend.xp
        for key, value in zip(self.params, weights):
            self.params[key][...] = xp.asarray(to_host(value), dtype=self.dtype)

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def weight_pairs(self, trainable=None, parent_trainable=True):
        """(layer, weight name) of this layer's weights: all, trainable ones or the others
        (a weight trains when its layer, and every model it is in, is trainable)."""
        effective = parent_trainable and self.trainable
        return [(self, name) for name in self.params
                if trainable is None or trainable == (effective and name not in self.non_trainable_names)]

    @property
    def weights(self):
        return [layer.params[name] for layer, name in self.weight_pairs()]

    @property
    def trainable_weights(self):
        return [layer.params[name] for layer, name in self.weight_pairs(trainable=True)]

    @property
    def non_trainable_weights(self):
        return [layer.params[name] for layer, name in self.weight_pairs(trainable=False)]

    # ----- helpers ----------------------------------------------------------------
    def describe(self):
        return f"{type(self).__name__} layer {self.name!r}"

    @property
    def backend(self):
        """The backend this layer's weights live on (the current one until it is built)."""
        return backend.get(self._backend_name) if self._backend_name else backend.current()

    def get_config(self):
        config_ = {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable}
        for key, value in vars(self).items():      # initializers given by name (a callable has no name to write)
            if key.endswith("_initializer") and isinstance(value, str):
                config_[key] = value
        if self.activation is not None:
            config_["activation"] = activations.serialize(self.activation)
        for prefix in dict.fromkeys(self.penalized_weights.values()):
            config_[f"{prefix}_regularizer"] = regularizers.serialize(getattr(self, f"{prefix}_regularizer", None))
            config_[f"{prefix}_constraint"] = constraints.serialize(getattr(self, f"{prefix}_constraint", None))
        if self.activity_regularizer is not None:
            config_["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config_

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
