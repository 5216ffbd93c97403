"""Parameters, the forward pass, the loss and predictions (graded part: forward).

Conventions used throughout the assignment:

- Examples are rows: X has shape (N, D); labels y have shape (N,); one-hot
  labels Y have shape (N, C).
- ``layer_sizes = [n0, n1, ..., nL]`` with n0 = D and nL = C. Hidden layers
  have H units (for example [784, 128, 10] has D = 784, H = 128, C = 10).
- ``params`` maps "W1", "b1", ..., "WL", "bL" to arrays; W_l has shape
  (n_{l-1}, n_l) and b_l has shape (n_l,).
- Hidden layers use the activation named by ``activation`` ("relu",
  "sigmoid" or "tanh"); the output layer is always softmax.

No function in this file modifies its inputs.
"""
import numpy as np

from scratchnet.activations import relu, sigmoid, softmax, tanh

_HIDDEN_ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}


def hidden_activation(name):
    """Return the hidden-layer activation function called ``name``.

    Raises ValueError naming the valid choices for an unknown name.
    """
    if name not in _HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}: expected one of {sorted(_HIDDEN_ACTIVATIONS)}"
        )
    return _HIDDEN_ACTIVATIONS[name]


def num_layers(params):
    """Number of layers L of a network, counted from its "W1", "W2", ... keys."""
    return sum(1 for key in params if key.startswith("W"))


def init_params(layer_sizes, rng):
    """He initialisation of a fully connected network.

    Inputs:
    - layer_sizes: list [n0, n1, ..., nL] of at least two positive ints.
    - rng: a numpy Generator (``np.random.default_rng(seed)``).

    Returns:
    - params: dict with, for l = 1..L,
      "W{l}" of shape (n_{l-1}, n_l) equal to
      ``rng.standard_normal((n_{l-1}, n_l)) * sqrt(2 / n_{l-1})``, and
      "b{l}" of shape (n_l,) filled with zeros; all float64.

    Draw the weights in the order W1, W2, ..., one ``standard_normal`` call
    per layer, so that the same seed always gives the same network.
    """
    params = {}
    for l in range(1, len(layer_sizes)):
        fan_in, fan_out = layer_sizes[l - 1], layer_sizes[l]
        params[f"W{l}"] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        params[f"b{l}"] = np.zeros(fan_out)
    return params


def linear_forward(A_prev, W, b):
    """Affine part of a layer: Z = A_prev @ W + b.

    Inputs:
    - A_prev: activations of the previous layer, shape (N, n_{l-1}).
    - W: weights, shape (n_{l-1}, n_l).
    - b: biases, shape (n_l,), broadcast over the N rows.

    Returns:
    - Z: pre-activations, shape (N, n_l).
    """
    return A_prev @ W + b


def forward(params, X, activation="relu"):
    """Forward pass of an L-layer network.

    Inputs:
    - params: dict of weights and biases (see the module docstring).
    - X: inputs of shape (N, D).
    - activation: name of the hidden-layer activation.

    Returns a tuple (probs, cache):
    - probs: shape (N, C), the softmax output; each row sums to 1.
    - cache: dict holding
      "A0" = X, shape (N, D), and for l = 1..L
      "Z{l}", the pre-activation of layer l, shape (N, n_l), and
      "A{l}", the activation of layer l, shape (N, n_l); "A{L}" is probs.
      You may store extra entries of your own; backward receives this dict.

    Hint: use ``hidden_activation(activation)`` for layers 1..L-1 and
    ``softmax`` for layer L.
    """
    act = hidden_activation(activation)
    L = num_layers(params)
    cache = {"A0": X}
    A = X
    for l in range(1, L + 1):
        Z = linear_forward(A, params[f"W{l}"], params[f"b{l}"])
        A = softmax(Z) if l == L else act(Z)
        cache[f"Z{l}"] = Z
        cache[f"A{l}"] = A
    return A, cache


def cross_entropy(probs, Y):
    """Mean cross-entropy loss.

    Inputs:
    - probs: predicted probabilities, shape (N, C).
    - Y: one-hot labels, shape (N, C).

    Returns:
    - loss: a Python float, mean over the N rows of
      ``-sum_c Y[i, c] * log(max(probs[i, c], 1e-12))``.

    The clip at 1e-12 keeps log(0) out of the sum when a probability
    underflows to zero.
    """
    N = probs.shape[0]
    return float(-np.sum(Y * np.log(np.maximum(probs, 1e-12))) / N)


def predict(params, X, activation="relu"):
    """Predicted class ids.

    Inputs:
    - params: dict of weights and biases.
    - X: inputs of shape (N, D).
    - activation: name of the hidden-layer activation.

    Returns:
    - int array of shape (N,): the index of the largest probability per row.
    """
    probs, _ = forward(params, X, activation)
    return np.argmax(probs, axis=1)
