"""``--from``: start a run from a saved model, the way the Keras transfer-learning tutorial
does. The whole model goes on training when its output fits the experiment; else its
convolutional base (the layers up to and including the last Flatten or global pooling
layer) gets a fresh head like the experiment's own. ``--freeze-base`` freezes that base."""
from .. import activations, layers, models
from ..geometry import shape_fits
from ..saving import load_model
from .errors import UsageError, one_line
from .experiments import catsdogs_min_size

# Where a model's convolutional base ends, as in the Keras tutorials: it includes the last of these.
BASE_ENDS = (layers.Flatten, layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)


def input_shape_for(settings):
    """The shape of one input image of the experiment."""
    if settings["experiment"] == "mnist":
        return (28, 28, 1)
    if settings["experiment"] == "segment":
        return (64, 64, 1)
    return (settings["image_size"], settings["image_size"], 3)


def load_source(settings, given):
    """The model --from names, read with load_model (so any file it reads), its input shape
    checked against the experiment's; catsdogs takes --image-size from it when not given."""
    path = settings["from"]
    try:
        model = load_model(path)
    except Exception as error:   # missing, foreign or broken: whichever reader load_model chose says why
        raise UsageError(f"--from: {one_line(error)}") from None
    if isinstance(model.input_shape, list):
        raise UsageError(f"--from {path} takes {len(model.input_shape)} inputs; {settings['experiment']} models "
                         f"take one image")
    shape = tuple(model.input_shape[1:])
    if settings["experiment"] == "catsdogs" and "image_size" not in given and len(shape) == 3 and \
            isinstance(shape[0], int):
        settings["image_size"] = shape[0]
    expected = input_shape_for(settings)
    if not shape_fits(shape, expected):      # a model of any image size (None) takes the experiment's
        what = ("mnist's digits have shape (28, 28, 1)" if settings["experiment"] == "mnist" else
                "segment's scenes have shape (64, 64, 1)" if settings["experiment"] == "segment" else
                f"catsdogs' photos at --image-size {settings['image_size']} have shape {expected}"
                if "image_size" in given else "catsdogs trains on square RGB photos, shape (SIZE, SIZE, 3)")
        raise UsageError(f"--from {path} takes inputs of shape {shape}, but {what}")
    return model


def output_layer(model):
    """The layer that makes a single-output model's output (inside a model used as a layer, too)."""
    layer = model.output.node.layer
    while isinstance(layer, models.Model) and not isinstance(layer.output, list):
        layer = layer.output.node.layer
    return layer


def output_text(model):
    """What a model outputs, as the experiment's loss sees it: '10 units, softmax'."""
    if isinstance(model.output, list):
        return f"{len(model.output)} outputs"
    shape = tuple(model.output_shape[1:])
    size = (f"{shape[0]} unit{'s' if shape[0] != 1 else ''}" if len(shape) == 1 else f"shape {shape}")
    activation = getattr(output_layer(model), "activation", None)
    return f"{size}, {activations.serialize(activation) if activation is not None else 'linear'}"


def ends_base(layer):
    """Whether the convolutional base ends with ``layer``: a Flatten or global pooling layer,
    or a model used as a layer whose output is one (an application with pooling='avg')."""
    if isinstance(layer, models.Model):
        return not isinstance(layer.output, list) and ends_base(layer.output.node.layer)
    return isinstance(layer, BASE_ENDS)


def base_end(model, path):
    """The last layer of the base of ``model`` (read from ``path``), or a UsageError."""
    ends = [layer for layer in model.layers if ends_base(layer)]
    if not ends:
        raise UsageError(f"--from {path} has no Flatten or global pooling layer, so its convolutional base cannot "
                         f"be told from its head")
    return ends[-1]


def head_of(model):
    """The layers after the base of one of the experiment's own models."""
    end = [layer for layer in model.layers if ends_base(layer)][-1]
    return model.layers[model.layers.index(end) + 1:]


def base_layers(model, end):
    """The layers of ``model`` that ``end``'s output depends on (``end`` included; the input
    layers left out), in the model's order."""
    found, seen, pending = set(), set(), [end.output]
    while pending:
        node = pending.pop().node
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if not node.layer.is_input:
            found.add(id(node.layer))
        pending.extend(node.inputs)
    return [layer for layer in model.layers if id(layer) in found]


def head_template(settings, experiment):
    """The experiment's own model, which a saved model's output must match and whose head a
    base gets (built at the smallest size that fits: the head does not depend on it)."""
    if settings["experiment"] == "catsdogs":
        settings = {**settings, "image_size": catsdogs_min_size()}
    return experiment.build(settings)


def clone_layer(layer, taken):
    """A fresh layer with ``layer``'s configuration and a new name not in ``taken``."""
    configuration = {k: v for k, v in layer.get_config().items() if k != "name"}
    clone = type(layer)(**configuration)
    while clone.name in taken:   # each construction draws the next automatic name
        clone = type(layer)(**configuration)
    return clone


def transfer_model(source, settings, experiment):
    """The model a --from run trains: ``source`` itself when its output fits the experiment,
    else its base with a fresh head like the experiment's own. What trains is --freeze-base's
    alone (not what the file says): the base frozen (trainable = False, before the compile
    that follows), or every layer trainable."""
    path, name = settings["from"], settings["experiment"]
    template = head_template(settings, experiment)
    wanted, has = output_text(template), output_text(source)
    end = None
    if has == wanted:
        model = source
        print(f"Starting from {path}: its output ({has}) fits {name}, so the whole model goes on training")
    else:
        end = base_end(source, path)
        taken = {layer.name for layer in source.layers}
        head = [clone_layer(layer, taken) for layer in head_of(template)]
        x = end.output
        for layer in head:
            x = layer(x)
        model = models.Model(source.input, x)
        print(f"Starting from {path}: its output ({has}) does not fit {name} ({wanted}), so its base (the layers "
              f"up to and including {end.name!r}) gets a fresh head like {name}'s own: "
              + ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in head))
    kept_frozen = [layer.name for layer in model.layers if not layer.trainable]
    if kept_frozen:
        print(f"The file marks {len(kept_frozen)} layers as frozen ({', '.join(kept_frozen[:3])}"
              f"{', ...' if len(kept_frozen) > 3 else ''}); here --freeze-base alone decides what trains")
    model.trainable = True
    if settings["freeze_base"]:
        frozen = base_layers(model, end or base_end(model, path))
        for layer in frozen:
            layer.trainable = False
        norms = sum(isinstance(layer, layers.BatchNormalization) for layer in frozen)
        note = {0: "", 1: "; its BatchNormalization layer runs in inference mode"}.get(
            norms, f"; its {norms} BatchNormalization layers run in inference mode")
        print(f"--freeze-base: the base's {len(frozen)} layers, up to and including {frozen[-1].name!r}, do not "
              f"train ({sum(layer.count_params() for layer in frozen):,} weights{note})")
    return model.to(settings["backend"])
