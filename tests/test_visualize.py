"""scratchnet.visualize on a synthetic task whose answer is known: an image of noise is of
class 1 when it holds a small plus somewhere (at a random place), of class 0 when it holds
none, so Grad-CAM and saliency for class 1 must point at the plus and nowhere else."""
import re

import numpy as np
import pytest

import scratchnet
from scratchnet import layers, models, visualize

SIZE = 24
PLUS = np.zeros((5, 5), np.float32)
PLUS[2, :] = PLUS[:, 2] = 1.0


def shapes(n, seed):
    """(images, labels, the plus's top-left corner): noise in [0, 0.3], with a 5x5 plus at a
    random place for label 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, SIZE, SIZE, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    corners = rng.integers(1, SIZE - 6, (n, 2))
    for k, (top, left) in enumerate(corners):
        if y[k] == 1:
            x[k, top:top + 5, left:left + 5, 0] = np.maximum(x[k, top:top + 5, left:left + 5, 0], PLUS)
    return x, y, corners


@pytest.fixture(scope="module")
def trained():
    scratchnet.set_random_seed(0)
    model = models.Sequential([
        layers.Input((SIZE, SIZE, 1)),
        layers.Conv2D(8, 3, activation="relu", padding="same", name="conv_a"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, activation="relu", padding="same", name="conv_b"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=scratchnet.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y, _ = shapes(800, 0)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    x_test, y_test, corners = shapes(60, 1)
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.95
    return model, x_test, y_test, corners


def test_grad_cam_highlights_the_plus_that_decides_the_class(trained):
    model, x, y, corners = trained
    pluses = y == 1
    heat = visualize.grad_cam(model, x[pluses])     # for the predicted class, 1
    assert heat.shape == (pluses.sum(), SIZE // 2, SIZE // 2) and heat.min() >= 0 and heat.max() <= 1
    corners = corners[pluses]
    centres = (corners + 2) / 2                     # the shape's centre at the conv's half resolution
    peaks = np.array([np.unravel_index(h.argmax(), h.shape) for h in heat])
    assert np.mean(np.abs(peaks - centres).max(axis=1) <= 2) > 0.8, (peaks, centres)
    near = [h[max(0, int(r) - 2):int(r) + 4, max(0, int(c) - 2):int(c) + 4].sum() / h.sum()
            for h, (r, c) in zip(heat, centres)]
    assert np.median(near) > 0.5, near
    assert visualize.last_conv_layer(model) == "conv_b"


def test_saliency_is_largest_on_the_plus(trained):
    model, x, y, corners = trained
    pluses = y == 1
    maps = visualize.saliency(model, x[pluses], class_index=1)
    assert maps.shape == (pluses.sum(), SIZE, SIZE)
    on_plus = [maps[k, top:top + 5, left:left + 5].mean() for k, (top, left) in enumerate(corners[pluses])]
    assert np.mean(np.array(on_plus) > 2 * maps.mean(axis=(1, 2))) > 0.8


def test_a_filter_pattern_raises_the_filters_activation(trained):
    model, _, _, _ = trained
    image, history = visualize.filter_pattern(model, "conv_b", 3, steps=15)
    assert image.shape == (SIZE, SIZE, 1) and history[-1] > history[0] + 0.1
    picture = visualize.deprocess(image)
    assert picture.dtype == np.uint8 and picture.std() > 0


def test_feature_maps_overlay_and_plots(trained):
    model, x, _, _ = trained
    maps = visualize.feature_maps(model, x[:1])
    assert list(maps) == ["conv_a", "conv_b"] and maps["conv_b"].shape == (1, SIZE // 2, SIZE // 2, 16)
    picture = visualize.overlay(x[0], visualize.grad_cam(model, x[:1])[0])
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    figure = visualize.plot_feature_maps(maps, channels=4, image=x[0])
    assert len(figure.axes) == 2 * 5
    figure = visualize.plot_filters(model.get_layer("conv_a").get_weights()[0])
    assert sum(ax.images != [] for ax in figure.axes) == 8


def test_grad_cam_of_a_binary_model_and_bad_inputs():
    scratchnet.set_random_seed(1)
    model = models.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                               layers.Dense(1, activation="sigmoid")])
    x = np.random.default_rng(0).random((2, 6, 6, 1)).astype(np.float32)
    one, zero = visualize.grad_cam(model, x, class_index=1), visualize.grad_cam(model, x, class_index=0)
    assert one.shape == zero.shape == (2, 4, 4)
    assert not np.allclose(one, zero)       # the cat's evidence is not the dog's
    dense = models.Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match=r"Grad-CAM needs a convolutional layer, and model .* has none"):
        visualize.grad_cam(dense, np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"classes 0 and 1; got class_index 2"):
        visualize.grad_cam(model, x, class_index=2)


def test_predict_explain_writes_a_grad_cam_overlay_beside_each_image(trained, tmp_path, capsys):
    from PIL import Image

    from scratchnet import predict
    model, x, y, corners = trained
    model.save(tmp_path / "plus.npz")
    k = int(np.flatnonzero(y == 1)[0])
    photo = tmp_path / "photo.png"
    Image.fromarray(np.uint8(x[k, :, :, 0] * 255)).save(photo)
    assert predict.main([str(tmp_path / "plus.npz"), str(photo), "--explain"]) == 0
    written = tmp_path / "photo.gradcam.png"
    answer = capsys.readouterr().out.strip()
    assert answer.startswith(f"{photo}: 1 (0.9") and answer.endswith(f"; Grad-CAM of '1' in {written}")
    picture = np.asarray(Image.open(written))
    assert picture.shape == (SIZE, SIZE, 3)
    expected = visualize.overlay(np.asarray(Image.open(photo), np.float32)[..., None],
                                 visualize.grad_cam(model, (np.asarray(Image.open(photo), np.float32) / 255)
                                                    [None, ..., None], class_index=1)[0])
    assert np.abs(picture.astype(int) - expected).max() <= 1
    before = written.read_bytes()
    assert predict.main([str(tmp_path / "plus.npz"), str(photo), "--explain"]) == 1      # never overwritten
    assert "no Grad-CAM: " + str(written) + " exists" in capsys.readouterr().out and written.read_bytes() == before
    elsewhere = tmp_path / "maps"
    elsewhere.mkdir()
    assert predict.main([str(tmp_path / "plus.npz"), str(photo), "--explain", "--explain-dir", str(elsewhere)]) == 0
    assert (elsewhere / "photo.gradcam.png").exists()
    dense = models.Sequential([layers.Input((SIZE, SIZE, 1)), layers.Flatten(), layers.Dense(2, activation="softmax")])
    dense.save(tmp_path / "dense.npz")
    capsys.readouterr()
    assert predict.main([str(tmp_path / "dense.npz"), str(photo), "--explain"]) == 2
    assert re.fullmatch(r"error: --explain: Grad-CAM needs a convolutional layer, and model 'sequential_\d+' has none "
                        r"\(its layers: \['flatten(_\d+)?', 'dense(_\d+)?'\]\)", capsys.readouterr().err.strip())


def test_overlay_takes_rgba_and_grad_cam_finds_a_nested_base_and_reads_a_logit():
    rgba = np.random.default_rng(0).random((10, 12, 4))
    assert visualize.overlay(rgba, np.ones((3, 3))).shape == (10, 12, 3)
    scratchnet.set_random_seed(3)
    base = models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu")], name="base")
    inputs = layers.Input((8, 8, 3))
    outputs = layers.Dense(1)(layers.GlobalAveragePooling2D()(base(inputs)))      # a logit, as Keras 3's tutorial
    model = models.Model(inputs, outputs)
    assert visualize.last_conv_layer(model) == "base"
    x = np.random.default_rng(1).random((4, 8, 8, 3)).astype(np.float32)
    head = model.layers[-1]
    head.params["kernel"][...] = np.random.default_rng(2).normal(0, 1e-2, head.params["kernel"].shape)
    head.params["bias"][...] = 0.3            # logits about 0.3: class 1 (a probability of 0.57), not class 0
    logit = model.predict(x, verbose=0)[:, 0]
    assert ((logit > 0) & (logit < 0.5)).all()
    heat = visualize.grad_cam(model, x)
    np.testing.assert_array_equal(heat, visualize.grad_cam(model, x, class_index=1))
    assert not np.allclose(heat, visualize.grad_cam(model, x, class_index=0))
    assert heat.shape == (4, 6, 6)
