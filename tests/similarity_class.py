"""A generated class for the similarity report's tests.

An honest student is the released template with every stub replaced by one of
several correct ways to write that function (``ALTERNATIVES``: loops or
vectorised, helpers or inline, other NumPy calls), written with a few habits of
their own (``HABITS``: how an input is cast, how the layers are counted, how a
parameter key is built, how 1 is written) and small choices of their own.
``honest_class`` draws students so that no two write more than a few
functions the same way, and at most one of the long ones: they may still
share short standard lines.

A disguised copy takes one student's files and renames local variables
(``rename_locals``), reorders the functions (``reorder_functions``), rewrites
the comments (``recomment``) or the whitespace (``respace``); the last copy does
all of it with one function swapped in from another student. A template-only
submission is the template with one or two short functions filled in.

``check_correct`` imports each generated package in a subprocess and compares
every contract function with the reference, so the generator cannot drift into
writing wrong code.
"""
from __future__ import annotations

import ast
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.course.config import ROOT
from nnkit.course.config import TEMPLATE_ROOT

TEMPLATE_DIR = TEMPLATE_ROOT / "scratchnet"
REFERENCE_DIR = ROOT / "solutions" / "scratchnet"
GRADED = ("activations.py", "forward.py", "backward.py", "train.py")


@dataclass(frozen=True)
class Alt:
    """One correct way to write one function."""

    body: str
    """The function's body (4-space indented), with habit placeholders (CAST(x), ONE, NL, KEY("W", l))
    and small choices ``<<one way|another way>>`` that each student makes on their own."""
    helpers: str = ""
    """Module-level helper functions placed just above the function."""
    imports: tuple[str, ...] = ()
    """Import lines the body needs beyond the template's."""


FILE_OF = {
    "sigmoid": "activations.py", "sigmoid_derivative": "activations.py", "relu": "activations.py",
    "relu_derivative": "activations.py", "tanh": "activations.py", "tanh_derivative": "activations.py",
    "softmax": "activations.py",
    "init_params": "forward.py", "linear_forward": "forward.py", "forward": "forward.py",
    "cross_entropy": "forward.py", "predict": "forward.py",
    "softmax_cross_entropy_backward": "backward.py", "linear_backward": "backward.py", "backward": "backward.py",
    "one_hot": "train.py", "iterate_minibatches": "train.py", "sgd_step": "train.py", "accuracy": "train.py",
    "train": "train.py",
}
"""Contract function -> graded file, in file order."""

LONG = ("forward", "backward", "train", "init_params", "iterate_minibatches", "softmax")
"""Functions long enough that two honest students writing them the same way would be a coincidence."""


def _a(body: str, helpers: str = "", imports: tuple[str, ...] = ()) -> Alt:
    return Alt(body.strip("\n"), helpers.strip("\n"), imports)


ALTERNATIVES: dict[str, list[Alt]] = {
    "sigmoid": [
        _a('''
    z = CAST(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, ONE / (ONE + e), e / (ONE + e))'''),
        _a('''
    z = CAST(z)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = ONE / (ONE + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (ONE + ez)
    return out'''),
        _a('''
    return 0.5 * (ONE + np.tanh(0.5 * CAST(z)))'''),
        _a('''
    z = CAST(z)
    return np.exp(np.minimum(z, 0.0)) / (ONE + np.exp(-np.abs(z)))'''),
        _a('''
    z = np.clip(CAST(z), -500.0, 500.0)
    return ONE / (ONE + np.exp(-z))'''),
    ],
    "sigmoid_derivative": [
        _a('''
    s = sigmoid(z)
    return s * (ONE - s)'''),
        _a('''
    return sigmoid(z) * sigmoid(-CAST(z))'''),
        _a('''
    s = sigmoid(z)
    return s - s ** 2'''),
        _a('''
    e = np.exp(-np.abs(CAST(z)))
    return e / (ONE + e) ** 2'''),
    ],
    "relu": [
        _a('''
    return np.maximum(CAST(z), 0.0)'''),
        _a('''
    z = CAST(z)
    return np.where(z > 0, z, 0.0)'''),
        _a('''
    z = CAST(z)
    return z * (z > 0)'''),
        _a('''
    out = np.array(z, dtype=np.float64, copy=True)
    out[out < 0] = 0.0
    return out'''),
        _a('''
    return np.clip(CAST(z), 0.0, None)'''),
    ],
    "relu_derivative": [
        _a('''
    return (np.asarray(z) > 0).astype(np.float64)'''),
        _a('''
    return np.where(np.asarray(z) > 0, ONE, 0.0)'''),
        _a('''
    return np.heaviside(CAST(z), 0.0)'''),
        _a('''
    z = np.asarray(z)
    grad = np.zeros(z.shape, dtype=np.float64)
    grad[z > 0] = ONE
    return grad'''),
        _a('''
    return np.greater(z, 0).astype(float)'''),
    ],
    "tanh": [
        _a('''
    return np.tanh(CAST(z))'''),
        _a('''
    z = CAST(z)
    e2 = np.exp(-2.0 * np.abs(z))
    return np.sign(z) * (ONE - e2) / (ONE + e2)'''),
        _a('''
    return 2.0 * sigmoid(2.0 * CAST(z)) - ONE'''),
    ],
    "tanh_derivative": [
        _a('''
    t = np.tanh(CAST(z))
    return ONE - t * t'''),
        _a('''
    return ONE - np.tanh(CAST(z)) ** 2'''),
        _a('''
    z = CAST(z)
    return 4.0 * sigmoid(2.0 * z) * sigmoid(-2.0 * z)'''),
        _a('''
    t = tanh(z)
    return (ONE - t) * (ONE + t)'''),
    ],
    "softmax": [
        _a('''
    z = CAST(z)
    shifted = z - <<z.max(axis=1, keepdims=True)|np.max(z, axis=-1, keepdims=True)|np.amax(z, axis=1).reshape(-1, 1)>>
    e = np.exp(shifted)
    return e / <<e.sum(axis=1, keepdims=True)|np.sum(e, axis=-1, keepdims=True)|e.sum(axis=1).reshape(-1, 1)>>'''),
        _a('''
    z = CAST(z)
    m = np.max(z, axis=1)[:, None]
    e = np.exp(z - m)
    return e / np.sum(e, axis=1)[:, None]'''),
        _a('''
    z = CAST(z)
    m = z.max(axis=1, keepdims=True)
    log_norm = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return np.exp(z - log_norm)'''),
        _a('''
    z = CAST(z)
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        row = np.exp(z[i] - np.max(z[i]))
        out[i] = row / np.sum(row)
    return out'''),
        _a('''
    zt = CAST(z).T
    e = np.exp(zt - zt.max(axis=0))
    return (e / e.sum(axis=0)).T'''),
        _a('''
    return np.apply_along_axis(_softmax_row, 1, CAST(z))''', helpers='''
def _softmax_row(row):
    """Softmax of one row of scores, shifted by its maximum."""
    e = np.exp(row - row.max())
    return e / e.sum()'''),
        _a('''
    z = CAST(z)
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    np.divide(e, np.sum(e, axis=1, keepdims=True), out=e)
    return e'''),
    ],
    "init_params": [
        _a('''
    params = {}
    for l in range(1, len(layer_sizes)):
        fan_in, fan_out = layer_sizes[l - 1], layer_sizes[l]
        params[KEY("W", l)] = rng.standard_normal((fan_in, fan_out)) * <<np.sqrt(2.0 / fan_in)|np.sqrt(2 / fan_in)|(2.0 / fan_in) ** 0.5>>
        params[KEY("b", l)] = <<np.zeros(fan_out)|np.zeros((fan_out,))|np.zeros(fan_out, dtype=np.float64)>>
    return params'''),
        _a('''
    params = {}
    pairs = zip(layer_sizes[:-1], layer_sizes[1:])
    for l, (n_in, n_out) in enumerate(pairs, start=1):
        scale = <<np.sqrt(2 / n_in)|np.sqrt(2.0 / n_in)|(2 / n_in) ** 0.5>>
        params[KEY("W", l)] = scale * rng.standard_normal(<<(n_in, n_out)|size=(n_in, n_out)>>)
        params[KEY("b", l)] = <<np.zeros(n_out)|np.zeros((n_out,))>>
    return params'''),
        _a('''
    weights = [rng.standard_normal((a, b)) * np.sqrt(2.0 / a)
               for a, b in zip(layer_sizes, layer_sizes[1:])]
    params = {}
    for l, W in enumerate(weights, 1):
        params[KEY("W", l)] = W
        params[KEY("b", l)] = np.zeros(W.shape[1])
    return params'''),
        _a('''
    params = {}
    l = 1
    while l < len(layer_sizes):
        rows, cols = layer_sizes[l - 1], layer_sizes[l]
        W = rng.standard_normal(size=(rows, cols))
        params[KEY("W", l)] = W * math.sqrt(2.0 / rows)
        params[KEY("b", l)] = np.zeros((cols,), dtype=np.float64)
        l += 1
    return params''', imports=("import math",)),
        _a('''
    params = {}
    for l in range(1, len(layer_sizes)):
        params.update(_he_layer(l, layer_sizes[l - 1], layer_sizes[l], rng))
    return params''', helpers='''
def _he_layer(l, n_in, n_out, rng):
    """Weights and biases of layer l, He-initialised."""
    W = rng.standard_normal((n_in, n_out)) * (2.0 / n_in) ** 0.5
    return {KEY("W", l): W, KEY("b", l): np.zeros(n_out)}'''),
        _a('''
    params = {}
    shapes = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    for i in range(len(shapes)):
        n_in, n_out = shapes[i]
        params[KEY("W", i + 1)] = <<np.sqrt(2.0 / n_in)|np.sqrt(2 / n_in)>> * rng.standard_normal(size=shapes[i])
        params[KEY("b", i + 1)] = np.zeros(n_out)
    return params'''),
        _a('''
    stds = [np.sqrt(2.0 / n) for n in layer_sizes[:-1]]
    params = {}
    for l in range(1, len(layer_sizes)):
        draw = rng.standard_normal((layer_sizes[l - 1], layer_sizes[l]))
        params[KEY("W", l)] = draw * stds[l - 1]
        params[KEY("b", l)] = <<np.zeros(layer_sizes[l])|np.zeros((layer_sizes[l],))|0.0 * np.ones(layer_sizes[l])>>
    return params'''),
    ],
    "linear_forward": [
        _a('''
    return A_prev @ W + b'''),
        _a('''
    return np.dot(A_prev, W) + b'''),
        _a('''
    Z = A_prev.dot(W)
    Z += b
    return Z'''),
        _a('''
    return np.matmul(A_prev, W) + b[np.newaxis, :]'''),
        _a('''
    return np.einsum("nd,dh->nh", A_prev, W) + b'''),
    ],
    "forward": [
        _a('''
    act = hidden_activation(activation)
    L = NL
    cache = <<{"A0": X}|dict(A0=X)>>
    A = X
    for l in range(1, L + 1):
        <<Z = linear_forward(A, params[KEY("W", l)], params[KEY("b", l)])|W, b = params[KEY("W", l)], params[KEY("b", l)]
        Z = linear_forward(A, W, b)>>
        <<A = softmax(Z) if l == L else act(Z)|if l == L:
            A = softmax(Z)
        else:
            A = act(Z)>>
        <<cache[KEY("Z", l)] = Z
        cache[KEY("A", l)] = A|cache[KEY("A", l)] = A
        cache[KEY("Z", l)] = Z>>
    return A, cache'''),
        _a('''
    g = hidden_activation(activation)
    L = NL
    cache = <<{"A0": X}|dict(A0=X)>>
    A = X
    for l in range(1, L):
        <<Z = linear_forward(A, params[KEY("W", l)], params[KEY("b", l)])|Z = A @ params[KEY("W", l)] + params[KEY("b", l)]>>
        A = g(Z)
        cache[KEY("Z", l)], cache[KEY("A", l)] = Z, A
    Z = linear_forward(A, params[KEY("W", L)], params[KEY("b", L)])
    probs = softmax(Z)
    cache[KEY("Z", L)], cache[KEY("A", L)] = Z, probs
    return probs, cache'''),
        _a('''
    f = hidden_activation(activation)
    L = NL
    cache = {"A0": X}
    for l in range(1, L + 1):
        cache[KEY("Z", l)] = cache[KEY("A", l - 1)] @ params[KEY("W", l)] + params[KEY("b", l)]
        if l < L:
            cache[KEY("A", l)] = f(cache[KEY("Z", l)])
        else:
            cache[KEY("A", l)] = softmax(cache[KEY("Z", l)])
    return cache[KEY("A", L)], cache'''),
        _a('''
    funcs = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}
    if activation not in funcs:
        raise ValueError(f"unknown activation {activation!r}")
    n = NL
    cache = {"A0": X}
    out = X
    l = 1
    while l <= n:
        pre = np.dot(out, params[KEY("W", l)]) + params[KEY("b", l)]
        out = funcs[activation](pre) if l < n else softmax(pre)
        cache.update({KEY("Z", l): pre, KEY("A", l): out})
        l += 1
    return out, cache'''),
        _a('''
    act = hidden_activation(activation)
    L = NL
    layers = [(params[KEY("W", l)], params[KEY("b", l)]) for l in range(1, L + 1)]
    cache = {"A0": X}
    A = X
    for i, (W, b) in enumerate(layers):
        Z = linear_forward(A, W, b)
        A = act(Z) if i < len(layers) - 1 else softmax(Z)
        cache[KEY("Z", i + 1)] = Z
        cache[KEY("A", i + 1)] = A
    return A, cache'''),
        _a('''
    act = hidden_activation(activation)
    L = NL
    cache = <<{"A0": X}|dict(A0=X)>>
    A = X
    for l in range(1, L + 1):
        fn = softmax if l == L else act
        Z, A = _dense(A, params[KEY("W", l)], params[KEY("b", l)], fn)
        <<cache[KEY("Z", l)] = Z
        cache[KEY("A", l)] = A|cache.update({KEY("Z", l): Z, KEY("A", l): A})>>
    return A, cache''', helpers='''
def _dense(A_prev, W, b, fn):
    """One layer: its pre-activation and its activation."""
    Z = linear_forward(A_prev, W, b)
    return Z, fn(Z)'''),
        _a('''
    L = NL
    fns = [hidden_activation(activation)] * (L - 1) + [softmax]
    cache = {"A0": X}
    for l, fn in enumerate(fns, start=1):
        prev = cache[KEY("A", l - 1)]
        <<Z = np.dot(prev, params[KEY("W", l)]) + params[KEY("b", l)]|Z = linear_forward(prev, params[KEY("W", l)], params[KEY("b", l)])>>
        cache[KEY("Z", l)] = Z
        cache[KEY("A", l)] = fn(Z)
    return cache[KEY("A", L)], cache'''),
    ],
    "cross_entropy": [
        _a('''
    N = probs.shape[0]
    return float(-np.sum(Y * np.log(np.maximum(probs, 1e-12))) / N)'''),
        _a('''
    logp = np.log(np.clip(probs, 1e-12, None))
    return float(-(Y * logp).sum(axis=1).mean())'''),
        _a('''
    picked = probs[np.arange(len(Y)), np.argmax(Y, axis=1)]
    return float(np.mean(-np.log(np.maximum(picked, 1e-12))))'''),
        _a('''
    total = 0.0
    for i in range(probs.shape[0]):
        total -= np.dot(Y[i], np.log(np.maximum(probs[i], 1e-12)))
    return float(total / probs.shape[0])'''),
        _a('''
    safe = np.where(probs > 1e-12, probs, 1e-12)
    return float(-np.einsum("nc,nc->", Y, np.log(safe)) / len(probs))'''),
    ],
    "predict": [
        _a('''
    probs, _ = forward(params, X, activation)
    return np.argmax(probs, axis=1)'''),
        _a('''
    return forward(params, X, activation)[0].argmax(axis=1)'''),
        _a('''
    out, cache = forward(params, X, activation=activation)
    labels = out.argmax(1)
    return labels'''),
    ],
    "softmax_cross_entropy_backward": [
        _a('''
    return (probs - Y) / probs.shape[0]'''),
        _a('''
    N = Y.shape[0]
    dZ = probs - Y
    return dZ / N'''),
        _a('''
    return (probs - Y) * (ONE / len(probs))'''),
        _a('''
    dZ = probs.copy()
    dZ -= Y
    dZ /= len(Y)
    return dZ'''),
    ],
    "linear_backward": [
        _a('''
    dA_prev = dZ @ W.T
    dW = A_prev.T @ dZ
    db = dZ.sum(axis=0)
    return dA_prev, dW, db'''),
        _a('''
    return dZ @ W.T, A_prev.T @ dZ, np.sum(dZ, axis=0)'''),
        _a('''
    dW = np.dot(A_prev.T, dZ)
    db = np.sum(dZ, axis=0)
    dA_prev = np.dot(dZ, W.T)
    return dA_prev, dW, db'''),
        _a('''
    dA_prev = np.einsum("nh,dh->nd", dZ, W)
    dW = np.einsum("nd,nh->dh", A_prev, dZ)
    db = np.einsum("nh->h", dZ)
    return dA_prev, dW, db'''),
        _a('''
    N = dZ.shape[0]
    dA_prev = np.zeros((N, W.shape[0]))
    dW = np.zeros(W.shape)
    db = np.zeros(W.shape[1])
    for i in range(N):
        dA_prev[i] = W @ dZ[i]
        dW += np.outer(A_prev[i], dZ[i])
        db += dZ[i]
    return dA_prev, dW, db'''),
    ],
    "backward": [
        _a('''
    derivative = hidden_derivative(activation)
    L = NL
    grads = <<{}|dict()>>
    dZ = softmax_cross_entropy_backward(cache[KEY("A", L)], Y)
    for l in <<range(L, 0, -1)|reversed(range(1, L + 1))>>:
        dA_prev, grads[KEY("W", l)], grads[KEY("b", l)] = linear_backward(
            dZ, cache[KEY("A", l - 1)], params[KEY("W", l)]
        )
        if <<l > 1|l != 1|l >= 2>>:
            dZ = dA_prev * derivative(cache[KEY("Z", l - 1)])
    return grads'''),
        _a('''
    deriv = hidden_derivative(activation)
    L = NL
    N = Y.shape[0]
    grads = <<{}|dict()>>
    dZ = (cache[KEY("A", L)] - Y) / N
    for l in <<range(L, 0, -1)|reversed(range(1, L + 1))>>:
        grads[KEY("W", l)] = cache[KEY("A", l - 1)].T @ dZ
        grads[KEY("b", l)] = dZ.sum(axis=0)
        if l > 1:
            dZ = (dZ @ params[KEY("W", l)].T) * deriv(cache[KEY("Z", l - 1)])
    return grads'''),
        _a('''
    d_act = hidden_derivative(activation)
    L = NL
    grads = {}
    dA = None
    for l in reversed(range(1, L + 1)):
        if l == L:
            dZ = softmax_cross_entropy_backward(cache[KEY("A", l)], Y)
        else:
            dZ = dA * d_act(cache[KEY("Z", l)])
        dA, dW, db = linear_backward(dZ, cache[KEY("A", l - 1)], params[KEY("W", l)])
        <<grads[KEY("W", l)] = dW
        grads[KEY("b", l)] = db|grads[KEY("W", l)], grads[KEY("b", l)] = dW, db>>
    return grads'''),
        _a('''
    derivatives = {"relu": relu_derivative, "sigmoid": sigmoid_derivative, "tanh": tanh_derivative}
    if activation not in derivatives:
        raise ValueError(f"unknown activation {activation!r}")
    n = NL
    grads = {}
    delta = softmax_cross_entropy_backward(cache[KEY("A", n)], Y)
    l = n
    while l >= 1:
        back, gW, gb = linear_backward(delta, cache[KEY("A", l - 1)], params[KEY("W", l)])
        grads.update({KEY("W", l): gW, KEY("b", l): gb})
        if l > 1:
            delta = back * derivatives[activation](cache[KEY("Z", l - 1)])
        l -= 1
    return grads'''),
        _a('''
    deriv = hidden_derivative(activation)
    L = NL
    N = <<Y.shape[0]|len(Y)>>
    delta = cache[KEY("A", L)] - Y
    grads = {}
    for l in range(L, 0, -1):
        A_prev = cache[KEY("A", l - 1)]
        grads[KEY("W", l)] = A_prev.T @ delta / N
        grads[KEY("b", l)] = <<delta.sum(axis=0) / N|np.sum(delta, axis=0) / N>>
        if l > 1:
            delta = (delta @ params[KEY("W", l)].T) * deriv(cache[KEY("Z", l - 1)])
    return grads'''),
        _a('''
    deriv = hidden_derivative(activation)
    L = NL
    grads = {}
    dZ = softmax_cross_entropy_backward(cache[KEY("A", L)], Y)
    for l in range(L, 0, -1):
        dZ = _layer_backward(grads, l, dZ, cache, params, deriv)
    return grads''', helpers='''
def _layer_backward(grads, l, dZ, cache, params, deriv):
    """Store layer l's gradients in grads; return dZ of layer l - 1 (None below layer 1)."""
    dA_prev, grads[KEY("W", l)], grads[KEY("b", l)] = linear_backward(dZ, cache[KEY("A", l - 1)], params[KEY("W", l)])
    if l == 1:
        return None
    return dA_prev * deriv(cache[KEY("Z", l - 1)])'''),
        _a('''
    deriv = hidden_derivative(activation)
    L = NL
    dWs, dbs = {}, {}
    dZ = softmax_cross_entropy_backward(cache[KEY("A", L)], Y)
    l = L
    while True:
        dA, dWs[l], dbs[l] = linear_backward(dZ, cache[KEY("A", l - 1)], params[KEY("W", l)])
        if l == 1:
            break
        dZ = dA * deriv(cache[KEY("Z", l - 1)])
        l -= 1
    grads = {KEY("W", i): dWs[i] for i in dWs}
    grads.update({KEY("b", i): dbs[i] for i in dbs})
    return grads'''),
    ],
    "one_hot": [
        _a('''
    Y = np.zeros((len(y), num_classes))
    Y[np.arange(len(y)), y] = ONE
    return Y'''),
        _a('''
    return np.eye(num_classes)[np.asarray(y)]'''),
        _a('''
    Y = np.zeros((len(y), num_classes), dtype=np.float64)
    for i, label in enumerate(y):
        Y[i, label] = ONE
    return Y'''),
        _a('''
    y = np.asarray(y)
    return (y[:, None] == np.arange(num_classes)).astype(np.float64)'''),
        _a('''
    y = np.asarray(y)
    Y = np.zeros((y.shape[0], num_classes))
    np.put_along_axis(Y, y[:, None], ONE, axis=1)
    return Y'''),
    ],
    "iterate_minibatches": [
        _a('''
    N = <<X.shape[0]|len(X)>>
    order = rng.permutation(N)
    for start in range(0, N, batch_size):
        idx = order[start:<<start + batch_size|min(start + batch_size, N)>>]
        yield X[idx], Y[idx]'''),
        _a('''
    n = len(X)
    perm = rng.permutation(n)
    n_batches = (n + batch_size - 1) // batch_size
    for k in range(n_batches):
        rows = perm[k * batch_size:(k + 1) * batch_size]
        yield X[rows], Y[rows]'''),
        _a('''
    perm = rng.permutation(<<X.shape[0]|len(X)>>)
    X_shuf, Y_shuf = X[perm], Y[perm]
    for i in range(0, len(X_shuf), batch_size):
        yield X_shuf[i:i + batch_size], Y_shuf[i:i + batch_size]'''),
        _a('''
    order = rng.permutation(len(X))
    cuts = np.arange(batch_size, len(X), batch_size)
    for idx in np.split(order, cuts):
        yield X[idx], Y[idx]'''),
        _a('''
    N = X.shape[0]
    order = np.arange(N)
    rng.shuffle(order)
    start = 0
    while start < N:
        stop = min(start + batch_size, N)
        yield X[order[start:stop]], Y[order[start:stop]]
        start = stop'''),
        _a('''
    order = rng.permutation(<<len(X)|X.shape[0]>>)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in batches:
        yield X[idx], Y[idx]'''),
        _a('''
    order = rng.permutation(X.shape[0])
    k = 0
    while k * batch_size < len(order):
        idx = order[k * batch_size:(k + 1) * batch_size]
        yield X.take(idx, axis=0), Y.take(idx, axis=0)
        k += 1'''),
    ],
    "sgd_step": [
        _a('''
    for key in params:
        params[key] -= lr * grads[key]'''),
        _a('''
    for k, g in grads.items():
        params[k] -= lr * g'''),
        _a('''
    for name in list(params):
        np.subtract(params[name], lr * grads[name], out=params[name])'''),
        _a('''
    for key, value in params.items():
        value -= lr * grads[key]'''),
        _a('''
    for key in params.keys():
        params[key] = params[key] - lr * grads[key]'''),
    ],
    "accuracy": [
        _a('''
    return float(np.mean(predict(params, X, activation) == y))'''),
        _a('''
    preds = predict(params, X, activation)
    return float((preds == y).sum() / len(y))'''),
        _a('''
    return np.count_nonzero(predict(params, X, activation) == np.asarray(y)) / len(y)'''),
        _a('''
    correct = 0
    for p, t in zip(predict(params, X, activation), y):
        correct += int(p == t)
    return correct / len(y)'''),
    ],
    "train": [
        _a('''
    L = NL
    Y = one_hot(y, params[KEY("W", L)].shape[1])
    history = {"loss": []}
    if X_val is not None:
        history["val_accuracy"] = []
    for _ in range(epochs):
        losses = []
        for X_batch, Y_batch in iterate_minibatches(X, Y, batch_size, rng):
            probs, cache = forward(params, X_batch, activation)
            <<losses.append(cross_entropy(probs, Y_batch))
            sgd_step(params, backward(params, cache, Y_batch, activation), lr)|loss = cross_entropy(probs, Y_batch)
            grads = backward(params, cache, Y_batch, activation)
            sgd_step(params, grads, lr)
            losses.append(loss)>>
        history["loss"].append(<<float(np.mean(losses))|sum(losses) / len(losses)|float(np.mean(np.array(losses)))>>)
        if X_val is not None:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
    return history'''),
        _a('''
    L = NL
    num_classes = params[KEY("W", L)].shape[1]
    Y = one_hot(y, num_classes)
    loss_history, val_history = [], []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, yb in iterate_minibatches(X, Y, batch_size, rng):
            out, cache = forward(params, xb, activation)
            <<total += cross_entropy(out, yb)
            count += 1
            grads = backward(params, cache, yb, activation)
            sgd_step(params, grads, lr)|total += cross_entropy(out, yb)
            sgd_step(params, backward(params, cache, yb, activation), lr)
            count += 1>>
        loss_history.append(total / count)
        if X_val is not None:
            val_history.append(accuracy(params, X_val, y_val, activation))
    history = {"loss": loss_history}
    if X_val is not None:
        history["val_accuracy"] = val_history
    return history'''),
        _a('''
    L = NL
    C = params[KEY("W", L)].shape[1]
    Y_all = one_hot(y, C)
    history = {"loss": []}
    track = X_val is not None
    if track:
        history["val_accuracy"] = []
    epoch = 0
    while epoch < epochs:
        history["loss"].append(_run_epoch(params, X, Y_all, batch_size, lr, rng, activation))
        if track:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
        epoch += 1
    return history''', helpers='''
def _run_epoch(params, X, Y, batch_size, lr, rng, activation):
    """One pass over the data; returns the mean of the batch losses."""
    batch_losses = []
    for Xb, Yb in iterate_minibatches(X, Y, batch_size, rng):
        probs, cache = forward(params, Xb, activation)
        batch_losses.append(cross_entropy(probs, Yb))
        <<sgd_step(params, backward(params, cache, Yb, activation), lr)|grads = backward(params, cache, Yb, activation)
        sgd_step(params, grads, lr)>>
    return <<sum(batch_losses) / len(batch_losses)|float(np.mean(batch_losses))>>'''),
        _a('''
    L = NL
    targets = one_hot(y, params[KEY("W", L)].shape[-1])
    history = {"loss": [], "val_accuracy": []}
    for e in range(epochs):
        epoch_losses = []
        batches = iterate_minibatches(X, targets, batch_size, rng)
        for inputs, labels in batches:
            predictions, cache = forward(params, inputs, activation)
            <<loss = cross_entropy(predictions, labels)
            gradients = backward(params, cache, labels, activation)
            sgd_step(params, gradients, lr)
            epoch_losses.append(loss)|epoch_losses.append(cross_entropy(predictions, labels))
            sgd_step(params, backward(params, cache, labels, activation), lr)>>
        history["loss"].append(float(np.mean(np.array(epoch_losses))))
        if X_val is not None:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
    if X_val is None:
        del history["val_accuracy"]
    return history'''),
        _a('''
    L = NL
    Y = one_hot(y, params[KEY("W", L)].shape[1])
    history = {"loss": []}
    if X_val is not None:
        history["val_accuracy"] = []
    for _ in range(epochs):
        batch_losses = [_train_step(params, Xb, Yb, lr, activation)
                        for Xb, Yb in iterate_minibatches(X, Y, batch_size, rng)]
        history["loss"].append(<<float(np.mean(batch_losses))|sum(batch_losses) / len(batch_losses)>>)
        if X_val is not None:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
    return history''', helpers='''
def _train_step(params, X_batch, Y_batch, lr, activation):
    """Forward, loss, backward and one SGD step on a batch; returns the loss before the step."""
    probs, cache = forward(params, X_batch, activation)
    loss = cross_entropy(probs, Y_batch)
    sgd_step(params, backward(params, cache, Y_batch, activation), lr)
    return loss'''),
        _a('''
    L = NL
    labels = one_hot(y, num_classes=params[KEY("W", L)].shape[1])
    history = defaultdict(list)
    for epoch in range(epochs):
        seen = []
        for batch in iterate_minibatches(X, labels, batch_size, rng):
            xb, yb = batch
            probs, cache = forward(params, xb, activation)
            seen.append(cross_entropy(probs, yb))
            grads = backward(params, cache, yb, activation)
            sgd_step(params, grads, lr)
        history["loss"].append(<<float(np.mean(seen))|sum(seen) / len(seen)>>)
        if X_val is not None:
            history["val_accuracy"].append(accuracy(params, X_val, y_val, activation))
    return dict(history)''', imports=("from collections import defaultdict",)),
        _a('''
    L = NL
    Y_onehot = one_hot(y, params[KEY("W", L)].shape[1])
    losses_per_epoch, accuracies = [], []
    for _ in range(epochs):
        running = 0.0
        batches = 0
        for Xb, Yb in iterate_minibatches(X, Y_onehot, batch_size, rng):
            out, cache = forward(params, Xb, activation)
            running += cross_entropy(out, Yb)
            sgd_step(params, backward(params, cache, Yb, activation), lr)
            batches += 1
        losses_per_epoch.append(running / batches)
        if X_val is not None:
            accuracies.append(accuracy(params, X_val, y_val, activation))
    return {"loss": losses_per_epoch, **({"val_accuracy": accuracies} if X_val is not None else {})}'''),
    ],
}
"""Contract function -> correct ways to write it."""

HABITS = {
    "cast": ("np.asarray({}, dtype=np.float64)", "np.asarray({}, dtype=float)", "{}.astype(np.float64)",
             "np.array({}, dtype=np.float64)", "np.asarray({}, float)"),
    "one": ("1.0", "1", "1."),
    "layers": ('sum(1 for key in params if key.startswith("W"))', "len(params) // 2",
               'max(int(k[1:]) for k in params if k[0] == "W")', 'len([k for k in params if "W" in k])'),
    "key": ('f"{p}{{{i}}}"', '"{p}" + str({i})', '"{p}%d" % ({i})', '"{p}{{}}".format({i})'),
}
"""Habit -> the ways a student may have it (applied to every function they write)."""


@dataclass
class Student:
    """One student's choices: an alternative per function and one way per habit."""

    name: str
    choice: dict[str, int]
    """Function -> index into ALTERNATIVES[function]."""
    habits: dict[str, int]
    """Habit -> index into HABITS[habit]."""
    comments: int = 0
    """Seed of the comments this student adds (0: none)."""
    functions: tuple[str, ...] = tuple(FILE_OF)
    """Functions the student wrote (the others keep their stub)."""
    variant: int = 0
    """Seed of the student's small choices (0: always the first way)."""

    def written(self, function: str) -> tuple[str, str]:
        """(helpers, body) of the function as this student wrote it."""
        alt = ALTERNATIVES[function][self.choice[function]]
        rng = random.Random(f"{self.variant}:{function}")

        def pick(match):
            ways = match.group(1).split("|")
            return ways[rng.randrange(len(ways))] if self.variant else ways[0]

        helpers, body = (_apply_habits(re.sub(r"<<(.*?)>>", pick, text, flags=re.S), self.habits, function)
                         for text in (alt.helpers, alt.body))
        return helpers, body

    def code(self, function: str) -> str:
        """The function's body and helpers: what two students would share."""
        return "\n".join(self.written(function))


def _apply_habits(text: str, habits: dict[str, int], function: str) -> str:
    cast = HABITS["cast"][habits["cast"]]
    text = re.sub(r"CAST\((\w+)\)", lambda m: cast.format(m.group(1)), text)
    text = re.sub(r"\bONE\b", HABITS["one"][habits["one"]], text)
    layers = HABITS["layers"][habits["layers"]]
    if function == "forward" and habits["layers"] == 0:
        layers = "num_layers(params)"  # the template's own helper, next to forward
    key = HABITS["key"][habits["key"]]
    text = re.sub(r'KEY\("(\w)", ([^)]+)\)', lambda m: key.format(p=m.group(1), i=m.group(2)), text)
    return re.sub(r"\bNL\b", layers, text)


_COMMENTS = ("# vectorised over the batch", "# keep the shapes (N, ...) as in the docstring",
             "# see the handout", "# TODO: double-check", "# numerically stable", "# works for any L",
             "# as in lecture 4", "# avoid modifying the input")


def render(student: Student) -> dict[str, str]:
    """The student's four files: the template with each written function's stub replaced."""
    files = {name: (TEMPLATE_DIR / name).read_text() for name in GRADED}
    rng = random.Random(student.comments)
    for function in student.functions:
        name = FILE_OF[function]
        alt = ALTERNATIVES[function][student.choice[function]]
        helpers, body = student.written(function)
        if student.comments and rng.random() < 0.5:
            body = "    " + rng.choice(_COMMENTS) + "\n" + body
        stub = re.compile(rf'^    raise NotImplementedError\("{function}: not implemented yet[^\n]*$', re.M)
        text, count = stub.subn(lambda _: body, files[name])
        assert count == 1, f"stub of {function} not found once in the template's {name}"
        if helpers:
            text = text.replace(f"\n\ndef {function}(", f"\n\n{helpers}\n\n\ndef {function}(", 1)
        for line in alt.imports:
            if line not in text:
                text = text.replace("import numpy as np\n", f"import numpy as np\n{line}\n", 1)
        files[name] = text
    return files


def write(files: dict[str, str], folder: Path) -> Path:
    """Write the four files into ``folder`` (a submission)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _draw(name: str, rng: random.Random) -> Student:
    return Student(
        name=name,
        choice={f: rng.randrange(len(alts)) for f, alts in ALTERNATIVES.items()},
        habits={h: rng.randrange(len(ways)) for h, ways in HABITS.items()},
        comments=rng.randrange(1, 10 ** 6) if rng.random() < 0.5 else 0,
        variant=rng.randrange(1, 10 ** 9),
    )


def same_alternatives(a: Student, b: Student) -> set[str]:
    """Functions both students wrote the same way (the same alternative, whatever their small choices)."""
    return {f for f in set(a.functions) & set(b.functions) if a.choice[f] == b.choice[f]}


@dataclass
class HonestLimits:
    """How much two honest students may have in common."""

    functions: int = 6
    """At most this many of the 20 functions written with the same alternative."""
    long: int = 1
    """Of which at most this many long ones (LONG)."""


def honest_class(n: int, seed: int = 0, limits: HonestLimits | None = HonestLimits(), *,
                 max_tries: int = 100_000) -> list[Student]:
    """``n`` students, every pair within ``limits`` (None: drawn freely, as a large class would be).

    Within limits, the long functions' alternatives come from a Reed-Solomon code over the 7 alternatives
    of each: student (a, b) writes LONG[x] with alternative (a + b * x) mod 7, so two students agree on at
    most one long function (49 students at most). The short functions are drawn at random, again until
    every pair stays within ``limits.functions``.
    """
    rng = random.Random(seed)
    codes = [(a, b) for a in range(7) for b in range(7)]
    rng.shuffle(codes)
    if limits is not None:
        assert all(len(ALTERNATIVES[f]) == 7 for f in LONG) and len(LONG) <= 7 and limits.long >= 1
        if n > len(codes):
            raise ValueError(f"at most {len(codes)} students within {limits}, not {n}")
    students: list[Student] = []
    tries = 0
    while len(students) < n:
        tries += 1
        if tries > max_tries:
            raise RuntimeError(f"could only draw {len(students)} of {n} honest students within {limits}")
        candidate = _draw(f"student{len(students) + 1:03d}", rng)
        if limits is not None:
            a, b = codes[len(students)]
            candidate.choice.update({f: (a + b * x) % 7 for x, f in enumerate(LONG)})
            if not all(_within(candidate, other, limits) for other in students):
                continue
        students.append(candidate)
    return students


def _within(a: Student, b: Student, limits: HonestLimits) -> bool:
    same = same_alternatives(a, b)
    return len(same) <= limits.functions and len(same & set(LONG)) <= limits.long


def template_only(name: str, functions: tuple[str, ...]) -> Student:
    """The template with only ``functions`` written, each the first (most common) way."""
    return Student(name=name, choice={f: 0 for f in ALTERNATIVES}, habits={h: 0 for h in HABITS},
                   functions=functions)


# ---- disguises ----------------------------------------------------------------

_NEW_NAMES = ("tmp", "val", "res", "arr", "buf", "acc", "cur", "item", "part", "piece", "thing", "stuff",
              "data", "mat", "vec", "q", "w2", "h", "u", "aux")


def rename_locals(text: str, seed: int = 0) -> str:
    """Rename every variable assigned inside a function (not parameters, not keyword names)."""
    tree = ast.parse(text)
    module_names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module_names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    params, assigned, keywords = set(), set(), set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        params |= {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assigned.add(node.id)
            elif isinstance(node, ast.keyword) and node.arg:
                keywords.add(node.arg)
            elif isinstance(node, ast.JoinedStr):  # one STRING token before Python 3.12: left as it is
                keywords |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    names = sorted(assigned - params - keywords - module_names - {"_"})
    rng = random.Random(seed)
    pool = list(_NEW_NAMES)
    rng.shuffle(pool)
    mapping = {old: f"{pool[i % len(pool)]}{i // len(pool) or ''}_{old[:1].lower()}" for i, old in enumerate(names)}
    lines = text.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    edits = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string not in mapping:
            continue
        if i and tokens[i - 1].string == ".":
            continue
        edits.append(tok)
    for tok in reversed(edits):
        row, col = tok.start
        line = lines[row - 1]
        lines[row - 1] = line[:col] + mapping[tok.string] + line[col + len(tok.string):]
    return "".join(lines)


def reorder_functions(text: str, seed: int = 0) -> str:
    """Shuffle the top-level functions; the lines before the first function and the statements after
    the last one stay where they are."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    first = min(min([d.lineno for d in defs] + [dec.lineno for d in defs for dec in d.decorator_list]), defs[0].lineno)
    tail_nodes = [n for n in tree.body if n.lineno > defs[-1].end_lineno]
    head = "".join(lines[:first - 1])
    chunks = ["".join(lines[d.lineno - 1:d.end_lineno]).rstrip("\n") + "\n" for d in defs]
    tail = "".join(lines[tail_nodes[0].lineno - 1:]) if tail_nodes else ""
    rng = random.Random(seed)
    order = list(range(len(chunks)))
    while order == sorted(order) and len(order) > 1:
        rng.shuffle(order)
    body = "\n\n".join(chunks[i] for i in order)
    return head + body + ("\n\n" + tail if tail else "")


def recomment(text: str, seed: int = 0) -> str:
    """Drop every comment and add other ones: above each return, and a header."""
    rng = random.Random(seed)
    lines = text.splitlines(keepends=True)
    for tok in reversed([t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                         if t.type == tokenize.COMMENT]):
        row, col = tok.start
        line = lines[row - 1]
        stripped = line[:col].rstrip()
        lines[row - 1] = (stripped + "\n") if stripped else ""
    out = ["# Assignment 2: neural networks from scratch, my own work.\n"]
    for line in lines:
        body = line.lstrip()
        if body.startswith("return ") and rng.random() < 0.7:
            out.append(line[: len(line) - len(body)] + rng.choice(
                ("# result", "# done", "# give back the answer", "# shapes checked by hand")) + "\n")
        out.append(line)
    return "".join(out)


def respace(text: str) -> str:
    """The same tokens with other whitespace: 2-space indents, no spaces around operators, a blank line
    after every block header."""
    tokens = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.INDENT:
            tokens.append((tok.type, "  " * (len(tok.string.expandtabs()) // 4)))
        else:
            tokens.append((tok.type, tok.string))
    out = tokenize.untokenize(tokens)
    return re.sub(r"^(\s*(?:for|while|if|else|def)\b[^\n]*:\n)", r"\1\n", out, flags=re.M)


DISGUISES = {
    "renamed": lambda text, seed: rename_locals(text, seed),
    "reordered": lambda text, seed: reorder_functions(text, seed),
    "recommented": lambda text, seed: recomment(text, seed),
    "respaced": lambda text, seed: respace(text),
    "all": lambda text, seed: respace(recomment(reorder_functions(rename_locals(text, seed), seed), seed)),
}
"""Copy kind -> how one file is disguised."""


def disguise(files: dict[str, str], kind: str, seed: int = 0) -> dict[str, str]:
    """A disguised copy of a submission's files."""
    out = {name: DISGUISES[kind](text, seed) for name, text in files.items()}
    for name, text in out.items():
        compile(text, name, "exec")  # a disguise must keep the code valid
    return out


# ---- the whole class ------------------------------------------------------------

@dataclass
class GeneratedClass:
    """A folder of submissions and what is known about each pair."""

    folder: Path
    honest: list[str]
    """Independent students."""
    copies: dict[str, str]
    """Disguised copy -> the student it was copied from."""
    template_only: list[str]
    swapped: tuple[str, str, str] = ("", "", "")
    """(copy, student it was copied from, student the swapped-in function came from)."""
    students: dict[str, Student] = field(default_factory=dict)

    def family(self, name: str) -> str:
        """The student a submission's code comes from (itself when honest)."""
        return self.copies.get(name, name)

    def is_copy_pair(self, a: str, b: str) -> bool:
        """Do a and b come from the same student (one copied the other, or both copied one)?"""
        return self.family(a) == self.family(b)

    def is_honest_pair(self, a: str, b: str) -> bool:
        """Did a and b write their code independently? The swapped copy and its donor are neither."""
        copy, _, donor = self.swapped
        if {a, b} == {copy, donor}:
            return False
        return not self.is_copy_pair(a, b)


def generate_class(folder: Path, *, honest: int = 36, seed: int = 0,
                   limits: HonestLimits | None = HonestLimits()) -> GeneratedClass:
    """Write a class into ``folder``: honest students, disguised copies of the first, template-only work.

    The copies are of ``student001``: one per disguise in DISGUISES, and ``copy_swapped``: every
    disguise, with the longest function that ``student002`` wrote differently taken from ``student002``.
    """
    students = honest_class(honest, seed, limits)
    folder.mkdir(parents=True, exist_ok=True)
    for s in students:
        write(render(s), folder / s.name)
    source, donor = students[0], students[1]
    copies = {}
    for i, kind in enumerate(DISGUISES, start=1):
        name = f"copy_{kind}"
        write(disguise(render(source), kind, seed + i), folder / name)
        copies[name] = source.name
    swap = next(f for f in ("train", "backward", "forward", "iterate_minibatches", "init_params")
                if source.code(f) != donor.code(f))
    files = render(source)
    name = FILE_OF[swap]
    files[name] = _replace_function(files[name], render(donor)[name], swap)
    for line in ALTERNATIVES[swap][donor.choice[swap]].imports:
        if line not in files[name]:
            files[name] = files[name].replace("import numpy as np\n", f"import numpy as np\n{line}\n", 1)
    write(disguise(files, "all", seed + 99), folder / "copy_swapped")
    copies["copy_swapped"] = source.name
    extra = {"template_only_relu": ("relu",), "template_only_relu_tanh": ("relu", "tanh"),
             "template_only_forward": ("linear_forward", "softmax_cross_entropy_backward"),
             "template_only_sgd": ("relu", "sgd_step", "linear_forward"), "template_untouched": ()}
    for name, functions in extra.items():
        write(render(template_only(name, functions)), folder / name)
    return GeneratedClass(folder=folder, honest=[s.name for s in students], copies=copies,
                          template_only=list(extra), swapped=("copy_swapped", source.name, donor.name),
                          students={s.name: s for s in students})


def _replace_function(source_text: str, donor_text: str, function: str) -> str:
    """``source_text`` with the top-level function ``function`` (and the helpers above it) taken from
    ``donor_text``: helpers are the private functions that sit between it and the function before it."""
    def span(text):
        tree = ast.parse(text)
        defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        i = next(k for k, d in enumerate(defs) if d.name == function)
        start = i
        while start > 0 and defs[start - 1].name.startswith("_"):
            start -= 1
        lines = text.splitlines(keepends=True)
        return lines, defs[start].lineno - 1, defs[i].end_lineno
    s_lines, s_start, s_end = span(source_text)
    d_lines, d_start, d_end = span(donor_text)
    return "".join(s_lines[:s_start] + d_lines[d_start:d_end] + s_lines[s_end:])


# ---- correctness ----------------------------------------------------------------

def check_correct(submissions: list[Path]) -> dict[str, str]:
    """Compare every contract function of each submission with the reference, in one subprocess.

    Returns submission name -> problem (empty when all are correct).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHECKER, str(REFERENCE_DIR), *map(str, submissions)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the correctness checker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


_CHECKER = r'''
import importlib, json, shutil, sys, tempfile, traceback, warnings
from pathlib import Path
import numpy as np

reference_dir, folders = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
GRADED = ("activations", "forward", "backward", "train")

def load(pkg_root):
    for name in [m for m in sys.modules if m == "scratchnet" or m.startswith("scratchnet.")]:
        del sys.modules[name]
    sys.path.insert(0, str(pkg_root))
    try:
        return {m: importlib.import_module(f"scratchnet.{m}") for m in GRADED}
    finally:
        sys.path.remove(str(pkg_root))

def package(folder, tmp):
    pkg = tmp / folder.name / "scratchnet"
    pkg.mkdir(parents=True)
    for f in reference_dir.glob("*.py"):
        shutil.copyfile(f, pkg / f.name)
    for m in GRADED:
        shutil.copyfile(folder / f"{m}.py", pkg / f"{m}.py")
    return pkg.parent

def same(got, want, what):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{what}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            same(got[k], want[k], f"{what}[{k!r}]")
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), f"{what}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, f"{what}[{i}]")
    else:
        g, w = np.asarray(got), np.asarray(want)
        assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
        assert np.allclose(g, w, rtol=1e-9, atol=1e-12), f"{what}: values differ by {np.max(np.abs(g - w))}"

def check(s, r):
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(4, 6)) * 3, [[-1000.0, -30.0, 0.0, 1e-10, 30.0, 1000.0]]])
    for f in ("sigmoid", "sigmoid_derivative", "relu", "relu_derivative", "tanh", "tanh_derivative", "softmax"):
        z0 = z.copy()
        same(getattr(s["activations"], f)(z), getattr(r["activations"], f)(z), f)
        assert np.array_equal(z, z0), f"{f} modified its input"
    big = np.array([[1e4, -1e4, 0.0], [5.0, 5.0, 5.0]])
    same(s["activations"].softmax(big), r["activations"].softmax(big), "softmax(large)")
    sizes = [6, 5, 4, 3]
    params = r["forward"].init_params(sizes, np.random.default_rng(1))
    same(s["forward"].init_params(sizes, np.random.default_rng(1)), params, "init_params")
    X = rng.normal(size=(10, 6))
    y = rng.integers(0, 3, size=10)
    Y = r["train"].one_hot(y, 3)
    same(s["forward"].linear_forward(X, params["W1"], params["b1"]),
         r["forward"].linear_forward(X, params["W1"], params["b1"]), "linear_forward")
    for act in ("relu", "sigmoid", "tanh"):
        probs, cache = r["forward"].forward(params, X, act)
        got = s["forward"].forward(params, X, act)
        same(got[0], probs, f"forward({act}) probs")
        for key in cache:
            same(got[1][key], cache[key], f"forward({act}) cache")
        same(s["forward"].cross_entropy(probs, Y), r["forward"].cross_entropy(probs, Y), "cross_entropy")
        same(s["forward"].predict(params, X, act), r["forward"].predict(params, X, act), "predict")
        same(s["backward"].softmax_cross_entropy_backward(probs, Y),
             r["backward"].softmax_cross_entropy_backward(probs, Y), "softmax_cross_entropy_backward")
        same(s["backward"].linear_backward(probs - Y, cache["A2"], params["W3"]),
             r["backward"].linear_backward(probs - Y, cache["A2"], params["W3"]), "linear_backward")
        same(s["backward"].backward(params, cache, Y, act), r["backward"].backward(params, cache, Y, act),
             f"backward({act})")
    same(s["train"].one_hot(y, 3), Y, "one_hot")
    for B in (3, 4, 10, 16):
        same(list(s["train"].iterate_minibatches(X, Y, B, np.random.default_rng(2))),
             list(r["train"].iterate_minibatches(X, Y, B, np.random.default_rng(2))), f"iterate_minibatches(B={B})")
    grads = r["backward"].backward(params, r["forward"].forward(params, X, "relu")[1], Y, "relu")
    mine = {k: v.copy() for k, v in params.items()}
    theirs = {k: v.copy() for k, v in params.items()}
    s["train"].sgd_step(mine, grads, 0.1)
    r["train"].sgd_step(theirs, grads, 0.1)
    same(mine, theirs, "sgd_step")
    acc = s["train"].accuracy(params, X, y, "relu")
    assert isinstance(acc, float), f"accuracy returned {type(acc).__name__}"
    same(acc, r["train"].accuracy(params, X, y, "relu"), "accuracy")
    for val in (True, False):
        mine = {k: v.copy() for k, v in params.items()}
        theirs = {k: v.copy() for k, v in params.items()}
        kw = dict(epochs=2, batch_size=4, lr=0.1, activation="tanh",
                  X_val=X[:5] if val else None, y_val=y[:5] if val else None)
        h1 = s["train"].train(mine, X, y, rng=np.random.default_rng(3), **kw)
        h2 = r["train"].train(theirs, X, y, rng=np.random.default_rng(3), **kw)
        same(h1, h2, f"train history (validation {val})")
        same(mine, theirs, f"train params (validation {val})")

reference = load(reference_dir.parent)
problems = {}
with tempfile.TemporaryDirectory() as tmp:
    for folder in folders:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with np.errstate(over="raise", divide="raise", invalid="raise"):
                    check(load(package(folder, Path(tmp))), reference)
            problems[folder.name] = ""
        except Exception as exc:
            problems[folder.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(problems))
'''
