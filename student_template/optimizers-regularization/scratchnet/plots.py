"""Figures for the assignment (provided, not graded).

Every function draws one figure, returns the matplotlib Figure and, given
``path``, also saves it there (PNG at 100 dpi unless the suffix says
otherwise). Nothing here needs a screen: without a display (and without an
explicit MPLBACKEND, which Jupyter sets for you) the non-interactive "Agg"
backend is selected before pyplot is imported.

- plot_activations: the hidden-layer activations and their derivatives.
- plot_training_curves: loss, validation accuracy and learning rate per epoch.
- plot_decision_boundary: the classes a model assigns to a 2-D plane.
- plot_predictions: a grid of images with predicted and true labels.
- plot_confusion_matrix: counts of (true, predicted) label pairs.
"""
import os
import sys

import matplotlib
import numpy as np


def _headless():
    """True when no interactive backend could open a window."""
    if sys.platform.startswith(("win", "darwin")):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


if not os.environ.get("MPLBACKEND") and "matplotlib.pyplot" not in sys.modules and _headless():
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice above)
from matplotlib.colors import ListedColormap  # noqa: E402

WRONG_COLOR = "tab:red"
RIGHT_COLOR = "tab:green"


def _finish(fig, path):
    """Save ``fig`` to ``path`` (when given) and return it."""
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def close(fig):
    """Release a figure's memory (pyplot keeps every open figure alive)."""
    plt.close(fig)


def plot_activations(z=None, *, path=None):
    """sigmoid, relu and tanh (left) and their derivatives (right).

    Inputs:
    - z: 1-D array of points to evaluate at (default: 401 points in [-5, 5]).
    - path: where to save the figure, or None.

    Uses the functions of scratchnet.activations, so it draws your code.
    """
    from scratchnet.activations import (
        relu, relu_derivative, sigmoid, sigmoid_derivative, tanh, tanh_derivative,
    )

    z = np.linspace(-5.0, 5.0, 401) if z is None else np.asarray(z, dtype=np.float64)
    pairs = {
        "sigmoid": (sigmoid, sigmoid_derivative),
        "relu": (relu, relu_derivative),
        "tanh": (tanh, tanh_derivative),
    }
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (f, df) in pairs.items():
        ax_f.plot(z, f(z), label=name)
        ax_d.plot(z, df(z), label=f"{name}'")
    ax_f.set_title("activation g(z)")
    ax_d.set_title("derivative g'(z)")
    for ax in (ax_f, ax_d):
        ax.set_xlabel("z")
        ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0.0, color="0.8", lw=0.8, zorder=0)
        ax.legend()
    return _finish(fig, path)


def plot_training_curves(history, *, path=None, val_label="validation accuracy"):
    """Training loss per epoch and, when present, validation accuracy and learning rate per epoch.

    Inputs:
    - history: dict with "loss" (list of floats, one per epoch) and optionally
      "val_accuracy" (list of floats in [0, 1]), as returned by ``train``, and
      "lr" (list of floats, the learning rate of each epoch), as returned by
      Assignment 2's ``train_advanced``. One panel per curve present.
    - path: where to save the figure, or None.
    - val_label: how to call the accuracy curve (e.g. "test accuracy" when
      the held-out data is the test set).
    """
    loss = list(history["loss"])
    val = list(history.get("val_accuracy", []))
    lr = list(history.get("lr", []))
    epochs = np.arange(1, len(loss) + 1)
    marker = "o" if len(loss) <= 30 else None
    panels = 1 + bool(val) + bool(lr)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    ax_loss = axes[0, 0]
    ax_loss.plot(epochs, loss, marker=marker)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("mean training loss")
    ax_loss.set_title("loss")
    if val:
        ax_acc = axes[0, 1]
        ax_acc.plot(np.arange(1, len(val) + 1), 100.0 * np.asarray(val), marker=marker, color="tab:orange")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel(f"{val_label} (%)")
        ax_acc.set_title(f"{val_label}: {100.0 * val[-1]:.2f}% after epoch {len(val)}")
    if lr:
        ax_lr = axes[0, panels - 1]
        ax_lr.plot(np.arange(1, len(lr) + 1), lr, marker=marker, color="tab:green")
        ax_lr.set_xlabel("epoch")
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_title("learning rate at the start of each epoch")
        ax_lr.set_ylim(bottom=0.0)
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        if len(loss) <= 20:
            ax.set_xticks(epochs)
    return _finish(fig, path)


def plot_decision_boundary(predict_fn, X, y, *, path=None, resolution=200, title=None):
    """Regions of the plane a classifier assigns to each class, with the data on top.

    Inputs:
    - predict_fn: function mapping points of shape (M, 2) to int labels (M,),
      e.g. ``lambda P: predict(params, P, "relu")``.
    - X: points of shape (N, 2); y: their int labels, shape (N,).
    - path: where to save the figure, or None.
    - resolution: grid points along each axis.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D points of shape (N, 2), got {X.shape}")
    margin = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 0.1
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    regions = np.asarray(predict_fn(grid)).reshape(xx.shape)
    num_classes = int(max(regions.max(), np.max(y))) + 1
    # The first C colours of tab10 (resampling tab10 to C colours would skip some).
    cmap = ListedColormap(plt.get_cmap("tab10").colors[:max(num_classes, 2)])
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.pcolormesh(xx, yy, regions, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, alpha=0.3, shading="auto")
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, s=12, edgecolors="k",
               linewidths=0.3)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title or "decision boundary")
    return _finish(fig, path)


def plot_predictions(images, y_true, y_pred, *, image_shape=None, n=25, path=None, title=None):
    """A grid of the first ``n`` images titled "pred (true)"; mistakes in red.

    Inputs:
    - images: flattened images, shape (N, D), with D a square number unless
      image_shape is given (784 -> 28 x 28, 64 -> 8 x 8).
    - y_true, y_pred: int labels, shape (N,).
    - image_shape: (height, width) of one image, or None for square images.
    - n: how many images to show (at most N).
    - path: where to save the figure, or None.
    - title: figure title (default: how many of the shown images are wrong).
    """
    images = np.asarray(images)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    n = min(n, len(images))
    if image_shape is None:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"images have D = {images.shape[1]} columns, not a square; pass image_shape")
        image_shape = (side, side)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    wrong = int(np.sum(y_true[:n] != y_pred[:n]))
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i].reshape(image_shape), cmap="gray_r")
        ok = y_true[i] == y_pred[i]
        color = RIGHT_COLOR if ok else WRONG_COLOR
        ax.set_title(f"{y_pred[i]} ({y_true[i]})", color=color, fontsize=10)
        if not ok:
            for spine in ax.spines.values():
                spine.set_color(WRONG_COLOR)
                spine.set_linewidth(2.5)
    fig.suptitle(title or f"predicted (true): {wrong} of {n} wrong")
    return _finish(fig, path)


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Counts of label pairs.

    Inputs:
    - y_true, y_pred: int labels, shape (N,).
    - num_classes: C (default: 1 + the largest label seen).

    Returns:
    - int array M of shape (C, C): M[i, j] is the number of examples of true
      class i predicted as class j; the diagonal holds the correct ones.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} holds labels in {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}"
            )
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def plot_confusion_matrix(y_true, y_pred, *, num_classes=None, path=None):
    """The confusion matrix as a heat map with the counts written in.

    Inputs:
    - y_true, y_pred: int labels, shape (N,).
    - num_classes: C (default: 1 + the largest label seen).
    - path: where to save the figure, or None.
    """
    m = confusion_matrix(y_true, y_pred, num_classes)
    C = m.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * C, 0.6 + 0.55 * C))
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = m.max() / 2.0 if m.size else 0
    for i in range(C):
        for j in range(C):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] > threshold else "black")
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = m.sum()
    acc = np.trace(m) / total if total else float("nan")
    ax.set_title(f"confusion matrix (accuracy {100.0 * acc:.2f}%)")
    return _finish(fig, path)
