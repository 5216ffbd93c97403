"""Assignment 2's contract: the student-facing API the tests call.

Which graded module owns each function, each function's parameter names,
and how its arguments cross a process boundary. Plain data only: the
sandboxed worker imports this file (as nnkit.course.assignment_contract)
with nothing but the standard library. The parts and modules must agree
with config.toml's [assignment] parts and [files] (the kit's tests check).

Assignment 1's modules (activations, forward, backward, train) are provided
code here: their functions are not part of this contract.
"""

PARTS = ("regularization", "batchnorm", "optimizers", "trainer")
"""Graded parts in dependency order: each may use the ones before it."""

MODULE_OF_PART = {
    "regularization": "regularization",
    "batchnorm": "batchnorm",
    "optimizers": "optimizers",
    "trainer": "trainer",
}
"""Module name (inside the scratchnet package) of each part."""

FUNCTIONS = {
    "l2_penalty": "regularization",
    "l2_grads": "regularization",
    "dropout_forward": "regularization",
    "dropout_backward": "regularization",
    "forward_dropout": "regularization",
    "backward_dropout": "regularization",
    "batchnorm_forward": "batchnorm",
    "batchnorm_backward": "batchnorm",
    "batchnorm_eval": "batchnorm",
    "running_stats": "batchnorm",
    "momentum_init": "optimizers",
    "momentum_step": "optimizers",
    "rmsprop_init": "optimizers",
    "rmsprop_step": "optimizers",
    "adam_init": "optimizers",
    "adam_step": "optimizers",
    "cosine_lr": "optimizers",
    "train_advanced": "trainer",
}
"""Part that owns each contract function."""

RNG_ARGUMENTS = {"dropout_forward": "rng", "forward_dropout": "rng", "train_advanced": "rng"}
"""Functions taking a numpy Generator, and the parameter's name."""

GENERATOR_FUNCTIONS = frozenset()
"""Functions whose result is a generator; it crosses as a list of its items."""

SIGNATURES = {
    "l2_penalty": ("params", "lam"),
    "l2_grads": ("params", "grads", "lam"),
    "dropout_forward": ("A", "p_drop", "rng"),
    "dropout_backward": ("dout", "mask"),
    "forward_dropout": ("params", "X", "activation", "p_drop", "rng"),
    "backward_dropout": ("params", "cache", "Y", "activation"),
    "batchnorm_forward": ("Z", "gamma", "beta", "eps"),
    "batchnorm_backward": ("dout", "cache"),
    "batchnorm_eval": ("Z", "gamma", "beta", "mean", "var", "eps"),
    "running_stats": ("mean", "var", "Z", "momentum"),
    "momentum_init": ("params",),
    "momentum_step": ("params", "grads", "state", "lr", "beta"),
    "rmsprop_init": ("params",),
    "rmsprop_step": ("params", "grads", "state", "lr", "rho", "eps"),
    "adam_init": ("params",),
    "adam_step": ("params", "grads", "state", "lr", "beta1", "beta2", "eps"),
    "cosine_lr": ("lr0", "step", "total_steps", "lr_min"),
    "train_advanced": ("params", "X", "y", "epochs", "batch_size", "lr", "rng", "optimizer", "activation", "lam",
                       "p_drop", "schedule", "X_val", "y_val"),
}
"""Parameter names of each contract function, in order (keyword-only ones after the others)."""
