"""L2 weight decay and inverted dropout (Assignment 2, graded part: regularization).

A graded part of Assignment 2 "Optimizers and Regularization".

Conventions are those of Assignment 1 (see forward.py): examples are rows,
``params`` maps "W1", "b1", ..., "WL", "bL" to float64 arrays, W_l has shape
(n_{l-1}, n_l) and b_l has shape (n_l,); hidden layers use the activation
named by ``activation`` ("relu", "sigmoid" or "tanh") and the output layer is
softmax. No function in this file modifies its inputs (the rng's state
advances, of course, when it draws numbers).

Dropout is "inverted": during training every hidden unit is kept with
probability 1 - p_drop and the kept ones are scaled by 1 / (1 - p_drop), so
the expected activation is unchanged and nothing needs rescaling at test
time (``predict`` and ``accuracy`` of Assignment 1 use no dropout).
"""
import numpy as np

from scratchnet.activations import softmax
from scratchnet.backward import hidden_derivative, linear_backward, softmax_cross_entropy_backward
from scratchnet.forward import hidden_activation, linear_forward, num_layers


def l2_penalty(params, lam):
    """L2 penalty of the weights: 0.5 * lam * sum over l of sum(W_l ** 2).

    Inputs:
    - params: dict "W1" (n0, n1), "b1" (n1,), ..., "WL", "bL".
    - lam: the regularization strength, a float >= 0.

    Returns:
    - a Python float. Only the weights "W{l}" count; the biases "b{l}" are
      not penalised. With lam == 0 the result is 0.0.
    """
    total = sum(float(np.sum(W * W)) for key, W in params.items())
    return 0.5 * lam * total


def l2_grads(params, grads, lam):
    """Add the gradient of ``l2_penalty(params, lam)`` to the gradients of the loss.

    Inputs:
    - params: dict "W1", "b1", ..., "WL", "bL" (see l2_penalty).
    - grads: dict with the same keys and shapes as params (e.g. from
      backward_dropout).
    - lam: the regularization strength, a float >= 0.

    Returns:
    - a new dict with the keys of grads where grads["W{l}"] becomes
      ``grads["W{l}"] + lam * params["W{l}"]`` (a new array) and every
      "b{l}" entry is the bias gradient unchanged.

    Neither params nor grads is modified.
    """
    return {key: g + lam * params[key] if key.startswith("W") else g for key, g in grads.items()}


def dropout_forward(A, p_drop, rng):
    """Inverted dropout of one layer's activations.

    Inputs:
    - A: activations, shape (N, n).
    - p_drop: probability of dropping a unit, 0 <= p_drop < 1.
    - rng: a numpy Generator.

    Returns a tuple (out, mask), both float64 of shape (N, n):
    - mask = (rng.random(A.shape) >= p_drop) / (1 - p_drop): each entry is
      0.0 (dropped) or 1 / (1 - p_drop) (kept), from exactly one
      ``rng.random(A.shape)`` call;
    - out = A * mask.

    With p_drop == 0 return ``(A.copy(), np.ones(A.shape))`` without calling
    the rng at all. Raise ValueError unless 0 <= p_drop < 1 (check this
    before anything else).
    """
    if not 0 <= p_drop < 1:
        raise ValueError(f"p_drop must satisfy 0 <= p_drop < 1, got {p_drop!r}")
    if p_drop == 0:
        return A.copy(), np.ones(A.shape)
    mask = (rng.random(A.shape) >= p_drop) / (1 - p_drop)
    return A * mask, mask


def dropout_backward(dout, mask):
    """Backward pass of ``out = A * mask`` for a fixed mask.

    Inputs:
    - dout: gradient of the loss with respect to out, shape (N, n).
    - mask: the mask that dropout_forward returned, shape (N, n).

    Returns:
    - dA: gradient with respect to A, ``dout * mask``, shape (N, n).
    """
    return dout * mask


def forward_dropout(params, X, activation, p_drop, rng):
    """Assignment 1's forward pass with dropout after every hidden activation.

    Inputs:
    - params: dict "W1", "b1", ..., "WL", "bL".
    - X: inputs, shape (N, D).
    - activation: name of the hidden-layer activation.
    - p_drop: dropout probability of the hidden units, 0 <= p_drop < 1.
    - rng: a numpy Generator, used only by dropout_forward.

    Returns a tuple (probs, cache):
    - probs: the softmax output, shape (N, C).
    - cache: dict holding "A0" = X, shape (N, D), and for l = 1..L
      "Z{l}" = A{l-1} @ W{l} + b{l}, shape (N, n_l), and "A{l}", shape (N, n_l).
      For a hidden layer (l < L), (A{l}, M{l}) = dropout_forward(g(Z{l}),
      p_drop, rng) with g the hidden activation: "A{l}" is the activation
      after its mask and "M{l}" is the mask. "A{L}" = softmax(Z{L}) is
      probs; the output layer has no dropout and no mask. You may store
      extra entries of your own; backward_dropout receives this dict.

    Call dropout_forward once per hidden layer, in the order 1, 2, ..., L-1:
    that is one ``rng.random`` call per hidden layer when p_drop > 0 and no
    rng call at all when p_drop == 0 (then probs equals Assignment 1's
    ``forward(params, X, activation)[0]``). Hint: reuse
    ``hidden_activation``, ``linear_forward`` and ``num_layers`` from
    scratchnet.forward and ``softmax`` from scratchnet.activations.
    """
    act = hidden_activation(activation)
    L = num_layers(params)
    cache = {"A0": X}
    A = X
    for l in range(1, L + 1):
        Z = linear_forward(A, params[f"W{l}"], params[f"b{l}"])
        cache[f"Z{l}"] = Z
        if l == L:
            A = softmax(Z)
        else:
            A, cache[f"M{l}"] = dropout_forward(act(Z), p_drop, rng)
        cache[f"A{l}"] = A
    return A, cache


def backward_dropout(params, cache, Y, activation):
    """Gradients of the cross-entropy of forward_dropout, its masks held fixed.

    Inputs:
    - params: dict "W1", "b1", ..., "WL", "bL".
    - cache: the cache that ``forward_dropout(params, X, activation, p_drop,
      rng)`` returned: "A0" (N, D); "Z{l}", "A{l}" (N, n_l) for l = 1..L;
      "M{l}" (N, n_l) for the hidden layers l = 1..L-1.
    - Y: one-hot labels, shape (N, C).
    - activation: name of the hidden-layer activation used in forward_dropout.

    Returns:
    - grads: dict with the same keys and shapes as params; grads["W{l}"] is
      the gradient with respect to params["W{l}"] of
      ``cross_entropy(probs, Y)``, where probs is computed from params and X
      exactly as forward_dropout did, with the same masks M{l}.

    As Assignment 1's backward, walking the layers from L down to 1
    (``softmax_cross_entropy_backward``, then ``linear_backward`` in every
    layer), except that in a hidden layer the gradient with respect to its
    masked activation A{l} first goes back through the mask
    (``dropout_backward`` with M{l}) and then through the activation's
    derivative at Z{l}. With all masks equal to 1 this is exactly
    Assignment 1's backward.
    """
    derivative = hidden_derivative(activation)
    L = num_layers(params)
    grads = {}
    dZ = softmax_cross_entropy_backward(cache[f"A{L}"], Y)
    for l in range(L, 0, -1):
        dA_prev, grads[f"W{l}"], grads[f"b{l}"] = linear_backward(
            dZ, cache[f"A{l - 1}"], params[f"W{l}"]
        )
        if l > 1:
            dZ = dropout_backward(dA_prev, cache[f"M{l - 1}"]) * derivative(cache[f"Z{l - 1}"])
    return grads
