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


@pytest.mark.parametrize("text, error, words", [
    (42, TypeError, "expected the JSON text model.to_json() returns, got int"),
    ("{not json", ValueError, "it does not parse"),
    (json.dumps({"class_name": "Dense", "config": {"units": 2}}), ValueError, "the model config's class is 'Dense'"),
    (json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Lambda", "config": {"name": "l", "function": "print"}}]}}), ValueError, "Lambda"),
])
def test_model_from_json_refuses_what_is_not_a_model_config(text, error, words):
    with pytest.raises(error, match="model_from_json") as caught:
        models.model_from_json(text)
    assert words in str(caught.value)


def test_the_options_scratchnet_does_not_have_are_refused_by_name():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="custom_objects=\\['MyLayer'\\]"):
        models.model_from_json(model.to_json(), custom_objects={"MyLayer": object})
    with pytest.raises(ValueError, match="clone_function= is not supported"):
        models.clone_model(model, clone_function=lambda layer: layer)
    with pytest.raises(TypeError, match="expected a Model or Sequential, got Dense"):
        models.clone_model(layers.Dense(2))
