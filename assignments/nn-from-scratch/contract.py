"""Assignment 1's contract: the student-facing API the tests call.

Which graded module owns each function, each function's parameter names,
and how its arguments cross a process boundary. Plain data only: the
sandboxed worker imports this file (as nnkit.course.assignment_contract)
with nothing but the standard library. The parts and modules must agree
with config.toml's [assignment] parts and [files] (the kit's tests check).
"""

PARTS = ("activations", "forward", "backward", "training")
"""Graded parts in dependency order: each may use the ones before it."""

MODULE_OF_PART = {
    "activations": "activations",
    "forward": "forward",
    "backward": "backward",
    "training": "train",
}
"""Module name (inside the scratchnet package) of each part."""

FUNCTIONS = {
    "sigmoid": "activations",
    "sigmoid_derivative": "activations",
    "relu": "activations",
    "relu_derivative": "activations",
    "tanh": "activations",
    "tanh_derivative": "activations",
    "softmax": "activations",
    "init_params": "forward",
    "linear_forward": "forward",
    "forward": "forward",
    "cross_entropy": "forward",
    "predict": "forward",
    "softmax_cross_entropy_backward": "backward",
    "linear_backward": "backward",
    "backward": "backward",
    "one_hot": "training",
    "iterate_minibatches": "training",
    "sgd_step": "training",
    "accuracy": "training",
    "train": "training",
}
"""Part that owns each contract function."""

RNG_ARGUMENTS = {"init_params": "rng", "iterate_minibatches": "rng", "train": "rng"}
"""Functions taking a numpy Generator, and the parameter's name."""

GENERATOR_FUNCTIONS = frozenset({"iterate_minibatches"})
"""Functions whose result is a generator; it crosses as a list of its items."""

SIGNATURES = {
    "sigmoid": ("z",),
    "sigmoid_derivative": ("z",),
    "relu": ("z",),
    "relu_derivative": ("z",),
    "tanh": ("z",),
    "tanh_derivative": ("z",),
    "softmax": ("z",),
    "init_params": ("layer_sizes", "rng"),
    "linear_forward": ("A_prev", "W", "b"),
    "forward": ("params", "X", "activation"),
    "cross_entropy": ("probs", "Y"),
    "predict": ("params", "X", "activation"),
    "softmax_cross_entropy_backward": ("probs", "Y"),
    "linear_backward": ("dZ", "A_prev", "W"),
    "backward": ("params", "cache", "Y", "activation"),
    "one_hot": ("y", "num_classes"),
    "iterate_minibatches": ("X", "Y", "batch_size", "rng"),
    "sgd_step": ("params", "grads", "lr"),
    "accuracy": ("params", "X", "y", "activation"),
    "train": ("params", "X", "y", "epochs", "batch_size", "lr", "rng", "activation", "X_val", "y_val"),
}
"""Parameter names of each contract function, in order."""

