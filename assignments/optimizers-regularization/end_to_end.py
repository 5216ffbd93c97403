"""Assignment 2's end-to-end check: the reference computation of the hidden MNIST test.

nnkit.grading.end_to_end calls ``reference`` once per course secret and
configuration, in a subprocess where the reference package imports as
``scratchnet``, and caches what it returns; tests/hidden/test_mnist.py
compares the student's trained network against it.
"""
import numpy as np


def reference(cfg, seed, X_train, y_train, X_test, y_test):
    """Train the reference with the graded configuration.

    Inputs:
    - cfg: config.toml's [mnist] section (dict); its training options beyond
      the common keys (optimizer, lam, p_drop, schedule, ...) are under cfg["options"].
    - seed: the test's seed: parameters from ``init_params(layer_sizes, default_rng(seed))``,
      training with ``rng = default_rng(seed + 1)``.
    - X_train (60000, 784), y_train (60000,), X_test (10000, 784), y_test (10000,).

    Returns arrays to save: ``final_<key>`` for every trained parameter, ``loss``
    (the history, one per epoch) and ``test_accuracy`` (a 0-d array).
    """
    from scratchnet import forward, train, trainer

    params = forward.init_params(cfg["layer_sizes"], np.random.default_rng(seed))
    history = trainer.train_advanced(params, X_train, y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                                     lr=cfg["lr"], rng=np.random.default_rng(seed + 1), activation=cfg["activation"],
                                     **cfg.get("options", {}))
    acc = train.accuracy(params, X_test, y_test, cfg["activation"])
    return {**{f"final_{k}": v for k, v in params.items()},
            "loss": np.array(history["loss"]), "test_accuracy": np.array(acc)}
