"""Train on MNIST with Assignment 2's trainer: ``python -m scratchnet.trainer`` (provided).

    python -m scratchnet.trainer                        # the graded configuration
    python -m scratchnet.trainer --train-size 5000      # a quick run on the first 5000 images
    python -m scratchnet.trainer --optimizer sgd --lr 0.1 --schedule none
    python -m scratchnet.trainer --help                 # every option

Draws the initial weights with your ``init_params`` and
``np.random.default_rng(seed)``, trains with one call of your
``train_advanced`` (with ``rng = np.random.default_rng(seed + 1)``, as the
grader does, and the test set as validation data, so the history has one
test accuracy per epoch), prints the test accuracy and writes to --out
(default build/train):

- curves.png       loss, test accuracy and learning rate per epoch
- confusion.png    the confusion matrix on the test set
- params.npz       the trained parameters (``np.load`` gives them back)
- history.json     the settings, the curves ("lr_per_epoch" is the history's
                   "lr"), the training time and the final test accuracy

Training is one call (not one call per epoch as in Assignment 1's command):
the cosine schedule spans all the epochs of a call, so calls of one epoch
each would restart it. The accuracy curve uses the test set (MNIST has no
separate validation split here), so it shows how training went, not a
tuning signal.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from scratchnet.cli import ACTIVATIONS, unfinished_message

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    try:
        import tomli as tomllib
    except ImportError:  # then MNIST_FALLBACK is used
        tomllib = None

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
SCHEDULES = ("cosine", "none")

CONFIG_PARTS = ("assignments", "optimizers-regularization", "config.toml")
"""Where Assignment 2's config.toml lives, relative to the kit's root."""

# The graded MNIST configuration of Assignment 2: the same numbers as [mnist]
# in assignments/optimizers-regularization/config.toml. Used only when that
# file cannot be found or read (e.g. in a student release).
MNIST_FALLBACK = {
    "layer_sizes": [784, 128, 10],
    "activation": "relu",
    "optimizer": "adam",
    "epochs": 3,
    "batch_size": 128,
    "lr": 0.008,
    "lam": 1e-4,
    "p_drop": 0.1,
    "schedule": "cosine",
    "seed": 0,
}

OUTPUT_FILES = ("curves.png", "confusion.png", "params.npz", "history.json")


def config_path():
    """Assignment 2's config.toml in this package's folder or one of its parents, or None."""
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        candidate = folder.joinpath(*CONFIG_PARTS)
        if candidate.is_file():
            return candidate
    return None


def mnist_defaults(path=None):
    """The [mnist] settings of Assignment 2's config.toml, or MNIST_FALLBACK if it cannot be read.

    A config without a "schedule" key means no schedule (TOML has no null).
    """
    path = path or config_path()
    if path is None or tomllib is None:
        return dict(MNIST_FALLBACK)
    try:
        with open(path, "rb") as f:
            m = tomllib.load(f)["mnist"]
        return {key: m.get(key) if key == "schedule" else m[key] for key in MNIST_FALLBACK}
    except (OSError, KeyError, ValueError) as exc:
        print(f"note: cannot read [mnist] of {path} ({exc!r}); using the built-in MNIST settings",
              file=sys.stderr)
        return dict(MNIST_FALLBACK)


def build_parser():
    """The argument parser; options left out take the values of the graded configuration."""
    parser = argparse.ArgumentParser(
        prog="python -m scratchnet.trainer",
        description="Train on MNIST with your train_advanced (Assignment 2) and plot the results.",
    )
    parser.add_argument("--layer-sizes", type=int, nargs="+", metavar="N",
                        help="n0 n1 ... nL with n0 = 784 and nL = 10 (default: the assignment config)")
    parser.add_argument("--activation", choices=ACTIVATIONS, help="hidden-layer activation")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="the optimizer")
    parser.add_argument("--epochs", type=int, help="passes over the training data")
    parser.add_argument("--batch-size", type=int, help="examples per step")
    parser.add_argument("--lr", type=float, help="(initial) learning rate")
    parser.add_argument("--lam", type=float, help="L2 strength")
    parser.add_argument("--p-drop", type=float, help="dropout probability of the hidden units")
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    parser.add_argument("--seed", type=int,
                        help="seed of the initial weights; the training rng uses seed + 1")
    parser.add_argument("--train-size", type=int, metavar="N",
                        help="train on the first N training images only (default: all 60000)")
    parser.add_argument("--out", type=Path, default=Path("build/train"),
                        help="folder for the figures, params.npz and history.json (default: build/train)")
    return parser


def resolve_settings(args, D, C, parser):
    """The configuration's settings with the options given on the command line, checked against D and C."""
    settings = mnist_defaults()
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if settings["schedule"] == "none":
        settings["schedule"] = None
    sizes = settings["layer_sizes"]
    if len(sizes) < 2 or sizes[0] != D or sizes[-1] != C:
        parser.error(f"--layer-sizes {' '.join(map(str, sizes))} does not fit MNIST: "
                     f"the first size must be D = {D} and the last C = {C}")
    for key in ("epochs", "batch_size"):
        if settings[key] < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")
    if settings["lr"] <= 0:
        parser.error(f"--lr must be positive, got {settings['lr']}")
    if settings["lam"] < 0:
        parser.error(f"--lam must be at least 0, got {settings['lam']}")
    if not 0 <= settings["p_drop"] < 1:
        parser.error(f"--p-drop must satisfy 0 <= p < 1, got {settings['p_drop']}")
    return settings


def train_and_evaluate(settings, X_train, y_train, X_test, y_test):
    """One call of train_advanced from init_params(default_rng(seed)) with rng default_rng(seed + 1).

    Returns (params, history, seconds): the history of train_advanced (with
    "val_accuracy" on the test set) and the training time in seconds.
    """
    from scratchnet.forward import init_params
    from scratchnet.trainer import train_advanced

    params = init_params(settings["layer_sizes"], np.random.default_rng(settings["seed"]))
    start = time.perf_counter()
    history = train_advanced(
        params, X_train, y_train, epochs=settings["epochs"], batch_size=settings["batch_size"],
        lr=settings["lr"], rng=np.random.default_rng(settings["seed"] + 1),
        optimizer=settings["optimizer"], activation=settings["activation"], lam=settings["lam"],
        p_drop=settings["p_drop"], schedule=settings["schedule"], X_val=X_test, y_val=y_test)
    return params, history, time.perf_counter() - start


def write_outputs(out, settings, params, history, seconds, X_test, y_test):
    """Write the figures, params.npz and history.json into ``out``; return the test accuracy."""
    try:
        from scratchnet import plots
    except ImportError as exc:
        print(f"error: the figures need matplotlib ({exc}); install it with `pip install matplotlib`",
              file=sys.stderr)
        raise SystemExit(1) from None
    from scratchnet.forward import predict
    from scratchnet.train import accuracy

    out.mkdir(parents=True, exist_ok=True)
    activation = settings["activation"]
    test_accuracy = accuracy(params, X_test, y_test, activation)
    y_pred = np.asarray(predict(params, X_test, activation))
    figures = [
        plots.plot_training_curves(history, path=out / "curves.png", val_label="test accuracy"),
        plots.plot_confusion_matrix(y_test, y_pred, num_classes=settings["layer_sizes"][-1],
                                    path=out / "confusion.png"),
    ]
    for fig in figures:
        plots.close(fig)
    np.savez(out / "params.npz", **params)
    # "lr" is the configured (initial) learning rate; "lr_per_epoch" the history's "lr".
    record = {"dataset": "mnist", **settings, "loss": list(history["loss"]),
              "val_accuracy": list(history.get("val_accuracy", [])), "validation_set": "test",
              "lr_per_epoch": list(history.get("lr", [])), "seconds": seconds,
              "test_accuracy": test_accuracy}
    (out / "history.json").write_text(json.dumps(record, indent=2) + "\n")
    return test_accuracy


def main_advanced(argv=None):
    """Parse the command line, train, print the test accuracy, write the outputs.

    Exits with status 1 and a one-line message when a scratchnet function is
    still a stub or MNIST cannot be loaded; returns 0 otherwise.
    """
    from scratchnet.data import DatasetError, load_mnist

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.train_size is not None and args.train_size < 1:
        parser.error(f"--train-size must be at least 1, got {args.train_size}")
    try:
        X_train, y_train, X_test, y_test = load_mnist()
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.train_size is not None:
        X_train, y_train = X_train[:args.train_size], y_train[:args.train_size]
    settings = resolve_settings(args, X_train.shape[1], 10, parser)
    schedule = settings["schedule"] or "constant lr"
    print(f"mnist: {len(X_train)} training and {len(X_test)} test examples; layers {settings['layer_sizes']}, "
          f"{settings['activation']}, {settings['optimizer']}, {settings['epochs']} epochs, "
          f"batch size {settings['batch_size']}, lr {settings['lr']} ({schedule}), lam {settings['lam']}, "
          f"p_drop {settings['p_drop']}, seed {settings['seed']}")
    print("training (one call of train_advanced) ...", flush=True)
    try:
        params, history, seconds = train_and_evaluate(settings, X_train, y_train, X_test, y_test)
        test_accuracy = write_outputs(args.out, settings, params, history, seconds, X_test, y_test)
    except NotImplementedError as exc:
        print(f"error: {unfinished_message(exc)}", file=sys.stderr)
        raise SystemExit(1) from None
    for epoch, loss in enumerate(history["loss"], 1):
        line = f"epoch {epoch}/{settings['epochs']}: loss {loss:.4f}"
        if len(history.get("val_accuracy", [])) >= epoch:
            line += f", test acc {100 * history['val_accuracy'][epoch - 1]:.2f}%"
        if len(history.get("lr", [])) >= epoch:
            line += f", lr {history['lr'][epoch - 1]:.3g}"
        print(line)
    print(f"training took {seconds:.2f} s ({seconds / settings['epochs']:.3g} s per epoch)")
    print(f"test accuracy: {100 * test_accuracy:.2f}%")
    print(f"wrote {', '.join(OUTPUT_FILES)} to {args.out}")
    return 0
