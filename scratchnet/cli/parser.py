"""The flags of ``python -m scratchnet.train`` (argparse); ``--help`` prints them."""
import argparse

from .. import backend
from .errors import OneLineParser
from .experiments import CATSDOGS_MODELS, EXPERIMENTS


def make_parser():
    parser = OneLineParser(
        prog="python -m scratchnet.train", description="Train one of the reference models, Keras style.",
        epilog="Each run's folder gets checkpoint.npz after every epoch (with every setting of the run), "
               "model.npz (and the same model as model.keras, which Keras reads), history.json and PNG plots "
               "(learning curves, confusion matrix, misclassified "
               "examples; segment: predicted masks beside the true ones). --resume restores the run's settings; give --epochs to extend it. "
               "Transfer learning, as in the Keras tutorial: --from runs/base/model.npz --freeze-base trains a "
               "head (the saved one, or a fresh one) on the saved model's frozen base; a second run --from that "
               "run's model.npz with a low --lr (e.g. 1e-5) and no --freeze-base fine-tunes every layer.")
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS),
                        help="mnist: the 3-conv digit classifier; catsdogs: the 4-conv photo classifier; "
                             "segment: a small U-Net that labels each pixel of 64x64 scenes of 2-4 MNIST digits "
                             "(background or digit 0-9; scratchnet.datasets.digit_scenes)")
    parser.add_argument("--data", default=None,
                        help="mnist and segment: folder with MNIST's four IDX files (default: the cache, "
                             "downloaded on first use); catsdogs: folder with train/ and validation/, or a tar/zip")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs to train in all (mnist 5, catsdogs 30, segment 5); with --resume, a larger "
                             "number extends the run")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per step (default 32)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (mnist and segment: Adam 1e-3; catsdogs: RMSprop 1e-4, or for --model resnet "
                             "Adam 1e-3 with cosine decay to 1%% of it over the epochs)")
    parser.add_argument("--model", default=None, choices=sorted(CATSDOGS_MODELS),
                        help="catsdogs: 'seed' (the tutorial's 4-conv network, default) or 'resnet' (a small "
                             "residual network with batch normalization, built with the functional API)")
    parser.add_argument("--image-size", type=int, default=None, help="catsdogs: images are resized to "
                        "SIZE x SIZE (default 150)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="catsdogs: random rotations, shifts, shear, zoom and flips of the training "
                             "images (the seed's settings); off by default")
    parser.add_argument("--scenes", type=int, default=None,
                        help="segment: how many training scenes to compose from MNIST's training digits "
                             "(default 5000; a tenth as many test scenes, rounded up, from its test digits)")
    parser.add_argument("--from", metavar="PATH", default=None,
                        help="start from the model saved at PATH (a run's model.npz or checkpoint.npz, a Keras "
                             ".keras or .h5 file: any file scratchnet.load_model reads) instead of fresh "
                             "weights. Its input shape must be the experiment's (catsdogs: --image-size defaults "
                             "to the model's). If its output fits the experiment (mnist: 10 units, softmax; "
                             "catsdogs: 1 unit, sigmoid), the whole model goes on training; otherwise its base, "
                             "the layers up to and including its last Flatten or global pooling layer, gets a "
                             "fresh head like the experiment's own (the output says which; catsdogs: --model "
                             "chooses that head and the optimizer). The optimizer starts afresh: the "
                             "experiment's, at --lr (give a low one to fine-tune). Recorded in the run, so "
                             "--resume needs no --from")
    parser.add_argument("--freeze-base", action=argparse.BooleanOptionalAction, default=None,
                        help="with --from: set trainable = False on the base before compile, so only the head "
                             "trains (as in Keras, the base's weights stay as saved and its BatchNormalization "
                             "layers run in inference mode); off by default: every layer trains, whatever the "
                             "file marks as frozen")
    parser.add_argument("--backend", default=None, choices=backend.available(),
                        help="kernels: cpu (Numba, default), numpy (the reference) or gpu (CuPy)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for kernels and BLAS (default: NUMBA_NUM_THREADS or all cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="catsdogs: image-decoding threads (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for weights, shuffling and "
                        "augmentation (default: drawn, and printed): the same seed gives the same run")
    parser.add_argument("--limit", type=int, default=None, help="use only N training samples per epoch")
    parser.add_argument("--inspect", type=int, default=None, metavar="STEPS",
                        help="every STEPS training steps, measure each layer on a held-out batch (gradient norm, "
                             "update-to-weight ratio, activation mean and spread, dead ReLUs, saturated sigmoids): "
                             "drawn in RUN/inspector.png and written for TensorBoard in RUN/tensorboard")
    parser.add_argument("--out", default=None, help="run folder (default runs/EXPERIMENT-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (or the newest runs/EXPERIMENT-*) from its last "
                             "checkpoint, with the settings it recorded")
    parser.add_argument("--distributed", action="store_true",
                        help="be one rank of a data-parallel job: mpiexec -n K python -m scratchnet.train ... "
                             "--distributed (needs pip install 'scratchnet[distributed]'). --batch-size is per "
                             "rank: each step trains on K x --batch-size samples, the same run as one process at "
                             "that batch size and the same --lr (to keep the per-sample step of a smaller batch, "
                             "scale --lr by K yourself). Rank 0 writes the run folder; --data, --from and --out "
                             "must name the same files on every rank; --resume needs the same K")
    return parser
