"""The functional API, as in Keras: Input, layers called on symbolic tensors, Model(inputs,
outputs) with one or several inputs and outputs, shared layers, models inside models,
layer.input / layer.output, get_layer, summary's Connected to, and the errors."""
import re

import numpy as np
import pytest

import scratchnet
from scratchnet import gradcheck, layers, models, optimizers
from scratchnet.graph import Graph, GraphError, Node
from scratchnet.models import Model
from scratchnet.train import mnist_model


def images(n=16, seed=0, shape=(8, 8, 3)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, 3, n)


def residual_model(dtype=None):
    """A small residual network: a fork, two branches, an Add, BatchNormalization, pooling."""
    inputs = layers.Input(shape=(8, 8, 3), dtype=dtype)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", dtype=dtype)(inputs)
    y = layers.Conv2D(4, 3, padding="same", dtype=dtype)(x)
    y = layers.BatchNormalization(dtype=dtype)(y)
    x = layers.Add(dtype=dtype)([x, y])
    x = layers.ReLU(dtype=dtype)(x)
    x = layers.MaxPooling2D(2, dtype=dtype)(x)
    x = layers.GlobalAveragePooling2D(dtype=dtype)(x)
    outputs = layers.Dense(3, activation="softmax", dtype=dtype)(x)
    return Model(inputs, outputs, name="residual")


def test_a_functional_model_trains_and_predicts():
    x, y = images(48)
    model = residual_model()
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x[:16], y[:16]))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x).shape == (48, 3) and model.compile_state().fused
    assert [type(l).__name__ for l in model.layers][:2] == ["InputLayer", "Conv2D"]


def test_a_functional_chain_equals_the_same_sequential_model():
    x, y = images(24)
    scratchnet.set_random_seed(3)
    seq = models.Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 3)), layers.Flatten(),
                             layers.Dense(3, activation="softmax")])
    inputs = layers.Input(shape=(8, 8, 3))
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(inputs)))
    fun = Model(inputs, out)
    fun.set_weights(seq.get_weights())
    for model in (seq, fun):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        scratchnet.set_random_seed(5)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(seq.get_weights(), fun.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_whole_graph_gradients_with_a_fork_batchnorm_and_a_shared_layer(float64):
    x, y = images(4)
    inputs = layers.Input(shape=(8, 8, 3))
    shared = layers.Conv2D(3, 3, padding="same", activation="tanh", bias_initializer="glorot_uniform")
    a = shared(inputs)
    b = shared(layers.AveragePooling2D(1)(inputs))         # the same weights, called twice
    x1 = layers.BatchNormalization()(layers.Add()([a, b]))
    x2 = layers.Concatenate()([x1, layers.DepthwiseConv2D(3, padding="same")(a)])
    out = layers.Dense(3, activation="softmax")(layers.GlobalMaxPooling2D()(x2))
    model = Model(inputs, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    errors = gradcheck.check_model(model, x.astype(np.float64), y)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors
    assert len(shared._inbound_nodes) == 2 and f"{shared.name}/kernel" in errors


def test_several_inputs_and_outputs():
    a_in, b_in = layers.Input(shape=(4,), name="a"), layers.Input(shape=(6,), name="b")
    merged = layers.Concatenate()([layers.Dense(3)(a_in), layers.Dense(3)(b_in)])
    first, second = layers.Dense(2)(merged), layers.Dense(5, activation="softmax")(merged)
    model = Model([a_in, b_in], [first, second])
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((7, 4)).astype(np.float32), rng.standard_normal((7, 6)).astype(np.float32)
    out = model.predict([xa, xb], batch_size=3)
    assert isinstance(out, list) and [o.shape for o in out] == [(7, 2), (7, 5)]
    assert model.inputs == [a_in, b_in] and model.input == [a_in, b_in] and len(model.outputs) == 2
    direct = model([xa, xb])
    np.testing.assert_allclose(direct[1], out[1], rtol=1e-6)
    with pytest.raises(ValueError, match="the model has 2 inputs, so it takes a list of 2 arrays"):
        model.predict(xa)


def test_a_model_inside_a_model_trains_as_one_graph(float64):
    x, y = images(4)
    inner_in = layers.Input(shape=(8, 8, 3))
    inner = Model(inner_in, layers.Conv2D(2, 3, activation="relu")(inner_in), name="inner")
    outer_in = layers.Input(shape=(8, 8, 3))
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(inner(outer_in)))
    outer = Model(outer_in, out)
    assert outer.count_params() == inner.count_params() + 6 * 6 * 2 * 3 + 3
    outer.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    errors = gradcheck.check_model(outer, x.astype(np.float64), y)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors
    before = inner.get_weights()[0].copy()
    outer.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(inner.get_weights()[0], before)   # the inner model's weights trained


def test_cholletss_feature_maps_from_a_trained_sequential_model_with_input_shape():
    # Deep Learning with Python, 5.4.1: Model(inputs=model.input, outputs=[l.output for l in model.layers[:8]])
    model = mnist_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    model.fit(x, np.arange(32) % 10, epochs=1, verbose=0)
    activation_model = Model(inputs=model.input, outputs=[layer.output for layer in model.layers[:8]])
    maps = activation_model.predict(x[:2])
    assert [m.shape for m in maps][:3] == [(2, 26, 26, 32), (2, 13, 13, 32), (2, 11, 11, 64)]
    np.testing.assert_allclose(maps[-1], model.predict(x[:2]), rtol=1e-5, atol=1e-7)   # layer 8 is the output
    assert model.layers[2].input is model.layers[1].output


def test_summary_of_a_graph_has_keras_s_connected_to_column(capsys):
    residual_model().summary()
    text = capsys.readouterr().out
    assert "Connected to" in text and re.search(r"add\S* \(Add\)\s+\(None, 8, 8, 4\)\s+0\s+conv2d\S*\[0\]\[0\], "
                                                r"batch_normalization\S*\[0\]\[0\]", text)
    assert re.search(r"input_layer\S* \(InputLayer\)\s+\(None, 8, 8, 3\)\s+0\s+-", text)
    # BatchNormalization(4): gamma, beta trainable; moving mean and variance not
    assert "Non-trainable params: 8" in text
    mnist_model().summary()
    assert "Connected to" not in capsys.readouterr().out


def test_get_layer_and_layer_io_errors():
    model = residual_model()
    assert model.get_layer(index=1) is model.layers[1]
    assert model.get_layer(model.layers[2].name) is model.layers[2]
    with pytest.raises(ValueError, match=r"No such layer: nope\. Existing layers are: \["):
        model.get_layer("nope")
    assert len(model.layers) == 9
    with pytest.raises(ValueError, match="at index 9 but model only has 9 layers"):
        model.get_layer(index=9)
    with pytest.raises(AttributeError, match="has never been called"):
        layers.Dense(2).output


# ----- bad graphs ---------------------------------------------------------------------------------
def test_an_output_not_connected_to_the_inputs():
    a, b = layers.Input(shape=(3,)), layers.Input(shape=(3,))
    out = layers.Add()([layers.Dense(3)(a), b])
    with pytest.raises(GraphError, match="graph disconnected.*needed by layer 'add"):
        Model(a, out)


def test_incompatible_shapes_name_both_layers_and_shapes():
    x = layers.Input(shape=(8, 8, 3))
    dense = layers.Dense(4)
    dense(layers.Flatten()(x))                     # built for 192 features
    other = layers.Flatten(name="small_flatten")(layers.MaxPooling2D(2)(x))
    with pytest.raises(ValueError, match=r"Dense layer 'dense\S*' expected input of shape \(None, 192\), got "
                                         r"\(None, 48\) \(from layer\(s\) small_flatten\)"):
        dense(other)
    with pytest.raises(ValueError, match=r"incompatible shapes.*\(None, 8, 8, 3\), \(None, 4, 4, 3\)"):
        layers.Add()([x, layers.MaxPooling2D(2)(x)])
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        layers.Concatenate()([x, layers.MaxPooling2D(2)(x)])


def test_duplicate_names_and_cycles_are_refused():
    x = layers.Input(shape=(3,))
    out = layers.Dense(2, name="twin")(layers.Dense(3, name="twin")(x))
    with pytest.raises(GraphError, match='The name "twin" is used 2 times'):
        Model(x, out)
    # a cycle cannot be built by calling layers; make one by hand, as a hostile file could
    a = layers.Dense(3, name="a")
    b = layers.Dense(3, name="b")
    ta = a(x)
    tb = b(ta)
    ta.node.inputs[0] = tb
    with pytest.raises(GraphError, match="cycle"):
        Graph([x], [tb])
    seq = models.Sequential([layers.Dense(3, name="same", input_shape=(3,))])
    with pytest.raises(ValueError, match="should have unique names"):
        seq.add(layers.Dense(2, name="same"))
    assert len(seq.layers) == 1


def test_a_layer_that_does_not_fit_leaves_the_sequential_model_as_it_was():
    model = models.Sequential([layers.Conv2D(2, 3, input_shape=(4, 4, 1))])
    with pytest.raises(ValueError, match="does not fit"):
        model.add(layers.Conv2D(2, 3))
    assert len(model.layers) == 1 and model.output_shape == (None, 2, 2, 2)
    model.add(layers.Flatten())
    assert model.output_shape == (None, 8)


def test_a_symbolic_tensor_has_no_values():
    x = layers.Input(shape=(3,))
    with pytest.raises(TypeError, match="symbolic tensor"):
        np.asarray(x)
    assert isinstance(Node, type)


def test_dict_inputs_are_matched_by_input_name():
    a, b = layers.Input(shape=(2,), name="a"), layers.Input(shape=(3,), name="b")
    model = Model([a, b], layers.Dense(1)(layers.Concatenate()([a, b])))
    xa, xb = np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32)
    expected = model.predict([xa, xb], verbose=0)
    np.testing.assert_array_equal(model.predict({"b": xb, "a": xa}, verbose=0), expected)
    model.compile(optimizer="sgd", loss="mse")
    assert model.evaluate({"b": xb, "a": xa}, np.zeros(4), verbose=0) == model.evaluate([xa, xb], np.zeros(4),
                                                                                         verbose=0)
    with pytest.raises(ValueError, match=r"inputs are named \['a', 'b'\]; got a dict with keys \['a', 'c'\]"):
        model.predict({"a": xa, "c": xb}, verbose=0)


def test_a_failed_compile_leaves_the_model_as_it_was():
    model = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    before = (model.optimizer, model.loss, model.compile_state())
    with pytest.raises(ValueError):
        model.compile(optimizer="sgd", loss="mse", metrics=["no_such_metric"])
    assert (model.optimizer, model.loss, model.compile_state()) == before
    x = layers.Input(shape=(4,))
    two = Model(x, [layers.Dense(1)(x), layers.Dense(2)(x)])
    with pytest.raises(NotImplementedError, match="metrics on a model with 2 outputs"):
        two.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    assert not two.compiled


def test_sequential_pop_build_and_set_weights_leave_nothing_half_done():
    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    model.pop()
    assert model.layers == [] and not model.built and model.count_params() == 0
    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 3\); build\(\) got \(None, 7\)"):
        model.build((None, 7))
    model = models.Sequential([layers.Dense(4), layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="expects inputs shaped"):
        model.build((None, 5))            # the Dense would build, the Conv2D cannot follow it
    model.build((None, 8, 8, 1))          # nothing of the failed build is left behind
    assert model.output_shape == (None, 6, 6, 2)
    model = models.Sequential([layers.Dense(2, input_shape=(3,)), layers.Dense(1)])
    weights = model.get_weights()
    with pytest.raises(ValueError, match="no weight was changed"):
        model.set_weights([np.ones_like(weights[0]), np.ones_like(weights[1]), np.ones((5, 5)), weights[3]])
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_moving_statistics_follow_keras_when_a_step_fails_when_called_and_when_shared():
    # a step whose loss is not finite stores nothing, moving statistics included
    bn = layers.BatchNormalization()
    model = models.Sequential([layers.Dense(2, input_shape=(2,), kernel_initializer="ones"), bn, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(FloatingPointError):
        model.train_on_batch(np.array([[3e38, 3e38], [-3e38, 1.0]], np.float32), np.zeros(2))   # inf in Dense
    np.testing.assert_array_equal(bn.params["moving_mean"], [0, 0])
    np.testing.assert_array_equal(bn.params["moving_variance"], [1, 1])
    # calling a layer or a model in training mode updates them, as in Keras 3
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32) + 3
    bn = layers.BatchNormalization(momentum=0.5)
    bn(x, training=True)
    np.testing.assert_allclose(bn.params["moving_mean"], 0.5 * x.mean(axis=0), rtol=1e-6)
    inner = layers.BatchNormalization(momentum=0.5)
    inp = layers.Input(shape=(2,))
    Model(inp, inner(inp))(x, training=True)
    np.testing.assert_allclose(inner.params["moving_mean"], 0.5 * x.mean(axis=0), rtol=1e-6)
    bn.params["moving_mean"][...] = 0
    bn(x, training=False)
    np.testing.assert_array_equal(bn.params["moving_mean"], [0, 0])
    # a layer called twice in one training step: both calls count, in order
    shared = layers.BatchNormalization(momentum=0.5)
    a, b = layers.Input(shape=(2,)), layers.Input(shape=(2,))
    model = Model([a, b], layers.Dense(1)(layers.Add()([shared(a), shared(b)])))
    model.compile(optimizer="sgd", loss="mse")
    xb = x[::-1] * 2
    model.train_on_batch([x, xb], np.zeros(8))
    first = 0.5 * x.mean(axis=0)
    np.testing.assert_allclose(shared.params["moving_mean"], 0.5 * first + 0.5 * xb.mean(axis=0), rtol=1e-6)


def test_no_backward_pass_runs_below_the_first_weights():
    # Rescaling and augmentation before the first convolution need no gradient: the convolution
    # is asked for none (its dL/dx is the costliest part of its backward pass)
    inputs = layers.Input((6, 6, 1))
    scale, flip = layers.Rescaling(0.5), layers.RandomFlip(seed=1)
    conv, dense = layers.Conv2D(2, 3), layers.Dense(1)
    model = models.Model(inputs, dense(layers.Flatten()(conv(flip(scale(inputs))))))
    calls = []
    for layer in (scale, flip, conv, dense):
        def spy(dy, ctx, need_dx=True, layer=layer, backward=layer.backward):
            calls.append((layer.name, need_dx))
            return backward(dy, ctx, need_dx)
        layer.backward = spy
    model.compile("sgd", "mse")
    model.fit(np.ones((2, 6, 6, 1)), np.ones((2, 1)), verbose=0)
    assert calls == [(dense.name, True), (conv.name, False)]
