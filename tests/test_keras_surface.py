"""The Keras surface tutorials reach for, written as a tutorial would (``import scratchnet as
keras``) and compared with real Keras where it is installed: modules as attributes, the
helpers in keras.utils and keras.backend, and the errors for what scratchnet lacks."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import scratchnet as keras_like

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def test_module_paths_resolve_as_attributes_and_only_when_used():
    code = ("import sys, scratchnet as keras\n"
            "assert 'scratchnet.applications' not in sys.modules and 'scratchnet.datasets' not in sys.modules\n"
            "assert callable(keras.datasets.mnist.load_data)\n"
            "assert keras.preprocessing.image.ImageDataGenerator and keras.applications.VGG16\n"
            "assert keras.models.load_model and keras.utils.to_categorical and keras.callbacks.History\n"
            "assert 'scratchnet.applications' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_what_scratchnet_lacks_is_named_with_what_it_has():
    with pytest.raises(AttributeError, match=r"scratchnet has no layers\.LSTM; its layers are .*Conv2D"):
        keras_like.layers.LSTM
    with pytest.raises(AttributeError, match=r"scratchnet has no 'mixed_precision' \(Keras's keras\.mixed_precision\); "
                                             r"it has .*layers"):
        keras_like.mixed_precision
    with pytest.raises(AttributeError, match=r"scratchnet has no layers\.RandomBrightness; RandomContrast is the "
                                             r"nearest; its layers are"):
        keras_like.layers.RandomBrightness
    with pytest.raises(AttributeError, match=r"scratchnet has no layers\.Conv2d; Conv2D is the nearest"):
        keras_like.layers.Conv2d
    with pytest.raises(AttributeError, match=r"scratchnet has no ops\.einsum; its ops are abs, "):
        keras_like.ops.einsum


@pytest.mark.parametrize("labels, num_classes", [([0, 2, 1, 2], None), ([[1], [0], [3]], None), ([[0, 1], [2, 0]], 4),
                                                 (np.array([3.0, 1.0]), 5), ([], 3)])
def test_to_categorical_equals_keras(labels, num_classes):
    keras = real_keras()
    ours = keras_like.utils.to_categorical(labels, num_classes)
    theirs = keras.utils.to_categorical(np.asarray(labels, dtype="int64"), num_classes)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2 for num_classes=3, got \[3\]"):
        keras_like.utils.to_categorical([0, 3], 3)
    with pytest.raises(ValueError, match=r"integer class labels, got values such as \[0\.5\]"):
        keras_like.utils.to_categorical([0.5, 1])


def test_image_helpers_equal_keras(tmp_path):
    keras = real_keras()
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8)).save(path)
    for kwargs in ({}, {"target_size": (20, 20)}, {"target_size": (20, 20), "keep_aspect_ratio": True},
                   {"color_mode": "grayscale", "target_size": (10, 30)}):
        ours = keras_like.utils.img_to_array(keras_like.utils.load_img(path, **kwargs))
        theirs = keras.utils.img_to_array(keras.utils.load_img(path, **kwargs))
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    for channels in (1, 3, 4):
        x = rng.standard_normal((6, 5, channels)).astype(np.float32)
        for scale, values in ((True, x * 50 + 100), (False, np.clip(x * 50 + 100, 0, 255))):
            ours = np.asarray(keras_like.utils.array_to_img(values, scale=scale))
            theirs = np.asarray(keras.utils.array_to_img(values, scale=scale))
            np.testing.assert_allclose(ours.astype(int), theirs.astype(int), atol=1)   # Keras rounds via float64
    # unscaled values outside 0..255 are clipped (Keras wraps them around through uint8)
    assert np.asarray(keras_like.utils.array_to_img(np.full((2, 2, 1), -5.0), scale=False)).max() == 0
    with pytest.raises(ValueError, match=r"shape \(height, width, 1, 3 or 4 channels\), got shape \(6, 5\)"):
        keras_like.utils.array_to_img(np.zeros((6, 5)))


def test_backend_helpers_as_tutorials_call_them():
    from scratchnet import backend as K
    keras = real_keras()
    assert K.image_data_format() == keras.backend.image_data_format() == "channels_last"
    assert K.epsilon() == keras.backend.epsilon() and K.floatx() == keras.backend.floatx()
    K.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="channels_last \\(NHWC\\) only.*np.moveaxis"):
        K.set_image_data_format("channels_first")
    keras_like.layers.Conv2D(2, 3)
    K.clear_session()
    assert keras_like.layers.Conv2D(2, 3).name == "conv2d"


def test_model_shapes_hold_the_batch_axis_as_in_keras():
    keras = real_keras()
    from scratchnet import layers, models
    from test_keras_files import functional_inside_called_twice, seed_mnist
    pairs = [(seed_mnist(keras), seed_mnist(keras_like)),
             (functional_inside_called_twice(keras.layers, keras.Model, keras.Input),
              functional_inside_called_twice(layers, models.Model, layers.Input))]
    for theirs, ours in pairs:
        assert ours.input_shape == theirs.input_shape and ours.output_shape == theirs.output_shape
    assert pairs[0][1].input_shape == (None, 28, 28, 1) and pairs[1][1].output_shape == [(None, 2), (None, 1)]
    optimizer = pairs[0][1].compile("adam", "mse") or pairs[0][1].optimizer
    optimizer.learning_rate = 0.01                          # settable, as in Keras
    assert pairs[0][1].optimizer.learning_rate == 0.01


def test_images_without_their_channel_axis_are_taken_as_keras_3_takes_them():
    keras = real_keras()
    from test_keras_files import seed_mnist
    k_model, ours = seed_mnist(keras), seed_mnist(keras_like)
    ours.set_weights(k_model.get_weights())
    digits = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(ours.predict(digits, verbose=0), k_model.predict(digits, verbose=0), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_array_equal(ours.predict(digits, verbose=0), ours.predict(digits[..., None], verbose=0))
    ours.compile("adam", "sparse_categorical_crossentropy")
    ours.fit(digits, np.arange(5), verbose=0)
    with pytest.raises(ValueError, match=r"x has shape \(5, 28, 27\); the model expects \(N,\) \+ \(28, 28, 1\)"):
        ours.predict(digits[:, :, :27], verbose=0)


def test_keras_only_compile_switches_are_accepted_with_one_note(recwarn):
    from scratchnet.training import trainer
    trainer._NOTED_SWITCHES.clear()
    model = keras_like.Sequential([keras_like.layers.Input((3,)), keras_like.layers.Dense(1)])
    with pytest.warns(UserWarning, match=r"compile\(jit_compile=True\) does nothing in scratchnet: there is no XLA"):
        model.compile("adam", "mse", jit_compile=True, steps_per_execution=4)
    recwarn.clear()
    model.compile("adam", "mse", jit_compile=True)
    assert not [w for w in recwarn if "does nothing" in str(w.message)]      # once per switch
    with pytest.raises(TypeError, match=r"does not support \['loss_weights'\]"):
        model.compile("adam", "mse", loss_weights=[1.0, 2.0])


@pytest.fixture
def photo_folder(tmp_path):
    """Two classes of PNG and JPEG images of assorted sizes and modes."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("cats", "dogs")):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(7 + k):
            h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
            pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            image = image.convert("L") if i == 3 else image
            image.save(tmp_path / "photos" / name / f"{i:02d}.png")
        (tmp_path / "photos" / name / "notes.txt").write_text("not an image")
    return tmp_path / "photos"


@pytest.mark.parametrize("options", [dict(label_mode="int", image_size=(32, 40)),
                                     dict(label_mode="categorical", image_size=(64, 64), color_mode="grayscale"),
                                     dict(label_mode="binary", image_size=(17, 23), crop_to_aspect_ratio=True),
                                     dict(label_mode="int", image_size=(30, 30), interpolation="nearest")])
def test_image_dataset_from_directory_equals_keras(photo_folder, options):
    keras = real_keras()
    kwargs = dict(batch_size=4, shuffle=False, verbose=False, **options)
    ours = keras_like.utils.image_dataset_from_directory(photo_folder, **kwargs)
    theirs = keras.utils.image_dataset_from_directory(str(photo_folder), **kwargs)
    assert ours.class_names == theirs.class_names == ["cats", "dogs"] and len(ours) == len(theirs) == 4
    assert ours.file_paths == list(theirs.file_paths)
    for (x, y), (kx, ky) in zip(ours, theirs):
        assert x.dtype == np.float32 and y.dtype == ky.numpy().dtype and y.shape == tuple(ky.shape)
        np.testing.assert_array_equal(y, ky.numpy())
        # TensorFlow's resize, to float32 rounding; grayscale from colour files within 1 (TensorFlow's
        # decoders and Pillow round the luma of a colour pixel differently)
        np.testing.assert_allclose(x, kx.numpy(), rtol=0, atol=1.0 if options.get("color_mode") else 1e-3)


def test_image_dataset_split_and_shuffle_as_keras(photo_folder, capsys):
    keras = real_keras()
    kwargs = dict(validation_split=0.25, seed=7, image_size=(8, 8), batch_size=3)
    train, val = keras_like.utils.image_dataset_from_directory(photo_folder, subset="both", **kwargs)
    k_train, k_val = keras.utils.image_dataset_from_directory(str(photo_folder), subset="both", **kwargs)
    assert train.file_paths == list(k_train.file_paths) and val.file_paths == list(k_val.file_paths)
    assert "Found 15 files belonging to 2 classes." in capsys.readouterr().out
    first = [tuple(y) for _, y in train]
    assert sorted(np.concatenate(first).tolist()) == sorted(np.concatenate([y for _, y in train]).tolist())
    model = keras_like.Sequential([keras_like.layers.Input((8, 8, 3)), keras_like.layers.Rescaling(1 / 255),
                                   keras_like.layers.Flatten(), keras_like.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["val_accuracy"]) == 2
    assert len(list(train.take(2))) == 2
    with pytest.raises(ValueError, match="give a seed"):
        keras_like.utils.image_dataset_from_directory(photo_folder, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="label_mode must be one of"):
        keras_like.utils.image_dataset_from_directory(photo_folder, label_mode="sparse")


def _keras_generator(keras, **kwargs):
    from keras.src.legacy.preprocessing.image import ImageDataGenerator   # Keras 3 keeps it as legacy
    return ImageDataGenerator(**kwargs)


def test_image_data_generator_standardizes_as_keras_after_fit():
    keras = real_keras()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (20, 8, 9, 3)).astype(np.float32)
    for kwargs in (dict(featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255),
                   dict(samplewise_center=True, samplewise_std_normalization=True),
                   dict(zca_whitening=True, featurewise_center=True),
                   dict(preprocessing_function=lambda a: a[::-1] * 2, rescale=0.5)):
        ours = keras_like.preprocessing.image.ImageDataGenerator(**kwargs)
        theirs = _keras_generator(keras, **kwargs)
        ours.fit(x)
        theirs.fit(x)
        for image in x[:3]:
            np.testing.assert_allclose(ours.standardize(image.copy()), theirs.standardize(image.copy()), rtol=1e-4,
                                       atol=1e-4)
    unfitted = keras_like.preprocessing.image.ImageDataGenerator(featurewise_center=True)
    with pytest.warns(UserWarning, match="hasn't been fit on any training data"):
        unfitted.standardize(x[0].copy())


def test_channel_shift_and_brightness_equal_keras_for_the_same_draws():
    keras = real_keras()
    x = np.random.default_rng(1).uniform(0, 255, (10, 12, 3)).astype(np.float32)
    ours = keras_like.preprocessing.image.ImageDataGenerator()
    theirs = _keras_generator(keras)
    for params in ({"channel_shift_intensity": 30.0}, {"brightness": 0.6}, {"brightness": 1.4, "flip_horizontal": True}):
        full = {"theta": 0, "tx": 0, "ty": 0, "shear": 0, "zx": 1, "zy": 1, "flip_horizontal": False,
                "flip_vertical": False, **params}
        np.testing.assert_allclose(ours.apply_transform(x, full), theirs.apply_transform(x, full), atol=1e-4)


def test_flow_batches_labels_split_and_fit():
    x = np.random.default_rng(0).random((10, 6, 6, 1), dtype=np.float32)
    y = np.array([0, 1] * 5)
    generator = keras_like.preprocessing.image.ImageDataGenerator(rescale=2.0, horizontal_flip=True,
                                                                  channel_shift_range=0.1, brightness_range=(0.8, 1.2),
                                                                  validation_split=0.2)
    flow = generator.flow(x, y, batch_size=3, seed=0, subset="training")
    assert len(flow) == 3
    seen = [next(flow) for _ in range(3)]
    assert [len(b[1]) for b in seen] == [3, 3, 2] and sorted(np.concatenate([b[1] for b in seen])) == sorted(y[2:])
    assert generator.flow(x, y, subset="validation").n == 2
    plain = keras_like.preprocessing.image.ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)
    np.testing.assert_array_equal(next(plain)[0], x[:4])
    with pytest.raises(ValueError, match="different number of classes after the split"):
        generator.flow(x, np.array([0] * 2 + [1] * 8), subset="training")
    model = keras_like.Sequential([keras_like.layers.Input((6, 6, 1)), keras_like.layers.Flatten(),
                                   keras_like.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(generator.flow(x, y, batch_size=4, subset="training"), epochs=2,
                        validation_data=generator.flow(x, y, batch_size=4, subset="validation"), verbose=0)
    assert len(history.history["val_loss"]) == 2


# ----- where scratchnet once differed from Keras without a word (issue 26, part 1) ----------------
def augmented_classifier(L, Sequential):
    """The TensorFlow image-classification tutorial's shape: an augmentation model first."""
    augmentation = Sequential([L.RandomFlip("horizontal", input_shape=(32, 32, 3)), L.RandomRotation(0.1)])
    return Sequential([augmentation, L.Rescaling(1.0 / 255), L.Conv2D(4, 3, padding="same", activation="relu"),
                       L.MaxPooling2D(), L.Flatten(), L.Dense(2)])


def test_a_sequential_model_that_starts_with_a_built_model_is_built_at_once_as_in_keras():
    keras = real_keras()
    theirs = augmented_classifier(keras.layers, keras.Sequential)
    ours = augmented_classifier(keras_like.layers, keras_like.Sequential)
    assert ours.built and theirs.built
    assert ours.input_shape == tuple(theirs.input_shape) == (None, 32, 32, 3)
    assert ours.count_params() == theirs.count_params() > 0
    assert [type(l).__name__ for l in ours.layers] == [type(l).__name__ for l in theirs.layers]
    assert ours.output_shape == tuple(theirs.output_shape)
    unbuilt = keras_like.Sequential([keras_like.Sequential([keras_like.layers.RandomFlip()]), keras_like.layers.Dense(2)])
    assert not unbuilt.built        # an inner model without an input shape tells nothing, in Keras too


def test_a_model_made_from_inputs_and_outputs_is_called_functional_as_in_keras(capsys):
    keras = real_keras()
    for L, Model in ((keras.layers, keras.Model), (keras_like.layers, keras_like.Model)):
        inputs = L.Input((4,))
        inner = Model(inputs, L.Dense(2)(inputs), name="inner")
        outer_inputs = L.Input((4,))
        outer = Model(outer_inputs, inner(outer_inputs))
        assert type(inner).__name__ == type(outer).__name__ == "Functional"
        assert isinstance(inner, Model)
        outer.summary()
        assert "inner (Functional)" in capsys.readouterr().out

    class Custom(keras_like.Model):
        pass
    inputs = keras_like.layers.Input((4,))
    assert type(Custom(inputs, keras_like.layers.Dense(2)(inputs))).__name__ == "Custom"    # a subclass stays itself


def batch_ids(dataset):
    """Each batch of one pass as the tuple of its images' first pixel (which tells the files apart)."""
    return [tuple(int(v) for v in np.asarray(images)[:, 0, 0, 0]) for images, _ in dataset]


def test_dataset_shuffle_and_cache_follow_tf_data(photo_folder):
    # tf.data: shuffle() after batching reorders whole batches (the short batch moves too), cache()
    # gives the first pass's batches again, and a buffer of 1 shuffles nothing; checked on both
    for make in (keras_like.utils.image_dataset_from_directory, real_keras().utils.image_dataset_from_directory):
        fixed = make(str(photo_folder), image_size=(8, 8), batch_size=4, shuffle=False, interpolation="nearest")
        batches = batch_ids(fixed)
        assert [len(b) for b in batches] == [4, 4, 4, 3]
        reshuffled = fixed.shuffle(100, seed=5)
        passes = [batch_ids(reshuffled) for _ in range(12)]
        assert all(sorted(p) == sorted(batches) for p in passes)                  # the same batches, reordered
        assert len({tuple(p) for p in passes}) > 1 and any(len(p[-1]) == 4 for p in passes)
        assert batch_ids(fixed.shuffle(1)) == batches
        kept = make(str(photo_folder), image_size=(8, 8), batch_size=4, shuffle=True, seed=3).cache()
        assert batch_ids(kept) == batch_ids(kept)          # the files' shuffle happened once, before the cache
        assert len(batch_ids(kept.take(2))) == 2 and len(kept) == 4


def jpeg_folder(root, size=(48, 40), count=4):
    """Two classes of smooth colour JPEGs (4:2:0 chroma, where decoders differ most)."""
    rng = np.random.default_rng(1)
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for i in range(count):
            y, x = np.mgrid[:size[0], :size[1]]
            phase = rng.uniform(0, 6, 3)
            pixels = np.stack([127 + 120 * np.sin(x / (5 + c) + y / (7 - c) + phase[c]) for c in range(3)], -1)
            noisy = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / name / f"{i}.jpg", quality=85)
    return root


@pytest.mark.parametrize("color_mode", ["rgb", "grayscale"])
def test_jpeg_pixels_equal_tensorflow_s_decoding(tmp_path, color_mode):
    keras = real_keras()
    folder = str(jpeg_folder(tmp_path / "jpegs"))
    with pytest.raises(ValueError, match=r"a JPEG has no alpha channel, so color_mode='rgba' cannot read it"):
        next(iter(keras_like.utils.image_dataset_from_directory(folder, color_mode="rgba")))     # Keras: an error too
    kwargs = dict(image_size=(48, 40), batch_size=8, shuffle=False, color_mode=color_mode)
    ours = np.concatenate([np.asarray(x) for x, _ in keras_like.utils.image_dataset_from_directory(folder, **kwargs)])
    theirs = np.concatenate([x.numpy() for x, _ in keras.utils.image_dataset_from_directory(folder, **kwargs)])
    np.testing.assert_array_equal(ours, theirs)
    pillow = np.stack([keras_like.utils.img_to_array(keras_like.utils.load_img(p, color_mode=color_mode))
                       for p in sorted((tmp_path / "jpegs").glob("*/*.jpg"))])
    assert np.abs(pillow - theirs).max() > 0       # Pillow's accurate DCT alone would not be equal


def test_the_shared_cats_and_dogs_jpegs_equal_tensorflow_s_decoding(tmp_path):
    import tarfile
    archive = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "catsdogs-128.tar")
    if not os.path.exists(archive):
        pytest.skip("../shared/data/catsdogs-128.tar is absent (a user's clone has none)")
    keras = real_keras()
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/validation/" in m.name and m.name.endswith(".jpg")]
        chosen = [m for m in members if "/cats/" in m.name][:20] + [m for m in members if "/dogs/" in m.name][:20]
        tar.extractall(tmp_path, members=chosen, filter="data")
    folder = str(tmp_path / "catsdogs" / "validation")
    kwargs = dict(image_size=(128, 128), batch_size=40, shuffle=False)
    (ours, _), = keras_like.utils.image_dataset_from_directory(folder, **kwargs)
    (theirs, _), = keras.utils.image_dataset_from_directory(folder, **kwargs)
    np.testing.assert_array_equal(np.asarray(ours), theirs.numpy())


@pytest.mark.parametrize("module, name, nearest", [
    ("callbacks", "BackupAndRestore", "ModelCheckpoint"), ("callbacks", "EarlyStoping", "EarlyStopping"),
    ("losses", "SparseCategoricalCrossEntropy", "SparseCategoricalCrossentropy"), ("losses", "LogCosh", "Huber"),
    ("metrics", "MeanIou", "MeanIoU"), ("optimizers", "Adamm", "Adam"), ("utils", "to_categorial", "to_categorical")])
def test_a_missing_name_is_answered_with_the_nearest_and_the_whole_list(module, name, nearest):
    namespace = getattr(keras_like, module)
    with pytest.raises(AttributeError, match=rf"scratchnet has no {module}\.{name}; {nearest}.* is the nearest; "
                                             rf"its {module} are "):
        getattr(namespace, name)
    assert not hasattr(namespace, name)


def nested_model(L, Model):
    base_inputs = L.Input((8, 8, 3), name="base_in")
    base = Model(base_inputs, L.Conv2D(4, 3, name="base_conv")(base_inputs), name="base")
    base.trainable = False
    inputs = L.Input((8, 8, 3), name="outer_in")
    x = L.Flatten(name="flat")(base(inputs))
    return Model(inputs, L.Dense(2, name="head")(L.Dropout(0.5, name="drop")(x)), name="outer")


def summary_rows(model, **options):
    """The layer names in a summary, in order, and each row's last cell, from the text printed."""
    printed = []
    model.summary(print_fn=lambda text, *args, **kwargs: printed.append(text), **options)
    assert len(printed) == 1                       # one call with the whole text, as Keras 3
    names = re.findall(r"(?:└ )?([a-z_0-9]+) \((\w+)\)", printed[0])
    return [name for name, kind in names if kind != "type"], printed[0]


@pytest.mark.parametrize("options", [dict(), dict(layer_range=["fl", "head"]), dict(layer_range=["head", "base"]),
                                     dict(expand_nested=True), dict(show_trainable=True, line_length=120),
                                     dict(positions=[0.4, 0.6, 0.8, 1.0])])
def test_summary_takes_keras_s_options(options):
    keras = real_keras()
    theirs, _ = summary_rows(nested_model(keras.layers, keras.Model), **options)
    ours, text = summary_rows(nested_model(keras_like.layers, keras_like.Model), **options)
    assert ours == theirs
    if options.get("show_trainable"):
        trainable = {line.split()[0]: line.split()[-1] for line in text.splitlines() if "(" in line and ")" in line}
        assert trainable["base"] == "N" and trainable["head"] == "Y" and trainable["flat"] == "-"
        assert max(len(line) for line in text.splitlines()) == 120 + 1
    with pytest.raises(ValueError, match="Passed layer_names do not match the layer names in the model"):
        nested_model(keras_like.layers, keras_like.Model).summary(layer_range=["nothing", "head"])
