"""The image pipeline: odd and broken files, augmentation, labels, reproducibility."""
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from scratchnet.preprocessing.image import (DirectoryIterator, ImageDataGenerator, UnreadableImage,
                                            img_to_array, load_img)


def save(path, image, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def rgb(w=20, h=10, color=(200, 30, 40)):
    return Image.new("RGB", (w, h), color)


@pytest.fixture
def odd_images(tmp_path):
    """One file of each awkward kind, in a cats/dogs layout."""
    d = tmp_path / "data"
    save(d / "cats" / "gray.png", Image.new("L", (9, 7), 128))
    save(d / "cats" / "rgba.png", Image.new("RGBA", (9, 7), (255, 0, 0, 0)))
    save(d / "cats" / "palette.gif", rgb().convert("P"))
    save(d / "cats" / "cmyk.jpg", Image.new("CMYK", (9, 7), (0, 255, 255, 0)))
    save(d / "cats" / "deep.png", Image.fromarray(np.full((7, 9), 65535, np.uint16)))
    save(d / "cats" / "tiny.png", rgb(1, 1))
    save(d / "dogs" / "big.jpg", rgb(3000, 2000))
    exif = Image.Exif()
    exif[0x0112] = 6   # orientation: rotate 90 degrees clockwise to display
    save(d / "dogs" / "rotated.jpg", rgb(40, 20), exif=exif)
    (d / "dogs" / "empty.jpg").write_bytes(b"")
    (d / "dogs" / "text.png").write_text("not an image at all")
    buffer = io.BytesIO()
    rgb(64, 64).save(buffer, "JPEG")
    (d / "dogs" / "truncated.jpg").write_bytes(buffer.getvalue()[:200])
    save(d / "dogs" / "fine.jpg", rgb())
    return d


def test_every_convertible_kind_becomes_rgb(odd_images):
    for name in ("gray.png", "rgba.png", "palette.gif", "cmyk.jpg", "deep.png", "tiny.png"):
        x = img_to_array(load_img(odd_images / "cats" / name, target_size=(5, 6)))
        assert x.shape == (5, 6, 3) and x.dtype == np.float32
    deep = img_to_array(load_img(odd_images / "cats" / "deep.png"))
    assert deep.max() == 255   # 16-bit white stays white, not clipped garbage
    rgba = img_to_array(load_img(odd_images / "cats" / "rgba.png"))
    assert (rgba == 255).all()   # fully transparent pixels show the white background
    gray = img_to_array(load_img(odd_images / "cats" / "gray.png", color_mode="grayscale"))
    assert gray.shape == (7, 9, 1)


def test_exif_orientation_is_applied(odd_images):
    x = img_to_array(load_img(odd_images / "dogs" / "rotated.jpg"))
    assert x.shape[:2] == (40, 20)   # stored 40 wide x 20 high, displayed rotated


def test_unreadable_files_raise_a_named_error(odd_images):
    for name in ("empty.jpg", "text.png", "truncated.jpg"):
        with pytest.raises(UnreadableImage, match=name):
            load_img(odd_images / "dogs" / name, target_size=(8, 8))


def test_iterator_skips_bad_files_with_one_warning_each_and_never_stops(odd_images):
    it = DirectoryIterator(odd_images, target_size=(12, 12), class_mode="binary", batch_size=4,
                           shuffle=False, verbose=False)
    assert it.samples == 12 and it.class_indices == {"cats": 0, "dogs": 1} and len(it) == 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = [next(it) for _ in range(2 * len(it))]   # two epochs
    names = sorted(str(w.message).split(":")[0].rsplit("/", 1)[-1] for w in caught)
    assert names == ["empty.jpg", "text.png", "truncated.jpg"]   # once each, not once per epoch
    assert len(it.skipped) == 3
    seen = sum(len(x) for x, _ in batches)
    assert seen == 2 * 9
    for x, y in batches:
        assert x.shape[1:] == (12, 12, 3) and y.dtype == np.float32 and set(y) <= {0.0, 1.0}
    it.close()


def test_empty_directory_and_empty_class_are_clear_errors(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        DirectoryIterator(tmp_path / "nothing", verbose=False)
    save(tmp_path / "d" / "cats" / "a.png", rgb())
    (tmp_path / "d" / "dogs").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*dogs holds no images"):
        DirectoryIterator(tmp_path / "d", verbose=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DirectoryIterator(tmp_path / "missing", verbose=False)


@pytest.mark.parametrize("mode, check", [
    ("categorical", lambda y: y.shape == (4, 3) and (y.sum(axis=1) == 1).all()),
    ("sparse", lambda y: y.shape == (4,) and y.dtype.kind == "i"),
])
def test_class_modes(tmp_path, mode, check):
    for k, name in enumerate(("b", "a", "c")):     # classes sort alphanumerically
        for i in range(2):
            save(tmp_path / name / f"{i}.png", rgb(color=(k * 80, 0, 0)))
    it = DirectoryIterator(tmp_path, target_size=(4, 4), class_mode=mode, batch_size=4, verbose=False)
    assert it.class_indices == {"a": 0, "b": 1, "c": 2}
    assert check(next(it)[1])
    it.close()
    images_only = DirectoryIterator(tmp_path, target_size=(4, 4), class_mode=None, batch_size=4, verbose=False)
    assert next(images_only).shape == (4, 4, 4, 3)
    images_only.close()


def test_same_seed_same_augmented_batches_and_set_epoch(tmp_path):
    for i in range(6):
        save(tmp_path / ("cats" if i % 2 else "dogs") / f"{i}.png",
             Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16, 3), dtype=np.uint8)))
    gen = ImageDataGenerator(rescale=1 / 255, rotation_range=30, width_shift_range=0.2, zoom_range=0.2,
                             horizontal_flip=True)

    def epochs(start=0, count=2):
        it = gen.flow_from_directory(tmp_path, target_size=(16, 16), batch_size=3, class_mode="binary",
                                     seed=5, verbose=False)
        it.set_epoch(start)
        out = [next(it) for _ in range(count * len(it))]
        it.close()
        return out

    first, again = epochs(), epochs()
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    resumed = epochs(start=1, count=1)   # epoch 1 alone equals epoch 1 of the full run
    for (x1, _), (x2, _) in zip(first[2:], resumed):
        np.testing.assert_array_equal(x1, x2)
    assert 0 <= first[0][0].min() and first[0][0].max() <= 1


def test_affine_transforms_do_what_they_say():
    gen = ImageDataGenerator(fill_mode="constant", cval=0)
    x = np.zeros((5, 5, 1), np.float32)
    x[1, 3] = 1
    identity = dict(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, flip_horizontal=False, flip_vertical=False)
    np.testing.assert_array_equal(gen.apply_transform(x, identity), x)
    flipped = gen.apply_transform(x, {**identity, "flip_horizontal": True})
    assert flipped[1, 1] == 1
    shifted = gen.apply_transform(x, {**identity, "tx": 1.0})   # output row r shows input row r+1
    assert shifted[0, 3] == pytest.approx(1)
    rotated = gen.apply_transform(x, {**identity, "theta": 90})
    assert rotated.sum() == pytest.approx(1) and rotated[1, 3] == 0
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
