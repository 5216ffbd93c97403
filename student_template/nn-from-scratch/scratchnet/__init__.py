"""scratchnet: a fully connected neural network in NumPy, written from scratch.

Graded in Assignment 1 "Neural Networks from Scratch" (yours to complete):
activations.py, forward.py, backward.py, train.py.
Graded in Assignment 2 "Optimizers and Regularization": regularization.py,
batchnorm.py, optimizers.py, trainer.py; they build on Assignment 1's files.
Provided: data.py (datasets), gradcheck.py (numerical gradients), plots.py
(figures), cli.py (``python -m scratchnet.train``) and cli_advanced.py
(``python -m scratchnet.trainer``).
"""
