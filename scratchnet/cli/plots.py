"""PNG plots of a run: learning curves, a confusion matrix, misclassified examples; for a
segmentation run, predicted masks beside the true ones.

matplotlib is imported here only, with the Agg backend (files, no screen needed)."""
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(history, path, title=None):
    """Training and validation accuracy and loss per epoch, side by side (the seed's plot),
    and mean IoU beside them where the history has it (a segmentation run's)."""
    plt = _pyplot()
    logs = history.history if hasattr(history, "history") else history
    acc_key = next((k for k in ("accuracy", "acc") if k in logs), None)
    panels = ([(acc_key, "accuracy")] if acc_key else []) + [("loss", "loss")] + \
        ([("mean_io_u", "mean IoU")] if "mean_io_u" in logs else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    epochs = np.arange(1, len(logs["loss"]) + 1)
    for ax, (key, label) in zip(axes[0], panels):
        ax.plot(epochs, logs[key], "o-", label=f"training {label}")
        if f"val_{key}" in logs:
            ax.plot(epochs, logs[f"val_{key}"], "s-", label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(y_true, y_pred, num_classes):
    """counts[i, j] = how many samples of class i were predicted as class j."""
    pairs = np.asarray(y_true, np.int64).ravel() * num_classes + np.asarray(y_pred, np.int64).ravel()
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion_matrix(y_true, y_pred, class_names, path):
    plt = _pyplot()
    counts = confusion_matrix(y_true, y_pred, len(class_names))
    size = max(4, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > counts.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45 if len(class_names) > 4 else 0)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"confusion matrix (accuracy {accuracy:.2%})")
    fig.tight_layout()
    return _save(fig, path)


def plot_misclassified(images, y_true, y_pred, class_names, path, probabilities=None, limit=25):
    """A grid of up to ``limit`` misclassified images, titled 'true -> predicted'."""
    plt = _pyplot()
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:limit]
    cols = 5
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, wrong):
        image = np.asarray(images[k])
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1), cmap="gray")
        title = f"{class_names[y_true[k]]} -> {class_names[y_pred[k]]}"
        if probabilities is not None:
            title += f"\n({probabilities[k]:.2f})"
        ax.set_title(title, fontsize=8)
    if not len(wrong):
        axes[0, 0].set_title("no misclassified examples")
    fig.tight_layout()
    return _save(fig, path)


def class_colours(num_classes):
    """(num_classes, 3) RGB in [0, 1]: black for class 0 (the background), then the
    distinct colours of matplotlib's tab10 (and tab20 beyond ten classes)."""
    import matplotlib
    table = matplotlib.colormaps["tab10" if num_classes <= 11 else "tab20"].colors
    return np.array([(0.0, 0.0, 0.0)] + [table[k % len(table)][:3] for k in range(num_classes - 1)])


def plot_masks(images, y_true, y_pred, class_names, path):
    """One row per scene: the image, its true mask and the predicted mask, a colour per class
    (the background black), with a legend of the classes."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    colours = class_colours(len(class_names))
    cmap = ListedColormap(colours)
    rows = max(1, len(images))
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.4 * rows + 0.8), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (image, true, predicted) in enumerate(zip(images, y_true, y_pred)):
        axes[row, 0].imshow(np.asarray(image)[..., 0], cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title("image", fontsize=8)
        right = np.mean(np.asarray(true) == np.asarray(predicted))
        for ax, mask, title in ((axes[row, 1], true, "true mask"),
                                (axes[row, 2], predicted, f"predicted ({right:.1%} of pixels right)")):
            ax.imshow(mask, cmap=cmap, vmin=-0.5, vmax=len(class_names) - 0.5, interpolation="nearest")
            ax.set_title(title, fontsize=8)
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, class_names)],
               loc="lower center", ncol=min(len(class_names), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.8 / (2.4 * rows + 0.8), 1, 1))
    return _save(fig, path)


def _save(fig, path):
    from ..saving import atomic_write
    import matplotlib.pyplot as plt
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path
