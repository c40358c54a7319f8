"""ImageNet helpers with Keras's names (keras.applications.imagenet_utils): the input
preprocessing each application expects, and decode_predictions."""
import json

import numpy as np

CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"      # as Keras pins it
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def preprocess_input(x, data_format=None, mode="caffe"):
    """Images (..., height, width, 3) with values 0..255, as an application's weights expect:
    'caffe' (VGG16, ResNet50) turns RGB into BGR and subtracts ImageNet's mean per channel;
    'tf' (InceptionV3, MobileNetV2) scales to -1..1; 'torch' scales to 0..1 and normalises
    each channel. A new float array; the input is left as it was."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"preprocess_input: scratchnet works channels_last; expected data_format='channels_last', "
                         f"got {data_format!r}")
    from ..graph import SymbolicTensor
    if isinstance(x, SymbolicTensor):
        return _in_graph(x, mode)
    x = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"preprocess_input expects images with 3 channels last, got shape {x.shape}")
    if mode == "tf":
        return x / x.dtype.type(127.5) - x.dtype.type(1)
    if mode == "torch":
        mean, std = np.array([0.485, 0.456, 0.406], x.dtype), np.array([0.229, 0.224, 0.225], x.dtype)
        return (x / x.dtype.type(255) - mean) / std
    if mode == "caffe":
        return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, dtype=x.dtype)
    raise ValueError(f"preprocess_input: mode must be 'caffe', 'tf' or 'torch', got {mode!r}")


def _in_graph(x, mode):
    """The same preprocessing inside a model, for a symbolic tensor (Input(...) or a layer's
    output), made of layers Keras files hold: a frozen Dense on the channels (the BGR flip and
    the mean) for 'caffe', Rescaling for 'tf' and 'torch'."""
    from .. import layers
    from ..config import unique_name
    if x.shape[-1] != 3:
        raise ValueError(f"preprocess_input expects images with 3 channels last, got shape {x.shape}")
    name = unique_name("preprocess_input")
    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name=name)(x)
    if mode == "torch":
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        return layers.Rescaling(list(1 / (255 * std)), offset=list(-mean / std), name=name)(x)
    if mode != "caffe":
        raise ValueError(f"preprocess_input: mode must be 'caffe', 'tf' or 'torch', got {mode!r}")
    flip = layers.Dense(3, trainable=False, name=name)
    y = flip(x)
    dtype = flip.params["kernel"].dtype
    flip.set_weights([np.eye(3, dtype=dtype)[::-1].copy(), -np.asarray(CAFFE_MEAN_BGR, dtype=dtype)])
    return y


def decode_predictions(preds, top=5):
    """[[(class id, class name, score), ...] for each row of ``preds`` (N, 1000)], best first,
    as Keras: the class index comes from Keras's cache (downloaded once and checked)."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"decode_predictions expects a batch of ImageNet predictions, shape (samples, 1000); got "
                         f"{preds.shape}")
    from ..datasets.download import get_file
    path = get_file("imagenet_class_index.json", CLASS_INDEX_URL, cache_subdir="models", file_hash=CLASS_INDEX_MD5)
    with open(path, encoding="utf-8") as f:
        index = json.load(f)
    results = []
    for row in preds:
        best = np.argsort(row)[-top:][::-1]
        results.append([tuple(index[str(i)]) + (row[i],) for i in best])
    return results
