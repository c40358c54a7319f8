"""Small helpers with Keras's names (``keras.utils``)."""
import numpy as np

from .config import clear_session, set_random_seed
from .preprocessing.image import array_to_img, img_to_array, load_img
from .preprocessing.image_dataset import image_dataset_from_directory
from .training.py_dataset import PyDataset, Sequence


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download ``origin`` once into ~/.keras/datasets (or ``cache_dir/cache_subdir``) and return
    its path, as keras.utils.get_file; see scratchnet.datasets.download.get_file."""
    from .datasets.download import get_file as download
    return download(fname, origin, untar, md5_hash, file_hash, cache_subdir, hash_algorithm, extract,
                    archive_format, cache_dir, force_download)


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False):
    """A picture of the model's graph in ``to_file``, as keras.utils.plot_model (Graphviz's dot
    draws it); see scratchnet.model_plot."""
    from .model_plot import plot_model as draw
    return draw(model, to_file, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
                show_layer_activations, show_trainable)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False):
    """The model's graph as Graphviz DOT text (a str; Keras returns a pydot graph)."""
    from .model_plot import model_to_dot as text
    return text(model, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
                show_layer_activations, show_trainable)


def to_categorical(x, num_classes=None):
    """One-hot rows of the integer labels ``x``: shape x.shape + (num_classes,), a trailing
    axis of size 1 dropped first (labels shaped (N, 1)), as keras.utils.to_categorical;
    ``num_classes`` defaults to the largest label + 1."""
    labels = np.asarray(x)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(f"to_categorical expects integer class labels, got values such as "
                             f"{labels.ravel()[np.mod(labels.ravel(), 1) != 0][:3].tolist()}")
    labels = labels.astype(np.int64)
    shape = labels.shape[:-1] if labels.ndim > 1 and labels.shape[-1] == 1 else labels.shape
    flat = labels.reshape(-1)
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = flat[(flat < 0) | (flat >= num_classes)][:3].tolist()
        raise ValueError(f"to_categorical: labels must be in 0..{num_classes - 1} for num_classes={num_classes}, "
                         f"got {bad}")
    out = np.zeros((flat.size, num_classes), dtype=np.float64)
    out[np.arange(flat.size), flat] = 1
    return out.reshape(shape + (num_classes,))


__all__ = ["set_random_seed", "clear_session", "to_categorical", "load_img", "img_to_array", "array_to_img",
           "image_dataset_from_directory", "get_file", "plot_model", "model_to_dot", "PyDataset", "Sequence"]


def __getattr__(name):
    """A keras.utils name scratchnet lacks: the nearest one it has, and all of them."""
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    raise missing("utils", name, __all__)
