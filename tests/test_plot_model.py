"""keras.utils.plot_model: the DOT text of a graph (boxes, arrows, shapes, nested models) and
the picture Graphviz draws from it, where Graphviz is installed."""
import shutil

import pytest

import scratchnet as sn
from scratchnet import layers, utils


def branching_model():
    inner = sn.Sequential([sn.Input((8,)), layers.Dense(4, activation="relu", name="inner_dense")], name="block")
    inputs = sn.Input((6, 6, 1), name="image")
    x = layers.Conv2D(3, 3, name="conv")(inputs)
    left = layers.Flatten(name="flat")(x)
    right = layers.GlobalAveragePooling2D(name="pool")(x)
    merged = layers.Concatenate(name="join")([left, right])
    outputs = inner(layers.Dense(8, name="squeeze")(merged))
    return sn.Model(inputs, outputs, name="branching")


def edges(text):
    return {tuple(part.strip().strip('"') for part in line.strip().rstrip(";").split("->"))
            for line in text.splitlines() if "->" in line}


def test_the_dot_text_has_one_box_per_layer_and_the_arrows_of_the_graph():
    text = utils.model_to_dot(branching_model(), show_shapes=True, show_layer_activations=True, show_trainable=True)
    for name, cls in [("image", "InputLayer"), ("conv", "Conv2D"), ("flat", "Flatten"), ("pool", "GlobalAveragePooling2D"),
                      ("join", "Concatenate"), ("squeeze", "Dense"), ("block", "Sequential")]:
        assert f"<b>{name}</b> ({cls})" in text
    assert "Output shape: (None, 4, 4, 3)" in text and "Input shape: [(None, 48), (None, 3)]" in text
    assert "Trainable: yes" in text and "inner_dense" not in text          # the nested model is one box
    # image -> conv -> (flat, pool) -> join -> squeeze -> block
    assert edges(text) == {("in0", "n0"), ("n0", "n1"), ("n0", "n2"), ("n1", "n3"), ("n2", "n3"), ("n3", "n4"),
                           ("n4", "n5")}


def test_expand_nested_draws_the_inner_model_as_a_framed_group():
    text = utils.model_to_dot(branching_model(), expand_nested=True, show_layer_activations=True)
    assert 'subgraph "cluster_n5_"' in text and "<b>inner_dense</b> (Dense)" in text and "Activation: relu" in text
    assert ("n4", "n5_in0") in edges(text) and ("n5_in0", "n5_n0") in edges(text)


def test_a_sequential_model_and_the_picture_graphviz_draws(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): only the DOT text is tested")
    model = sn.Sequential([sn.Input((28, 28, 1)), layers.Conv2D(8, 3), layers.Flatten(), layers.Dense(10)])
    utils.plot_model(model, tmp_path / "model.png", show_shapes=True)
    assert (tmp_path / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    utils.plot_model(model, tmp_path / "model.svg", rankdir="LR")
    assert "<svg" in (tmp_path / "model.svg").read_text()


def test_without_graphviz_the_error_says_what_to_install_and_dot_text_still_works(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = branching_model()
    with pytest.raises(ImportError, match=r"needs Graphviz's `dot` program .*\(apt-get install graphviz"):
        utils.plot_model(model, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()
    utils.plot_model(model, tmp_path / "m.dot")
    assert (tmp_path / "m.dot").read_text().startswith('digraph "branching"')


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"to_file must end in one of .png.*got '.*m.bmp'"):
        utils.plot_model(branching_model(), tmp_path / "m.bmp")
    with pytest.raises(ValueError, match=r"rankdir must be 'TB' .* or 'LR' .*got 'BT'"):
        utils.model_to_dot(branching_model(), rankdir="BT")
    with pytest.raises(ValueError, match=r"has not been built, so it has no graph to draw"):
        utils.model_to_dot(sn.Sequential([layers.Dense(3)]))
