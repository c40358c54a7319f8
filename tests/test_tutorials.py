"""Tutorial-style scripts, written here in the manner of the well-known Keras CNN tutorials
(keras-io's MNIST convnet and image classification from scratch, both editions of Deep Learning
with Python, the TensorFlow CNN tutorial), each run twice: with real Keras and with scratchnet
imported under the same names, nothing else changed. What each script observes (parameter
counts, shapes, history keys, files written, result shapes) must be the same; the numbers
differ only as two random initialisations do. Data are tiny and made here."""
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """train/validation/test folders of cats and dogs (random JPEGs of varied sizes)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("validation", 4), ("test", 4)):
        for label in ("cats", "dogs"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                size = (int(rng.integers(30, 50)), int(rng.integers(30, 50)))
                pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{label}.{i}.jpg")
    return root


def run(script, keras, folder, workdir):
    """Run ``script`` with ``keras`` bound to the library, in ``workdir``; its observations."""
    keras.backend.clear_session()      # layer names count from zero in both, as in a fresh session
    namespace = {"keras": keras, "layers": keras.layers, "np": np, "DATA": str(folder), "observe": {}}
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        exec(compile(script, "<tutorial>", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace["observe"]


MNIST_CONVNET = '''
num_classes, input_shape = 10, (28, 28, 1)
rng = np.random.default_rng(1)
x_train = rng.integers(0, 256, (96, 28, 28)).astype("float32") / 255
y_train = rng.integers(0, 10, 96)
x_train = np.expand_dims(x_train, -1)
y_train = keras.utils.to_categorical(y_train, num_classes)
model = keras.Sequential([
    keras.Input(shape=input_shape),
    layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
    layers.Dropout(0.5),
    layers.Dense(num_classes, activation="softmax"),
])
model.summary()
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=2, validation_split=0.1, verbose=0)
score = model.evaluate(x_train, y_train, verbose=0)
observe.update(params=model.count_params(), history=sorted(history.history), epochs=len(history.history["loss"]),
               score=len(score), input_shape=model.input_shape, output_shape=model.output_shape,
               layers=[layer.name for layer in model.layers])
'''

FROM_SCRATCH = '''
import os
image_size, batch_size = (32, 32), 4
train_ds, val_ds = keras.utils.image_dataset_from_directory(
    os.path.join(DATA, "train"), validation_split=0.25, subset="both", seed=1337, image_size=image_size,
    batch_size=batch_size)
data_augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]

def data_augmentation(images):
    for layer in data_augmentation_layers:
        images = layer(images)
    return images

augmented = data_augmentation(np.zeros((2, 32, 32, 3), "float32") + 1.0)

def make_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [32, 64]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(128, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    units = 1 if num_classes == 2 else num_classes
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(units, activation=None)(x)
    return keras.Model(inputs, outputs)

model = make_model(input_shape=image_size + (3,), num_classes=2)
callbacks = [keras.callbacks.ModelCheckpoint("save_at_{epoch}.keras")]
model.compile(optimizer=keras.optimizers.Adam(3e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=[keras.metrics.BinaryAccuracy(name="acc")])
history = model.fit(train_ds, epochs=2, callbacks=callbacks, validation_data=val_ds, verbose=0)
img = keras.utils.load_img(os.path.join(DATA, "test", "cats", "cats.0.jpg"), target_size=image_size)
img_array = keras.utils.img_to_array(img)
img_array = keras.ops.expand_dims(img_array, 0)
predictions = model.predict(img_array, verbose=0)
score = float(keras.ops.sigmoid(predictions[0][0]))
observe.update(params=model.count_params(), history=sorted(history.history), saved=sorted(os.listdir(".")),
               classes=train_ds.class_names, augmented=tuple(augmented.shape), score=0 <= score <= 1,
               predictions=predictions.shape, layers=len(model.layers))
'''

DLWP_FIRST_EDITION = '''
import os
from keras import layers as L, models, optimizers
from keras.preprocessing.image import ImageDataGenerator
model = models.Sequential()
model.add(L.Conv2D(32, (3, 3), activation="relu", input_shape=(40, 40, 3)))
model.add(L.MaxPooling2D((2, 2)))
model.add(L.Conv2D(64, (3, 3), activation="relu"))
model.add(L.MaxPooling2D((2, 2)))
model.add(L.Flatten())
model.add(L.Dropout(0.5))
model.add(L.Dense(32, activation="relu"))
model.add(L.Dense(1, activation="sigmoid"))
model.compile(loss="binary_crossentropy", optimizer=optimizers.RMSprop(learning_rate=1e-4), metrics=["acc"])
train_datagen = ImageDataGenerator(rescale=1. / 255, rotation_range=40, width_shift_range=0.2,
                                   height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
test_datagen = ImageDataGenerator(rescale=1. / 255)
train_generator = train_datagen.flow_from_directory(os.path.join(DATA, "train"), target_size=(40, 40),
                                                    batch_size=4, class_mode="binary")
validation_generator = test_datagen.flow_from_directory(os.path.join(DATA, "validation"), target_size=(40, 40),
                                                        batch_size=4, class_mode="binary")
history = model.fit(train_generator, steps_per_epoch=4, epochs=2, validation_data=validation_generator,
                    validation_steps=2, verbose=0)
model.save("cats_and_dogs_small_2.h5")
acc, val_acc = history.history["acc"], history.history["val_acc"]
observe.update(params=model.count_params(), history=sorted(history.history), epochs=len(acc),
               indices=train_generator.class_indices, saved=os.path.getsize("cats_and_dogs_small_2.h5") > 0,
               batch=tuple(next(train_generator)[0].shape))
'''

TF_CNN_TUTORIAL = '''
rng = np.random.default_rng(2)
train_images = rng.integers(0, 256, (40, 32, 32, 3)).astype("uint8")
train_labels = rng.integers(0, 10, (40, 1)).astype("uint8")
test_images, test_labels = train_images[:10], train_labels[:10]
train_images, test_images = train_images / 255.0, test_images / 255.0
model = keras.models.Sequential()
model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation="relu"))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation="relu"))
model.add(layers.Flatten())
model.add(layers.Dense(64, activation="relu"))
model.add(layers.Dense(10))
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
history = model.fit(train_images, train_labels, epochs=2, validation_data=(test_images, test_labels), verbose=0)
test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)
observe.update(params=model.count_params(), history=sorted(history.history), shapes=[l.output.shape for l in model.layers],
               evaluated=(type(test_loss).__name__ in ("float", "float64"), 0 <= test_acc <= 1))
'''

DLWP_SECOND_EDITION = '''
import os
from keras.utils import image_dataset_from_directory
train_dataset = image_dataset_from_directory(os.path.join(DATA, "train"), image_size=(36, 36), batch_size=4)
validation_dataset = image_dataset_from_directory(os.path.join(DATA, "validation"), image_size=(36, 36),
                                                  batch_size=4)
test_dataset = image_dataset_from_directory(os.path.join(DATA, "test"), image_size=(36, 36), batch_size=4)
data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1),
                                      layers.RandomZoom(0.2)])
inputs = keras.Input(shape=(36, 36, 3))
x = data_augmentation(inputs)
x = layers.Rescaling(1. / 255)(x)
x = layers.Conv2D(filters=16, kernel_size=3, activation="relu")(x)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(x)
x = layers.Flatten()(x)
x = layers.Dropout(0.5)(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs=inputs, outputs=outputs)
model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
callbacks = [keras.callbacks.ModelCheckpoint(filepath="convnet_from_scratch_with_augmentation.keras",
                                             save_best_only=True, monitor="val_loss"),
             keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)]
history = model.fit(train_dataset, epochs=2, validation_data=validation_dataset, callbacks=callbacks, verbose=0)
test_model = keras.models.load_model("convnet_from_scratch_with_augmentation.keras")
test_loss, test_acc = test_model.evaluate(test_dataset, verbose=0)
for images, labels in train_dataset.take(1):
    augmented_images = data_augmentation(images)
img_tensor = keras.utils.img_to_array(keras.utils.load_img(os.path.join(DATA, "test", "dogs", "dogs.1.jpg"),
                                                           target_size=(36, 36)))
img_tensor = np.expand_dims(img_tensor, axis=0)
layer_outputs, layer_names = [], []
for layer in model.layers:
    if isinstance(layer, (layers.Conv2D, layers.MaxPooling2D)):
        layer_outputs.append(layer.output)
        layer_names.append(layer.name)
activation_model = keras.Model(inputs=model.input, outputs=layer_outputs)
activations = activation_model.predict(img_tensor, verbose=0)
observe.update(params=model.count_params(), history=sorted(history.history), names=layer_names,
               activations=[a.shape for a in activations], augmented=tuple(augmented_images.shape),
               labels=tuple(labels.shape), evaluated=0 <= test_acc <= 1, input_shape=model.input_shape)
'''

SCRIPTS = {"mnist-convnet": MNIST_CONVNET, "image-classification-from-scratch": FROM_SCRATCH,
           "dlwp-1st-edition-ch5": DLWP_FIRST_EDITION, "tensorflow-cnn-tutorial": TF_CNN_TUTORIAL,
           "dlwp-2nd-edition-ch8-ch9": DLWP_SECOND_EDITION}
# The first edition's code was written for Keras 2 (ImageDataGenerator is gone from Keras 3's
# keras.preprocessing.image): its oracle is tf.keras 2, imported under the name keras.
ORACLES = {"dlwp-1st-edition-ch5": "tf_keras"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_tutorial_runs_alike_with_keras_and_with_scratchnet(name, photos, tmp_path, monkeypatch):
    import sys
    import scratchnet
    script = SCRIPTS[name]
    keras = real_keras()
    oracle = ORACLES.get(name, "keras")
    if oracle != "keras":
        keras = pytest.importorskip(oracle, reason=f"the {oracle} oracle is not installed")
        keras.utils.set_random_seed(0)
    (tmp_path / "keras").mkdir()
    keras_run = run(script.replace("from keras", f"from {oracle}"), keras, photos, tmp_path / "keras")
    # the same text with scratchnet standing in for the keras package (``from keras import ...`` included)
    for module in ("keras", "keras.layers", "keras.preprocessing", "keras.preprocessing.image", "keras.utils"):
        target = scratchnet
        for part in module.split(".")[1:]:
            target = getattr(target, part)
        monkeypatch.setitem(sys.modules, module, target)
    for attribute in ("layers", "models", "optimizers"):
        monkeypatch.setitem(sys.modules, f"keras.{attribute}", getattr(scratchnet, attribute))
    (tmp_path / "scratchnet").mkdir()
    ours = run(script, scratchnet, photos, tmp_path / "scratchnet")
    assert ours == keras_run


def test_what_tutorials_chain_onto_keras_objects(photos, tmp_path):
    # tf.data's methods on the dataset image_dataset_from_directory returns, .numpy() on batches and
    # on layer outputs, predict on a TensorFlow tensor, per-channel Rescaling, preprocess_input
    import scratchnet as keras
    from scratchnet import layers
    train = keras.utils.image_dataset_from_directory(str(photos / "train"), image_size=(20, 20), batch_size=4,
                                                     seed=1)
    flip = layers.RandomFlip("horizontal", seed=3)
    mapped = train.map(lambda images, labels: (flip(images), labels), num_parallel_calls=4).cache().prefetch(8)
    assert len(mapped) == len(train) == 4 and mapped.class_names == ["cats", "dogs"]
    images, labels = next(iter(mapped))
    assert images.numpy().shape == (4, 20, 20, 3) and labels.numpy().dtype == np.int32
    assert flip(images)[0].numpy().astype("uint8").shape == (20, 20, 3)
    cached = train.cache()
    first = [b[0].numpy().copy() for b in cached]
    assert len(first) == 4 and len(cached.elements) == 4      # the first pass's batches, kept
    shuffled = keras.utils.image_dataset_from_directory(str(photos / "train"), image_size=(20, 20), shuffle=False,
                                                        batch_size=4).shuffle(1000, seed=2)
    orders = {tuple(int(labels.numpy().sum()) for _, labels in shuffled) for _ in range(8)}
    assert len(orders) > 1 and all(sorted(order) == [0, 0, 4, 4] for order in orders)   # whole batches move
    with pytest.raises(AttributeError, match=r"no interleave\(\); they have map, cache, shuffle, prefetch"):
        train.interleave
    model = keras.Sequential([keras.Input((20, 20, 3)), layers.Rescaling([1.0, 0.5, 2.0], offset=[0.0, 1.0, -1.0]),
                              layers.Flatten(), layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(mapped.map(lambda x, y: (x, y.astype("float32"))), epochs=1, verbose=0)
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    tensor = tf.zeros((2, 20, 20, 3))
    assert model.predict(tensor, verbose=0).shape == (2, 1)
    rescaled = layers.Rescaling([1.0, 0.5, 2.0], offset=[0.0, 1.0, -1.0])(np.ones((1, 2, 2, 3), np.float32))
    np.testing.assert_allclose(rescaled[0, 0, 0], [1.0, 1.5, 1.0])
