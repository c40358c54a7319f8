"""Models that take images of any size: Input(shape=(None, None, C)), as Keras's
fully-convolutional models. Shapes, training, files and errors, against real Keras 3."""
import numpy as np
import pytest

from scratchnet import layers, models, optimizers
from scratchnet.layers.base import CONFIGS_KEPT
from scratchnet.graph import SIZES_KEPT

ATOL = 1e-5


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (keras 3, dev extra) is not installed")


def any_size_model(L, Model, channels=2):
    """Strided 'same' convolution (its padding depends on the size's parity), normalisation,
    pooling, a transposed convolution back up, a skip, and a size-free head."""
    inputs = L.Input(shape=(None, None, channels))
    x = L.Conv2D(4, 3, strides=2, padding="same", name="down")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    skip = L.MaxPooling2D(2, padding="same", name="pool")(x)
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="mid")(skip)
    x = L.Concatenate(name="concat")([x, skip])
    x = L.Conv2DTranspose(5, 3, strides=2, padding="same", name="up")(x)
    x = L.UpSampling2D(2, name="upsample")(x)
    x = L.Cropping2D(1, name="crop")(x)
    outputs = L.Dense(3, activation="softmax", name="out")(L.GlobalAveragePooling2D(name="gap")(x))
    return Model(inputs, outputs)


def images(n, h, w, c=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(np.float32)


def test_shapes_say_none_where_keras_does(capsys):
    keras = real_keras()
    ours, theirs = any_size_model(layers, models.Model), any_size_model(keras.layers, keras.Model)
    assert ours.input_shape == (None, None, None, 2) and ours.output_shape == (None, 3)
    assert [l.output.shape for l in ours.layers] == [tuple(l.output.shape) for l in theirs.layers]
    ours.summary()
    assert "(None, None, None, 5)" in capsys.readouterr().out
    assert ours.count_params() == theirs.count_params()


@pytest.mark.parametrize("size", [(16, 16), (13, 11), (7, 20)])
def test_predict_at_any_size_equals_keras(size):
    keras = real_keras()
    keras.utils.set_random_seed(0)
    theirs, ours = any_size_model(keras.layers, keras.Model), any_size_model(layers, models.Model)
    ours.set_weights(theirs.get_weights())
    x = images(3, *size)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=ATOL)
    features = models.Model(ours.input, ours.get_layer("crop").output)
    assert features.predict(x, verbose=0).shape[1:] == features.compute_output_shape(x.shape[1:])


def test_training_on_batches_of_different_sizes_equals_keras():
    keras = real_keras()
    keras.utils.set_random_seed(1)
    theirs, ours = any_size_model(keras.layers, keras.Model), any_size_model(layers, models.Model)
    ours.set_weights(theirs.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    ours.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(5)
    for step, size in enumerate([(16, 16), (13, 11), (9, 24)]):
        x, y = images(4, *size, seed=step), rng.integers(0, 3, 4)
        assert ours.train_on_batch(x, y) == pytest.approx(float(theirs.train_on_batch(x, y)), rel=1e-4)
    for k_weight, s_weight in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(s_weight, k_weight, rtol=1e-4, atol=ATOL)


def test_fit_takes_a_stream_of_batches_each_of_its_own_size():
    sizes = [(16, 16), (13, 11), (9, 24), (16, 16)]
    rng = np.random.default_rng(2)
    batches = [(images(4, *s, seed=i), rng.integers(0, 3, 4)) for i, s in enumerate(sizes)]
    fitted, stepped = any_size_model(layers, models.Model), any_size_model(layers, models.Model)
    stepped.set_weights(fitted.get_weights())
    for model in (fitted, stepped):
        model.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = fitted.fit(iter(batches), epochs=1, steps_per_epoch=len(batches), verbose=0)
    losses = [stepped.train_on_batch(x, y)[0] for x, y in batches]
    assert history.history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-5)
    for a, b in zip(fitted.get_weights(), stepped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    evaluated = fitted.evaluate(iter(batches), steps=len(batches), verbose=0)
    assert np.isfinite(evaluated).all()


def test_a_fully_convolutional_output_has_the_inputs_size():
    inputs = layers.Input(shape=(None, None, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    outputs = layers.Conv2DTranspose(2, 3, strides=2, padding="same", activation="softmax")(x)
    model = models.Model(inputs, outputs)
    assert model.output_shape == (None, None, None, 2)
    for size in [(8, 8), (10, 6), (32, 18)]:
        assert model.predict(images(2, *size, c=1), verbose=0).shape == (2,) + size + (2,)
    assert model.compute_output_shape((10, 6, 1)) == (10, 6, 2)


def test_a_sequential_model_with_an_unknown_size():
    model = models.Sequential([layers.Input((None, None, 1)), layers.Conv2D(3, 3, activation="relu"),
                               layers.GlobalMaxPooling2D(), layers.Dense(2)])
    assert model.input_shape == (None, None, None, 1) and model.layers[0].output_shape == (None, None, 3)
    assert model.predict(images(2, 5, 7, c=1), verbose=0).shape == (2, 2)
    assert model.predict(images(1, 30, 3, c=1), verbose=0).shape == (1, 2)
    keras_2_style = models.Sequential([layers.Conv2D(3, 3, input_shape=(None, None, 1)), layers.GlobalMaxPooling2D()])
    assert keras_2_style.input_shape == (None, None, None, 1)
    assert keras_2_style.predict(images(2, 6, 9, c=1), verbose=0).shape == (2, 3)


def test_the_per_size_caches_are_bounded_and_stay_right():
    model = any_size_model(layers, models.Model)
    first = images(2, 10, 10)
    expected = model.predict(first, verbose=0)
    for h in range(11, 11 + 2 * CONFIGS_KEPT):
        model.predict(images(1, h, 9), verbose=0)
    assert len(model.get_layer("down")._configs) <= CONFIGS_KEPT
    assert len(model.graph._sizes) <= SIZES_KEPT
    np.testing.assert_array_equal(model.predict(first, verbose=0), expected)


# ----- what cannot be -----------------------------------------------------------------------------
def test_a_layer_that_needs_a_known_size_says_which_and_where():
    inputs = layers.Input(shape=(None, None, 3))
    flat = layers.Flatten(name="flatten")(inputs)
    with pytest.raises(ValueError, match=r"Dense layer 'head' needs a known size on its input's axis 1 to make its "
                                         r"'kernel' weight, got input shape \(None, None\).*GlobalAveragePooling2D"):
        layers.Dense(3, name="head")(flat)


def test_an_image_too_small_for_the_downsampling_names_the_layer():
    inputs = layers.Input(shape=(None, None, 1))
    x = layers.Conv2D(2, 3, name="c1")(inputs)
    x = layers.MaxPooling2D(2, name="p1")(x)
    x = layers.Conv2D(2, 3, name="c2")(x)
    model = models.Model(inputs, layers.GlobalAveragePooling2D()(x))
    assert model.predict(images(1, 8, 8, c=1), verbose=0).shape == (1, 2)
    with pytest.raises(ValueError, match=r"inputs of shape \(None, 5, 8, 1\) do not fit layer 'c2': .*does not fit"):
        model.predict(images(1, 5, 8, c=1), verbose=0)
    model.compile("sgd", "mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"do not fit layer 'c1'"):
        model.fit(images(2, 2, 8, c=1), np.zeros((2, 2)), verbose=0)
    for a, b in zip(model.get_weights(), before):       # refused before any step
        np.testing.assert_array_equal(a, b)


def test_a_model_with_a_fixed_size_says_how_to_take_any():
    model = models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"x has shape \(2, 10, 10, 3\); the model expects .*\(None, 8, 8, 3\); a "
                                         r"model built with Input\(shape=\(None, None, 3\)\) takes images of any size"):
        model.predict(images(2, 10, 10, c=3), verbose=0)
    with pytest.raises(ValueError, match=r"expects inputs of shape"):
        model(layers.Input((10, 10, 3)))


def test_a_channel_count_must_still_match():
    model = any_size_model(layers, models.Model)
    with pytest.raises(ValueError, match=r"\(N,\) \+ \(None, None, 2\)"):
        model.predict(images(1, 8, 8, c=3), verbose=0)


# ----- files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["keras", "h5", "npz"])
def test_files_keep_the_unknown_axes(tmp_path, fmt):
    model = any_size_model(layers, models.Model)
    model.save(tmp_path / f"m.{fmt}")
    loaded = models.load_model(tmp_path / f"m.{fmt}")
    assert loaded.input_shape == (None, None, None, 2)
    for size in [(12, 12), (9, 14)]:
        x = images(2, *size)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_files_both_ways_at_any_size(tmp_path, fmt):
    keras = real_keras()
    ours = any_size_model(layers, models.Model)
    ours.save(tmp_path / f"ours.{fmt}")
    theirs = keras.models.load_model(tmp_path / f"ours.{fmt}")
    assert tuple(theirs.input_shape) == (None, None, None, 2)
    keras.utils.set_random_seed(3)
    made_in_keras = any_size_model(keras.layers, keras.Model)
    made_in_keras.save(tmp_path / f"theirs.{fmt}")
    back = models.load_model(tmp_path / f"theirs.{fmt}")
    for size in [(12, 12), (9, 14)]:
        x = images(2, *size, seed=4)
        np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-4, atol=ATOL)
        np.testing.assert_allclose(back.predict(x, verbose=0), made_in_keras.predict(x, verbose=0), rtol=1e-4,
                                   atol=ATOL)


def test_onnx_export_has_dynamic_height_and_width(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export tests need onnx")
    ort = pytest.importorskip("onnxruntime", reason="ONNX export tests run the files with onnxruntime")
    inputs = layers.Input(shape=(None, None, 2))
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.AveragePooling2D(2, padding="same")(x)
    x = layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear")(x)
    outputs = layers.Conv2D(2, 1, activation="softmax")(layers.Cropping2D(((1, 0), (2, 1)))(x))
    model = models.Model(inputs, outputs)
    model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    dims = session.get_inputs()[0].shape
    assert isinstance(dims[1], str) and isinstance(dims[2], str) and dims[3] == 2
    for size in [(16, 16), (13, 11)]:
        x = images(2, *size)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=ATOL)


def segmenter(L, Model):
    """A two-level fully-convolutional segmenter: per-pixel softmax over 4 classes."""
    inputs = L.Input(shape=(None, None, 1))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="enc")(inputs)
    down = L.MaxPooling2D(2, name="pool")(x)
    up = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(down)
    x = L.Concatenate(name="skip")([up, x])
    return Model(inputs, L.Conv2D(4, 1, activation="softmax", name="classes")(x))


def test_a_segmenter_trains_on_per_pixel_labels_of_two_sizes_as_keras():
    keras = real_keras()
    from scratchnet import metrics
    keras.utils.set_random_seed(7)
    theirs, ours = segmenter(keras.layers, keras.Model), segmenter(layers, models.Model)
    ours.set_weights(theirs.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy", keras.metrics.MeanIoU(num_classes=4, sparse_y_pred=False, name="miou")])
    ours.compile(optimizer=optimizers.SGD(0.5), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy", metrics.MeanIoU(num_classes=4, sparse_y_pred=False, name="miou")])
    rng = np.random.default_rng(8)
    for step, size in enumerate([(8, 12), (14, 6)]):
        x, y = images(3, *size, c=1, seed=step), rng.integers(0, 4, (3,) + size)
        got = ours.train_on_batch(x, y, return_dict=True)
        expected = theirs.train_on_batch(x, y, return_dict=True)
        for name in ("loss", "accuracy", "miou"):      # named: Keras numbers a second MeanIoU mean_io_u_1
            assert got[name] == pytest.approx(float(expected[name]), rel=1e-4, abs=1e-6), name
    for k_weight, s_weight in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(s_weight, k_weight, rtol=1e-4, atol=ATOL)
    with pytest.raises(ValueError, match=r"\(3, 8, 8\).*\(3, 8, 12, 4\)|\(3, 8, 12, 4\).*\(3, 8, 8\)"):
        ours.train_on_batch(images(3, 8, 12, c=1), rng.integers(0, 4, (3, 8, 8)))     # labels of another size


@pytest.mark.parametrize("fmt", ["keras", "npz", "h5"])
def test_a_segmenter_compiled_with_mean_iou_reloads_compiled_with_it(tmp_path, fmt):
    from scratchnet import metrics
    model = segmenter(layers, models.Model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", metrics.MeanIoU(num_classes=4, sparse_y_pred=False, name="miou")])
    x, y = images(2, 8, 8, c=1), np.random.default_rng(0).integers(0, 4, (2, 8, 8))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / f"m.{fmt}")
    loaded = models.load_model(tmp_path / f"m.{fmt}")
    assert loaded.compiled
    iou = [m for m in loaded.compile_state().metrics if m.name == "miou"]
    assert len(iou) == 1 and iou[0].num_classes == 4 and not iou[0].sparse_y_pred
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-5)
    if fmt == "keras" and (keras := real_keras()):
        theirs = keras.models.load_model(tmp_path / "m.keras")
        assert theirs.evaluate(x, y, verbose=0, return_dict=True)["miou"] == pytest.approx(
            model.evaluate(x, y, verbose=0, return_dict=True)["miou"], rel=1e-5)
