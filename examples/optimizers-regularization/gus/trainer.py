"""Training with optimizers, L2, dropout and a schedule (Assignment 2, graded part: trainer).

A graded part of Assignment 2 "Optimizers and Regularization".

``train_advanced`` is Assignment 1's ``train`` with the pieces of this
assignment plugged in: forward_dropout and backward_dropout instead of
forward and backward, the L2 penalty, a choice of optimizer and an optional
cosine learning-rate schedule.

Run ``python -m scratchnet.trainer --help`` to train on MNIST from the
command line; the command-line interface itself lives in
scratchnet/cli_advanced.py.
"""
import numpy as np

from scratchnet.forward import cross_entropy
from scratchnet.optimizers import (
    adam_init, adam_step, cosine_lr, momentum_init, momentum_step, rmsprop_init, rmsprop_step,
)
from scratchnet.regularization import backward_dropout, forward_dropout, l2_grads, l2_penalty
from scratchnet.train import accuracy, iterate_minibatches, one_hot, sgd_step

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
"""The values ``optimizer`` may take."""

SCHEDULES = (None, "cosine")
"""The values ``schedule`` may take."""


def train_advanced(params, X, y, *, epochs, batch_size, lr, rng, optimizer="adam",
                   activation="relu", lam=0.0, p_drop=0.0, schedule=None,
                   X_val=None, y_val=None):
    """Train a network with an optimizer, L2 and dropout, updating ``params`` in place.

    Inputs:
    - params: dict "W1", "b1", ..., "WL", "bL"; updated by every step.
    - X: training inputs, shape (N, D); y: int labels, shape (N,).
    - epochs: number of passes over the data.
    - batch_size: B, a positive int.
    - lr: the (initial) learning rate, a positive float.
    - rng: a numpy Generator, used only by iterate_minibatches (once per
      epoch) and forward_dropout (once per hidden layer per batch when
      p_drop > 0), in the order the steps below call them.
    - optimizer: "sgd" (Assignment 1's sgd_step), "momentum", "rmsprop" or
      "adam" (the functions of scratchnet.optimizers with their default
      hyperparameters). Its state is created once, by its ``*_init``,
      before the first epoch.
    - activation: name of the hidden-layer activation.
    - lam: L2 strength, a float >= 0.
    - p_drop: dropout probability of the hidden units, 0 <= p_drop < 1.
    - schedule: None (constant lr) or "cosine".
    - X_val, y_val: optional validation data, shapes (M, D) and (M,).

    Raises ValueError, naming the allowed values, for an optimizer not in
    OPTIMIZERS or a schedule not in SCHEDULES (before any training).

    Each epoch is one pass of
    ``iterate_minibatches(X, one_hot(y, C), batch_size, rng)`` with
    C = params["WL"].shape[1] (L the number of layers), so there are
    n_batches = ceil(N / B) batches per epoch. For the batch (Xb, Yb) at
    global step t (counted from 0 over all epochs):
    1. lr_t = cosine_lr(lr, t, epochs * n_batches) if schedule == "cosine",
       else lr;
    2. probs, cache = forward_dropout(params, Xb, activation, p_drop, rng);
    3. the batch loss is cross_entropy(probs, Yb) + l2_penalty(params, lam);
    4. grads = l2_grads(params, backward_dropout(params, cache, Yb, activation), lam);
    5. one step of the optimizer with learning rate lr_t.

    Returns:
    - history: dict with
      "loss": a list of ``epochs`` floats, history["loss"][e] the mean over
      epoch e's batches of the batch loss (step 3, before that batch's
      update);
      "lr": a list of ``epochs`` floats, the lr_t of each epoch's first step;
      and, when X_val is given, "val_accuracy": a list of ``epochs`` floats,
      Assignment 1's ``accuracy(params, X_val, y_val, activation)`` (no
      dropout) after each epoch.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: expected one of {OPTIMIZERS}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: expected one of {SCHEDULES}")
    L = len(params)
    Y = one_hot(y, params[f"W{L}"].shape[1])
    n_batches = (X.shape[0] + batch_size - 1) // batch_size
    total_steps = epochs * n_batches
    if optimizer == "momentum":
        state = momentum_init(params)
    elif optimizer == "rmsprop":
        state = rmsprop_init(params)
    elif optimizer == "adam":
        state = adam_init(params)
    history = {"loss": [], "lr": []}
    if X_val is not None:
        history["val_accuracy"] = []
    t = 0
    for _ in range(epochs):
        losses = []
        for Xb, Yb in iterate_minibatches(X, Y, batch_size, rng):
            lr_t = cosine_lr(lr, t, total_steps) if schedule == "cosine" else lr
            if not losses:
                history["lr"].append(float(lr_t))
            probs, cache = forward_dropout(params, Xb, activation, p_drop, rng)
            losses.append(cross_entropy(probs, Yb) + l2_penalty(params, lam))
            grads = l2_grads(params, backward_dropout(params, cache, Yb, activation), lam)
            if optimizer == "sgd":
                sgd_step(params, grads, lr_t)
            elif optimizer == "momentum":
                momentum_step(params, grads, state, lr_t)
            elif optimizer == "rmsprop":
                rmsprop_step(params, grads, state, lr_t)
            else:
                adam_step(params, grads, state, lr_t)
            t += 1
        history["loss"].append(float(np.mean(losses)))
        if X_val is not None:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
    return history


if __name__ == "__main__":
    from scratchnet.cli_advanced import main_advanced

    main_advanced()
