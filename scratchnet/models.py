"""Models: a graph of layers (``Model(inputs, outputs)``, the functional API) and
``Sequential``, a model whose graph is a line. One engine (``scratchnet.graph``) runs
both; the loops of fit / evaluate / predict come from ``scratchnet.trainer``.

    inputs = Input(shape=(28, 28, 1))
    x = Conv2D(32, 3, activation="relu")(inputs)
    outputs = Dense(10, activation="softmax")(Flatten()(x))
    model = Model(inputs, outputs)
"""
import json

import numpy as np

from . import backend as backend_module
from . import config
from .arrays import as_tensor, module_of, to_module
from .graph import Graph, GraphError, Node, SymbolicTensor, apply_state_updates, flatten_tensors, run_backward, \
    run_forward
from .geometry import shape_fits
from .layers.base import Layer, shape_text, unique_name
from .layers.core import InputLayer
from .threads import blas_pinned_on_cpu
from .training import Trainer, TrainingDiverged
from .training import inputs as inputs_module

__all__ = ["Model", "Functional", "Sequential", "TrainingDiverged", "GraphError", "load_model", "model_from_json",
           "clone_model"]


class Model(Trainer, Layer):
    """A graph of layers from ``inputs`` (from ``Input``) to ``outputs``; also a layer, so a
    model can be called inside another model."""

    training_by_default = None      # a call that does not say passes that on: each layer decides
    is_model = True

    def __new__(cls, *args, **kwargs):
        """``Model(inputs, outputs)`` makes a ``Functional`` model, as in Keras 3 (its summary, plots
        and files say 'Functional'); a subclass of Model stays itself."""
        functional = cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs or
                                       len(args) == 1 and "outputs" in kwargs)
        return super().__new__(Functional if functional else cls)

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name or unique_name("functional" if inputs is not None else "model"), **kwargs)
        self.optimizer = self.loss = None
        self.compiled = False
        self.metric_specs = []          # compile's metrics and weighted_metrics
        self.history = None
        self.stop_training = False
        self._graph = None
        self.saved_extra = {}
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model(inputs, outputs) needs both: the Input tensors and the output tensors")
            self._set_graph(Graph(inputs, outputs), nested_inputs=inputs, nested_outputs=outputs)

    def _set_graph(self, graph, nested_inputs=None, nested_outputs=None):
        self._graph = graph
        self._single_input = not isinstance(nested_inputs, (list, tuple, dict))
        self._single_output = not isinstance(nested_outputs, (list, tuple, dict))
        self._sample_input_shape = self.input_shapes()[0] if self._single_input else self.input_shapes()
        outputs = [tuple(t.shape[1:]) for t in graph.outputs]
        self._sample_output_shape = outputs[0] if self._single_output else outputs
        self.built = True
        self._backend_name = next((l._backend_name for l in graph.layers if l.params), None)

    # ----- structure --------------------------------------------------------------------
    # Keras's model.input_shape and output_shape hold the batch axis: (None, 28, 28, 1), a list
    # for several. Inside the engine, a model used as a layer speaks per sample, as every
    # layer does: ``sample_input_shape`` and ``sample_output_shape``.
    @property
    def input_shape(self):
        return _with_batch(self._sample_input_shape)

    @input_shape.setter
    def input_shape(self, value):          # the Layer base class keeps per-sample shapes
        self._sample_input_shape = value

    @property
    def output_shape(self):
        return _with_batch(self._sample_output_shape)

    @output_shape.setter
    def output_shape(self, value):
        self._sample_output_shape = value

    sample_input_shape = property(lambda self: self._sample_input_shape)
    sample_output_shape = property(lambda self: self._sample_output_shape)

    @property
    def layers(self):
        """The layers of the graph in Keras's order: by depth from the inputs (input layers
        first), a shared layer once."""
        return self._graph.layers if self._graph is not None else []

    def get_layer(self, name=None, index=None):
        """A layer by ``name`` or by position in ``layers``, as in Keras."""
        if name is not None and index is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has "
                                 f"{len(self.layers)} layers.")
            return self.layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or layer index at `get_layer`.")
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self.layers]}.")

    @property
    def graph(self):
        """The Graph this model runs (None for a Sequential model without an input shape yet)."""
        return self._graph

    def require_graph(self, what):
        if self._graph is None:
            raise ValueError(f"model {self.name!r} has not been built, so it has no {what} yet: give the first "
                             f"layer input_shape=(...), start with Input(shape=(...)), or call build() or fit()")

    @property
    def inputs(self):
        self.require_graph("inputs")
        return list(self._graph.inputs)

    @property
    def outputs(self):
        self.require_graph("outputs")
        return list(self._graph.outputs)

    @property
    def input(self):
        self.require_graph("input")
        return self._graph.inputs[0] if self._single_input else list(self._graph.inputs)

    @property
    def output(self):
        self.require_graph("output")
        return self._graph.outputs[0] if self._single_output else list(self._graph.outputs)

    def input_shapes(self):
        """The per-sample shape of each input."""
        return [tuple(t.shape[1:]) for t in self._graph.inputs]

    def single_output_shape(self, method, x_shape=None):
        """The per-sample shape of the one output (``method`` names who needs there to be one);
        with ``x_shape``, for a batch of that shape (an output of unknown size made known)."""
        if len(self._graph.outputs) != 1:
            raise NotImplementedError(f"{method}() on a model with {len(self._graph.outputs)} outputs is not "
                                      f"supported yet; predict() and calling the model are")
        if x_shape is not None:
            return tuple(self.sample_output_shape_for(x_shape))
        return self._graph.outputs[0].shape[1:]

    def build_from_data(self, x_shape):
        """Build the graph for data of ``x_shape`` (a Sequential model without an input shape)."""
        raise ValueError(f"model {self.name!r} has no graph")

    # ----- the model as a layer ---------------------------------------------------------
    takes_list = property(lambda self: self._graph is not None and len(self._graph.inputs) > 1)

    def forward(self, inputs, training=False):
        """(outputs, tape): the model called inside another model."""
        self.require_graph("forward pass")
        values = inputs if isinstance(inputs, list) else [inputs]
        outs, tape = run_forward(self._graph, values, training=training)
        return (outs if len(outs) > 1 else outs[0]), tape

    def backward(self, dy, ctx, need_dx=True):
        dys = dy if isinstance(dy, list) else [dy]
        dxs, param_grads = run_backward(self._graph, ctx, dys, need_input_grads=need_dx)
        return (dxs if len(dxs) > 1 else dxs[0]), param_grads

    def apply_state_updates(self, ctx):
        apply_state_updates(ctx)

    def compute_output_shape(self, input_shape):
        """The per-sample output shape(s) for inputs of ``input_shape``: for a model whose
        inputs have axes of unknown size, worked out for this size (``Graph.output_shapes``)."""
        self.require_graph("output shape")
        shapes = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else [tuple(input_shape)]
        if shapes == [tuple(t.shape[1:]) for t in self._graph.inputs]:
            return self._sample_output_shape
        outputs = self._graph.output_shapes(shapes)
        return outputs[0] if self._single_output else outputs

    def sample_output_shape_for(self, x_shape):
        """The per-sample output shape(s) for a batch of ``x_shape`` (batch axis included;
        a list of shapes for several inputs): the output's size where the model's input
        size is unknown until it runs."""
        shapes = [tuple(s)[1:] for s in x_shape] if isinstance(x_shape, list) else tuple(x_shape)[1:]
        return self.compute_output_shape(shapes)

    def check_input_shape(self, input_shape, got=None):
        """ValueError unless ``input_shape`` (per sample) fits the model's inputs: the same
        sizes, or any size on an axis the model's Input left unknown (None), as long as every
        layer can take it."""
        expected = self._sample_input_shape
        shape = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else tuple(input_shape)
        if shape == expected:
            return
        if not shape_fits(expected, shape):
            hint = ""
            if isinstance(shape, tuple) and isinstance(expected, tuple) and len(shape) == len(expected) == 3 and \
                    shape[-1] == expected[-1]:      # another image size
                hint = (f"; build it with Input(shape=(None, None, {expected[-1]})) to take images of any size "
                        f"(an application: input_shape=None with include_top=False)")
            raise ValueError(f"model {self.name!r} expects inputs of shape {shape_text(expected)}, got "
                             f"{got if got is not None else shape_text(shape)}{hint}")
        self._graph.output_shapes(shape if isinstance(shape, list) else [shape])   # every layer takes this size

    def ensure_built(self, input_shape, got=None):
        self.require_graph("input shape")
        self.check_input_shape(input_shape, got)

    def _call_symbolic(self, inputs, tensors, training=None):
        self.require_graph("graph")
        shapes = [tuple(t.shape[1:]) for t in tensors]
        self.check_input_shape(shapes if len(shapes) > 1 else shapes[0])
        out_shapes = self.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])
        out_shapes = out_shapes if isinstance(out_shapes, list) else [out_shapes]
        outputs = [SymbolicTensor((None,) + tuple(s), t.dtype, name=f"{self.name}/output_{i}")
                   for i, (t, s) in enumerate(zip(self._graph.outputs, out_shapes))]
        Node(self, tensors, outputs, training)
        return outputs[0] if self._single_output else outputs

    def __call__(self, inputs, training=None):
        if any(isinstance(t, SymbolicTensor) for t in flatten_tensors(inputs)):
            return Layer.__call__(self, inputs, training)
        if all(getattr(t, "shape", (0,))[:1] == (1,) for t in flatten_tensors(inputs)):
            return self._call_on_arrays(inputs, training)    # one sample: no lanes, no BLAS threads to hold
        return self._call_on_arrays_pinned(inputs, training)

    def _call_on_arrays(self, inputs, training):
        from . import runtime
        runtime.prepare(self.backend.name)
        x = inputs_module.check_x(self, inputs)
        out, tape = self.run_graph(inputs_module.to_device(self, x), training=training, keep_tape=bool(training))
        if training:   # a training call updates moving statistics, as in Keras
            apply_state_updates(tape)
        return as_tensor(out)

    _call_on_arrays_pinned = blas_pinned_on_cpu(_call_on_arrays)

    # ----- weights ----------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """As in Keras: setting it on a model sets it on every layer inside, too."""
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = value

    def weight_pairs(self, trainable=None, parent_trainable=True):
        """(layer, weight name) of every weight, layer by layer in ``layers`` order (a shared
        layer once); with ``trainable``, only the trainable or only the other weights. A
        weight trains when its layer and every model around it are trainable."""
        effective = parent_trainable and self.trainable
        pairs, seen = [], set()
        for layer in self.layers:
            if id(layer) not in seen:
                seen.add(id(layer))
                pairs += layer.weight_pairs(trainable, effective)
        return pairs

    def all_layers(self):
        """This model and every layer inside it, nested models' layers included."""
        yield self
        for layer in self.layers:
            if getattr(layer, "is_model", False):
                yield from layer.all_layers()
            else:
                yield layer

    def trained_weight_pairs(self):
        """The weights a training step updates: those fixed at compile (or, before compile,
        those trainable now)."""
        if self.compiled and self._graph is not None:
            return self.compile_state().trained_pairs
        return self.weight_pairs(trainable=True)

    def get_weights(self):
        return [np.array(w) for w in (to_host_copy(layer.params[n]) for layer, n in self.weight_pairs())]

    def set_weights(self, weights):
        weights = list(weights)
        pairs = self.weight_pairs()
        if len(weights) != len(pairs):
            raise ValueError(f"set_weights expects {len(pairs)} arrays for model {self.name!r}, got {len(weights)}")
        for (layer, name), value in zip(pairs, weights):   # every shape first: all or nothing is written
            target = layer.params[name]
            if tuple(np.shape(value)) != tuple(target.shape):
                raise ValueError(f"{layer.describe()} expects its weight {name!r} of shape {tuple(target.shape)}, "
                                 f"got {tuple(np.shape(value))}; no weight was changed")
        for (layer, name), value in zip(pairs, weights):
            target = layer.params[name]
            target[...] = module_of(target).asarray(to_host_copy(value), dtype=target.dtype)

    def count_params(self):
        return int(sum(layer.params[n].size for layer, n in self.weight_pairs()))

    # ----- devices -------------------------------------------------------------------
    @property
    def backend(self):
        """The backend the model's weights live on."""
        if self._backend_name is None:
            self._backend_name = next((layer._backend_name for layer, _ in self.weight_pairs()), None)
        return backend_module.get(self._backend_name) if self._backend_name else backend_module.current()

    def to(self, name):
        """Move weights and optimizer state to backend ``name`` ('cpu', 'numpy' or 'gpu')."""
        target = backend_module.get(name)
        for layer in self.layers:
            layer.to(name)
        if self.optimizer is not None and self.optimizer.slots:
            self.optimizer.slots = [{k: to_module(v, target.xp) for k, v in slot.items()}
                                    for slot in self.optimizer.slots]
        self._backend_name = name
        return self

    @property
    def dtype(self):
        """The dtype inputs are converted to: the (first) input's."""
        if self._graph is not None:
            return self._graph.inputs[0].dtype
        return self._dtype

    @dtype.setter
    def dtype(self, value):
        self._dtype = config.float_dtype(value, f"the dtype of model {self.name!r}")

    # ----- saving and description --------------------------------------------------------
    def save(self, filepath, overwrite=True):
        """Write the model to one file, atomically, in the format its name ends with:
        '.keras' (Keras 3), '.h5' (legacy Keras) or '.npz' (scratchnet's own, with the
        optimizer state for an exact resume)."""
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Weights only: '.weights.h5' in Keras 3's layout, other '.h5' in the legacy one."""
        from .saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False):
        """Weights from a Keras or scratchnet file into this built model (see saving.load_weights)."""
        from .saving import load_weights
        load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name)

    def export(self, filepath, format="tf_saved_model", verbose=True, **kwargs):
        """Write the model for inference elsewhere, as Keras 3's ``export``: scratchnet writes
        ``format='onnx'`` (an ONNX graph taking the model's NHWC inputs; ``opset=`` optional)."""
        from .saving.onnx_export import export_model
        export_model(self, filepath, format=format, verbose=verbose, **kwargs)

    def to_json(self, **kwargs):
        """The model's architecture as Keras's JSON (what a '.keras' file's config.json holds);
        ``kwargs`` go to json.dumps."""
        from .saving.keras_config import keras_model_config
        return json.dumps(keras_model_config(self), **kwargs)

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Keras's table: each layer, its output shape, its parameter count and, for a graph,
        the layers it is connected to; with Keras's options (``line_length``, ``positions``,
        ``expand_nested``, ``show_trainable``, ``layer_range``). ``print_fn`` (print by
        default) is called once with the whole text, as Keras 3 calls it."""
        from .summary import summarize
        self.require_graph("summary")
        (print_fn or print)(summarize(self, line_length, positions, expand_nested, show_trainable, layer_range))

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}: {len(self.layers)} layers>"


def _with_batch(shape):
    """(None,) + a per-sample shape; a list of them for several; None stays None."""
    if shape is None:
        return None
    if isinstance(shape, list):
        return [(None,) + tuple(s) for s in shape]
    return (None,) + tuple(shape)


def to_host_copy(a):
    from .arrays import to_host
    return np.array(to_host(a))


class Functional(Model):
    """A Model made from its inputs and outputs (``Model(inputs, outputs)``), named as Keras 3 names it."""


def _known_input_shape(layer):
    """The per-sample input shape a first layer of a Sequential model declares: its
    ``input_shape=`` (the Keras 2 way), or, for a model with one input and a graph (the
    tutorials' ``Sequential([data_augmentation, Rescaling(...), ...])``), that model's, from
    which Keras 3 builds the outer model at once too; None if it declares none."""
    if layer.declared_input_shape is not None:
        return layer.declared_input_shape
    if getattr(layer, "is_model", False) and layer.graph is not None and len(layer.graph.inputs) == 1:
        return tuple(layer.graph.inputs[0].shape[1:])
    return None


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Conv2D(...), ...])`` or ``add()`` one by one.
    Its graph (an Input, then each layer on the previous one's output) is built as soon as
    the input shape is known: from ``Input``, the first layer's ``input_shape``, ``build()``
    or the first data it sees."""

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name or unique_name("sequential"), **kwargs)
        self._layers = []
        self._input_layer = None
        self._own_nodes = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or an ``Input(shape=...)`` as the very first item)."""
        if isinstance(layer, SymbolicTensor) and layer.node is not None and layer.node.layer.is_input:
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("Input(...) can only be the first item of a Sequential model")
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if any(layer is existing for existing in self._layers):
            raise ValueError(f"{layer.describe()} is already in model {self.name!r}")
        if any(layer.name == existing.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name "
                             f"{layer.name!r} is already the name of a layer in this model. Update the `name` "
                             f"argument to pass a unique name.")
        input_layer = self._input_layer
        self._layers.append(layer)
        if self._input_layer is None and len(self._layers) == 1 and _known_input_shape(layer) is not None:
            self._input_layer = InputLayer(shape=_known_input_shape(layer), dtype=layer.dtype,
                                           name=unique_name("input_layer"))
        if self._input_layer is None:
            self._graph = None
            self.built = False
            return
        try:
            self._rebuild()
        except Exception:   # the layer does not fit: leave the model as it was
            self._layers.pop()
            self._input_layer = input_layer
            if self._layers and self._input_layer is not None:
                self._rebuild()
            raise

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise ValueError(f"model {self.name!r} has no layers to pop")
        layer = self._layers.pop()
        if self._input_layer is not None and self._layers:
            self._rebuild()
        elif not self._layers:   # nothing left to run: no graph, as in Keras
            self._detach_own_nodes()
            self._graph = None
            self.built = False
        return layer

    def _detach_own_nodes(self):
        for node in self._own_nodes:
            node.detach()
        self._own_nodes = []

    def _rebuild(self):
        self._detach_own_nodes()
        x = self._input_layer.output
        for layer in self._layers:
            x = layer(x)
            self._own_nodes.append(x.node)
        self._set_graph(Graph([self._input_layer.output], [x]))
        self.forget_compile_state()     # what trains and the head are decided again for the new graph

    def __call__(self, inputs, training=None):
        # a model not yet built takes its input shape from what it is first called on, as in Keras
        # (data_augmentation = Sequential([RandomFlip(...), ...]); x = data_augmentation(inputs))
        if self._graph is None and self._layers and getattr(inputs, "ndim", 0) >= 2:
            self.build((None,) + tuple(inputs.shape[1:]))
        return super().__call__(inputs, training)

    def build(self, input_shape=None):
        """Build the graph for inputs of ``input_shape`` (batch axis included: (None, 28, 28, 1))."""
        previous = self._input_layer
        if input_shape is not None:
            input_shape = tuple(input_shape)
            shape = input_shape[1:] if input_shape[:1] == (None,) else input_shape
            if previous is None:
                self._input_layer = InputLayer(shape=shape, dtype=self._layers[0].dtype if self._layers else None,
                                               name=unique_name("input_layer"))
            elif tuple(previous.output.shape[1:]) != tuple(shape):
                raise ValueError(f"model {self.name!r} was built for inputs of shape "
                                 f"{(None,) + tuple(previous.output.shape[1:])}; build() got {(None,) + tuple(shape)}")
        if self._input_layer is None:
            raise ValueError("the model does not know its input shape yet: give the first layer "
                             "input_shape=(...), start with Input(shape=(...)), or call build()")
        unbuilt = [layer for layer in self._layers if not layer.built]
        try:
            self._rebuild()
        except Exception:   # the layers do not fit that shape: forget it, keep nothing half-built
            for layer in unbuilt:
                layer.unbuild()
            self._input_layer = previous
            if previous is None:
                self._detach_own_nodes()
                self._graph, self.built = None, False
            raise

    def build_from_data(self, x_shape):
        self.build((None,) + tuple(x_shape[1:]))

    @property
    def layers(self):
        """The layers, without the input layer (as in Keras)."""
        return list(self._layers)

    @property
    def dtype(self):
        if self._graph is not None:
            return self._graph.inputs[0].dtype
        return self._layers[0].dtype if self._layers else self._dtype

    @dtype.setter
    def dtype(self, value):
        self._dtype = config.float_dtype(value, f"the dtype of model {self.name!r}")


def load_model(filepath, compile=True):
    """The model in a '.keras', '.h5' or '.npz' file, as ``keras.models.load_model``."""
    from .saving import load_model as load
    return load(filepath, compile=compile)


def model_from_json(json_string, custom_objects=None):
    """A new model, freshly initialised, from ``model.to_json()``'s text (Keras's too), as
    ``keras.models.model_from_json``; only scratchnet's own layers (no ``custom_objects``)."""
    if custom_objects:
        raise ValueError(f"model_from_json: expected custom_objects=None (scratchnet builds only its own layers from "
                         f"a config, and a config never brings code); got {sorted(custom_objects)!r}")
    from .saving import model_from_json as build
    return build(json_string)


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False, **kwargs):
    """A new model with ``model``'s architecture (layer names and settings kept) and freshly
    initialised weights, not compiled, as ``keras.models.clone_model``; Keras's other options
    are accepted at their defaults only."""
    if kwargs:
        raise TypeError(f"clone_model: unexpected keyword arguments {sorted(kwargs)}")
    for name, value, default in (("input_tensors", input_tensors, None), ("clone_function", clone_function, None),
                                 ("call_function", call_function, None), ("recursive", recursive, False)):
        if value is not default:
            raise ValueError(f"clone_model: expected {name}={default!r} (scratchnet clones the model as it is, with "
                             f"new weights), got {name}={value!r:.80}")
    if not isinstance(model, Model):
        raise TypeError(f"clone_model: expected a Model or Sequential, got {type(model).__name__}")
    if not isinstance(model, Sequential):
        model.require_graph("architecture to clone")
    from .saving import clone_model as clone
    return clone(model)
