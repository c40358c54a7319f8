"""How far JPEG decoders are from the pixels Keras's image_dataset_from_directory gives
(TensorFlow's decode_image: libjpeg-turbo, fast integer DCT, smooth chroma upsampling), on
the shared cats/dogs photos at their own size: Pillow (accurate DCT; what load_img and
Keras's own load_img use) and scratchnet's image_dataset_from_directory decoder.

    python benchmarks/jpeg_decoding.py [--photos 200]
"""
import argparse
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from results import SHARED_DATA, write_section


def differences(decode, reference, paths):
    """(mean absolute difference in levels, largest, files equal) of ``decode`` against ``reference``."""
    gaps = [np.abs(decode(p).astype(np.int64) - reference(p).astype(np.int64)) for p in paths]
    return float(np.mean([g.mean() for g in gaps])), int(max(g.max() for g in gaps)), sum(int(g.max() == 0) for g in gaps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="validation photos of each class")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from PIL import Image

    from scratchnet.preprocessing.image_dataset import decode
    folder = Path(tempfile.mkdtemp(prefix="jpegs-"))
    with tarfile.open(SHARED_DATA / "catsdogs-128.tar") as tar:
        members = [m for m in tar.getmembers() if "/validation/" in m.name and m.name.endswith(".jpg")]
        chosen = [m for m in members if "/cats/" in m.name][:args.photos] + \
            [m for m in members if "/dogs/" in m.name][:args.photos]
        tar.extractall(folder, members=chosen, filter="data")
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))

    def tensorflow(path):
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False).numpy()

    def pillow(path):
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    rows = []
    for name, decoder in (("Pillow (accurate integer DCT)", pillow),
                          ("scratchnet's image_dataset_from_directory", lambda p: decode(p, "rgb"))):
        mean, largest, equal = differences(decoder, tensorflow, paths)
        rows.append(f"| {name} | {mean:.3f} | {largest} | {equal} of {len(paths)} |")
    text = "\n".join([
        "## JPEG decoding against TensorFlow's (what Keras's image_dataset_from_directory reads)", "",
        f"{len(paths)} photos of the shared cats/dogs validation set at their own size, RGB; differences in "
        "levels of 0..255 from TensorFlow's decode_image with its defaults.", "",
        "| decoder | mean difference | largest | photos equal |", "|---|---|---|---|", *rows, ""])
    print(text)
    write_section("jpeg-decoding", text)


if __name__ == "__main__":
    main()
