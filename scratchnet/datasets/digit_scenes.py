"""Digit scenes: 64x64 canvases holding two to four real MNIST digits, with a mask that names
the digit under every pixel. A small semantic-segmentation task built from MNIST alone.

    from scratchnet.datasets import digit_scenes
    (x_train, m_train), (x_test, m_test) = digit_scenes.load_data()   # 20,000 and 2,000 scenes

How a scene is made (``compose``), each draw from one seeded NumPy generator, so the same
digits and seed give the same scenes, bit for bit:

- the number of digits, 2 to 4, uniformly (each scene's draws from its own row of uniform
  numbers, so a scene does not depend on how many are drawn with it);
- for each digit, an MNIST image of the split (drawn with replacement), a side from 20 to
  36 pixels (the 28-pixel digit scaled by about 0.7 to 1.3, bilinear), and a quadrant of its
  own (2x2 grid of 32x32 cells, distinct for the digits of one scene); the digit is centred
  in its quadrant, moved by up to 6 pixels each way and kept inside the canvas;
- the image is the pixelwise maximum of the placed digits, float32 in [0, 1];
- the mask is 0 (background) where no digit's intensity exceeds ``THRESHOLD`` (0.5), else
  1 + the digit's class. Where digits overlap, the later digit wins the mask. So a pixel is
  labelled exactly when the image there exceeds the threshold: mask > 0 == (image > 0.5).

Training scenes use MNIST's training images only, test scenes its test images only, with
fixed seeds (``TRAIN_SEED``, ``TEST_SEED``): the scenes are a fixed data set, whatever the
seed of the run that trains on them. Everything is vectorised: one batched resize and one
paste per (digit slot, size), never a loop over scenes or pixels.
"""
import numpy as np

SIZE = 64                  # the canvas is SIZE x SIZE
NUM_CLASSES = 11           # 0 background, 1 + d for digit d
CLASS_NAMES = ["background"] + [str(d) for d in range(10)]
THRESHOLD = 0.5            # a digit's pixel belongs to its mask where its intensity exceeds this
DIGITS = (2, 4)            # digits per scene, inclusive
SIDES = (20, 36)           # side of a placed digit in pixels, inclusive (28 is MNIST's own)
JITTER = 6                 # the largest shift, each way, from the centre of the digit's quadrant
TRAIN_SCENES, TEST_SCENES = 20_000, 2_000
TRAIN_SEED, TEST_SEED = 2025, 2026


def _resize_matrix(side, source=28):
    """(side, source) bilinear interpolation weights, pixel centres aligned (as
    ``align_corners=False``): resized = R @ image @ R.T."""
    centres = (np.arange(side) + 0.5) * source / side - 0.5
    centres = np.clip(centres, 0, source - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, source - 1)
    frac = centres - low
    matrix = np.zeros((side, source), np.float32)
    rows = np.arange(side)
    np.add.at(matrix, (rows, low), 1 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def layout(count, available, seed):
    """The draws of ``count`` scenes from ``available`` digit images, as four arrays over
    (scene, slot) with DIGITS[1] slots a scene: present (bool: the first 2-4 slots), chosen
    (the digit image's index), sides (the placed digit's side) and corners ((top, left) of
    its square on the canvas). All draws come from one (count, 21) array of uniform numbers
    filled row by row, one row a scene, so the first k scenes are the same whatever ``count``."""
    slots = DIGITS[1]
    u = np.random.default_rng(seed).random((count, 1 + 5 * slots))

    def whole(columns, low, high):          # integers from low to high inclusive, uniformly
        return low + np.minimum((columns * (high - low + 1)).astype(np.int64), high - low)

    present = np.arange(slots)[None, :] < whole(u[:, :1], *DIGITS)
    chosen = whole(u[:, 1:1 + slots], 0, available - 1)
    sides = whole(u[:, 1 + slots:1 + 2 * slots], *SIDES)
    quadrants = np.argsort(u[:, 1 + 2 * slots:1 + 3 * slots], axis=1)     # a random order of the 4 quadrants
    shifts = whole(u[:, 1 + 3 * slots:].reshape(count, slots, 2), -JITTER, JITTER)
    half = SIZE // 2
    centres = np.stack([quadrants // 2, quadrants % 2], axis=-1) * half + half // 2 + shifts
    corners = np.clip(centres - sides[..., None] // 2, 0, SIZE - sides[..., None])
    return present, chosen, sides, corners


def compose(digits, labels, count, seed):
    """``count`` scenes from the digit images ``digits`` (N, 28, 28), uint8 0-255 or floats
    in [0, 1], and their ``labels`` (N,): (images (count, 64, 64, 1) float32 in [0, 1],
    masks (count, 64, 64) uint8 with 0 = background and 1 + d for digit d). The same
    arguments give the same scenes."""
    digits = np.asarray(digits)
    labels = np.asarray(labels)
    if digits.ndim != 3 or digits.shape[1:] != (28, 28):
        raise ValueError(f"digit_scenes.compose expects digit images of shape (N, 28, 28), got {digits.shape}")
    if labels.shape != digits.shape[:1]:
        raise ValueError(f"digit_scenes.compose expects one label per digit, shape ({len(digits)},), got "
                         f"labels of shape {labels.shape}")
    if len(digits) == 0:
        raise ValueError("digit_scenes.compose needs at least one digit image, got none")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"digit_scenes.compose expects integer labels from 0 to 9, got {labels.dtype.name} "
                         f"from {labels.min()} to {labels.max()}")
    count = int(count)
    if count < 0:
        raise ValueError(f"digit_scenes.compose: count must be at least 0, got {count}")
    present, chosen, sides, corners = layout(count, len(digits), seed)
    scale = np.float32(1 / 255) if digits.dtype.kind in "iu" else np.float32(1)
    images = np.zeros((count, SIZE, SIZE), np.float32)
    masks = np.zeros((count, SIZE, SIZE), np.uint8)
    for slot in range(DIGITS[1]):                   # later slots are pasted later: they win the mask
        for side in np.unique(sides[:, slot]):
            scenes = np.flatnonzero(present[:, slot] & (sides[:, slot] == side))
            if not len(scenes):
                continue
            resize = _resize_matrix(int(side))
            pictures = np.clip(resize @ (digits[chosen[scenes, slot]].astype(np.float32) * scale) @ resize.T, 0, 1)
            rows = corners[scenes, slot, 0][:, None, None] + np.arange(side)[None, :, None]
            cols = corners[scenes, slot, 1][:, None, None] + np.arange(side)[None, None, :]
            where = scenes[:, None, None]
            images[where, rows, cols] = np.maximum(images[where, rows, cols], pictures)
            ink = pictures > THRESHOLD
            classes = (1 + labels[chosen[scenes, slot]]).astype(np.uint8)[:, None, None]
            masks[where, rows, cols] = np.where(ink, classes, masks[where, rows, cols])
    return images[..., None], masks


def load_data(path=None, train_scenes=TRAIN_SCENES, test_scenes=TEST_SCENES, verbose=True):
    """((x_train, mask_train), (x_test, mask_test)): ``train_scenes`` scenes of MNIST's training
    digits and ``test_scenes`` of its test digits (see the module's text). MNIST comes from
    ``path`` (a folder with its four IDX files) or from the cache, as ``mnist.load_data``."""
    from . import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path, verbose=verbose)
    return (compose(x_train, y_train, train_scenes, TRAIN_SEED),
            compose(x_test, y_test, test_scenes, TEST_SEED))
