"""Assignment 1's end-to-end check: the reference computation of the hidden MNIST test.

nnkit.grading.end_to_end calls ``reference`` once per course secret and
configuration, in a subprocess where the reference package imports as
``scratchnet``, and caches what it returns; tests/hidden/test_mnist.py
compares the student's trained network against it. ``make bench`` trains
through the three hooks below (nnkit.benches.bench.BENCH_HOOKS).
"""
import numpy as np


def initial_params(layer_sizes, rng):
    """The network the graded configuration starts from: ``init_params(layer_sizes, rng)``."""
    from scratchnet.forward import init_params

    return init_params(layer_sizes, rng)


def train_epochs(params, X, y, *, epochs, batch_size, lr, rng, activation):
    """Train ``params`` in place with the reference's mini-batch SGD; returns its history."""
    from scratchnet.train import train

    return train(params, X, y, epochs=epochs, batch_size=batch_size, lr=lr, rng=rng, activation=activation)


def test_accuracy(params, X, y, activation):
    """The reference's accuracy of ``params`` on (X, y), a float in [0, 1]."""
    from scratchnet.train import accuracy

    return accuracy(params, X, y, activation)


def reference(cfg, seed, X_train, y_train, X_test, y_test):
    """Train the reference with the graded configuration.

    Inputs:
    - cfg: config.toml's [mnist] section (dict).
    - seed: the test's seed: parameters from ``init_params(layer_sizes, default_rng(seed))``,
      training with ``rng = default_rng(seed + 1)``.
    - X_train (60000, 784), y_train (60000,), X_test (10000, 784), y_test (10000,).

    Returns arrays to save: ``final_<key>`` for every trained parameter, ``loss``
    (the history, one per epoch) and ``test_accuracy`` (a 0-d array).
    """
    params = initial_params(cfg["layer_sizes"], np.random.default_rng(seed))
    history = train_epochs(params, X_train, y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                           lr=cfg["lr"], rng=np.random.default_rng(seed + 1), activation=cfg["activation"])
    acc = test_accuracy(params, X_test, y_test, cfg["activation"])
    return {**{f"final_{k}": v for k, v in params.items()},
            "loss": np.array(history["loss"]), "test_accuracy": np.array(acc)}
