"""Conv2DTranspose against the Conv2D it transposes, and bilinear UpSampling2D against a 3x3
convolution on the same map: forward, and forward + backward, layer by layer on one backend.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_transpose_timing.py \
        [--batch 32] [--size 32] [--channels 64] [--filters 32] [--repeats 7] [--backend cpu]

The transposed convolution maps (size, size, channels) to (2*size, 2*size, filters) (kernel 3,
stride 2, padding 'same'); its mirror Conv2D maps (2*size, 2*size, filters) back to (size,
size, channels) with the same kernel shape, so both do the same multiply-adds. Each timing is
the best of ``--repeats`` calls after one warm-up (compilation); float32 throughout. Prints
one line per measurement, in milliseconds.
"""
import argparse
import time

import numpy as np


def best_of(repeats, call):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def measure(layer, x, repeats):
    """(forward ms, forward + backward ms) of a built layer on x."""
    rng = np.random.default_rng(1)
    y, _ = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)

    def forward():
        layer.forward(x, training=True)

    def both():
        out, ctx = layer.forward(x, training=True)
        layer.backward(dy, ctx)

    return best_of(repeats, forward), best_of(repeats, both)


def built(layer, x):
    layer.build(x.shape[1:])
    return layer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-upsampling", action="store_true")
    args = parser.parse_args()

    import scratchnet
    from scratchnet import layers
    scratchnet.set_backend(args.backend, threads=args.threads)
    rng = np.random.default_rng(0)
    n, s, c, f = args.batch, args.size, args.channels, args.filters
    small = rng.standard_normal((n, s, s, c)).astype(np.float32)
    large = rng.standard_normal((n, 2 * s, 2 * s, f)).astype(np.float32)
    rows = [
        (f"Conv2DTranspose {s}x{s}x{c} -> {2 * s}x{2 * s}x{f}",
         built(layers.Conv2DTranspose(f, 3, strides=2, padding="same"), small), small),
        (f"Conv2D          {2 * s}x{2 * s}x{f} -> {s}x{s}x{c}",
         built(layers.Conv2D(c, 3, strides=2, padding="same"), large), large),
    ]
    if not args.skip_upsampling:
        rows += [
            (f"UpSampling2D bilinear {s}x{s}x{c} -> {2 * s}x{2 * s}x{c}",
             built(layers.UpSampling2D(2, interpolation="bilinear"), small), small),
            (f"UpSampling2D nearest  {s}x{s}x{c} -> {2 * s}x{2 * s}x{c}",
             built(layers.UpSampling2D(2), small), small),
            (f"Conv2D 3x3 same       {s}x{s}x{c} -> {s}x{s}x{c}",
             built(layers.Conv2D(c, 3, padding="same"), small), small),
        ]
    print(f"backend {args.backend}, batch {n}, float32, best of {args.repeats}")
    for name, layer, x in rows:
        fwd, both = measure(layer, x, args.repeats)
        print(f"{name:48s} forward {fwd:8.2f} ms   forward+backward {both:8.2f} ms")


if __name__ == "__main__":
    main()
