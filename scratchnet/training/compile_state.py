"""What ``compile`` decides, as one object: the metrics, which weights a step updates (with
their penalties and constraints), and the head (whether the output's sigmoid/softmax fuses into the
loss, which then takes logits). Settled once the model's graph exists (at compile, or at
the first step of a Sequential model that learns its input shape from data)."""
import warnings

from ..arrays import module_of
from .. import metrics as metrics_module


class CompileState:
    """The trained weights, the fused head (built once) and the metrics of one compile."""

    def __init__(self, model, loss, metric_specs):
        self.loss, self.metric_specs = loss, list(metric_specs)     # the loss the head was decided for
        self.trained_pairs = model.weight_pairs(trainable=True)     # (layer, weight name), in order
        self.trainable_at_compile = {layer: layer.trainable for layer in model.all_layers()}
        # the weight penalties and constraints of the trained weights: (position, regularizer or constraint)
        self.penalties = [(i, layer.regularizer_for(name)) for i, (layer, name) in enumerate(self.trained_pairs)
                          if layer.regularizer_for(name) is not None]
        self.constraints = [(i, layer.constraint_for(name)) for i, (layer, name) in enumerate(self.trained_pairs)
                            if layer.constraint_for(name) is not None]
        output = model.graph.outputs[0]
        layer = output.node.layer if output.node is not None else None
        activation = getattr(layer, "activation", None)
        # the output's activation fuses into the loss where the loss has a form for it (and no
        # activity penalty asks for the activation's output)
        self.fused = (len(model.graph.outputs) == 1 and not loss.from_logits
                      and loss.fused_activation is not None and activation is not None
                      and activation.name == loss.fused_activation and not getattr(layer, "is_model", False)
                      and getattr(layer, "activity_regularizer", None) is None)
        self.logits = self.fused or loss.from_logits      # the loss takes the outputs as logits
        self.head_node = output.node if self.fused else None
        self._head_layer = None
        self.metrics = metrics_module.compiled(self.metric_specs, loss, model.single_output_shape("fit"))

    # ----- the head -------------------------------------------------------------------------
    def layer_for(self):
        """For the forward pass of a step: a function giving the layer to run for a node
        (the output layer without its activation, for a fused head), or None."""
        if self.head_node is None:
            return None
        layer = self.head_node.layer
        if self._head_layer is None or self._head_layer.params is not layer.params:
            self._head_layer = layer.without_activation()   # shares the weights; remade if they move
        head_node, head_layer = self.head_node, self._head_layer
        return lambda node: head_layer if node is head_node else node.layer

    @property
    def metric_logits(self):
        """What the metrics are told the outputs are: the name of the activation the loss
        absorbed (the metrics apply it), or whether they are logits."""
        return self.loss.fused_activation if self.fused else self.logits

    # ----- the weights a step updates -------------------------------------------------------
    def trained_params(self):
        return [layer.params[name] for layer, name in self.trained_pairs]

    def weight_penalty(self, params):
        """The sum of the trained weights' penalties (0.0 without any), as a float."""
        return float(sum(regularizer(params[i]) for i, regularizer in self.penalties))

    def with_penalty_gradients(self, gradients, params, scale=None):
        """``gradients`` with each penalty's gradient (times ``scale``, the loss scale) added:
        new arrays, the given ones untouched."""
        gradients = list(gradients)
        for i, regularizer in self.penalties:
            extra = regularizer.gradient(params[i])
            gradients[i] = gradients[i] + (extra * extra.dtype.type(scale) if scale else extra)
        return gradients

    def constraints_of(self, params):
        """[constraint or None] for each trained weight, as the optimizer applies them."""
        table = [None] * len(params)
        for i, constraint in self.constraints:
            table[i] = constraint
        return table

    def gradients_in_order(self, grads, params):
        """The gradient of each trained weight from {(layer, name): gradient}; zeros for a
        weight the loss does not reach."""
        return [grads[pair] if pair in grads else module_of(p).zeros_like(p)
                for pair, p in zip(self.trained_pairs, params)]

    def check_trainable_unchanged(self, model):
        """Keras's warning when ``trainable`` changed since compile(): the change waits for
        the next compile, which decides what trains (said once per change)."""
        now = {layer: layer.trainable for layer in model.all_layers()}
        changed = [layer.name for layer, value in now.items() if self.trainable_at_compile.get(layer) != value]
        if changed:
            warnings.warn(f"A layer's `trainable` state has changed since the model was compiled; the change "
                          f"takes effect only when the model is compiled again. Recompile the model (e.g. "
                          f"`model.compile(...)`) before calling `fit()` so that it does. Changed layers: "
                          f"{changed}", UserWarning, stacklevel=6)
            self.trainable_at_compile = now

    # ----- metrics --------------------------------------------------------------------------
    def reset_metrics(self):
        for metric in self.metrics:
            metric.reset()

    def update_metrics(self, y, out, sample_weight):
        logits = self.metric_logits
        for metric in self.metrics:
            metric.update(y, out, logits, sample_weight if metric.weighted else None)
