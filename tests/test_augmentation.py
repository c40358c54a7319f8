"""Preprocessing and augmentation layers (Resizing, RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast, RandomCrop): the pixels equal Keras's for the same random
transformation, the draws follow Keras's ranges, the layers act only in training where Keras
says so, their backward passes equal float64 central differences, and they save and load."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet as sn
from scratchnet import gradcheck, layers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
seeds = st.integers(0, 2**31 - 1)
FILL_MODES = ["reflect", "wrap", "constant", "nearest"]


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def images(seed, shape, scale=255.0):
    return (np.random.default_rng(seed).random(shape) * scale).astype(np.float32)


def as_numpy(transformation):
    if isinstance(transformation, dict):
        return {k: np.asarray(v) for k, v in transformation.items() if k in
                ("flips", "angle", "height_zoom", "width_zoom", "translations", "contrast_factor")}
    return tuple(int(np.asarray(v)) for v in transformation)


def assert_same_as_keras(ours, theirs, x, seed):
    """Keras draws a transformation; both layers apply it; the pixels must agree."""
    t = theirs.get_random_transformation(x, training=True, seed=seed)
    expected = np.asarray(theirs.transform_images(x, t, training=True))
    got = ours.transform_images(x, as_numpy(t), training=True)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3 * float(np.abs(x).max()))
    return expected


sizes = st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.integers(1, 3))


@settings(max_examples=25, deadline=None)
@given(sizes, st.sampled_from(FILL_MODES), st.sampled_from(["bilinear", "nearest"]), st.floats(-1, 1), seeds)
def test_random_rotation_equals_keras(shape, fill_mode, interpolation, factor, seed):
    keras = real_keras()
    kwargs = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=7.0)
    assert_same_as_keras(layers.RandomRotation(factor, **kwargs), keras.layers.RandomRotation(factor, **kwargs),
                         images(seed, shape), seed % 1000)


@settings(max_examples=25, deadline=None)
@given(sizes, st.sampled_from(FILL_MODES), st.sampled_from(["bilinear", "nearest"]),
       st.floats(-0.9, 1), st.one_of(st.none(), st.floats(-0.9, 1)), seeds)
def test_random_zoom_equals_keras(shape, fill_mode, interpolation, height, width, seed):
    keras = real_keras()
    kwargs = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=-3.0)
    assert_same_as_keras(layers.RandomZoom(height, width, **kwargs), keras.layers.RandomZoom(height, width, **kwargs),
                         images(seed, shape), seed % 1000)


@settings(max_examples=25, deadline=None)
@given(sizes, st.sampled_from(FILL_MODES), st.sampled_from(["bilinear", "nearest"]),
       st.floats(-1, 1), st.floats(-1, 1), seeds)
def test_random_translation_equals_keras(shape, fill_mode, interpolation, height, width, seed):
    keras = real_keras()
    kwargs = dict(fill_mode=fill_mode, interpolation=interpolation)
    assert_same_as_keras(layers.RandomTranslation(height, width, **kwargs),
                         keras.layers.RandomTranslation(height, width, **kwargs), images(seed, shape), seed % 1000)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_nearest_rounds_half_pixels_away_from_zero_as_tensorflow(fill_mode):
    keras = real_keras()
    x = images(0, (4, 5, 6, 2))
    shifts = {"translations": np.array([[0.5, -1.5], [-0.5, 2.5], [1.5, 0.5], [-2.5, -0.5]], np.float32)}
    kwargs = dict(interpolation="nearest", fill_mode=fill_mode, fill_value=9.0)
    expected = np.asarray(keras.layers.RandomTranslation(0.5, 0.5, **kwargs).transform_images(x, shifts))
    np.testing.assert_array_equal(layers.RandomTranslation(0.5, 0.5, **kwargs).transform_images(x, shifts), expected)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_random_flip_equals_keras(mode):
    keras = real_keras()
    x = images(0, (16, 5, 6, 3))
    flipped = assert_same_as_keras(layers.RandomFlip(mode), keras.layers.RandomFlip(mode), x, 4)
    assert not np.array_equal(flipped, x)


@settings(max_examples=15, deadline=None)
@given(sizes, st.floats(0, 1), seeds)
def test_random_contrast_equals_keras_for_the_same_factors(shape, factor, seed):
    keras = real_keras()
    assert_same_as_keras(layers.RandomContrast(factor), keras.layers.RandomContrast(factor), images(seed, shape),
                         seed % 1000)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 12), st.integers(2, 12), st.integers(1, 11), st.integers(1, 11), seeds)
def test_random_crop_training_window_equals_keras(height, width, crop_height, crop_width, seed):
    keras = real_keras()
    crop_height, crop_width = min(crop_height, height - 1), min(crop_width, width - 1)
    x = images(seed, (2, height, width, 3))
    assert_same_as_keras(layers.RandomCrop(crop_height, crop_width), keras.layers.RandomCrop(crop_height, crop_width),
                         x, seed % 1000)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 14), st.integers(1, 14), st.integers(1, 14), st.integers(1, 14),
       st.sampled_from(["bilinear", "nearest"]), st.sampled_from(["plain", "crop", "pad"]), seeds)
def test_resizing_equals_keras(n, height, width, out_height, out_width, interpolation, aspect, seed):
    keras = real_keras()
    kwargs = dict(interpolation=interpolation, crop_to_aspect_ratio=aspect == "crop",
                  pad_to_aspect_ratio=aspect == "pad", fill_value=5.0)
    x = images(seed, (n, height, width, 2))
    expected = np.asarray(keras.layers.Resizing(out_height, out_width, **kwargs)(x))
    got = layers.Resizing(out_height, out_width, **kwargs)(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_the_draws_follow_kerass_ranges():
    x = np.zeros((4000, 2, 2, 1), np.float32)
    angles = layers.RandomRotation((-0.1, 0.25), seed=1).get_random_transformation(x)["angle"]
    assert -36 <= angles.min() < -35 and 89 < angles.max() <= 90
    zoom = layers.RandomZoom(0.2, seed=1).get_random_transformation(x)
    assert 0.8 <= zoom["height_zoom"].min() < 0.81 and 1.19 < zoom["height_zoom"].max() <= 1.2
    assert np.array_equal(zoom["height_zoom"], zoom["width_zoom"])   # one zoom both ways without width_factor
    shift = layers.RandomTranslation(0.5, (0, 0.25), seed=1).get_random_transformation(np.zeros((4000, 8, 4, 1)))
    dx, dy = shift["translations"][:, 0], shift["translations"][:, 1]
    assert -4 <= dy.min() < -3.9 and 3.9 < dy.max() <= 4 and 0 <= dx.min() < 0.05 and 0.95 < dx.max() <= 1
    flips = layers.RandomFlip(seed=1).get_random_transformation(x)["flips"]
    assert 0.45 < flips.mean() < 0.55
    # RandomContrast(f) draws from [1 - f, 1 + f], as Keras documents (Keras 3.15 itself draws from [1, 1 + f])
    factors = layers.RandomContrast(0.3, seed=1).get_random_transformation(x)["contrast_factor"]
    assert 0.7 <= factors.min() < 0.71 and 1.29 < factors.max() <= 1.3
    factors = layers.RandomContrast((0.1, 0.5), seed=1).get_random_transformation(x)["contrast_factor"]
    assert 0.9 <= factors.min() < 0.91 and 1.49 < factors.max() <= 1.5


def test_factor_parsing_equals_kerass():
    keras = real_keras()
    for factor in (0.2, -0.3, (0.1, -0.2), [0.5, 1.0]):
        assert layers.RandomRotation(factor).factor == pytest.approx(keras.layers.RandomRotation(factor).factor)
    assert layers.RandomContrast((0.2, 0.1)).factor == pytest.approx(keras.layers.RandomContrast((0.2, 0.1)).factor)


def test_augmentation_runs_in_direct_calls_but_not_in_predict_as_in_keras():
    keras = real_keras()
    x = images(0, (8, 6, 6, 1))
    for lib in (keras, sn):
        model = lib.Sequential([lib.Input((6, 6, 1)), lib.layers.RandomFlip("horizontal", seed=1),
                                lib.layers.RandomZoom(0.3, seed=1)])
        assert np.array_equal(np.asarray(model.predict(x, verbose=0)), x), lib
        assert np.array_equal(np.asarray(model(x, training=False)), x), lib
        assert not np.allclose(np.asarray(model(x)), x), lib    # a direct call augments (training defaults to True)
        flip = lib.layers.RandomFlip(seed=1)
        assert not np.allclose(np.asarray(flip(x)), x) and np.array_equal(np.asarray(flip(x, training=False)), x)


def test_random_crop_takes_the_centred_window_at_inference():
    # the largest centred window of the target's aspect ratio, resized: as Keras documents (and tf.keras 2
    # did); Keras 3.15 returns the uncropped images instead
    x = images(0, (8, 6, 6, 1))
    model = sn.Sequential([sn.Input((6, 6, 1)), layers.RandomCrop(4, 4, seed=1)])
    resized = layers.Resizing(4, 4)(x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), resized)
    called = model(x)
    assert called.shape == (8, 4, 4, 1) and not np.allclose(called, resized)
    assert any(np.array_equal(called, x[:, i:i + 4, j:j + 4]) for i in range(3) for j in range(3))
    wide = images(1, (2, 6, 9, 1))
    np.testing.assert_allclose(layers.RandomCrop(4, 4)(wide, training=False),
                               layers.Resizing(4, 4, crop_to_aspect_ratio=True)(wide), rtol=1e-6)


def test_fit_sees_augmented_batches_and_evaluate_the_originals():
    seen = []

    class Spy(layers.Layer):
        def _forward(self, x, training):
            seen.append((bool(training), x.copy()))
            return x, None

    x = images(1, (4, 5, 5, 1), 1.0)
    model = sn.Sequential([sn.Input((5, 5, 1)), layers.RandomRotation(0.5, seed=2), Spy(), layers.Flatten(),
                           layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((4, 1)), batch_size=4, epochs=2, verbose=0, shuffle=False)
    model.evaluate(x, np.zeros((4, 1)), verbose=0)
    (t1, first), (t2, second), (t3, evaluated) = seen
    assert t1 and t2 and not t3
    assert not np.allclose(first, x) and not np.allclose(first, second)   # a new draw each step
    np.testing.assert_array_equal(evaluated, x)


def fixed(layer_class, *args, **kwargs):
    """A float64 layer whose random draws are one fixed transformation (what gradcheck needs)."""
    return layer_class(*args, seed=3, dtype="float64", **kwargs)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["rotation", "zoom", "translation", "flip", "contrast", "crop"]),
       st.sampled_from(FILL_MODES), st.sampled_from(["bilinear", "nearest"]), seeds)
def test_backward_equals_central_differences(backend_name, kind, fill_mode, interpolation, seed):
    geometry = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=0.5)
    layer = {"rotation": lambda: layers.RandomRotation(0.3, **geometry, dtype="float64"),
             "zoom": lambda: layers.RandomZoom(0.4, 0.3, **geometry, dtype="float64"),
             "translation": lambda: layers.RandomTranslation(0.3, 0.3, **geometry, dtype="float64"),
             "flip": lambda: layers.RandomFlip(dtype="float64"),
             "contrast": lambda: layers.RandomContrast(0.5, value_range=(-10, 10), dtype="float64"),
             "crop": lambda: layers.RandomCrop(3, 4, dtype="float64")}[kind]()
    x = np.random.default_rng(seed).standard_normal((3, 5, 6, 2))
    errors = gradcheck.check_layer(layer, x, seed=seed % 1000)
    assert errors["x"] < gradcheck.TOLERANCE, errors


@pytest.mark.parametrize("kwargs", [{}, {"interpolation": "nearest"}, {"crop_to_aspect_ratio": True},
                                    {"pad_to_aspect_ratio": True, "fill_value": 2.0}])
@pytest.mark.parametrize("size", [(3, 4), (9, 5), (5, 7)])
def test_resizing_and_inference_crop_backward_equal_central_differences(backend_name, kwargs, size):
    x = np.random.default_rng(0).standard_normal((2, 5, 7, 3))
    errors = gradcheck.check_layer(layers.Resizing(*size, dtype="float64", **kwargs), x)
    assert errors["x"] < gradcheck.TOLERANCE, errors
    crop = layers.RandomCrop(*size, dtype="float64")
    y, ctx = crop.forward(x, training=False)
    r = np.random.default_rng(1).standard_normal(y.shape)
    dx, _ = crop.backward(r, ctx)
    numeric = gradcheck.numerical_gradient(lambda: float((crop.forward(x, training=False)[0] * r).sum()), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-9)


def test_gradients_flow_through_augmentation_inside_a_model(backend_name):
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 1))
    y = np.random.default_rng(1).standard_normal((2, 2))
    sn.backend.set_floatx("float64")
    try:
        model = sn.Sequential([sn.Input((6, 6, 1)), layers.Conv2D(2, 3, padding="same"),
                               layers.RandomRotation(0.2), layers.RandomContrast(0.3, value_range=(-50, 50)),
                               layers.Resizing(4, 4), layers.Flatten(), layers.Dense(2)])
        model.compile("sgd", "mse")
        errors = gradcheck.check_model(model, x, y)
    finally:
        sn.backend.set_floatx("float32")
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


def test_float32_stays_float32():
    x = images(0, (2, 6, 6, 3))
    for layer in (layers.RandomRotation(0.2), layers.RandomZoom(0.2), layers.RandomTranslation(0.1, 0.1),
                  layers.RandomFlip(), layers.RandomContrast(0.2), layers.RandomCrop(3, 3), layers.Resizing(4, 5)):
        y, ctx = layer.forward(x, training=True)
        assert y.dtype == np.float32, layer
        dx, _ = layer.backward(np.ones_like(y), ctx)
        assert dx.dtype == np.float32, layer


def tutorial_model(lib):
    augmentation = lib.Sequential([lib.layers.RandomFlip("horizontal"), lib.layers.RandomRotation(0.1),
                                   lib.layers.RandomZoom(0.2), lib.layers.RandomTranslation(0.1, 0.1),
                                   lib.layers.RandomContrast(0.2)], name="augmentation")
    inputs = lib.Input((20, 20, 3))
    x = lib.layers.Resizing(16, 16, crop_to_aspect_ratio=True)(inputs)
    x = augmentation(x)
    x = lib.layers.Rescaling(1 / 255)(x)
    x = lib.layers.Conv2D(4, 3, activation="relu")(x)
    x = lib.layers.GlobalAveragePooling2D()(x)
    outputs = lib.layers.Dense(1, activation="sigmoid")(x)
    return lib.Model(inputs, outputs)


def test_a_model_with_augmentation_goes_to_keras_and_back(tmp_path):
    keras = real_keras()
    model = tutorial_model(sn)
    model.save(tmp_path / "ours.keras")
    theirs = keras.models.load_model(tmp_path / "ours.keras")
    x = images(0, (3, 20, 20, 3))
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-5)
    theirs.save(tmp_path / "theirs.keras")
    back = sn.models.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    names = [type(layer).__name__ for layer in back.get_layer("augmentation").layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast"]


def test_a_keras_built_model_with_augmentation_loads():
    keras = real_keras()
    model = tutorial_model(keras)
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.keras")
        model.save(path)
        ours = sn.models.load_model(path)
    x = images(2, (2, 20, 20, 3))
    np.testing.assert_allclose(ours.predict(x, verbose=0), np.asarray(model.predict(x, verbose=0)), rtol=1e-5)
    rotation = ours.get_layer("augmentation").layers[1]
    assert rotation.factor == (-0.1, 0.1) and rotation.fill_mode == "reflect"


def test_random_crop_goes_to_keras_and_back_with_its_settings(tmp_path):
    # not compared by predictions: Keras 3.15's RandomCrop does not crop at inference
    keras = real_keras()
    model = sn.Sequential([sn.Input((9, 9, 2)), layers.RandomCrop(5, 4, seed=7, name="crop")])
    model.save(tmp_path / "crop.keras")
    theirs = keras.models.load_model(tmp_path / "crop.keras").get_layer("crop")
    assert (theirs.height, theirs.width, theirs.seed) == (5, 4, 7)
    keras.Sequential([keras.Input((9, 9, 2)), theirs]).save(tmp_path / "back.keras")
    back = sn.models.load_model(tmp_path / "back.keras").get_layer("crop")
    assert (back.height, back.width, back.seed, back.output_shape) == (5, 4, 7, (5, 4, 2))


def test_native_format_round_trip(tmp_path):
    model = tutorial_model(sn)
    model.save(tmp_path / "m.npz")
    back = sn.models.load_model(tmp_path / "m.npz")
    x = images(3, (2, 20, 20, 3))
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_seeded_layers_repeat_their_draws():
    x = images(0, (4, 6, 6, 1))
    first = [layers.RandomRotation(0.3, seed=5)(x) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    layer = layers.RandomRotation(0.3, seed=5)
    assert not np.array_equal(layer(x), layer(x))   # one generator per layer: each call draws anew


@pytest.mark.parametrize("make, message", [
    (lambda: layers.RandomRotation(1.5), r"factor must be a number or a pair of numbers in \[-1, 1\], got 1.5"),
    (lambda: layers.RandomZoom(-1.0), r"height_factor must be .* in \(-1, 1\], got -1.0"),
    (lambda: layers.RandomTranslation(0.1, (0.2, 0.3, 0.4)), r"width_factor must be .*got \(0.2, 0.3, 0.4\)"),
    (lambda: layers.RandomContrast(-0.2), r"factor must be .* in \[0, 1\], got -0.2"),
    (lambda: layers.RandomContrast(0.2, value_range=(1, 0)), r"value_range must be \(low, high\)"),
    (lambda: layers.RandomFlip("diagonal"), r"mode must be one of .*'horizontal'.*got 'diagonal'"),
    (lambda: layers.RandomRotation(0.1, fill_mode="mirror"), r"fill_mode must be one of .* got 'mirror'"),
    (lambda: layers.RandomZoom(0.1, interpolation="bicubic"), r"interpolation must be one of .* got 'bicubic'"),
    (lambda: layers.RandomFlip(data_format="channels_first"), r"channels_last .* got 'channels_first'"),
    (lambda: layers.Resizing(0, 4), r"height must be a positive int, got 0"),
    (lambda: layers.Resizing(4, 4, interpolation="lanczos3"), r"no bicubic or lanczos resizing.*'lanczos3'"),
    (lambda: layers.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), r"only one of"),
    (lambda: layers.RandomCrop(4, 2.5), r"width must be a positive int, got 2.5"),
    (lambda: layers.RandomFlip(seed="x"), r"seed must be an int or None, got 'x'"),
])
def test_bad_arguments_say_what_was_expected(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_a_non_image_input_names_the_layer_and_the_shape():
    with pytest.raises(ValueError, match=r"RandomFlip layer 'flip' expects images shaped \(batch, height, width, "
                                         r"channels\), got \(None, 10\)"):
        sn.Sequential([sn.Input((10,)), layers.RandomFlip(name="flip")])


def test_per_channel_rescaling_checks_its_gradient_and_goes_to_keras_and_back(tmp_path):
    keras = real_keras()
    layer = layers.Rescaling([0.5, 2.0, -1.0], offset=[1.0, 0.0, 3.0], dtype="float64")
    errors = gradcheck.check_layer(layer, np.random.default_rng(0).standard_normal((2, 3, 3, 3)))
    assert errors["x"] < gradcheck.TOLERANCE
    model = sn.Sequential([sn.Input((4, 4, 3)), layers.Rescaling([0.5, 2.0, -1.0], offset=[1.0, 0.0, 3.0]),
                           layers.Conv2D(2, 3)])
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    x = images(0, (2, 4, 4, 3))
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-5)
    theirs.save(tmp_path / "back.keras")
    back = sn.models.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"scale has 2 values, the input's last axis 3"):
        sn.Sequential([sn.Input((4, 4, 3)), layers.Rescaling([1.0, 2.0])])
