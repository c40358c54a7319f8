"""Model files: round trips, and refusal of every kind of bad file without running code."""
import io
import json
import zipfile

import numpy as np
import pytest

import scratchnet
from scratchnet import layers, models, optimizers
from scratchnet.saving import ModelFileError, load_model, save_model


def trained_model():
    rng = np.random.default_rng(0)
    model = models.Sequential([layers.Conv2D(3, 3, activation="relu", input_shape=(8, 8, 2)),
                               layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.1),
                               layers.Dense(4, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["acc"])
    x, y = rng.standard_normal((16, 8, 8, 2)).astype(np.float32), rng.integers(0, 4, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model, x, y


def test_round_trip_is_bit_identical_and_training_continues_identically(tmp_path):
    model, x, y = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = scratchnet.load_model(path)
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.optimizer.iterations == model.optimizer.iterations
    scratchnet.set_random_seed(9)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    scratchnet.set_random_seed(9)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_saving_over_a_file_is_atomic(tmp_path, monkeypatch):
    model, x, _ = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def rewrite(path, target, change):
    """Copy model file ``path`` to ``target`` with ``change(members)`` applied to its members."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def document(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(np.load(io.BytesIO(archive.read("model.json.npy"))).tobytes())


def with_document(members, doc):
    members["model.json.npy"] = npy(np.frombuffer(json.dumps(doc).encode(), np.uint8))


@pytest.fixture
def saved(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "good.npz"
    model.save(path)
    return path


def test_truncated_and_garbage_files(saved, tmp_path):
    data = saved.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or damaged zip archive"):
        load_model(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello")
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")


def test_object_arrays_are_refused_without_unpickling(saved, tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))
    bad = rewrite(saved, tmp_path / "pickle.npz",
                  lambda m: m.__setitem__("weight_0.npy", npy(np.array([Boom()], dtype=object))))
    with pytest.raises(ModelFileError, match="dtype object"):
        load_model(bad)


def test_huge_declared_sizes_are_refused_before_allocation(saved, tmp_path):
    def huge_header(members):
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                       "shape": (100000, 100000, 100)})
        members["weight_0.npy"] = header.getvalue() + b"\0" * 64
    with pytest.raises(ModelFileError, match="more than"):
        load_model(rewrite(saved, tmp_path / "huge.npz", huge_header))

    def huge_layer(members):
        doc = document(saved)
        doc["model"]["layers"][-1]["config"]["units"] = 10 ** 12
        with_document(members, doc)
    with pytest.raises(ModelFileError, match=r"needs a weight of shape"):
        load_model(rewrite(saved, tmp_path / "huge_layer.npz", huge_layer))


def test_wrong_shapes_unknown_layers_and_bad_json(saved, tmp_path):
    def wrong_shape(members):
        members["weight_0.npy"] = npy(np.zeros((3, 3, 2, 5), np.float32))
    with pytest.raises(ModelFileError, match=r"needs a weight of shape \(3, 3, 2, 3\).*\(3, 3, 2, 5\)"):
        load_model(rewrite(saved, tmp_path / "shape.npz", wrong_shape))

    def unknown_layer(members):
        doc = document(saved)
        doc["model"]["layers"][0]["class_name"] = "Lambda"
        doc["model"]["layers"][1]["class_name"] = "TFOpLambda"
        with_document(members, doc)
    with pytest.raises(ModelFileError, match=r"uses layer types scratchnet does not have: \['Lambda', 'TFOpLambda'\]"):
        load_model(rewrite(saved, tmp_path / "lambda.npz", unknown_layer))

    def bad_argument(members):
        doc = document(saved)
        doc["model"]["layers"][0]["config"]["function"] = "os.system('true')"
        with_document(members, doc)
    with pytest.raises(ModelFileError, match="unexpected arguments"):
        load_model(rewrite(saved, tmp_path / "argument.npz", bad_argument))

    def bad_json(members):
        members["model.json.npy"] = npy(np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(rewrite(saved, tmp_path / "json.npz", bad_json))

    def future_version(members):
        members["format.npy"] = npy(np.array(99))
    with pytest.raises(ModelFileError, match="format version 99; this scratchnet reads versions 1, 2"):
        load_model(rewrite(saved, tmp_path / "version.npz", future_version))


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not been built"):
        save_model(models.Sequential([layers.Dense(2)]), tmp_path / "m.npz")


def test_saved_files_get_the_usual_permissions_and_keep_their_own(tmp_path):
    import os
    import stat
    from scratchnet.saving import atomic_write
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.bin"
        atomic_write(new, lambda f: f.write(b"x"))
        assert stat.S_IMODE(new.stat().st_mode) == 0o644          # not mkstemp's 0600
        shared = tmp_path / "shared.bin"
        shared.write_bytes(b"old")
        shared.chmod(0o664)
        atomic_write(shared, lambda f: f.write(b"new"))
        assert stat.S_IMODE(shared.stat().st_mode) == 0o664 and shared.read_bytes() == b"new"
    finally:
        os.umask(umask)



# ----- graphs ------------------------------------------------------------------------------------
def graph_model():
    """A fork, a shared layer, BatchNormalization and a model inside the model."""
    inner_in = layers.Input(shape=(8, 8, 4))
    inner = models.Model(inner_in, layers.BatchNormalization()(layers.Conv2D(4, 1)(inner_in)), name="inner")
    inputs = layers.Input(shape=(8, 8, 2))
    stem = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    shared = layers.Conv2D(4, 3, padding="same", name="shared")
    a = shared(stem)
    b = shared(inner(stem))
    x = layers.Concatenate()([layers.Add()([a, b]), layers.DepthwiseConv2D(3, padding="same")(stem)])
    outputs = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return models.Model(inputs, outputs, name="graph")


def test_a_graph_model_round_trips_bit_for_bit_and_trains_on(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, 16)
    model = graph_model()
    model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "graph.npz")
    loaded = load_model(tmp_path / "graph.npz")
    assert type(loaded).__name__ == "Functional" and [l.name for l in loaded.layers] == [l.name for l in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert len(loaded.get_layer("shared")._inbound_nodes) == 2
    for m in (model, loaded):
        scratchnet.set_random_seed(4)
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):   # moving statistics included
        np.testing.assert_array_equal(a, b)


def test_a_version_1_file_of_an_earlier_scratchnet_still_loads(saved, tmp_path):
    doc = document(saved)

    def as_version_1(members):
        model_spec = doc["model"]
        old = {"format": 1, "name": model_spec["name"], "input_shape": model_spec["input_shape"],
               "layers": model_spec["layers"], "compile": doc["compile"], "extra": {}}
        with_document(members, old)
        members["format.npy"] = npy(np.array(1, dtype=np.int64))
    old = load_model(rewrite(saved, tmp_path / "v1.npz", as_version_1))
    new = load_model(saved)
    for a, b in zip(old.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def saved_graph(tmp_path):
    path = tmp_path / "graph.npz"
    graph_model().save(path)
    return path


def edit_graph(saved_graph, tmp_path, name, change):
    doc = document(saved_graph)
    change(doc["model"])
    return rewrite(saved_graph, tmp_path / name, lambda members: with_document(members, doc))


def layer_entry(spec, class_name):
    return next(e for e in spec["layers"] if e.get("class_name") == class_name)


def test_hostile_graph_files_are_refused(saved_graph, tmp_path):
    def cycle(spec):          # the stem conv reads from the add that depends on it
        layer_entry(spec, "Conv2D")["inbound_nodes"] = [[[layer_entry(spec, "Add")["config"]["name"], 0, 0]]]
    with pytest.raises(ModelFileError, match="the graph has a cycle"):
        load_model(edit_graph(saved_graph, tmp_path, "cycle.npz", cycle))

    def dangling_layer(spec):
        layer_entry(spec, "Add")["inbound_nodes"][0][0] = ["nowhere", 0, 0]
    with pytest.raises(ModelFileError, match="reads from layer 'nowhere'.*dangling"):
        load_model(edit_graph(saved_graph, tmp_path, "dangling.npz", dangling_layer))

    def dangling_node(spec):
        layer_entry(spec, "Add")["inbound_nodes"][0][0][1] = 5
    with pytest.raises(ModelFileError, match="reads node 5 of layer 'shared', which has only 2"):
        load_model(edit_graph(saved_graph, tmp_path, "node.npz", dangling_node))

    def duplicate(spec):
        layer_entry(spec, "DepthwiseConv2D")["config"]["name"] = "shared"
    with pytest.raises(ModelFileError, match='"shared" is used twice'):
        load_model(edit_graph(saved_graph, tmp_path, "duplicate.npz", duplicate))

    def unknown(spec):
        layer_entry(spec, "Add")["class_name"] = "Lambda"
        layer_entry(layer_entry(spec, "Functional"), "BatchNormalization")["class_name"] = "Evil"
    with pytest.raises(ModelFileError, match=r"does not have: \['Evil', 'Lambda'\]"):
        load_model(edit_graph(saved_graph, tmp_path, "unknown.npz", unknown))

    def huge(spec):
        layer_entry(spec, "Dense")["config"]["units"] = 10 ** 11
    with pytest.raises(ModelFileError, match=r"Dense layer 'dense\S*' needs a weight of shape \(8, 100000000000\)"):
        load_model(edit_graph(saved_graph, tmp_path, "huge.npz", huge))

    def bad_reference(spec):
        spec["output_layers"] = [["dense", "zero", 0]]
    with pytest.raises(ModelFileError, match="tensor reference must be"):
        load_model(edit_graph(saved_graph, tmp_path, "ref.npz", bad_reference))

    def missing_output(spec):   # node 0 of the shared layer exists, its output 5 does not
        layer_entry(spec, "Add")["inbound_nodes"][0][0][2] = 5
    with pytest.raises(ModelFileError, match="reads output 5 of node 0 of layer 'shared', which has no such output"):
        load_model(edit_graph(saved_graph, tmp_path, "output.npz", missing_output))

    def huge_dtype(spec):       # a sub-array dtype would make every element a huge block
        layer_entry(spec, "Dense")["config"]["dtype"] = "(20000,20000)f4"
    with pytest.raises(ModelFileError, match=r"dtype of layer 'dense\S*' must be one of \('float32', 'float64'\)"):
        load_model(edit_graph(saved_graph, tmp_path, "dtype.npz", huge_dtype))
