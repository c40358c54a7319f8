"""Classify image files with a saved model (or label their pixels, with a segmentation model).

    python -m scratchnet.predict runs/catsdogs-.../model.npz photo1.jpg photo2.png
    python -m scratchnet.predict model_from_keras.keras photo.jpg
    python -m scratchnet.predict model.npz photo.jpg --explain   # and photo.gradcam.png beside it

``--explain`` writes, for each image, its Grad-CAM heat map for the predicted class over the
image (``scratchnet.visualize.grad_cam`` at the model's last convolutional layer), as
IMAGE-STEM.gradcam.png beside the image (or in ``--explain-dir``); an existing file of that
name is never overwritten.

A model whose output is per pixel (batch, height, width, classes), such as the U-Net of
``python -m scratchnet.train segment``, gets a mask instead of a class: each image's line
names the classes found and their pixel counts (at the model's resolution), and the mask,
resized to the image's own size, is laid over the image as IMAGE-STEM.mask.png beside it (or
in ``--mask-dir``): a translucent colour per class, class 0 (the background) left clear.
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
                                     description="Print the predicted class and its probability for each image; for a "
                                                 "segmentation model, the classes found and their pixel counts, "
                                                 "and write the mask over the image.")
    parser.add_argument("model", help="a model file: .keras or .h5 (from Keras or scratchnet), or .npz "
                                      "(scratchnet.train, model.save)")
    parser.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    parser.add_argument("--explain", action="store_true",
                        help="also write each image's Grad-CAM heat map for the predicted class, laid over the "
                             "image, as STEM.gradcam.png beside it (never over an existing file)")
    parser.add_argument("--explain-dir", metavar="DIR", default=None,
                        help="with --explain: write the heat maps into DIR instead")
    parser.add_argument("--mask-dir", metavar="DIR", default=None,
                        help="for a model with per-pixel outputs (a segmentation model): write the mask overlays "
                             "(STEM.mask.png) into DIR instead of beside each image")
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
    out_shape = model.output_shape
    per_pixel = not isinstance(out_shape, list) and len(out_shape) == 4
    problem = per_pixel_problem(args, per_pixel)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
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
    size = None if h is None or w is None else (h, w)     # None: a model that takes any size reads images as they are
    if "rescale" not in extra:   # saved by model.save, not by scratchnet.train
        resizing = f"{h}x{w} nearest-neighbour resizing" if size else "no resizing"
        print(f"note: {args.model} does not record how its images were prepared; assuming pixels scaled "
              f"by 1/255, {resizing} and {c} channel(s)", file=sys.stderr)
    color_mode = extra.get("color_mode") or {1: "grayscale", 3: "rgb", 4: "rgba"}[c]
    rescale = extra.get("rescale", 1 / 255)
    outputs = model.output_shape[-1]
    names = extra.get("class_names") or [str(i) for i in range(max(outputs, 2))]
    failures = 0
    for path in args.images:
        try:
            x = img_to_array(load_img(path, color_mode, size, extra.get("interpolation", "nearest"))) * rescale
        except (UnreadableImage, FileNotFoundError) as error:
            print(f"{path}: cannot read ({error})")
            failures += 1
            continue
        try:
            p = model.predict(x[None], verbose=0)[0]
        except ValueError as error:      # an image of a size the model cannot take
            print(f"{path}: cannot run the model on it ({one_line(error)})")
            failures += 1
            continue
        if per_pixel:
            answer, written = segment_answer(p, names, path, color_mode, args.mask_dir)
            failures += written is None
            print(answer)
            continue
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


def per_pixel_problem(args, per_pixel):
    """Why the options do not fit the model's kind of output (None when they do)."""
    if per_pixel and args.explain:
        return (f"--explain draws a Grad-CAM heat map for a classifier; {args.model} labels every pixel "
                f"(its mask overlay is written without --explain)")
    if args.mask_dir and not per_pixel:
        return f"--mask-dir is for models with per-pixel outputs; {args.model} gives one prediction per image"
    if args.mask_dir and not Path(args.mask_dir).is_dir():
        return f"--mask-dir {args.mask_dir} is not a folder"
    return None


def segment_answer(p, names, path, color_mode, folder=None):
    """(the line printed for one image, the overlay written or None) for a per-pixel output
    ``p`` (height, width, classes): its classes and their pixel counts, and the mask overlay."""
    mask = p[..., 0] > 0.5 if p.shape[-1] == 1 else np.argmax(p, axis=-1)
    counts = np.bincount(mask.ravel().astype(np.int64), minlength=max(p.shape[-1], 2))
    names = list(names) + [str(k) for k in range(len(names), len(counts))]
    found = [f"{names[k]} {counts[k]} px" for k in np.flatnonzero(counts) if k != 0]
    answer = (f"{path}: {', '.join(found) if found else 'no class but the background'} "
              f"({names[0]} {counts[0]} px, of {mask.shape[0]}x{mask.shape[1]})")
    written, problem = write_mask_overlay(mask.astype(np.uint8), len(counts), path, color_mode, folder)
    return answer + (f"; mask overlay in {written}" if written else f"; no mask overlay: {problem}"), written


def mask_overlay(image, mask, num_classes, alpha=0.5):
    """An RGB uint8 picture: ``mask`` (h, w) of class ids resized (nearest) to ``image`` (H, W,
    1, 3 or 4 channels; 0-255) and laid over it, each class but 0 in its translucent colour."""
    from PIL import Image

    from .plots import class_colours
    image = np.asarray(image, dtype=np.float64)
    image = image[..., :3] if image.shape[-1] in (3, 4) else np.repeat(image[..., :1], 3, axis=-1)
    height, width = image.shape[:2]
    resized = np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))
    colours = class_colours(num_classes)[np.minimum(resized, num_classes - 1)] * 255
    cover = (resized != 0)[..., None] * alpha
    return np.uint8(np.clip((1 - cover) * image + cover * colours, 0, 255).round())


def write_mask_overlay(mask, num_classes, path, color_mode, folder=None):
    """(the PNG written, None) or (None, why not): ``mask`` over the image file at its own size."""
    from PIL import Image
    target = Path(folder or Path(path).parent) / f"{Path(path).stem}.mask.png"
    if target.exists():
        return None, f"{target} exists (move it, or give --mask-dir)"
    picture = mask_overlay(img_to_array(load_img(path, color_mode)), mask, num_classes)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    atomic_write(target, lambda f: f.write(buffer.getvalue()))
    return target, None


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
