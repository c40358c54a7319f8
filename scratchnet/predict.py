"""Classify image files with a saved model.

    python -m scratchnet.predict runs/catsdogs-.../model.npz photo1.jpg photo2.png
    python -m scratchnet.predict model_from_keras.keras photo.jpg
"""
import sys

import numpy as np

from .cli import OneLineParser
from .preprocessing.image import UnreadableImage, img_to_array, load_img
from .saving import ModelFileError, load_model


def main(argv=None):
    parser = OneLineParser(prog="python -m scratchnet.predict",
                                     description="Print the predicted class and its probability for each image.")
    parser.add_argument("model", help="a model file: .keras or .h5 (from Keras or scratchnet), or .npz "
                                      "(scratchnet.train, model.save)")
    parser.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model, compile=False)
    except (OSError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    extra = model.saved_extra
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[3] not in (1, 3, 4):
        print(f"error: {args.model} takes inputs of shape {shape}, not images "
              f"(batch, height, width, 1, 3 or 4 channels)", file=sys.stderr)
        return 2
    _, h, w, c = shape
    if "rescale" not in extra:   # saved by model.save, not by scratchnet.train
        print(f"note: {args.model} does not record how its images were prepared; assuming pixels scaled "
              f"by 1/255, {h}x{w} nearest-neighbour resizing and {c} channel(s)", file=sys.stderr)
    color_mode = extra.get("color_mode") or {1: "grayscale", 3: "rgb", 4: "rgba"}[c]
    rescale = extra.get("rescale", 1 / 255)
    outputs = model.output_shape[-1]
    names = extra.get("class_names") or [str(i) for i in range(max(outputs, 2))]
    failures = 0
    for path in args.images:
        try:
            x = img_to_array(load_img(path, color_mode, (h, w), extra.get("interpolation", "nearest"))) * rescale
        except (UnreadableImage, FileNotFoundError) as error:
            print(f"{path}: cannot read ({error})")
            failures += 1
            continue
        p = model.predict(x[None], verbose=0)[0]
        if outputs == 1:
            label = int(p[0] > 0.5)
            probability = p[0] if label else 1 - p[0]
        else:
            label = int(np.argmax(p))
            probability = p[label]
        print(f"{path}: {names[label]} ({probability:.3f})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
