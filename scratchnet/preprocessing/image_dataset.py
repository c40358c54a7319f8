"""``image_dataset_from_directory``: a folder of class folders as batches ``fit`` takes, as
``keras.utils.image_dataset_from_directory`` does it: the same files in the same order, the
same labels, the same split, and images resized the way TensorFlow resizes them (bilinear
with half-pixel centres and no antialiasing, computed in float32), so the pixels match.
Instead of a tf.data.Dataset it returns an ``ImageDataset``: iterable (reshuffled on every
pass when ``shuffle``), with ``len()``, ``class_names``, ``file_paths`` and ``take(n)``."""
import os
from pathlib import Path

import numpy as np

from ..arrays import as_tensor
from .image import load_img

ALLOWED_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
LABEL_MODES = ("int", "categorical", "binary", None)
COLOR_MODES = {"grayscale": 1, "rgb": 3, "rgba": 4}
INTERPOLATIONS = ("bilinear", "nearest")


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True):
    """Batches of (images, labels) from ``directory``/CLASS/*.jpg (labels='inferred'), with
    Keras's arguments and semantics; ``subset='both'`` gives (training, validation)."""
    _check_arguments(labels, label_mode, color_mode, interpolation, validation_split, subset, shuffle, seed,
                     data_format, pad_to_aspect_ratio, batch_size)
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"image_dataset_from_directory: {directory} is not a folder")
    paths, found_labels, names = _index(directory, labels, class_names, follow_links)
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(f"label_mode='binary' needs exactly 2 classes, found {len(names)}: {names}")
    if seed is None and shuffle:
        seed = int(np.random.default_rng().integers(1_000_000))
    if shuffle:                        # one permutation for paths and labels, as Keras
        np.random.RandomState(seed).shuffle(paths)
        np.random.RandomState(seed).shuffle(found_labels)
    if verbose:
        print(f"Found {len(paths)} files belonging to {len(names)} classes.")
    settings = dict(label_mode=label_mode, names=names, color_mode=color_mode, batch_size=batch_size,
                    image_size=tuple(image_size), shuffle=shuffle, seed=seed, interpolation=interpolation,
                    crop_to_aspect_ratio=crop_to_aspect_ratio)
    if not validation_split:
        return ImageDataset(paths, found_labels, **settings)
    cut = len(paths) - int(validation_split * len(paths))
    parts = {"training": (paths[:cut], found_labels[:cut]), "validation": (paths[cut:], found_labels[cut:])}
    for name in ("training", "validation") if subset == "both" else (subset,):
        if verbose:
            print(f"Using {len(parts[name][0])} files for {name}.")
    made = {name: ImageDataset(*parts[name], **settings) for name in parts}
    return (made["training"], made["validation"]) if subset == "both" else made[subset]


def _check_arguments(labels, label_mode, color_mode, interpolation, validation_split, subset, shuffle, seed,
                     data_format, pad_to_aspect_ratio, batch_size):
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError(f"labels must be 'inferred', None or a list of labels, got {labels!r}")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {sorted(COLOR_MODES)}, got {color_mode!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS} here (scratchnet resizes as TensorFlow "
                         f"does for these), got {interpolation!r}")
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(f"subset must be 'training', 'validation', 'both' or None, got {subset!r}")
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {validation_split!r}")
    if bool(validation_split) != (subset is not None):
        raise ValueError("validation_split and subset go together: give both (e.g. validation_split=0.2, "
                         "subset='training') or neither")
    if validation_split and shuffle and seed is None:
        raise ValueError("with validation_split and shuffle, give a seed, so the training and validation subsets "
                         "do not overlap (as Keras requires)")
    if data_format not in (None, "channels_last"):
        raise ValueError(f"data_format must be 'channels_last' (scratchnet's only layout), got {data_format!r}")
    if pad_to_aspect_ratio:
        raise NotImplementedError("scratchnet has no pad_to_aspect_ratio; crop_to_aspect_ratio=True is the nearest")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")


def _index(directory, labels, class_names, follow_links):
    """(paths, labels, class names) in Keras's order: class folders sorted, files sorted in each."""
    if labels == "inferred":
        folders = sorted(p.name for p in directory.iterdir() if p.is_dir())
        names = list(class_names) if class_names is not None else folders
        if class_names is not None and sorted(class_names) != sorted(folders):
            raise ValueError(f"class_names {list(class_names)} must name the folders of {directory}, which are "
                             f"{folders}")
        paths, found = [], []
        for index, name in enumerate(names):
            files = _image_files(directory / name, follow_links)
            paths += files
            found += [index] * len(files)
    else:
        paths = _image_files(directory, follow_links)
        names = []
        if labels is None:
            found = [0] * len(paths)
        else:
            if len(labels) != len(paths):
                raise ValueError(f"labels has {len(labels)} entries, but {directory} holds {len(paths)} images "
                                 f"(sorted by path, they take the labels in order)")
            found = list(labels)
    if not paths:
        raise ValueError(f"no images ({', '.join(ALLOWED_FORMATS)}) found in {directory}")
    return np.array(paths), np.array(found), names


def _image_files(folder, follow_links):
    files = []
    for root, dirs, names in os.walk(folder, followlinks=follow_links):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(ALLOWED_FORMATS)]
    return sorted(files)


class _DatasetMethods:
    """The tf.data methods tutorials chain onto Keras's datasets (``ds.map(f).cache().shuffle(1000)
    .prefetch(n)``), each a new dataset over this re-iterable one, with tf.data's semantics:
    ``map`` applies a function to each element (a batch) as it is read; ``cache`` keeps the
    elements of the first complete pass and gives the same ones, in the same order, on every
    later pass (random choices a ``map`` made before it included); ``shuffle(buffer_size)``
    reorders the elements (the batches of a batched dataset, not the files in them) through a
    buffer of ``buffer_size``, anew each pass; ``take(n)`` gives the first n; ``prefetch``
    changes nothing (elements are read as they are needed)."""

    def map(self, function, num_parallel_calls=None, deterministic=None, name=None):
        """A dataset whose elements are ``function(images, labels)`` (or ``function(images)``)."""
        return MappedDataset(self, function)

    def cache(self, filename=""):
        """A dataset that keeps the elements of its first complete pass in memory (a
        ``filename`` is accepted, and the cache is kept in memory all the same)."""
        return CachedDataset(self)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None, name=None):
        """A dataset of these elements in a random order, drawn through a buffer of
        ``buffer_size`` as tf.data draws them; a new order each pass unless
        ``reshuffle_each_iteration=False``."""
        return ShuffledDataset(self, buffer_size, seed, reshuffle_each_iteration is not False)

    def take(self, count):
        """The first ``count`` elements of each pass."""
        return TakenDataset(self, count)

    def prefetch(self, buffer_size=None, name=None):
        return self

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"scratchnet's datasets have no {name}(); they have map, cache, shuffle, prefetch, "
                             f"take, len() and iteration (tf.data.Dataset's other methods are TensorFlow's)")


class _Derived(_DatasetMethods):
    """A dataset made from another (``source``), keeping its class names and file paths."""

    def __init__(self, source):
        self.source = source
        self.class_names = getattr(source, "class_names", None)
        self.file_paths = getattr(source, "file_paths", None)

    def __len__(self):
        return len(self.source)


class MappedDataset(_Derived):
    """A function applied to each element of another dataset, as tf.data's map."""

    def __init__(self, source, function):
        super().__init__(source)
        self.function = function

    def __iter__(self):
        for batch in self.source:
            yield self.function(*batch) if isinstance(batch, tuple) else self.function(batch)


class CachedDataset(_Derived):
    """Another dataset's elements, read once: the first complete pass keeps them, later passes
    give them again (a pass left unfinished keeps nothing, as in tf.data)."""

    def __init__(self, source):
        super().__init__(source)
        self.elements = None

    def __iter__(self):
        if self.elements is not None:
            yield from self.elements
            return
        elements = []
        for element in self.source:
            elements.append(element)
            yield element
        self.elements = elements


class ShuffledDataset(_Derived):
    """Another dataset's elements through a shuffle buffer, as tf.data's shuffle: the buffer
    fills with the first ``buffer_size`` elements; each element given is drawn from it at
    random and its place taken by the next one read."""

    def __init__(self, source, buffer_size, seed, reshuffle):
        super().__init__(source)
        if int(buffer_size) < 1:
            raise ValueError(f"shuffle: buffer_size must be a positive number of elements, got {buffer_size!r}")
        self.buffer_size = int(buffer_size)
        self.seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else seed
        self.reshuffle, self._rng = reshuffle, np.random.default_rng(self.seed)

    def __iter__(self):
        rng = self._rng if self.reshuffle else np.random.default_rng(self.seed)
        buffer = []
        for element in self.source:
            if len(buffer) < self.buffer_size:
                buffer.append(element)
                continue
            i = int(rng.integers(len(buffer)))
            yield buffer[i]
            buffer[i] = element
        while buffer:
            i = int(rng.integers(len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()


class TakenDataset(_Derived):
    """The first ``count`` elements of another dataset's every pass, as tf.data's take."""

    def __init__(self, source, count):
        super().__init__(source)
        self.count = int(count)

    def __len__(self):
        return len(self.source) if self.count < 0 else min(self.count, len(self.source))

    def __iter__(self):
        if self.count < 0:      # tf.data: take(-1) is everything
            yield from self.source
            return
        for number, element in enumerate(self.source):
            if number >= self.count:
                return
            yield element


class ImageDataset(_DatasetMethods):
    """Batches of (float32 images 0..255, labels) read from files as they are iterated."""

    def __init__(self, paths, labels, label_mode, names, color_mode, batch_size, image_size, shuffle, seed,
                 interpolation, crop_to_aspect_ratio):
        self.file_paths = [str(p) for p in paths]
        self._labels = np.asarray(labels)
        self.class_names = names
        self._settings = dict(label_mode=label_mode, names=names, color_mode=color_mode, batch_size=batch_size,
                              image_size=image_size, shuffle=shuffle, seed=seed, interpolation=interpolation,
                              crop_to_aspect_ratio=crop_to_aspect_ratio)
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        size = self._settings["batch_size"] or len(self.file_paths)
        return -(-len(self.file_paths) // size)

    def __iter__(self):
        s = self._settings
        order = self._rng.permutation(len(self.file_paths)) if s["shuffle"] else np.arange(len(self.file_paths))
        size = s["batch_size"] or len(order)
        for start in range(0, len(order), size):
            chosen = order[start:start + size]
            images = as_tensor(np.stack([self._image(self.file_paths[i]) for i in chosen]))
            if s["batch_size"] is None:          # unbatched: one sample at a time
                for i, image in zip(chosen, images):
                    yield image if s["label_mode"] is None else (image, as_tensor(self._label([i])[0]))
                return
            yield images if s["label_mode"] is None else (images, as_tensor(self._label(chosen)))

    def _label(self, chosen):
        mode, labels = self._settings["label_mode"], self._labels[chosen]
        if mode == "int":
            return labels.astype(np.int32)
        if mode == "binary":
            return labels.astype(np.float32)[:, None]
        out = np.zeros((len(labels), len(self.class_names)), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1
        return out

    def _image(self, path):
        s = self._settings
        array = decode(path, s["color_mode"])
        if s["crop_to_aspect_ratio"]:
            array = crop_to_aspect(array, s["image_size"])
        return resize(array, s["image_size"], s["interpolation"])

    def __repr__(self):
        return (f"<ImageDataset {len(self.file_paths)} files, {len(self)} batches, classes {self.class_names}>")


def crop_to_aspect(array, size):
    """The largest centred crop of ``array`` with the aspect ratio of ``size`` (height, width),
    as Keras's crop_to_aspect_ratio."""
    height, width = array.shape[:2]
    crop_height = min(height, int(width * size[0] / size[1]))
    crop_width = min(width, int(height * size[1] / size[0]))
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return array[top:top + crop_height, left:left + crop_width]


def decode(path, color_mode):
    """An image file's pixels, (height, width, channels) float32 0..255, as TensorFlow decodes them
    for Keras: a JPEG with libjpeg-turbo's fast integer DCT and smooth chroma upsampling
    (TensorFlow's defaults, through simplejpeg; Pillow's accurate DCT differs by about one level
    on average and up to five), and, as TensorFlow, no EXIF rotation; other formats, and JPEGs
    simplejpeg cannot read (CMYK), through Pillow."""
    import simplejpeg
    with open(path, "rb") as f:
        data = f.read()
    if data[:3] == b"\xff\xd8\xff":
        if color_mode == "rgba":
            raise ValueError(f"{path}: a JPEG has no alpha channel, so color_mode='rgba' cannot read it (as in "
                             f"Keras, whose TensorFlow decoder refuses it too); use color_mode='rgb'")
        try:
            pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY" if color_mode == "grayscale" else "RGB",
                                            fastdct=True, fastupsample=False)
        except ValueError:
            pixels = None
        if pixels is not None:
            return pixels.astype(np.float32)
    array = np.asarray(load_img(path, color_mode=color_mode), dtype=np.float32)
    return array[:, :, None] if array.ndim == 2 else array


def resize(array, size, interpolation="bilinear"):
    """(height, width, channels) float32 resized to ``size`` as tf.image.resize does it:
    half-pixel centres, no antialiasing, float32 arithmetic in TensorFlow's order."""
    height, width = array.shape[:2]
    out_height, out_width = size
    if interpolation == "nearest":
        rows = np.minimum(np.floor((np.arange(out_height) + 0.5) * (height / out_height)).astype(int), height - 1)
        cols = np.minimum(np.floor((np.arange(out_width) + 0.5) * (width / out_width)).astype(int), width - 1)
        return array[rows][:, cols].astype(np.float32)
    top, bottom, y_lerp = _weights(height, out_height)
    left, right, x_lerp = _weights(width, out_width)
    x_lerp = x_lerp[None, :, None]
    top_rows, bottom_rows = array[top], array[bottom]
    top_value = top_rows[:, left] + (top_rows[:, right] - top_rows[:, left]) * x_lerp
    bottom_value = bottom_rows[:, left] + (bottom_rows[:, right] - bottom_rows[:, left]) * x_lerp
    return (top_value + (bottom_value - top_value) * y_lerp[:, None, None]).astype(np.float32)


def _weights(in_size, out_size):
    scale = np.float32(in_size / out_size)
    position = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(position)
    lower = np.maximum(floor, 0).astype(int)
    upper = np.minimum(np.ceil(position), in_size - 1).astype(int)
    return lower, upper, (position - floor).astype(np.float32)


__all__ = ["image_dataset_from_directory", "ImageDataset"]
