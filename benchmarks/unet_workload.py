"""The U-Net workload of compare_cpu.py: one small U-Net, built for each contender, its data
and its floating-point operations.

The U-Net has skip connections, so it is no line of layers: it is built with the functional
API (scratchnet and Keras 3 spell it alike) and, for PyTorch, as a module with a forward
method. All three are the same network, weight for weight (compare_cpu.py reports each
contender's count of trainable parameters):

- encoder: per level a block, [Conv2D(width, 3, 'same', no bias) + BatchNormalization + ReLU]
  twice, then a 2x2 max-pooling; widths 16 and 32;
- bottleneck: a block of width 64;
- decoder: per level a Conv2DTranspose(width, 3, strides=2, 'same') that doubles the size,
  concatenated with the encoder's block output of that size (the skip), then a block;
- a 1x1 Conv2D with 11 classes and a softmax per pixel (PyTorch: logits, its
  CrossEntropyLoss takes the log-softmax).

The data is synthetic: the digit scenes of the segment experiment are not on this branch,
and throughput does not depend on what the pixels show. Each image is uniform noise in
[0, 1); each pixel's label is its intensity's eleventh (0..10), so the loss has something
to learn and an epoch's loss falls.
"""
import numpy as np

UNET = {"input": (64, 64, 1), "levels": (16, 32), "bottleneck": 64, "classes": 11, "up_kernel": 3}
UNET_IMAGES = 960       # per epoch: 30 batches of 32, about 10-30 s an epoch on 2 cores (Keras less)


def unet_data(n, spec=UNET, seed=0):
    """(images (n, H, W, C) float32 in [0, 1), labels (n, H, W) int64 in 0..classes - 1)."""
    images = np.random.default_rng(seed).random((n, *spec["input"]), dtype=np.float32)
    labels = np.minimum(images[..., 0] * spec["classes"], spec["classes"] - 1).astype(np.int64)
    return images, labels


def unet_convolutions(spec=UNET):
    """Multiply-adds per image of each convolution (transposed ones included), in order."""
    h, w, c = spec["input"]
    counts, skips = [], []

    def block(c, width):
        counts.extend([h * w * 9 * c * width, h * w * 9 * width * width])
        return width
    for width in spec["levels"]:
        c = block(c, width)
        skips.append(c)
        h, w = h // 2, w // 2
    c = block(c, spec["bottleneck"])
    for width, skip in zip(reversed(spec["levels"]), reversed(skips)):
        counts.append(h * w * spec["up_kernel"] ** 2 * c * width)  # each input pixel spreads a k x k patch
        h, w = 2 * h, 2 * w
        c = block(width + skip, width)
    counts.append(h * w * c * spec["classes"])
    return counts


def unet_flops(spec=UNET):
    """(forward, training) floating-point operations per image, counted as compare_cpu.py's
    flops_per_image counts them: two per multiply-add; training adds both backward products
    of every convolution except the input gradient of the first."""
    counts = unet_convolutions(spec)
    forward = 2 * sum(counts)
    return forward, 3 * forward - 2 * counts[0]


def keras_api_unet(layers, model_class, spec=UNET):
    """The U-Net with the functional API of ``layers`` (scratchnet.layers or keras.layers)."""
    def block(x, width):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        return x

    inputs = layers.Input(shape=spec["input"])
    x, skips = inputs, []
    for width in spec["levels"]:
        x = block(x, width)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = block(x, spec["bottleneck"])
    for width, skip in zip(reversed(spec["levels"]), reversed(skips)):
        x = layers.Conv2DTranspose(width, spec["up_kernel"], strides=2, padding="same")(x)
        x = block(layers.Concatenate()([x, skip]), width)
    outputs = layers.Conv2D(spec["classes"], 1, activation="softmax")(x)
    return model_class(inputs, outputs)


def torch_unet(spec=UNET):
    """The U-Net as a PyTorch module (NCHW), giving logits (N, classes, H, W)."""
    import torch
    from torch import nn

    def block(c, width):
        return nn.Sequential(nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                             nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())

    def upsample(c, width):
        """Keras's 'same' transposed convolution at stride 2: output exactly twice the input,
        (in - 1) * 2 - 2 * padding + kernel + output_padding = 2 * in."""
        k = spec["up_kernel"]
        padding = (k - 1) // 2
        return nn.ConvTranspose2d(c, width, k, stride=2, padding=padding, output_padding=2 + 2 * padding - k)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            c, self.down = spec["input"][2], nn.ModuleList()
            for width in spec["levels"]:
                self.down.append(block(c, width))
                c = width
            self.bottom = block(c, spec["bottleneck"])
            c, self.up, self.merge = spec["bottleneck"], nn.ModuleList(), nn.ModuleList()
            for width in reversed(spec["levels"]):
                self.up.append(upsample(c, width))
                self.merge.append(block(2 * width, width))
                c = width
            self.head = nn.Conv2d(c, spec["classes"], 1)

        def forward(self, x):
            skips = []
            for down in self.down:
                x = down(x)
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
            x = self.bottom(x)
            for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
                x = merge(torch.cat([up(x), skip], dim=1))
            return self.head(x)

    return UNet()
