"""Keras model files in and out, checked against the real Keras 3 and tf.keras 2: models built
and trained a little in Keras load in scratchnet with equal predictions, in every format, and
scratchnet's files load in Keras; weight files; the applications' weight files; bad files."""
import json
import os
import warnings
import zipfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
h5py = pytest.importorskip("h5py")

import scratchnet  # noqa: E402
from scratchnet import applications, layers as ours, models  # noqa: E402
from scratchnet.saving import ModelFileError, load_model  # noqa: E402
from test_keras_equivalence import build as every_layer  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def tf_keras():
    return pytest.importorskip("tf_keras", reason="tf-keras (tf.keras 2, dev extra) is not installed")


def seed_mnist(K):
    return K.Sequential([K.Input((28, 28, 1)), K.layers.Conv2D(32, 3, activation="relu"),
                         K.layers.MaxPooling2D(), K.layers.Conv2D(64, 3, activation="relu"), K.layers.MaxPooling2D(),
                         K.layers.Conv2D(64, 3, activation="relu"), K.layers.Flatten(),
                         K.layers.Dense(64, activation="relu"), K.layers.Dense(10, activation="softmax")])


def seed_catsdogs(K, size=64):
    L = K.layers
    return K.Sequential([K.Input((size, size, 3)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
                         L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(128, 3, activation="relu"),
                         L.MaxPooling2D(), L.Conv2D(128, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                         L.Dropout(0.5), L.Dense(512, activation="relu"), L.Dense(1, activation="sigmoid")])


def nested(K):
    """A Sequential inside a functional model, a shared layer, the remaining layer kinds."""
    L = K.layers
    inner = K.Sequential([K.Input((8, 8, 4)), L.Conv2D(4, 1, name="inner_conv"), L.BatchNormalization(name="inner_bn"),
                          L.Activation("tanh", name="tanh")], name="inner")
    x = K.Input((8, 8, 3), name="pixels")
    shared = L.Conv2D(4, 3, padding="same", activation="elu", name="shared")
    a = inner(shared(x))
    b = shared(L.Rescaling(0.5, name="half")(x))
    y = L.Add(name="sum")([a, b])
    y = L.Dropout(0.3, name="drop")(y)
    y = L.Flatten(name="flat")(y)
    p = L.Dense(3, name="logits")(y)
    return K.Model(x, [L.Softmax(name="probs")(p), L.Activation("sigmoid", name="sig")(L.Dense(1, name="one")(y))])


def keras_every_layer():
    return every_layer(keras.layers, keras.Model)


def randomize_batchnorm(model, seed=0):
    """Non-trivial moving statistics (and gamma, beta) in every BatchNormalization."""
    rng = np.random.default_rng(seed)
    for layer in _all_keras_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            weights = layer.get_weights()
            shapes = [w.shape for w in weights]
            new = [rng.normal(1, 0.2, s) for s in shapes[:-2]] + [rng.normal(0, 0.3, shapes[-2]),
                                                                   rng.uniform(0.5, 1.5, shapes[-1])]
            layer.set_weights([w.astype(np.float32) for w in new])


def _all_keras_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_keras_layers(layer)
        yield layer


def trained(model, x, seed=0):
    """A few real training steps, so BatchNormalization's statistics move."""
    keras.utils.set_random_seed(seed)
    outputs = model.outputs
    y = [np.random.default_rng(seed).random((len(x),) + tuple(o.shape[1:])).astype(np.float32) for o in outputs]
    model.compile("adam", "mse")
    model.fit(x, y if len(y) > 1 else y[0], batch_size=4, epochs=1, verbose=0)
    randomize_batchnorm(model, seed)
    return model


def inputs_for(model, n=4, seed=1):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def close(ours_, theirs):
    ours_ = ours_ if isinstance(ours_, list) else [ours_]
    theirs = theirs if isinstance(theirs, list) else [theirs]
    assert len(ours_) == len(theirs)
    for a, b in zip(ours_, theirs):
        np.testing.assert_allclose(a, np.asarray(b), rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(b).max())))


KERAS_MODELS = {"mnist": seed_mnist, "catsdogs": seed_catsdogs, "every_layer": lambda K: keras_every_layer(),
                "nested": nested}


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """Each Keras model, trained a few steps, saved as .keras and .h5 by Keras 3."""
    folder = tmp_path_factory.mktemp("keras")
    out = {}
    for name, make in KERAS_MODELS.items():
        keras.utils.set_random_seed(0)
        model = make(keras)
        x = inputs_for(model, 8)
        trained(model, x)
        model.save(folder / f"{name}.keras")
        model.save(folder / f"{name}.h5")
        model.save_weights(folder / f"{name}.weights.h5")
        out[name] = (model, x)
    return folder, out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", sorted(KERAS_MODELS))
def test_keras3_files_load_with_equal_predictions(keras_files, name, fmt):
    folder, built = keras_files
    k_model, x = built[name]
    model = load_model(folder / f"{name}.{fmt}")
    assert [l.name for l in model.layers] == [l.name for l in k_model.layers]
    assert model.count_params() == k_model.count_params()
    close(model.predict(x, verbose=0), k_model.predict(x, verbose=0))


@pytest.mark.parametrize("name", sorted(KERAS_MODELS))
def test_keras3_weight_files_load_into_a_model_built_in_scratchnet(keras_files, tmp_path, name):
    folder, built = keras_files
    k_model, x = built[name]
    twin = load_model(folder / f"{name}.keras")           # the same architecture ...
    twin.set_weights([np.zeros_like(w) for w in twin.get_weights()])   # ... with other weights
    twin.load_weights(folder / f"{name}.weights.h5")
    close(twin.predict(x, verbose=0), k_model.predict(x, verbose=0))


@pytest.mark.parametrize("name", ["mnist", "every_layer", "nested"])
def test_tf_keras_2_h5_files_load_with_equal_predictions(tmp_path, name):
    K = tf_keras()
    K.utils.set_random_seed(0)
    k_model = {"mnist": seed_mnist, "nested": nested,
               "every_layer": lambda K: every_layer(_Keras2Layers(K.layers), K.Model)}[name](K)
    x = inputs_for(k_model, 8)
    ys = [np.random.default_rng(0).random((8,) + tuple(o.shape[1:])).astype(np.float32) for o in k_model.outputs]
    k_model.compile("adam", "mse")
    k_model.fit(x, ys if len(ys) > 1 else ys[0], epochs=1, batch_size=4, verbose=0)
    randomize_batchnorm(k_model)
    k_model.save(tmp_path / "m.h5")
    k_model.save_weights(tmp_path / "w.h5")
    model = load_model(tmp_path / "m.h5")
    close(model.predict(x, verbose=0), k_model.predict(x, verbose=0))
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(tmp_path / "w.h5")
    close(model.predict(x, verbose=0), k_model.predict(x, verbose=0))


class _Keras2Layers:
    """tf.keras 2's layers under Keras 3's argument names (LeakyReLU's slope was 'alpha')."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def LeakyReLU(self, negative_slope=0.3, **kwargs):
        return self._module.LeakyReLU(alpha=negative_slope, **kwargs)


# ----- scratchnet -> Keras ---------------------------------------------------------------------------------
def scratchnet_models():
    from scratchnet.train import catsdogs_model, mnist_model, resnet_model
    yield "mnist", mnist_model()
    yield "catsdogs", catsdogs_model(64)
    yield "resnet", resnet_model(64)
    yield "every_layer", every_layer(ours, models.Model)
    yield "nested", nested(scratchnet)


def scratchnet_trained(model, seed=0):
    x = np.random.default_rng(seed).random((8,) + tuple(model.input_shape[1:]), dtype=np.float32)
    shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    ys = [np.random.default_rng(seed).random((8,) + tuple(s[1:])).astype(np.float32) for s in shapes]
    if len(ys) == 1:
        model.compile("adam", "mse")
        model.fit(x, ys[0], batch_size=4, epochs=1, verbose=0)
    rng = np.random.default_rng(seed)     # and non-trivial BatchNormalization statistics
    model.set_weights([w + rng.uniform(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    return x


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_scratchnet_files_load_in_keras_3_with_equal_predictions(tmp_path, fmt):
    for name, model in scratchnet_models():
        x = scratchnet_trained(model)
        path = tmp_path / f"{name}.{fmt}"
        model.save(path)
        k_model = keras.models.load_model(path)
        close(model.predict(x, verbose=0), k_model.predict(x, verbose=0))
        again = load_model(path)       # and back
        close(again.predict(x, verbose=0), model.predict(x, verbose=0))
        model.save_weights(tmp_path / f"{name}.weights.h5")
        k_model.set_weights([np.zeros_like(w) for w in k_model.get_weights()])
        k_model.load_weights(tmp_path / f"{name}.weights.h5")
        close(model.predict(x, verbose=0), k_model.predict(x, verbose=0))


def test_scratchnet_h5_files_load_in_tf_keras_2(tmp_path):
    K = tf_keras()
    for name, model in scratchnet_models():
        if name == "nested":
            continue
        x = scratchnet_trained(model)
        model.save(tmp_path / f"{name}.h5")
        k_model = K.models.load_model(tmp_path / f"{name}.h5")
        close(model.predict(x, verbose=0), k_model.predict(x, verbose=0))


def test_a_compiled_model_keeps_its_compile_settings_through_keras_files(tmp_path):
    from scratchnet.train import mnist_model
    model = mnist_model()
    model.compile(scratchnet.optimizers.RMSprop(1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "m.keras")
    k_model = keras.models.load_model(tmp_path / "m.keras")
    assert type(k_model.optimizer).__name__ == "RMSprop"
    assert float(k_model.optimizer.learning_rate) == pytest.approx(1e-4)
    again = load_model(tmp_path / "m.keras")
    assert type(again.optimizer).__name__ == "RMSprop" and again.optimizer.learning_rate == pytest.approx(1e-4)
    assert type(again.loss).__name__ == "SparseCategoricalCrossentropy"


# ----- applications ----------------------------------------------------------------------------------------
APPLICATIONS = [("VGG16", 32, False), ("ResNet50", 32, False), ("InceptionV3", 75, True), ("MobileNetV2", 32, True)]


@pytest.mark.parametrize("name, size, top", APPLICATIONS)
def test_applications_in_every_format_and_with_keras_weight_files(tmp_path, monkeypatch, name, size, top):
    keras.utils.set_random_seed(0)
    kwargs = dict(include_top=top, input_shape=(size, size, 3), weights=None)
    kwargs.update(classes=5) if top else kwargs.update(pooling="avg")
    k_model = getattr(keras.applications, name)(**kwargs)
    randomize_batchnorm(k_model)
    x = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    expected = k_model.predict(x, verbose=0)
    k_model.save(tmp_path / "m.keras")
    k_model.save(tmp_path / "m.h5")
    k_model.save_weights(tmp_path / "w.weights.h5")
    for path in ("m.keras", "m.h5"):
        close(load_model(tmp_path / path).predict(x, verbose=0), expected)
    # keras.applications.X(weights=PATH) in scratchnet, with the weight file a user already has
    kwargs["weights"] = str(tmp_path / "w.weights.h5")
    close(getattr(applications, name)(**kwargs).predict(x, verbose=0), expected)
    kwargs["weights"] = str(tmp_path / "m.h5")     # the legacy layout of keras.io's downloads
    model = getattr(applications, name)(**kwargs)
    close(model.predict(x, verbose=0), expected)
    model.save(tmp_path / "ours.keras")            # and back into Keras
    close(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected)
    if not top:      # weights='imagenet': the file in Keras's cache, under the name Keras gives it
        cached = {"VGG16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                  "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"}[name]
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
        (tmp_path / "keras_home" / "models").mkdir(parents=True)
        (tmp_path / "m.h5").rename(tmp_path / "keras_home" / "models" / cached)
        kwargs["weights"] = "imagenet"
        close(getattr(applications, name)(**kwargs).predict(x, verbose=0), expected)


def test_vgg16_tf_keras_legacy_weight_file_by_topology_and_by_name(tmp_path):
    K = tf_keras()
    K.utils.set_random_seed(0)
    k_model = K.applications.VGG16(include_top=False, input_shape=(32, 32, 3), weights=None, pooling="max")
    k_model.save_weights(tmp_path / "vgg16_notop.h5")     # the layout of vgg16_..._notop.h5
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    expected = k_model.predict(x, verbose=0)
    model = applications.VGG16(include_top=False, input_shape=(32, 32, 3), weights=str(tmp_path / "vgg16_notop.h5"),
                               pooling="max")
    close(model.predict(x, verbose=0), expected)
    # by name: a model whose layers are in another order and partly absent takes what matches
    inputs = ours.Input((32, 32, 3))
    y = ours.Conv2D(64, 3, padding="same", activation="relu", name="block1_conv1")(inputs)
    y = ours.Conv2D(7, 3, name="not_in_the_file")(y)
    small = models.Model(inputs, y)
    small.load_weights(tmp_path / "vgg16_notop.h5", by_name=True)
    np.testing.assert_array_equal(small.get_layer("block1_conv1").get_weights()[0],
                                  k_model.get_layer("block1_conv1").get_weights()[0])
    with pytest.raises(ModelFileError, match="13 layers, the model has 2"):
        small.load_weights(tmp_path / "vgg16_notop.h5")


def test_skip_mismatch_and_the_wrong_shape_error(tmp_path):
    keras.utils.set_random_seed(0)
    k_model = seed_mnist(keras)
    k_model.save_weights(tmp_path / "w.weights.h5")
    tf_k = tf_keras()
    tf_k.utils.set_random_seed(1)
    legacy_model = seed_mnist(tf_k)
    legacy_model.save_weights(tmp_path / "legacy.h5")
    ours_model = models.Sequential([ours.Input((28, 28, 1)), ours.Conv2D(32, 3, activation="relu"),
                                    ours.MaxPooling2D(), ours.Conv2D(64, 3, activation="relu"), ours.MaxPooling2D(),
                                    ours.Conv2D(64, 3, activation="relu"), ours.Flatten(),
                                    ours.Dense(64, activation="relu"), ours.Dense(5, activation="softmax")])
    for path, source in (("w.weights.h5", k_model), ("legacy.h5", legacy_model)):
        with pytest.raises(ModelFileError, match=r"weight 'kernel' has shape \(64, 5\) in the model and \(64, 10\) "
                                                 r"in the file"):
            ours_model.load_weights(tmp_path / path)
        before = ours_model.layers[-1].get_weights()[0].copy()
        with pytest.warns(UserWarning, match="skipping layer"):
            ours_model.load_weights(tmp_path / path, skip_mismatch=True)
        np.testing.assert_array_equal(ours_model.layers[-1].get_weights()[0], before)
        np.testing.assert_array_equal(ours_model.layers[0].get_weights()[0], source.layers[0].get_weights()[0])


# ----- bad files -------------------------------------------------------------------------------------------
def _rewrite_config(src, dst, change):
    with zipfile.ZipFile(src) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as archive:
        for n, data in members.items():
            archive.writestr(n, data)


def test_a_lambda_layer_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    L = keras.layers
    x = keras.Input((4,))
    y = L.Lambda(lambda t: t * 2, name="double")(L.Dense(2)(x))
    model = keras.Model(x, y)
    model.save(tmp_path / "lambda.keras")
    model.save(tmp_path / "lambda.h5")
    for path in ("lambda.keras", "lambda.h5"):
        with pytest.raises(ModelFileError, match=r"Lambda \(double\).*never runs"):
            load_model(tmp_path / path)
    assert not marker.exists()
    # code hidden in a config is refused too, wherever it sits
    _rewrite_config(tmp_path / "lambda.keras", tmp_path / "hidden.keras", lambda c: c["config"]["layers"][1][
        "config"].update(activation={"class_name": "__lambda__", "config": {"code": "open('ran', 'w')"}}))
    with pytest.raises(ModelFileError, match="__lambda__"):
        load_model(tmp_path / "hidden.keras")
    assert not marker.exists()


def test_unknown_layers_are_all_listed(tmp_path):
    x = keras.Input((10,), dtype="int32")
    y = keras.layers.Embedding(50, 4)(x)
    y = keras.layers.LSTM(3)(y)
    y = keras.layers.Dense(1)(keras.layers.PReLU()(y))
    keras.Model(x, y).save(tmp_path / "rnn.keras")
    with pytest.raises(ModelFileError, match=r"layer types scratchnet does not have: Embedding, LSTM, PReLU; "
                                             r"scratchnet has .*Conv2D"):
        load_model(tmp_path / "rnn.keras")


def test_channels_first_absurd_shapes_and_settings_are_refused(tmp_path):
    x = keras.Input((3, 8, 8))
    y = keras.layers.Conv2D(2, 3, data_format="channels_first")(x)
    keras.Model(x, y).save(tmp_path / "cf.keras")
    with pytest.raises(ModelFileError, match="channels_first; scratchnet computes channels_last"):
        load_model(tmp_path / "cf.keras")
    keras.utils.set_random_seed(0)
    seed_mnist(keras).save(tmp_path / "m.keras")

    def huge(config):
        config["config"]["layers"][0]["config"]["batch_shape"] = [None, 10 ** 6, 10 ** 6, 1]
    _rewrite_config(tmp_path / "m.keras", tmp_path / "huge.keras", huge)
    with pytest.raises(ModelFileError, match="more than the 2,147,483,648"):
        load_model(tmp_path / "huge.keras")

    def wide(config):
        config["config"]["layers"][-1]["config"]["units"] = 10 ** 9
    _rewrite_config(tmp_path / "m.keras", tmp_path / "wide.keras", wide)
    with pytest.raises(ModelFileError, match=r"would need a weight '\w+/kernel' of shape \(64, 1000000000\) "
                                             r"\(64,000,000,000 values; [\d,]+ for the model so far\), more than the file's"):
        load_model(tmp_path / "wide.keras")


def test_damaged_and_foreign_files(tmp_path):
    keras.utils.set_random_seed(0)
    seed_mnist(keras).save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "cut.keras")
    with zipfile.ZipFile(tmp_path / "evil.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
        archive.writestr("../../outside.txt", "x")
    with pytest.raises(ModelFileError, match="points outside the archive"):
        load_model(tmp_path / "evil.keras")
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ModelFileError, match="HDF5 file but not a Keras model file"):
        load_model(tmp_path / "data.h5")
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(tmp_path / "text.keras")
    from scratchnet.train import mnist_model
    mnist_model().save(tmp_path / "ours.npz")
    (tmp_path / "ours.npz").rename(tmp_path / "renamed.keras")
    with pytest.raises(ModelFileError, match="the name says a Keras .keras archive, but the file is a scratchnet"):
        load_model(tmp_path / "renamed.keras")


def test_the_extension_picks_the_format_and_nothing_else(tmp_path):
    from scratchnet.train import mnist_model
    model = mnist_model()
    for bad in ("model.pkl", "model", "model.weights.h5"):
        with pytest.raises(ValueError, match=r"\.keras"):
            model.save(tmp_path / bad)
        assert not (tmp_path / bad).exists()
    (tmp_path / "keep.keras").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "keep.keras", overwrite=False)
    assert (tmp_path / "keep.keras").read_bytes() == b"old"
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.npz")
    assert zipfile.ZipFile(tmp_path / "m.keras").namelist() == ["metadata.json", "config.json", "model.weights.h5"]
    assert h5py.is_hdf5(tmp_path / "m.h5")
    assert set(np.load(tmp_path / "m.npz").files) >= {"format", "model.json"}
    with pytest.raises(ValueError, match="save_weights writes HDF5"):
        model.save_weights(tmp_path / "w.npz")


# ----- what a model file keeps, and the predict command ----------------------------------------------------
def test_frozen_layers_and_a_call_s_training_argument_survive_keras_files(tmp_path):
    base = models.Sequential([ours.Input((8, 8, 3)), ours.Conv2D(4, 3, name="c"), ours.BatchNormalization(name="b")],
                             name="base")
    base.trainable = False
    x = ours.Input((8, 8, 3))
    y = ours.Dense(2, name="head")(ours.Flatten()(base(x, training=False)))
    model = models.Model(x, y)
    data = scratchnet_trained(model)
    for fmt in ("keras", "h5"):
        model.save(tmp_path / f"m.{fmt}")
        again = load_model(tmp_path / f"m.{fmt}")
        assert again.get_layer("base").trainable is False and again.get_layer("head").trainable is True
        assert [n.training for n in again._graph.nodes if n.layer.name == "base"] == [False]
        k_model = keras.models.load_model(tmp_path / f"m.{fmt}")
        # (Keras itself reloads a frozen model-inside-a-model as trainable with its layers frozen)
        assert not any(layer.trainable for layer in k_model.get_layer("base").layers)
        assert len(k_model.trainable_weights) == 2
        close(k_model.predict(data, verbose=0), model.predict(data, verbose=0))


def test_predict_reads_keras_files_with_the_preprocessing_scratchnet_recorded(tmp_path, capsys):
    from PIL import Image
    from scratchnet.predict import main
    keras.utils.set_random_seed(0)
    k_model = seed_catsdogs(keras, 64)
    k_model.save(tmp_path / "keras.keras")
    k_model.save(tmp_path / "keras.h5")
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 90, 3), dtype=np.uint8)).save(photo)
    for name in ("keras.keras", "keras.h5"):
        assert main([str(tmp_path / name), str(photo)]) == 0
        out = capsys.readouterr()
        assert "does not record how its images were prepared" in out.err
        assert out.out.startswith(f"{photo}: ")
    ours_model = load_model(tmp_path / "keras.keras")
    scratchnet.saving.save_model(ours_model, tmp_path / "ours.keras", extra={"class_names": ["cat", "dog"],
                                                                             "rescale": 1 / 255})
    assert load_model(tmp_path / "ours.keras").saved_extra["class_names"] == ["cat", "dog"]
    assert main([str(tmp_path / "ours.keras"), str(photo)]) == 0
    out = capsys.readouterr()
    assert out.err == "" and (" cat (" in out.out or " dog (" in out.out)
    assert main([str(tmp_path / "missing.keras"), str(photo)]) == 2
    assert capsys.readouterr().err.startswith("error: model file")


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop_centered_momentum", "sgd_momentum"])
def test_training_continues_exactly_across_libraries_through_keras_archives(tmp_path, optimizer):
    """A few steps in one library, saved as .keras, one more step in each: equal weights."""
    def make(module):
        return {"adam": lambda: module.optimizers.Adam(1e-2),
                "rmsprop_centered_momentum": lambda: module.optimizers.RMSprop(1e-3, momentum=0.5, centered=True),
                "sgd_momentum": lambda: module.optimizers.SGD(1e-2, momentum=0.9)}[optimizer]()
    rng = np.random.default_rng(0)
    x = rng.random((16, 10, 10, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)

    def build(K):
        return K.Sequential([K.Input((10, 10, 1)), K.layers.Conv2D(4, 3, activation="relu"), K.layers.Flatten(),
                             K.layers.Dense(3, activation="softmax")])
    keras.utils.set_random_seed(0)
    k_model = build(keras)
    k_model.compile(make(keras), "sparse_categorical_crossentropy")
    k_model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)     # 4 steps in Keras
    k_model.save(tmp_path / "keras.keras")
    k_model.save_weights(tmp_path / "keras.weights.h5")     # Keras 3 keeps the optimizer's state here too
    model = load_model(tmp_path / "keras.keras")
    assert model.optimizer.iterations == 4
    built = build(scratchnet)
    built.compile(make(scratchnet), "sparse_categorical_crossentropy")
    built.load_weights(tmp_path / "keras.weights.h5")
    assert built.optimizer.iterations == 4
    for a, b in zip(built.optimizer.slots, model.optimizer.slots):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    k_model.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)      # and the other way
    model.save(tmp_path / "ours.keras")
    k_again = keras.models.load_model(tmp_path / "ours.keras")
    assert int(k_again.optimizer.iterations) == model.optimizer.iterations == 7
    k_again.fit(x[8:], y[8:], batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.fit(x[8:], y[8:], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), k_again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_scratchnet_layers_keras_spells_otherwise_are_written_as_keras_spells_them(tmp_path):
    x = ours.Input((6,))
    y = ours.Sigmoid(name="gate")(ours.Dense(3, name="d")(x))          # Keras: Activation('sigmoid')
    y = ours.LeakyReLU(negative_slope=0.1, name="leak")(y)
    model = models.Model(x, [y, ours.Softmax(name="p")(y)])
    data = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    for fmt in ("keras", "h5"):
        model.save(tmp_path / f"m.{fmt}")
        k_model = keras.models.load_model(tmp_path / f"m.{fmt}")
        assert type(k_model.get_layer("gate")).__name__ == "Activation"
        close(model.predict(data, verbose=0), k_model.predict(data, verbose=0))


# ----- graphs whose layer order or call numbering Keras works out in its own way -------------------------
def shared_layer_graph(L, Model, Input):
    """A shared layer whose later call sits deeper than its first: Keras orders the layers by
    raised depths, which decides the names its weight files use."""
    x = Input((4,), name="x")
    shared = L.Dense(4, name="shared")
    b = shared(L.Dense(4, name="r")(x))
    a = L.Dense(4, name="d3")(L.Dense(4, name="d2")(L.Dense(4, name="d1")(shared(x))))
    return Model(x, L.Add(name="add")([b, a]))


def functional_inside_called_twice(L, Model, Input):
    """A functional model inside, called twice, one of its calls a model output."""
    i = Input((3,), name="i")
    inner = Model(i, L.Dense(2, name="inner_dense")(i), name="inner")
    a, b = Input((3,), name="a"), Input((3,), name="b")
    return Model([a, b], [inner(a), L.Dense(1, name="head")(inner(b))])


@pytest.mark.parametrize("graph", [shared_layer_graph, functional_inside_called_twice])
def test_graphs_keras_numbers_in_its_own_way_load_both_ways(tmp_path, graph):
    keras.utils.set_random_seed(0)
    k_model = graph(keras.layers, keras.Model, keras.Input)
    ours_model = graph(ours, models.Model, ours.Input)
    assert [l.name for l in ours_model.layers] == [l.name for l in k_model.layers]
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((3,) + tuple(t.shape[1:])).astype(np.float32) for t in k_model.inputs]
    data = data if len(data) > 1 else data[0]
    for fmt in ("keras", "h5"):
        k_model.save(tmp_path / f"k.{fmt}")
        close(load_model(tmp_path / f"k.{fmt}").predict(data, verbose=0), k_model.predict(data, verbose=0))
        ours_model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in ours_model.get_weights()])
        with pytest.warns(UserWarning, match="tf.keras 2 numbers such models' calls otherwise") if \
                fmt == "h5" and graph is functional_inside_called_twice else _no_warning():
            ours_model.save(tmp_path / f"o.{fmt}")
        close(keras.models.load_model(tmp_path / f"o.{fmt}").predict(data, verbose=0),
              ours_model.predict(data, verbose=0))


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_tf_keras_2_h5_with_a_functional_model_inside(tmp_path):
    K = tf_keras()
    K.utils.set_random_seed(0)
    i = K.Input((3,))
    inner = K.Model(i, K.layers.Dense(2)(i), name="inner")
    x = K.Input((3,))
    k_model = K.Model(x, K.layers.Dense(1, name="head")(inner(x)))
    k_model.save(tmp_path / "m.h5")
    data = np.random.default_rng(0).random((4, 3), dtype=np.float32)
    close(load_model(tmp_path / "m.h5").predict(data, verbose=0), k_model.predict(data, verbose=0))


# ----- files crafted to make a reader misbehave -------------------------------------------------------------
def test_weights_stored_outside_the_file_are_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    model = models.Sequential([ours.Input((2,)), ours.Dense(4, use_bias=False)])
    with h5py.File(tmp_path / "w.weights.h5", "w") as f:
        f.create_group("vars")
        f.create_dataset("layers/dense/vars/0", shape=(2, 4), dtype="float32", external=[(str(secret), 0, 32)])
    with pytest.raises(ModelFileError, match="refers to data outside the file; refused"):
        model.load_weights(tmp_path / "w.weights.h5")


def test_a_config_cannot_make_us_allocate_more_than_the_file_holds_in_all(tmp_path):
    keras.utils.set_random_seed(0)
    seed_mnist(keras).save(tmp_path / "m.keras")

    def many(config):
        for i in range(60):    # each fits the file alone; together they are ten times more
            config["config"]["layers"].append({"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                                               "config": {"name": f"extra{i}", "units": 100}})
    _rewrite_config(tmp_path / "m.keras", tmp_path / "many.keras", many)
    with pytest.raises(ModelFileError, match="for the model so far"):
        load_model(tmp_path / "many.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members["config.json"] = b'{"deep": ' + b'{"a": ' * 100_000 + b"{}" + b"}" * 100_000 + b"}"
    with zipfile.ZipFile(tmp_path / "deep.keras", "w") as archive:
        for n, data in members.items():
            archive.writestr(n, data)
    with pytest.raises(ModelFileError, match="nests deeper than Python can follow"):
        load_model(tmp_path / "deep.keras")


def test_compile_settings_scratchnet_lacks_load_the_model_uncompiled_with_a_warning(tmp_path):
    keras.utils.set_random_seed(0)
    model = seed_mnist(keras)
    model.compile(keras.optimizers.Lion(), "sparse_categorical_crossentropy")
    model.save(tmp_path / "lion.keras")
    with pytest.warns(UserWarning, match="loads uncompiled.*unknown optimizer class .Lion."):
        assert not load_model(tmp_path / "lion.keras").compiled
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy")
    model.save(tmp_path / "schedule.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # an optimizer that never stepped loads fresh, without a word
        loaded = load_model(tmp_path / "schedule.keras")
    assert loaded.compiled and loaded.optimizer.schedule.get_config() == pytest.approx(schedule.get_config())
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", jit_compile=True)
    model.save(tmp_path / "jit.keras")
    assert load_model(tmp_path / "jit.keras").compiled      # a speed hint, not a setting of the result


def test_load_weights_from_an_archive_restores_the_optimizer_and_skip_mismatch_skips_missing_layers(tmp_path):
    keras.utils.set_random_seed(0)
    k_model = seed_mnist(keras)
    k_model.compile("adam", "sparse_categorical_crossentropy")
    data = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    k_model.fit(data, np.arange(8), epochs=1, verbose=0)
    k_model.save(tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras", compile=False)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.load_weights(tmp_path / "m.keras")
    assert model.optimizer.iterations == 1
    bigger = models.Sequential([ours.Input((28, 28, 1)), ours.Conv2D(32, 3, activation="relu"), ours.Flatten(),
                                ours.Dense(3), ours.Dense(3), ours.Dense(3), ours.Dense(3), ours.Dense(3),
                                ours.Dense(3), ours.Dense(3)])
    with pytest.warns(UserWarning, match="skipping layer"):
        bigger.load_weights(tmp_path / "m.keras", skip_mismatch=True)
    np.testing.assert_array_equal(bigger.layers[0].get_weights()[0], k_model.layers[0].get_weights()[0])


def test_mobilenet_v2_imagenet_file_names_are_keras_s():
    from scratchnet.applications.mobilenet_v2 import imagenet_file
    assert imagenet_file("imagenet", 0.35, (96, 96, 3), True) == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"
    with pytest.warns(UserWarning, match="the ImageNet weights for 224x224 are loaded"):
        assert imagenet_file("imagenet", 1.0, (160, 150, 3), False) == \
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    with pytest.raises(ValueError, match="alpha must be 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4"):
        imagenet_file("imagenet", 0.6, (96, 96, 3), True)
