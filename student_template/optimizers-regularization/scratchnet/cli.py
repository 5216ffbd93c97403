"""Train a network from the command line: ``python -m scratchnet.train`` (provided).

    python -m scratchnet.train                      # MNIST, the graded configuration
    python -m scratchnet.train --dataset moons      # a 2-D toy problem, in seconds
    python -m scratchnet.train --help               # every option

Trains with your ``init_params`` and ``train`` (one call per epoch, so a
progress bar can show the loss and the accuracy after each epoch), scores
the result with your ``accuracy`` and ``predict``, prints the test accuracy
and writes to --out (default build/train):

- curves.png       loss and test accuracy per epoch
- predictions.png  test images with predicted and true labels (for 2-D data:
                   the decision boundary)
- confusion.png    the confusion matrix on the test set
- params.npz       the trained parameters (``np.load`` gives them back)
- history.json     the settings, the curves and the final test accuracy

The accuracy curve uses the test set (these datasets have no separate
validation split), so it shows how training went, not a tuning signal.
"""
import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "digits", "moons", "xor")
ACTIVATIONS = ("relu", "sigmoid", "tanh")

# The graded MNIST configuration: the same numbers as [mnist] in
# assignments/nn-from-scratch/config.toml. Used only when that file cannot be
# read through nnkit.course.config (e.g. nnkit is not installed); the kit's tests
# check that the two agree.
MNIST_FALLBACK = {
    "layer_sizes": [784, 128, 10],
    "activation": "relu",
    "epochs": 3,
    "batch_size": 32,
    "lr": 0.2,
    "seed": 0,
}

# Settings for the small datasets; their layer sizes are [D, *hidden, C] with
# D and C read off the data.
TOY_DEFAULTS = {
    "digits": {"hidden": [64], "activation": "relu", "epochs": 30, "batch_size": 32, "lr": 0.1, "seed": 0},
    "moons": {"hidden": [32], "activation": "relu", "epochs": 100, "batch_size": 32, "lr": 0.2, "seed": 0},
    "xor": {"hidden": [16], "activation": "tanh", "epochs": 100, "batch_size": 32, "lr": 0.2, "seed": 0},
}

OUTPUT_FILES = ("curves.png", "predictions.png", "confusion.png", "params.npz", "history.json")


def mnist_defaults():
    """The [mnist] settings of the assignment config, or MNIST_FALLBACK without nnkit."""
    try:
        from nnkit.course.config import ConfigError, load_config
    except ImportError:
        return dict(MNIST_FALLBACK)
    try:
        m = load_config().mnist
    except ConfigError as exc:
        print(f"note: {exc}; using the built-in MNIST settings", file=sys.stderr)
        return dict(MNIST_FALLBACK)
    return {
        "layer_sizes": list(m.layer_sizes), "activation": m.activation, "epochs": m.epochs,
        "batch_size": m.batch_size, "lr": m.lr, "seed": m.seed,
    }


def load_dataset(name):
    """(X_train, y_train, X_test, y_test) of a dataset, shapes (N, D), (N,), (M, D), (M,).

    The toy datasets are drawn with fixed seeds, so --seed only changes the
    initial weights and the order of the mini-batches.
    """
    from scratchnet import data

    if name == "mnist":
        return data.load_mnist()
    if name == "digits":
        return data.load_digits()
    if name == "moons":
        return (*data.make_moons(400, seed=0), *data.make_moons(200, seed=1))
    if name == "xor":
        return (*data.make_xor(400, rng=np.random.default_rng(0)),
                *data.make_xor(200, rng=np.random.default_rng(1)))
    raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS}")


def build_parser():
    """The argument parser; options left out take the dataset's defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m scratchnet.train",
        description="Train a fully connected network with your scratchnet code and plot the results.",
    )
    parser.add_argument("--dataset", choices=DATASETS, default="mnist",
                        help="what to train on (default: mnist)")
    parser.add_argument("--layer-sizes", type=int, nargs="+", metavar="N",
                        help="n0 n1 ... nL with n0 = D and nL = C (default: 784 128 10 for MNIST "
                             "from the assignment config; [D, hidden, C] for the others)")
    parser.add_argument("--activation", choices=ACTIVATIONS, help="hidden-layer activation")
    parser.add_argument("--epochs", type=int, help="passes over the training data")
    parser.add_argument("--batch-size", type=int, help="examples per SGD step")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--seed", type=int, help="seed of the initial weights and the shuffling")
    parser.add_argument("--out", type=Path, default=Path("build/train"),
                        help="folder for the figures, params.npz and history.json (default: build/train)")
    return parser


def resolve_settings(args, D, C, parser):
    """Fill the options left out with the dataset's defaults and check them against D and C."""
    defaults = mnist_defaults() if args.dataset == "mnist" else dict(TOY_DEFAULTS[args.dataset])
    if "hidden" in defaults:
        defaults["layer_sizes"] = [D, *defaults.pop("hidden"), C]
    settings = {key: getattr(args, key) if getattr(args, key) is not None else value
                for key, value in defaults.items()}
    sizes = settings["layer_sizes"]
    if len(sizes) < 2 or sizes[0] != D or sizes[-1] != C:
        parser.error(f"--layer-sizes {' '.join(map(str, sizes))} does not fit {args.dataset}: "
                     f"the first size must be D = {D} and the last C = {C}")
    for key in ("epochs", "batch_size"):
        if settings[key] < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")
    if settings["lr"] <= 0:
        parser.error(f"--lr must be positive, got {settings['lr']}")
    return settings


def _epochs(n):
    """Range over epochs, as a tqdm progress bar when tqdm is installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None, range(n)
    bar = tqdm(range(n), desc="training", unit="epoch")
    return bar, bar


def train_and_evaluate(settings, X_train, y_train, X_test, y_test):
    """Train with init_params and train (one epoch per call), score with accuracy.

    Returns (params, history) where history has "loss", "val_accuracy" (on
    the test set) and "seconds" (training time of each epoch) lists.
    """
    from scratchnet.forward import init_params
    from scratchnet.train import accuracy, train

    rng = np.random.default_rng(settings["seed"])
    params = init_params(settings["layer_sizes"], rng)
    history = {"loss": [], "val_accuracy": [], "seconds": []}
    bar, epochs = _epochs(settings["epochs"])
    for epoch in epochs:
        start = time.perf_counter()
        # One epoch per call with the same rng gives exactly the trajectory of
        # a single call with all the epochs (train uses the rng once per epoch).
        h = train(params, X_train, y_train, epochs=1, batch_size=settings["batch_size"],
                  lr=settings["lr"], rng=rng, activation=settings["activation"])
        history["seconds"].append(time.perf_counter() - start)
        history["loss"].append(float(h["loss"][0]))
        history["val_accuracy"].append(accuracy(params, X_test, y_test, settings["activation"]))
        status = {"loss": f"{history['loss'][-1]:.4f}", "test acc": f"{100 * history['val_accuracy'][-1]:.2f}%"}
        if bar is not None:
            bar.set_postfix(status)
        else:
            print(f"epoch {epoch + 1}/{settings['epochs']}: loss {status['loss']}, test acc {status['test acc']}")
    return params, history


def write_outputs(out, settings, dataset, params, history, X_test, y_test):
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
    C = settings["layer_sizes"][-1]

    figures = [plots.plot_training_curves(history, path=out / "curves.png", val_label="test accuracy")]
    if X_test.shape[1] == 2:
        figures.append(plots.plot_decision_boundary(
            lambda points: predict(params, points, activation), X_test, y_test,
            path=out / "predictions.png", title=f"{dataset}: decision boundary and test points"))
    else:
        # The first test images, with the first few mistakes mixed in so the grid shows some.
        wrong = np.flatnonzero(y_pred != y_test)
        shown = np.sort(np.concatenate([wrong[:8], np.flatnonzero(y_pred == y_test)[:25 - len(wrong[:8])]]))
        title = (f"predicted (true): first test images, with the first {len(wrong[:8])} of the "
                 f"{len(wrong)} mistakes in {len(y_test)}")
        figures.append(plots.plot_predictions(X_test[shown], y_test[shown], y_pred[shown], n=len(shown),
                                              path=out / "predictions.png", title=title))
    figures.append(plots.plot_confusion_matrix(y_test, y_pred, num_classes=C, path=out / "confusion.png"))
    for fig in figures:
        plots.close(fig)

    np.savez(out / "params.npz", **params)
    record = {"dataset": dataset, **settings, "loss": history["loss"],
              "val_accuracy": history["val_accuracy"], "validation_set": "test",
              "seconds_per_epoch": history["seconds"], "test_accuracy": test_accuracy}
    (out / "history.json").write_text(json.dumps(record, indent=2) + "\n")
    return test_accuracy


def unfinished_message(exc):
    """One line naming the function that raised NotImplementedError, and where it lives."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    path = Path(frame.filename)
    where = f"scratchnet/{path.name}" if path.parent.name == "scratchnet" else str(path)
    return (f"{frame.name}() in {where} is not implemented yet (it raises NotImplementedError). "
            "Complete it, then run this command again.")


def main(argv=None):
    """Parse the command line, train, print the test accuracy, write the outputs.

    Exits with status 1 and a one-line message when a scratchnet function is
    still a stub or the dataset cannot be loaded; returns 0 otherwise.
    """
    from scratchnet.data import DatasetError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        X_train, y_train, X_test, y_test = load_dataset(args.dataset)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    D = X_train.shape[1]
    C = int(max(y_train.max(), y_test.max())) + 1
    settings = resolve_settings(args, D, C, parser)
    print(f"{args.dataset}: {len(X_train)} training and {len(X_test)} test examples; "
          f"layers {settings['layer_sizes']}, {settings['activation']}, {settings['epochs']} epochs, "
          f"batch size {settings['batch_size']}, lr {settings['lr']}, seed {settings['seed']}")
    try:
        params, history = train_and_evaluate(settings, X_train, y_train, X_test, y_test)
        test_accuracy = write_outputs(args.out, settings, args.dataset, params, history, X_test, y_test)
    except NotImplementedError as exc:
        print(f"error: {unfinished_message(exc)}", file=sys.stderr)
        raise SystemExit(1) from None
    seconds = sum(history["seconds"])
    print(f"training took {seconds:.2f} s ({seconds / len(history['seconds']):.3g} s per epoch)")
    print(f"test accuracy: {100 * test_accuracy:.2f}%")
    print(f"wrote {', '.join(OUTPUT_FILES)} to {args.out}")
    return 0
