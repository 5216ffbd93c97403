"""Backpropagation through the network of forward.py (graded part: backward).

Shapes use the letters of forward.py: N examples, layer l has n_l units,
C classes. Every gradient has the shape of the quantity it differentiates.
No function in this file modifies its inputs.
"""
import numpy as np

from scratchnet.activations import relu_derivative, sigmoid_derivative, tanh_derivative

_DERIVATIVES = {
    "relu": relu_derivative,
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
}


def hidden_derivative(name):
    """Return the derivative of the hidden-layer activation called ``name``.

    Raises ValueError naming the valid choices for an unknown name.
    """
    if name not in _DERIVATIVES:
        raise ValueError(f"unknown activation {name!r}: expected one of {sorted(_DERIVATIVES)}")
    return _DERIVATIVES[name]


def softmax_cross_entropy_backward(probs, Y):
    """Gradient of the mean cross-entropy with respect to the output scores.

    Inputs:
    - probs: softmax output, shape (N, C).
    - Y: one-hot labels, shape (N, C).

    Returns:
    - dZ_L: shape (N, C), equal to (probs - Y) / N.

    The 1 / N comes from the loss being a mean over the N rows.
    """
    return (probs - Y) / probs.shape[0]


def linear_backward(dZ, A_prev, W):
    """Backward pass of Z = A_prev @ W + b.

    Inputs:
    - dZ: gradient of the loss with respect to Z, shape (N, n_l).
    - A_prev: the layer's input, shape (N, n_{l-1}).
    - W: the layer's weights, shape (n_{l-1}, n_l).

    Returns a tuple (dA_prev, dW, db):
    - dA_prev: shape (N, n_{l-1}), gradient with respect to A_prev.
    - dW: shape (n_{l-1}, n_l), gradient with respect to W.
    - db: shape (n_l,), gradient with respect to b.

    dZ already carries the 1 / N of the mean loss: do not divide again.
    """
    dA_prev = dZ @ W.T
    dW = A_prev.T @ dZ
    db = dZ.sum(axis=0)
    return dA_prev, dW, db


def backward(params, cache, Y, activation="relu"):
    """Gradients of ``cross_entropy(forward(params, X)[0], Y)``.

    Inputs:
    - params: dict of weights and biases, "W1", "b1", ..., "WL", "bL".
    - cache: the cache that ``forward(params, X, activation)`` returned:
      "A0" (N, D), and "Z{l}", "A{l}" (N, n_l) for l = 1..L.
    - Y: one-hot labels, shape (N, C).
    - activation: name of the hidden-layer activation used in forward.

    Returns:
    - grads: dict with the same keys and shapes as params; grads["W{l}"] is
      the gradient of the mean loss with respect to params["W{l}"].

    Walk the layers from L down to 1: start from
    ``softmax_cross_entropy_backward``, use ``linear_backward`` in every
    layer, and in hidden layers multiply by the activation's derivative at
    the pre-activation Z{l} (``hidden_derivative(activation)``).
    """
    derivative = hidden_derivative(activation)
    L = sum(1 for key in params if key.startswith("W"))
    grads = {}
    dZ = softmax_cross_entropy_backward(cache[f"A{L}"], Y)
    for l in range(L, 0, -1):
        dA_prev, grads[f"W{l}"], grads[f"b{l}"] = linear_backward(
            dZ, cache[f"A{l - 1}"], params[f"W{l}"]
        )
        if l > 1:
            dZ = dA_prev * derivative(cache[f"Z{l - 1}"])
    return grads
