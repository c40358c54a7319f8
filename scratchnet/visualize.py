"""Pictures of what a convnet learned, built on ``scratchnet.gradients``: filters, feature
maps, saliency maps (Simonyan et al. 2014), Grad-CAM heat maps (Selvaraju et al. 2017) and
patterns that excite a filter (gradient ascent on the input, as in Chollet's chapter on
interpreting convnets). Arrays in, arrays out; the ``plot_*`` functions draw them with
matplotlib."""
import numpy as np

from . import gradients, layers as layers_module, models

CONVOLUTIONS = (layers_module.Conv2D, layers_module.DepthwiseConv2D, layers_module.SeparableConv2D)


def conv_layers(model):
    """The model's convolutional layers (top level), in order."""
    return [layer for layer in model.layers if isinstance(layer, CONVOLUTIONS)]


def last_conv_layer(model):
    """The name of the model's last convolutional layer (where Grad-CAM looks): a top-level
    convolution, or a nested model (a pretrained base used as one layer) whose output is
    image-shaped, whichever comes last; or an error."""
    for layer in reversed(model.layers):
        if isinstance(layer, CONVOLUTIONS):
            return layer.name
        if isinstance(layer, models.Model) and len(layer.output_shape) == 4:
            return layer.name
    raise ValueError(f"Grad-CAM needs a convolutional layer, and model {model.name!r} has none (its layers: "
                     f"{[layer.name for layer in model.layers]})")


def feature_maps(model, x, names=None):
    """{layer name: its activations on ``x``} for ``names`` (default: every convolutional
    layer), from one sub-model of the same input, as Chollet's book builds it."""
    names = [layer.name for layer in conv_layers(model)] if names is None else list(names)
    outputs = [gradients.tensor_of(model, name, "feature_maps") for name in names]
    probe = models.Model(model.inputs, outputs)
    found = probe.predict(x, verbose=0)
    return dict(zip(names, found if isinstance(found, list) else [found]))


def _class_seed(model, x, class_index):
    """(target, seed) that score each sample by its class ``class_index`` (None: the class
    the model predicts): an index into a softmax output, or for a one-unit sigmoid output
    +output for class 1 and -output for class 0."""
    probabilities = model.predict(x, verbose=0)
    n, units = probabilities.shape[0], probabilities.shape[-1]
    if units == 1:
        middle = 0.5 if _has_output_activation(model) else 0.0     # a probability, or a logit
        chosen = (probabilities[:, 0] > middle).astype(int) if class_index is None else \
            np.broadcast_to(np.asarray(class_index), (n,))
        if not np.isin(chosen, (0, 1)).all():
            raise ValueError(f"a one-unit output has classes 0 and 1; got class_index {class_index!r}")
        seed = np.where(chosen == 1, 1.0, -1.0).reshape(n, 1).astype(probabilities.dtype)
        return None, seed, chosen
    chosen = probabilities.argmax(axis=-1) if class_index is None else np.broadcast_to(np.asarray(class_index), (n,))
    return chosen, None, chosen


def _has_output_activation(model):
    layer = gradients.tensor_of(model, "output", "visualize").node.layer
    activation = getattr(layer, "activation", None)
    return activation is not None and getattr(activation, "name", "linear") != "linear"


def saliency(model, x, class_index=None):
    """(N, H, W) saliency maps: the largest |d class score / d pixel| over the channels, the
    score taken before the output's activation (Simonyan et al.). ``class_index`` None takes
    the predicted class."""
    target, seed, _ = _class_seed(model, x, class_index)
    result = gradients.gradient(model, x, target, seed=seed, logits=_has_output_activation(model))
    return np.abs(result.gradient).max(axis=-1)


def grad_cam(model, x, class_index=None, layer=None):
    """(N, h, w) Grad-CAM heat maps in [0, 1] at the resolution of ``layer`` (default: the
    last convolutional layer): ReLU of the layer's channels weighted by the mean gradient of
    the class score over each channel, divided by its largest value (0 where nothing
    contributes). ``class_index`` None takes the predicted class. The class score is taken
    before the output's activation, as in the paper (Keras's tutorial takes the probability,
    whose gradient vanishes where the softmax or sigmoid saturates)."""
    layer = layer or last_conv_layer(model)
    target, seed, _ = _class_seed(model, x, class_index)
    result = gradients.gradient(model, x, target, seed=seed, wrt=layer, logits=_has_output_activation(model))
    activation, grads = result.wrt_value, result.gradient
    if activation.ndim != 4:
        raise ValueError(f"Grad-CAM needs an image-shaped layer (N, H, W, C); {layer!r} gives shape "
                         f"{activation.shape}")
    weights = grads.mean(axis=(1, 2), keepdims=True)
    heat = np.maximum((weights * activation).sum(axis=-1), 0)
    top = heat.reshape(len(heat), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(heat, top, out=np.zeros_like(heat), where=top > 0)


def overlay(image, heatmap, alpha=0.4, colormap="jet"):
    """An RGB uint8 picture: ``heatmap`` (h, w) in [0, 1] resized to ``image`` (H, W, 1, 3
    or 4 channels, or H, W; values in [0, 1] or [0, 255]), coloured and laid over it."""
    from matplotlib import colormaps
    from PIL import Image
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 4:      # RGBA: the colours, without the alpha
        image = image[..., :3]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.max() <= 1.0:
        image = image * 255
    height, width = image.shape[:2]
    resized = Image.fromarray(np.uint8(np.clip(heatmap, 0, 1) * 255)).resize((width, height), Image.BILINEAR)
    colours = colormaps[colormap](np.asarray(resized) / 255.0)[..., :3] * 255
    return np.uint8(np.clip((1 - alpha) * image + alpha * colours, 0, 255))


def filter_pattern(model, layer, filter_index, steps=40, step_size=0.05, jitter=2, seed=0, start=None):
    """The input that a filter of ``layer`` answers most strongly to, by gradient ascent on
    the mean of its activation map: from a grey image with a little noise (or ``start``),
    each step moves the image by ``step_size`` times the gradient divided by its root mean
    square, after shifting the image by up to ``jitter`` pixels at random (and back), which
    keeps the pattern from fitting single pixels. Inputs are taken to be in [0, 1]. Returns
    (the image, a float array shaped like one input, and the filter's mean activation at
    each step)."""
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(seed)
    image = (0.5 + 0.05 * rng.standard_normal(shape) if start is None else np.array(start, np.float64))[None]
    image = image.astype(model.dtype)
    history = []
    for _ in range(steps):
        dy, dx = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
        shifted = np.roll(image, (dy, dx), axis=(1, 2))
        result = gradients.gradient(model, shifted, filter_index, of=layer)
        grad = np.roll(result.gradient, (-dy, -dx), axis=(1, 2))
        history.append(float(result.value[0]))
        image = image + step_size * grad / (np.sqrt(np.mean(grad * grad)) + 1e-8)
    return image[0], np.array(history)


def deprocess(image):
    """A float image of any range as uint8 for display: centred, scaled to a standard
    deviation of 0.15 around 0.5 and clipped, as in Chollet's chapter."""
    image = np.asarray(image, dtype=np.float64)
    image = (image - image.mean()) / (image.std() + 1e-8) * 0.15 + 0.5
    return np.uint8(np.clip(image, 0, 1) * 255)


def plot_feature_maps(maps, channels=8, image=None):
    """A matplotlib figure: one row per layer of ``maps`` (from ``feature_maps``, one
    sample), its first ``channels`` maps, the input first when ``image`` is given."""
    import matplotlib.pyplot as plt
    rows = len(maps)
    columns = channels + (image is not None)
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.3 * rows), squeeze=False)
    for row, (name, activation) in enumerate(maps.items()):
        cells = list(axes[row])
        if image is not None:
            cell = cells.pop(0)
            cell.imshow(np.squeeze(image), cmap="gray" if np.squeeze(image).ndim == 2 else None)
        for c, cell in enumerate(cells[:activation.shape[-1]]):
            cell.imshow(activation[0, :, :, c], cmap="magma")
        axes[row, 0].set_title(name, fontsize=8, loc="left")
    for cell in axes.flat:
        cell.axis("off")
    fig.tight_layout()
    return fig


def plot_filters(kernel, columns=8):
    """A matplotlib figure of a first convolution's filters, ``kernel`` (kh, kw, channels,
    filters) in Keras's layout: grey for one input channel, RGB (each filter scaled) for three."""
    import matplotlib.pyplot as plt
    kernel = np.asarray(kernel)
    count = kernel.shape[-1]
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
    for f, cell in enumerate(axes.flat):
        cell.axis("off")
        if f >= count:
            continue
        patch = kernel[..., f]
        if patch.shape[-1] == 3:
            cell.imshow((patch - patch.min()) / (np.ptp(patch) + 1e-12))
        else:
            cell.imshow(patch[..., 0], cmap="gray")
    fig.tight_layout()
    return fig
