"""Keras's image pipeline: ImageDataGenerator and flow_from_directory.

    datagen = ImageDataGenerator(rescale=1/255, rotation_range=40, horizontal_flip=True)
    train = datagen.flow_from_directory('data/train', target_size=(150, 150),
                                        batch_size=32, class_mode='binary')
    model.fit(train, steps_per_epoch=len(train), epochs=30)

Images are decoded with Pillow in background threads (Pillow releases the GIL while it
decodes and resamples), a few batches ahead of training. Files that cannot be read are
skipped with one warning each; the iterator never stops an epoch because of one.
"""
import math
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..training.data_adapter import shard_bounds

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".gif", ".webp")
_CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}
_PIL_MODES = {"rgb": "RGB", "grayscale": "L", "rgba": "RGBA"}
_RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
             "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}
_PAD_MODES = {"nearest": "edge", "reflect": "symmetric", "wrap": "wrap", "constant": "constant"}


class UnreadableImage(ValueError):
    """A file that is not an image Pillow can decode, with the reason."""


def _to_mode(image, color_mode):
    """Convert any Pillow image (L, P, RGBA, CMYK, I;16, F, ...) to the requested mode."""
    mode = _PIL_MODES[color_mode]
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit and float images: Pillow's own conversion clips at 255, so scale to 8 bits
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") and array.max() > 255 else max(array.max(), 1.0)
        image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")   # keeps palette transparency meaningful
    if image.mode in ("RGBA", "LA") and mode != "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert(mode) if image.mode != mode else image


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Decode one image file to a Pillow image of ``color_mode`` and ``target_size``
    (height, width), honouring EXIF orientation; raise UnreadableImage if it cannot. With
    ``keep_aspect_ratio`` the image is first cropped around its centre to the target's
    aspect ratio, as in Keras, instead of being stretched."""
    if color_mode not in _CHANNELS:
        raise ValueError(f"color_mode must be one of {sorted(_CHANNELS)}, got {color_mode!r}")
    if interpolation not in _RESAMPLE:
        raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}, got {interpolation!r}")
    try:
        with Image.open(path) as image:
            if target_size is not None and image.format == "JPEG":
                # decode big JPEGs at a reduced scale (still at least the target size): much faster
                image.draft(image.mode, (target_size[1], target_size[0]))
            image = ImageOps.exif_transpose(image)
            image = _to_mode(image, color_mode)
            if target_size is not None and keep_aspect_ratio:
                image = _crop_to_aspect(image, target_size)
            if target_size is not None and image.size != (target_size[1], target_size[0]):
                image = image.resize((target_size[1], target_size[0]), _RESAMPLE[interpolation])
            image.load()
            return image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"{path}: {type(error).__name__}: {error}") from error


def _crop_to_aspect(image, target_size):
    """The largest centred crop of ``image`` with the aspect ratio of (height, width) ``target_size``."""
    width, height = image.size
    crop_height = min(height, round(width * target_size[0] / target_size[1]))
    crop_width = min(width, round(height * target_size[1] / target_size[0]))
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    return image.crop((left, top, left + crop_width, top + crop_height))


def img_to_array(image, data_format=None, dtype=None):
    """(height, width, channels) array of a Pillow image, float32 unless ``dtype`` says otherwise."""
    _check_data_format(data_format)
    array = np.asarray(image, dtype=dtype or "float32")
    return array[:, :, None] if array.ndim == 2 else array


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A Pillow image of a (height, width, channels) array with 1, 3 or 4 channels; with
    ``scale`` its values are first stretched to 0..255 (minimum to 0, maximum to 255), as in
    Keras. Values still outside 0..255 are clipped (Keras lets uint8 wrap them around)."""
    _check_data_format(data_format)
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"array_to_img expects an array of shape (height, width, 1, 3 or 4 channels), got shape "
                         f"{x.shape}")
    if scale:
        x = x - x.min()
        top = x.max()
        x = x / top * 255 if top != 0 else x
    x = np.clip(x, 0, 255).astype(np.uint8)
    if x.shape[-1] == 1:
        return Image.fromarray(x[:, :, 0], "L")
    return Image.fromarray(x, "RGB" if x.shape[-1] == 3 else "RGBA")


def _check_data_format(data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"data_format must be 'channels_last' (scratchnet's only layout), got {data_format!r}")


class ImageDataGenerator:
    """Random augmentation and rescaling of image batches, with Keras's arguments.

    Geometric transforms (rotation, shifts, shear, zoom, flips) are drawn per image and
    applied as one affine map about the image centre; areas the map brings in from
    outside the image are filled as ``fill_mode`` says ('nearest', 'reflect', 'wrap',
    'constant' with ``cval``). ``rescale`` multiplies the pixel values last."""

    def __init__(self, featurewise_center=False, samplewise_center=False, featurewise_std_normalization=False,
                 samplewise_std_normalization=False, zca_whitening=False, zca_epsilon=1e-6, rotation_range=0.0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None, shear_range=0.0,
                 zoom_range=0.0, channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None, data_format=None,
                 validation_split=0.0, interpolation_order=1, dtype="float32"):
        if fill_mode not in _PAD_MODES:
            raise ValueError(f"fill_mode must be one of {sorted(_PAD_MODES)}, got {fill_mode!r}")
        if np.isscalar(zoom_range):
            zoom_range = (1 - zoom_range, 1 + zoom_range)
        if len(zoom_range) != 2 or min(zoom_range) <= 0:
            raise ValueError(f"zoom_range must be a float or a pair of positive floats, got {zoom_range!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if brightness_range is not None and (not isinstance(brightness_range, (tuple, list)) or
                                             len(brightness_range) != 2):
            raise ValueError(f"brightness_range must be a pair of floats, got {brightness_range!r}")
        if interpolation_order != 1:
            raise NotImplementedError(f"scratchnet has no interpolation_order={interpolation_order}; transforms "
                                      f"interpolate bilinearly (order 1, Keras's default)")
        _check_data_format(data_format)
        self.featurewise_center, self.samplewise_center = featurewise_center, samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening, self.zca_epsilon = zca_whitening, zca_epsilon
        self.brightness_range = tuple(brightness_range) if brightness_range is not None else None
        self.channel_shift_range = float(channel_shift_range)
        self.preprocessing_function = preprocessing_function
        self.rescale = rescale
        self.rotation_range, self.shear_range = float(rotation_range), float(shear_range)
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.zoom_range = tuple(float(z) for z in zoom_range)
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.fill_mode, self.cval = fill_mode, cval
        self.validation_split = validation_split
        self.dtype = np.dtype(dtype or "float32")
        self.mean = self.std = self.zca_whitening_matrix = None

    @property
    def augments(self):
        return bool(self.rotation_range or self.width_shift_range or self.height_shift_range
                    or self.shear_range or self.zoom_range != (1.0, 1.0)
                    or self.horizontal_flip or self.vertical_flip or self.brightness_range
                    or self.channel_shift_range)

    def get_random_transform(self, shape, rng):
        """Draw the parameters of one random transform for an image of ``shape`` (h, w, c)."""
        h, w = shape[0], shape[1]

        def shift(setting, size):
            if not setting:
                return 0.0
            fraction = rng.uniform(-setting, setting) if setting < 1 else rng.integers(-setting, setting + 1)
            return fraction * size if setting < 1 else float(fraction)

        return {
            "theta": rng.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0.0,
            "tx": shift(self.height_shift_range, h),
            "ty": shift(self.width_shift_range, w),
            "shear": rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0.0,
            "zx": rng.uniform(*self.zoom_range) if self.zoom_range != (1.0, 1.0) else 1.0,
            "zy": rng.uniform(*self.zoom_range) if self.zoom_range != (1.0, 1.0) else 1.0,
            "flip_horizontal": bool(self.horizontal_flip and rng.random() < 0.5),
            "flip_vertical": bool(self.vertical_flip and rng.random() < 0.5),
            "channel_shift_intensity": (rng.uniform(-self.channel_shift_range, self.channel_shift_range)
                                        if self.channel_shift_range else None),
            "brightness": rng.uniform(*self.brightness_range) if self.brightness_range else None,
        }

    def apply_transform(self, x, params):
        """Apply ``params`` (from get_random_transform) to one (h, w, c) image array."""
        h, w = x.shape[0], x.shape[1]
        theta, shear = np.deg2rad(params["theta"]), np.deg2rad(params["shear"])
        # maps an output pixel (row, col) to the input pixel it shows, about the centre
        rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        shearing = np.array([[1, -np.sin(shear)], [0, np.cos(shear)]])
        zoom = np.diag([params["zx"], params["zy"]])
        m = rotation @ shearing @ zoom
        centre = np.array([(h - 1) / 2, (w - 1) / 2])
        offset = centre - m @ centre + np.array([params["tx"], params["ty"]])
        if not np.allclose(m, np.eye(2)) or np.any(offset):
            x = _affine(x, m, offset, self.fill_mode, self.cval)
        if params.get("channel_shift_intensity") is not None:   # every channel shifted, kept in the image's range
            x = np.clip(x + params["channel_shift_intensity"], x.min(), x.max())
        if params["flip_horizontal"]:
            x = x[:, ::-1]
        if params["flip_vertical"]:
            x = x[::-1]
        if params.get("brightness") is not None:
            x = _brightness(x, params["brightness"])
        return np.ascontiguousarray(x)

    def random_transform(self, x, seed=None):
        return self.apply_transform(x, self.get_random_transform(x.shape, np.random.default_rng(seed)))

    def standardize(self, x):
        """Keras's order: preprocessing_function, rescale, then the sample's and the dataset's
        (``fit``) centring, scaling and ZCA whitening, as asked."""
        if self.preprocessing_function is not None:
            x = self.preprocessing_function(x)
        if self.rescale:
            x = x * self.dtype.type(self.rescale)
        if self.samplewise_center:
            x = x - np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x = x / (np.std(x, keepdims=True) + 1e-6)
        for wanted, value, name in ((self.featurewise_center, self.mean, "featurewise_center"),
                                    (self.featurewise_std_normalization, self.std, "featurewise_std_normalization"),
                                    (self.zca_whitening, self.zca_whitening_matrix, "zca_whitening")):
            if wanted and value is None:
                warnings.warn(f"This ImageDataGenerator specifies `{name}`, but it hasn't been fit on any training "
                              f"data. Fit it first by calling `.fit(numpy_data)`.", stacklevel=2)
        if self.featurewise_center and self.mean is not None:
            x = x - self.mean
        if self.featurewise_std_normalization and self.std is not None:
            x = x / (self.std + 1e-6)
        if self.zca_whitening and self.zca_whitening_matrix is not None:
            x = (x.reshape(-1, math.prod(x.shape[-3:])) @ self.zca_whitening_matrix).reshape(x.shape)
        return x.astype(self.dtype, copy=False)

    def fit(self, x, augment=False, rounds=1, seed=None):
        """The dataset's per-channel mean and standard deviation (and ZCA matrix) from the
        images ``x`` (N, h, w, c), after ``rescale``, for featurewise_center,
        featurewise_std_normalization and zca_whitening; with ``augment``, from ``rounds``
        randomly transformed copies."""
        x = np.array(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(f"ImageDataGenerator.fit expects images shaped (N, height, width, channels), got shape "
                             f"{x.shape}")
        if self.rescale:
            x *= self.rescale
        if augment:
            rng = np.random.default_rng(seed)
            x = np.stack([self.random_transform(image, int(rng.integers(2**63 - 1)))
                          for _ in range(rounds) for image in x])
        if self.featurewise_center:
            self.mean = np.mean(x, axis=(0, 1, 2)).reshape(1, 1, -1).astype(self.dtype)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=(0, 1, 2)).reshape(1, 1, -1).astype(self.dtype)
            x /= self.std + 1e-6
        if self.zca_whitening:
            flat = x.reshape(len(x), -1).astype(np.float64)
            u, singular, _ = np.linalg.svd(flat.T, full_matrices=False)
            scale = np.sqrt(len(x)) / (singular + self.zca_epsilon)
            self.zca_whitening_matrix = ((u * scale) @ u.T).astype(self.dtype)

    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None, save_to_dir=None,
             save_prefix="", save_format="png", ignore_class_split=False, subset=None):
        """Endless batches of (augmented, standardized x, y) from arrays; ``len()`` is one
        epoch's batches. With ``validation_split``, subset='validation' is the first part."""
        if sample_weight is not None or save_to_dir is not None:
            raise NotImplementedError("scratchnet's flow() has no sample_weight or save_to_dir")
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, seed=seed, subset=subset,
                                  ignore_class_split=ignore_class_split)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None,
                            interpolation="nearest", subset=None, workers=2, verbose=True):
        """Batches of images read from ``directory/<class>/*``; see DirectoryIterator."""
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode,
                                 classes=classes, class_mode=class_mode, batch_size=batch_size,
                                 shuffle=shuffle, seed=seed, interpolation=interpolation,
                                 subset=subset, workers=workers, verbose=verbose)


def _affine(x, m, offset, fill_mode, cval):
    """Resample x (h, w, c) at m @ (row, col) + offset with bilinear interpolation; points
    outside the image are filled as fill_mode says (by padding with np.pad first)."""
    h, w = x.shape[:2]
    pad = int(math.ceil(max(h, w) * 0.75))
    pad_kwargs = {"constant_values": cval} if fill_mode == "constant" else {}
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode=_PAD_MODES[fill_mode], **pad_kwargs)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    src_r = m[0, 0] * rows + m[0, 1] * cols + offset[0] + pad
    src_c = m[1, 0] * rows + m[1, 1] * cols + offset[1] + pad
    src_r = np.clip(src_r, 0, padded.shape[0] - 1.001)
    src_c = np.clip(src_c, 0, padded.shape[1] - 1.001)
    r0, c0 = src_r.astype(np.intp), src_c.astype(np.intp)
    fr, fc = (src_r - r0)[..., None], (src_c - c0)[..., None]
    top = padded[r0, c0] * (1 - fc) + padded[r0, c0 + 1] * fc
    bottom = padded[r0 + 1, c0] * (1 - fc) + padded[r0 + 1, c0 + 1] * fc
    return (top * (1 - fr) + bottom * fr).astype(x.dtype)


def _brightness(x, factor):
    """Pillow's brightness enhancement of an image, on its own 0..255 scale, as Keras does it."""
    from PIL import ImageEnhance
    low, high = float(x.min()), float(x.max())
    outside = low < 0 or high > 255
    image = ImageEnhance.Brightness(array_to_img(x, scale=outside)).enhance(factor)
    out = img_to_array(image, dtype=x.dtype)
    return out / 255 * (high - low) + low if outside else out


class _EpochSchedule:
    """What both iterators share: the sample indices of the next batch, with a seed per
    sample for its random transform; each epoch draws its order (shuffled or not) and its
    seeds from a generator seeded by (seed, epoch), so a run is repeatable."""

    _rank, _ranks = 0, 1

    def shard(self, rank, ranks):
        """Give rank ``rank`` of ``ranks`` processes (data-parallel training) its share of each
        global batch of ``ranks * batch_size`` samples: the batches, orders and random
        transforms one process would have at that batch size, split in rank order. Every rank
        must use the same seed. Returns the iterator."""
        if not (isinstance(ranks, int) and ranks >= 1 and isinstance(rank, int) and 0 <= rank < ranks):
            raise ValueError(f"shard(rank, ranks) needs 0 <= rank < ranks, got rank={rank!r}, ranks={ranks!r}")
        if ranks > 1 and self._seed_given is None and (self.shuffle or self.generator.augments):
            raise ValueError("shard(): every rank must shuffle and augment alike, so give this iterator a seed "
                             "(flow(..., seed=N) or flow_from_directory(..., seed=N)), the same on every rank")
        self._rank, self._ranks = rank, ranks
        self.reset()
        return self

    def _steps(self, count):
        return math.ceil(count / (self.batch_size * self._ranks))

    def _next_indices(self, count):
        if self._order is None or self._position >= count:
            self._epoch_rng = np.random.default_rng([self._seed, self.epoch])
            self._order = self._epoch_rng.permutation(count) if self.shuffle else np.arange(count)
            self._position = 0
            self.epoch += 1
        indices = self._order[self._position:self._position + self.batch_size * self._ranks]
        self._position += len(indices)
        seeds = self._epoch_rng.integers(0, 2**63 - 1, len(indices))
        low, high = shard_bounds(len(indices), self._rank, self._ranks)
        return indices[low:high], seeds[low:high]


class NumpyArrayIterator(_EpochSchedule):
    """What ``ImageDataGenerator.flow`` returns: an endless iterator of batches from arrays,
    with ``len()`` the batches of one epoch, reshuffled every epoch (seeded)."""

    def __init__(self, x, y, generator, batch_size=32, shuffle=True, seed=None, subset=None,
                 ignore_class_split=False):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"flow() expects images shaped (N, height, width, channels), got shape {x.shape}")
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(x):
                raise ValueError(f"flow(): x and y must hold the same number of samples: x has {len(x)}, y has "
                                 f"{len(y)}")
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f"subset must be 'training' or 'validation', got {subset!r}")
            cut = int(len(x) * generator.validation_split)
            if y is not None and not ignore_class_split and y.ndim == 1 and \
                    not np.array_equal(np.unique(y[:cut]), np.unique(y[cut:])):
                raise ValueError("Training and validation subsets have different number of classes after the split. "
                                 "If your numpy arrays are sorted by the label, you might want to shuffle them.")
            part = slice(None, cut) if subset == "validation" else slice(cut, None)
            x, y = x[part], (y[part] if y is not None else None)
        self.x, self.y, self.generator = x, y, generator
        self.batch_size, self.shuffle = batch_size, shuffle
        self.n = len(x)
        self._seed_given = seed
        self._seed = seed if seed is not None else int(np.random.default_rng().integers(2**31))
        self.epoch = 0
        self._order, self._position = None, 0

    def __len__(self):
        return self._steps(self.n)

    def __iter__(self):
        return self

    def __next__(self):
        indices, seeds = self._next_indices(self.n)
        generator = self.generator
        images = []
        for i, seed in zip(indices, seeds):
            image = self.x[i].astype(generator.dtype)
            if generator.augments:
                image = generator.random_transform(image, int(seed))
            images.append(generator.standardize(image))
        batch = np.stack(images) if images else np.empty((0,) + self.x.shape[1:], generator.dtype)
        return batch if self.y is None else (batch, self.y[indices])

    def reset(self):
        self._order, self._position = None, 0


class DirectoryIterator(_EpochSchedule):
    """Endless batches from a folder with one sub-folder per class, as Keras's.

    ``samples``, ``classes`` (label of each file), ``class_indices`` ({name: label}),
    ``filenames`` and ``len()`` (batches per epoch) are as in Keras. Each epoch reshuffles
    (when ``shuffle``), and the last batch of an epoch may be smaller. ``class_mode``:
    'binary' (float 0/1), 'categorical' (one-hot), 'sparse' (int labels), or None (images
    only, e.g. for predict)."""

    def __init__(self, directory, generator=None, target_size=(256, 256), color_mode="rgb",
                 classes=None, class_mode="categorical", batch_size=32, shuffle=True, seed=None,
                 interpolation="nearest", subset=None, workers=2, verbose=True, prefetch=4):
        self.directory = Path(directory)
        self.generator = generator or ImageDataGenerator()
        self.target_size = tuple(int(s) for s in target_size)
        if color_mode not in _CHANNELS:
            raise ValueError(f"color_mode must be one of {sorted(_CHANNELS)}, got {color_mode!r}")
        if class_mode not in ("binary", "categorical", "sparse", None):
            raise ValueError(f"class_mode must be 'binary', 'categorical', 'sparse' or None, "
                             f"got {class_mode!r}")
        if interpolation not in _RESAMPLE:
            raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}, got {interpolation!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.color_mode, self.class_mode, self.interpolation = color_mode, class_mode, interpolation
        self.image_shape = self.target_size + (_CHANNELS[color_mode],)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self._scan(classes, subset)
        if verbose:
            print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        self.skipped = []          # files found unreadable while decoding, with reasons
        self._bad = set()
        self._lock = threading.Lock()
        # every epoch's order and augmentations derive from (seed, epoch): reproducible, and a
        # resumed run picks up exactly where it stopped (set_epoch)
        self._seed_given = seed
        self._seed = int(seed) if seed is not None else int(np.random.default_rng().integers(2**62))
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="scratchnet-images")
        self.prefetch = prefetch
        self.epoch = 0             # epochs started (by the background scheduling)
        self._order = None
        self._epoch_rng = None
        self._position = 0
        self._pending = deque()

    # ----- listing -------------------------------------------------------------------
    def _scan(self, classes, subset):
        if not self.directory.is_dir():
            raise FileNotFoundError(f"image directory {self.directory} does not exist")
        if classes is None:
            classes = sorted(p.name for p in self.directory.iterdir() if p.is_dir())
        if not classes:
            raise ValueError(f"{self.directory} has no class sub-folders; expected one folder per "
                             f"class, e.g. {self.directory}/cats and {self.directory}/dogs")
        self.class_indices = {name: i for i, name in enumerate(classes)}
        self.num_classes = len(classes)
        if self.class_mode == "binary" and self.num_classes != 2:
            raise ValueError(f"class_mode='binary' needs exactly 2 classes, found {self.num_classes}: {classes}")
        filenames, labels = [], []
        for name in classes:
            folder = self.directory / name
            if not folder.is_dir():
                raise FileNotFoundError(f"class folder {folder} does not exist")
            files = sorted(p for p in folder.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise ValueError(f"class folder {folder} holds no images (looked for "
                                 f"{', '.join(IMAGE_EXTENSIONS)})")
            split = self.generator.validation_split
            if split and subset is not None:
                cut = int(len(files) * split)
                files = files[:cut] if subset == "validation" else files[cut:]
            filenames += [str(p.relative_to(self.directory)) for p in files]
            labels += [self.class_indices[name]] * len(files)
        self.filenames = filenames
        self.classes = np.array(labels, dtype=np.int32)
        self.samples = len(filenames)

    def __len__(self):
        return self._steps(self.samples)

    # ----- decoding ----------------------------------------------------------------------
    def _load(self, index, rng_seed):
        """One image as float32 (h, w, c), augmented and rescaled; None when unreadable."""
        path = self.directory / self.filenames[index]
        try:
            image = load_img(path, self.color_mode, self.target_size, self.interpolation)
        except UnreadableImage as error:
            with self._lock:
                if index not in self._bad:
                    self._bad.add(index)
                    self.skipped.append(str(error))
                    warnings.warn(f"skipping unreadable image {error}", stacklevel=2)
            return None
        x = img_to_array(image, dtype=self.generator.dtype)
        if self.generator.augments:
            x = self.generator.random_transform(x, rng_seed)
        return self.generator.standardize(x)

    def _make_batch(self, indices, seeds):
        images = [self._load(i, s) for i, s in zip(indices, seeds)]
        keep = [k for k, image in enumerate(images) if image is not None]
        x = np.stack([images[k] for k in keep]) if keep else np.empty((0,) + self.image_shape, np.float32)
        labels = self.classes[np.asarray(indices, dtype=np.intp)[keep]]
        if self.class_mode is None:
            return x
        if self.class_mode == "binary":
            y = labels.astype(np.float32)
        elif self.class_mode == "categorical":
            y = np.eye(self.num_classes, dtype=np.float32)[labels]
        else:
            y = labels.astype(np.int64)
        return x, y

    def _schedule(self):
        """Queue the next batch of indices for decoding in the background."""
        indices, seeds = self._next_indices(self.samples)
        self._pending.append(self._pool.submit(self._make_batch, indices, seeds))

    def set_epoch(self, epoch):
        """Make the next batch the first of epoch ``epoch`` (counting from 0)."""
        self.reset()
        self.epoch = int(epoch)

    def __iter__(self):
        return self

    def __next__(self):
        while len(self._pending) < self.prefetch:
            self._schedule()
        batch = self._pending.popleft().result()
        self._schedule()
        x = batch if self.class_mode is None else batch[0]
        if len(x) == 0 and self._ranks == 1:   # every file of this batch was unreadable: take the next one
            return next(self)
        return batch

    def reset(self):
        """Start again from the beginning of a fresh epoch (drops the prefetched batches)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._order, self._position = None, 0

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self):
        return (f"<DirectoryIterator {self.directory}: {self.samples} images, {self.num_classes} classes, "
                f"batch {self.batch_size}>")


def list_pictures(directory, extensions=IMAGE_EXTENSIONS):
    """Image files directly or indirectly below ``directory``, sorted."""
    return sorted(str(p) for p in Path(directory).rglob("*") if p.suffix.lower() in extensions)


__all__ = ["ImageDataGenerator", "DirectoryIterator", "NumpyArrayIterator", "load_img", "img_to_array", "array_to_img", "list_pictures",
           "UnreadableImage"]
