"""The ``segment`` experiment of ``python -m scratchnet.train``: a small U-Net that labels
every pixel of the digit scenes (``scratchnet.datasets.digit_scenes``) as background or
one of the ten digits, trained with per-pixel sparse categorical cross-entropy and scored
by pixel accuracy and mean IoU over the 11 classes."""
import math

import numpy as np

from .. import layers, metrics, models
from ..datasets import digit_scenes
from .errors import UsageError

SCENES_SHOWN = 6      # test scenes in masks.png
TEST_FRACTION = 10    # test scenes = training scenes / 10 (rounded up), as 20,000 / 2,000


def conv_block(x, filters):
    """Two 3x3 convolutions, each followed by BatchNormalization and ReLU."""
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    return x


def segment_model(size=None, filters=(16, 32, 64), classes=digit_scenes.NUM_CLASSES):
    """A U-Net (Ronneberger et al., 2015), small, built with the functional API: an encoder of
    conv blocks (two 3x3 Conv2D + BatchNormalization + ReLU) each followed by a 2x2
    max-pooling, a bottleneck block, and a decoder that doubles the resolution with a
    stride-2 Conv2DTranspose, concatenates the encoder's features of that resolution (the
    skip connection) and runs a conv block; a 1x1 Conv2D with a softmax gives each pixel's
    class probabilities, (size, size, classes). 117,883 parameters at the defaults. Without a
    ``size`` it is fully convolutional and takes images of any height and width divisible by
    2 ** (len(filters) - 1) (the scenes are 64x64; ``predict`` runs it on any such image)."""
    inputs = layers.Input(shape=(size, size, 1))
    x, skips = inputs, []
    for width in filters[:-1]:
        x = conv_block(x, width)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = conv_block(x, filters[-1])
    for width, skip in zip(reversed(filters[:-1]), reversed(skips)):
        x = layers.Conv2DTranspose(width, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skip])
        x = conv_block(x, width)
    outputs = layers.Conv2D(classes, 1, activation="softmax")(x)
    return models.Model(inputs, outputs, name="unet")


def scene_counts(settings):
    """(training scenes, test scenes) of a run: --scenes N gives N and N / 10 (rounded up)."""
    train = settings["scenes"]
    return train, math.ceil(train / TEST_FRACTION)


def segment_data(settings):
    """(x_train, mask_train, x_test, mask_test): the digit scenes of MNIST's training and test
    digits (MNIST read as the mnist experiment reads it); --limit keeps the first N training
    scenes."""
    train, test = scene_counts(settings)
    try:
        (x_train, m_train), (x_test, m_test) = digit_scenes.load_data(settings["data"], train, test)
    except ValueError as error:
        raise UsageError(f"segment: {error}") from None
    if settings["limit"]:
        x_train, m_train = x_train[:settings["limit"]], m_train[:settings["limit"]]
    return x_train, m_train, x_test, m_test


def mask_scores(y_true, y_pred):
    """(the per-pixel confusion matrix, mean IoU) of predicted masks: Keras's MeanIoU over the
    classes that occur, from the matrix it accumulates (rows the true classes)."""
    iou = metrics.MeanIoU(num_classes=digit_scenes.NUM_CLASSES)
    iou.update_state(y_true, y_pred)
    return iou.total_cm, iou.result()


def run_segment(settings, model, data, initial_epoch, hooks, report=True):
    x_train, m_train, x_test, m_test = data
    model.fit(x_train, m_train, batch_size=settings["batch_size"], epochs=settings["epochs"],
              initial_epoch=initial_epoch, validation_data=(x_test, m_test), callbacks=hooks)
    if not report:
        return None
    predicted = np.concatenate([model.predict(x_test[i:i + 250], batch_size=50, verbose=0).argmax(axis=-1)
                                for i in range(0, len(x_test), 250)]).astype(np.uint8)
    counts, mean_iou = mask_scores(m_test, predicted)
    shown = slice(0, SCENES_SHOWN)
    return {"y": m_test, "predicted": predicted, "class_names": digit_scenes.CLASS_NAMES,
            "mean_iou": mean_iou, "confusion": counts,
            "scenes": {"x": x_test[shown], "y": m_test[shown], "predicted": predicted[shown]},
            "preprocessing": {"rescale": 1 / 255, "color_mode": "grayscale"}}
