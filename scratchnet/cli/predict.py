"""Classify image files with a saved model.

    python -m scratchnet.predict runs/catsdogs-.../model.npz photo1.jpg photo2.png
    python -m scratchnet.predict model_from_keras.keras photo.jpg
    python -m scratchnet.predict model.npz photo.jpg --explain   # and photo.gradcam.png beside it

``--explain`` writes, for each image, its Grad-CAM heat map for the predicted class over the
image (``scratchnet.visualize.grad_cam`` at the model's last convolutional layer), as
IMAGE-STEM.gradcam.png beside the image (or in ``--explain-dir``); an existing file of that
name is never overwritten.
"""
import io
import sys
from pathlib import Path

import numpy as np

from ..preprocessing.image import UnreadableImage, img_to_array, load_img
from ..saving import ModelFileError, atomic_write, load_model
from .errors import OneLineParser, one_line


def main(argv=None):
    parser = OneLineParser(prog="python -m scratchnet.predict",
                                     description="Print the predicted class and its probability for each image.")
    parser.add_argument("model", help="a model file: .keras or .h5 (from Keras or scratchnet), or .npz "
                                      "(scratchnet.train, model.save)")
    parser.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    parser.add_argument("--explain", action="store_true",
                        help="also write each image's Grad-CAM heat map for the predicted class, laid over the "
                             "image, as STEM.gradcam.png beside it (never over an existing file)")
    parser.add_argument("--explain-dir", metavar="DIR", default=None,
                        help="with --explain: write the heat maps into DIR instead")
    args = parser.parse_args(argv)
    if args.explain_dir and not args.explain:
        parser.error("--explain-dir goes with --explain")
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
    if args.explain:
        from .. import visualize
        try:
            visualize.last_conv_layer(model)
        except ValueError as error:
            print(f"error: --explain: {one_line(error)}", file=sys.stderr)
            return 2
        if args.explain_dir and not Path(args.explain_dir).is_dir():
            print(f"error: --explain-dir {args.explain_dir} is not a folder", file=sys.stderr)
            return 2
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
        answer = f"{path}: {names[label]} ({probability:.3f})"
        if args.explain:
            written, problem = write_grad_cam(model, x, label, path, color_mode, args.explain_dir)
            answer += f"; Grad-CAM of '{names[label]}' in {written}" if written else f"; no Grad-CAM: {problem}"
            failures += written is None
        print(answer)
    return 1 if failures else 0


def write_grad_cam(model, x, label, path, color_mode, folder=None):
    """(the PNG written, None) or (None, why not): the Grad-CAM heat map of class ``label``
    for the prepared image ``x``, laid over the image file at its own size."""
    from PIL import Image

    from .. import visualize
    target = Path(folder or Path(path).parent) / f"{Path(path).stem}.gradcam.png"
    if target.exists():
        return None, f"{target} exists (move it, or give --explain-dir)"
    heat = visualize.grad_cam(model, x[None], class_index=label)[0]
    original = img_to_array(load_img(path, color_mode))
    picture = visualize.overlay(original, heat)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    atomic_write(target, lambda f: f.write(buffer.getvalue()))
    return target, None


if __name__ == "__main__":
    sys.exit(main())
