"""scratchnet: a fully connected neural network in NumPy, written from scratch.

Graded files (yours to complete): activations.py, forward.py, backward.py,
train.py. Provided: data.py (datasets), gradcheck.py (numerical gradients),
plots.py (figures) and cli.py (``python -m scratchnet.train``).
"""
