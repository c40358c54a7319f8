"""models.model_from_json and models.clone_model: the architecture from JSON (scratchnet's
own to_json and real Keras's) with fresh weights, against Keras's behaviour, and their
refusals."""
import json

import numpy as np
import pytest

import scratchnet
from scratchnet import layers, models


def branchy(module, L):
    """A small functional model with a shortcut, in either library."""
    x = L.Input((8, 8, 2), name="image")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(x)
    b = L.Conv2D(4, 1, name="conv_b")(x)
    y = L.Add(name="add")([a, b])
    y = L.GlobalAveragePooling2D(name="pool")(y)
    return module.Model(x, L.Dense(3, activation="softmax", name="head")(y), name="branchy")


def test_to_json_and_back_gives_the_same_architecture_with_new_weights():
    scratchnet.set_random_seed(0)
    model = branchy(models, layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rebuilt = models.model_from_json(model.to_json())
    assert rebuilt.to_json() == model.to_json()
    assert rebuilt.name == "branchy" and [layer.name for layer in rebuilt.layers] == [l.name for l in model.layers]
    assert [w.shape for w in rebuilt.get_weights()] == [w.shape for w in model.get_weights()]
    assert not np.allclose(rebuilt.get_weights()[0], model.get_weights()[0])     # freshly initialised
    assert rebuilt.optimizer is None                                           # not compiled, as in Keras
    rebuilt.set_weights(model.get_weights())
    x = np.random.default_rng(1).standard_normal((5, 8, 8, 2)).astype("float32")
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))


def test_clone_model_keeps_names_and_shapes_and_draws_new_weights():
    model = models.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(3, 3, name="conv"), layers.Flatten(name="f"),
                               layers.Dense(2, name="d")], name="cnn")
    clone = models.clone_model(model)
    assert isinstance(clone, models.Sequential) and clone is not model
    assert clone.name == "cnn" and [layer.name for layer in clone.layers] == ["conv", "f", "d"]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    before = model.get_weights()
    clone.set_weights([w + 1 for w in clone.get_weights()])                      # the two share nothing
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)
    assert not np.allclose(clone.get_weights()[0] - 1, before[0])


def test_keras_json_builds_here_and_ours_builds_in_keras():
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    theirs = branchy(keras, keras.layers)
    ours = models.model_from_json(theirs.to_json())
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(2).standard_normal((4, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    back = keras.models.model_from_json(ours.to_json())
    assert [layer.name for layer in back.layers] == [layer.name for layer in theirs.layers]
    assert keras.models.clone_model(theirs).name == models.clone_model(ours).name == "branchy"
    ones = models.Sequential([layers.Input((3,)), layers.Dense(2, kernel_initializer="ones", name="d")])
    assert np.all(keras.models.model_from_json(ones.to_json()).get_weights()[0] == 1)
    he = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="he_normal", bias_initializer="ones")])
    from_keras = models.model_from_json(he.to_json())
    assert from_keras.layers[0].kernel_initializer == "he_normal" and np.all(from_keras.get_weights()[1] == 1)


@pytest.mark.parametrize("text, error, words", [
    (42, TypeError, "expected the JSON text model.to_json() returns, got int"),
    ("{not json", ValueError, "it does not parse"),
    (json.dumps({"class_name": "Dense", "config": {"units": 2}}), ValueError,
     "expected the config of a Keras Sequential or functional model, got the config of a 'Dense' layer"),
    (json.dumps({"class_name": "MyModel", "config": {}}), ValueError, "got class 'MyModel' (a subclassed model"),
    (json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Lambda", "config": {"name": "l", "function": "print"}}]}}), ValueError, "Lambda"),
])
def test_model_from_json_refuses_what_is_not_a_model_config(text, error, words):
    with pytest.raises(error, match="model_from_json") as caught:
        models.model_from_json(text)
    assert words in str(caught.value)


def test_the_options_scratchnet_does_not_have_are_refused_by_name():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="expected custom_objects=None .*got \\['MyLayer'\\]"):
        models.model_from_json(model.to_json(), custom_objects={"MyLayer": object})
    with pytest.raises(ValueError, match="expected clone_function=None .*got clone_function=<function"):
        models.clone_model(model, clone_function=lambda layer: layer)
    with pytest.raises(ValueError, match="expected recursive=False .*got recursive=True"):
        models.clone_model(model, recursive=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['clone_functon'\\]"):
        models.clone_model(model, clone_functon=None)
    with pytest.raises(TypeError, match="expected a Model or Sequential, got Dense"):
        models.clone_model(layers.Dense(2))
    assert models.clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False)


def test_initializers_travel_with_the_architecture_as_in_keras():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2, kernel_initializer="ones", bias_initializer="ones"),
                               layers.BatchNormalization(gamma_initializer="zeros", name="bn"),
                               layers.Dense(4, kernel_initializer="he_normal")])
    for copy in (models.clone_model(model), models.model_from_json(model.to_json())):
        kernel, bias, gamma = copy.get_weights()[:3]
        assert np.all(kernel == 1) and np.all(bias == 1) and np.all(gamma == 0)
        assert copy.layers[2].kernel_initializer == "he_normal"
    entry = json.loads(model.to_json())["config"]["layers"][1]["config"]["kernel_initializer"]
    assert entry == {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": None}


def test_an_initializer_scratchnet_cannot_read_is_named_in_a_warning():
    config = json.loads(models.Sequential([layers.Input((3,)), layers.Dense(2, name="d")]).to_json())
    config["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 3.0, "seed": None}}
    with pytest.warns(UserWarning, match="replaced by their layer's default: 'd': kernel_initializer="):
        rebuilt = models.model_from_json(json.dumps(config))
    assert rebuilt.layers[0].kernel_initializer == "glorot_uniform"


def test_clone_keeps_every_layer_class_trainable_flags_and_drops_the_compile():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2, name="frozen"), layers.Sigmoid(name="s")])
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="mse")
    clone = models.clone_model(model)
    assert [type(layer).__name__ for layer in clone.layers] == ["Dense", "Sigmoid"]
    assert clone.layers[0].trainable is False and clone.optimizer is None


def test_an_unbuilt_sequential_clones_unbuilt_and_a_subclassed_model_is_refused():
    unbuilt = models.Sequential([layers.Dense(2, kernel_initializer="ones")], name="later")
    clone = models.clone_model(unbuilt)
    assert clone.name == "later" and clone.layers[0] is not unbuilt.layers[0]
    clone.build((None, 3))
    assert np.all(clone.get_weights()[0] == 1)

    class Subclassed(models.Model):
        def call(self, x):
            return x
    with pytest.raises(ValueError, match="has not been built, so it has no architecture to clone"):
        models.clone_model(Subclassed())


def test_an_initializer_given_as_a_function_is_named_when_a_clone_cannot_keep_it():
    def constant(shape, dtype=None):
        return np.full(shape, 0.5, dtype)
    model = models.Sequential([layers.Input((3,)), layers.Dense(2, kernel_initializer=constant, name="d")])
    assert np.all(model.get_weights()[0] == 0.5)
    with pytest.warns(UserWarning, match="the clone uses their layer's default for d.kernel_initializer"):
        clone = models.clone_model(model)
    assert clone.layers[0].kernel_initializer == "glorot_uniform"
