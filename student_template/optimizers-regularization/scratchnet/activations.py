"""Activation functions and their derivatives (graded part: activations).

Every function here is elementwise except ``softmax``, works on float64
arrays, returns a new float64 array and never modifies its input.
Derivatives are d/dz evaluated at the pre-activation ``z`` (not at the
activation value), because that is what the backward pass has in its cache.
"""
import numpy as np


def sigmoid(z):
    """Logistic sigmoid, 1 / (1 + exp(-z)), elementwise.

    Inputs:
    - z: array of any shape, float64.

    Returns:
    - array of the same shape as z, values in [0, 1].

    Must be stable for |z| up to 1e3: no overflow warning and no nan.
    Hint: exp(-z) overflows for z around -710. For negative z use the
    equivalent form exp(z) / (1 + exp(z)), which only ever exponentiates
    non-positive numbers.
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z):
    """Derivative of the sigmoid at z: s(z) * (1 - s(z)), elementwise.

    Inputs:
    - z: array of any shape, float64 (pre-activation values).

    Returns:
    - array of the same shape as z, values in [0, 0.25].

    Must be stable for |z| up to 1e3, like ``sigmoid``.
    """
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z):
    """Rectified linear unit, max(0, z), elementwise.

    Inputs:
    - z: array of any shape, float64.

    Returns:
    - array of the same shape as z.
    """
    return np.maximum(np.asarray(z, dtype=np.float64), 0.0)


def relu_derivative(z):
    """Derivative of ReLU at z: 1.0 where z > 0, else 0.0 (also at z == 0).

    Inputs:
    - z: array of any shape, float64 (pre-activation values).

    Returns:
    - float64 array of the same shape as z holding only 0.0 and 1.0.
    """
    return (np.asarray(z) > 0).astype(np.float64)


def tanh(z):
    """Hyperbolic tangent, elementwise.

    Inputs:
    - z: array of any shape, float64.

    Returns:
    - array of the same shape as z, values in [-1, 1].
    """
    return np.tanh(np.asarray(z, dtype=np.float64))


def tanh_derivative(z):
    """Derivative of tanh at z: 1 - tanh(z)**2, elementwise.

    Inputs:
    - z: array of any shape, float64 (pre-activation values).

    Returns:
    - array of the same shape as z, values in [0, 1].
    """
    t = np.tanh(np.asarray(z, dtype=np.float64))
    return 1.0 - t * t


def softmax(z):
    """Row-wise softmax: out[i, j] = exp(z[i, j]) / sum_k exp(z[i, k]).

    Inputs:
    - z: scores of shape (N, C), float64.

    Returns:
    - probs of shape (N, C); every row is non-negative and sums to 1.

    Must be stable for entries up to 1e4 in magnitude. Hint: softmax does
    not change when you subtract the same number from every entry of a row,
    so subtract each row's maximum before exponentiating (keep the axis with
    ``keepdims=True`` so the shapes broadcast row by row).
    """
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)

