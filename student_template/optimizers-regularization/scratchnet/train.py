"""Mini-batch stochastic gradient descent (graded part: training).

Run ``python -m scratchnet.train --help`` to train a network from the
command line; the command-line interface itself lives in scratchnet/cli.py.
"""
import numpy as np

from scratchnet.backward import backward
from scratchnet.forward import cross_entropy, forward, predict


def one_hot(y, num_classes):
    """One-hot encode integer labels.

    Inputs:
    - y: int array of shape (N,) with values in 0..C-1.
    - num_classes: C.

    Returns:
    - Y: float64 array of shape (N, C) with Y[i, y[i]] = 1.0 and 0.0 elsewhere.
    """
    Y = np.zeros((len(y), num_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def iterate_minibatches(X, Y, batch_size, rng):
    """Yield shuffled mini-batches covering every example once.

    Inputs:
    - X: inputs, shape (N, D).
    - Y: one-hot labels, shape (N, C).
    - batch_size: B, a positive int.
    - rng: a numpy Generator.

    Yields tuples (X_batch, Y_batch) of shapes (B, D) and (B, C): with
    ``order = rng.permutation(N)``, the k-th batch holds the rows
    ``order[k * B:(k + 1) * B]``. The last batch is smaller when B does not
    divide N; do not drop it. Call the rng exactly once (for the permutation).
    """
    N = X.shape[0]
    order = rng.permutation(N)
    for start in range(0, N, batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], Y[idx]


def sgd_step(params, grads, lr):
    """One step of gradient descent, in place.

    Inputs:
    - params: dict of arrays; updated so that params[k] becomes
      params[k] - lr * grads[k] for every key k.
    - grads: dict with the same keys and shapes as params.
    - lr: learning rate, a positive float.

    Returns None.
    """
    for key in params:
        params[key] -= lr * grads[key]


def accuracy(params, X, y, activation="relu"):
    """Fraction of correctly classified examples.

    Inputs:
    - params: dict of weights and biases.
    - X: inputs, shape (N, D).
    - y: int labels, shape (N,).
    - activation: name of the hidden-layer activation.

    Returns:
    - a Python float in [0, 1].
    """
    return float(np.mean(predict(params, X, activation) == y))


def train(params, X, y, *, epochs, batch_size, lr, rng, activation="relu",
          X_val=None, y_val=None):
    """Train a network with mini-batch SGD, updating ``params`` in place.

    Inputs:
    - params: dict of weights and biases; updated by every step.
    - X: training inputs, shape (N, D); y: int labels, shape (N,).
    - epochs: number of passes over the data.
    - batch_size: B; lr: learning rate.
    - rng: a numpy Generator, used only by iterate_minibatches (once per epoch).
    - activation: name of the hidden-layer activation.
    - X_val, y_val: optional validation data, shapes (M, D) and (M,).

    Returns:
    - history: dict with "loss", a list of ``epochs`` floats, where
      history["loss"][e] is the mean over epoch e's batches of the batch
      loss computed before that batch's update; and, when X_val is given,
      "val_accuracy", a list of ``epochs`` floats measured after each epoch.

    Each epoch is one pass of
    ``iterate_minibatches(X, one_hot(y, C), batch_size, rng)`` with
    C = params["WL"].shape[1] (L the number of layers); for every batch:
    forward, cross_entropy, backward, sgd_step.
    """
    L = sum(1 for key in params if key.startswith("W"))
    Y = one_hot(y, params[f"W{L}"].shape[1])
    history = {"loss": []}
    if X_val is not None:
        history["val_accuracy"] = []
    for _ in range(epochs):
        losses = []
        for X_batch, Y_batch in iterate_minibatches(X, Y, batch_size, rng):
            probs, cache = forward(params, X_batch, activation)
            losses.append(cross_entropy(probs, Y_batch))
            sgd_step(params, backward(params, cache, Y_batch, activation), lr)
        history["loss"].append(float(np.mean(losses)))
        if X_val is not None:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
    return history


if __name__ == "__main__":
    from scratchnet.cli import main

    main()
