"""Optimizers and a learning-rate schedule (Assignment 2, graded part: optimizers).

A graded part of Assignment 2 "Optimizers and Regularization".

The update rules are those of torch.optim: SGD with momentum (no dampening,
not Nesterov), RMSprop and Adam. Plain SGD is Assignment 1's ``sgd_step``
(scratchnet.train).

Every optimizer has two functions:

- ``<name>_init(params)`` returns the optimizer's state: a new dict whose
  arrays are zeros with the keys and shapes of params.
- ``<name>_step(params, grads, state, lr, ...)`` does one update and returns
  None. It updates every array of params in place (``params[k] -= ...``,
  so the caller's arrays change, as with sgd_step) and updates ``state``;
  it never modifies grads.

``params`` and ``grads`` are dicts with the same keys ("W1", "b1", ...) and
shapes, float64. Visit the keys in the order of params.
"""
import math

import numpy as np


def momentum_init(params):
    """State of SGD with momentum: the velocities, all zero.

    Inputs:
    - params: dict of float64 arrays.

    Returns:
    - {"v": {k: zeros of the shape of params[k] for every key k}}.
    """
    raise NotImplementedError("momentum_init: not implemented yet (see handout.md, section 'Part 3: optimizers')")


def momentum_step(params, grads, state, lr, beta=0.9):
    """One step of SGD with momentum, in place.

    Inputs:
    - params: dict of arrays, updated in place.
    - grads: dict of gradients with the keys and shapes of params.
    - state: the dict of momentum_init, updated.
    - lr: learning rate, a positive float.
    - beta: momentum, a float in [0, 1).

    For every key k, with g = grads[k] and v = state["v"][k]:
        v = beta * v + g            (stored back into state["v"][k])
        params[k] -= lr * v

    Returns None.
    """
    raise NotImplementedError("momentum_step: not implemented yet (see handout.md, section 'Part 3: optimizers')")


def rmsprop_init(params):
    """State of RMSprop: the running averages of the squared gradients, all zero.

    Inputs:
    - params: dict of float64 arrays.

    Returns:
    - {"s": {k: zeros of the shape of params[k] for every key k}}.
    """
    raise NotImplementedError("rmsprop_init: not implemented yet (see handout.md, section 'Part 3: optimizers')")


def rmsprop_step(params, grads, state, lr, rho=0.99, eps=1e-8):
    """One step of RMSprop, in place.

    Inputs:
    - params: dict of arrays, updated in place.
    - grads: dict of gradients with the keys and shapes of params.
    - state: the dict of rmsprop_init, updated.
    - lr: learning rate, a positive float.
    - rho: decay of the running average, a float in [0, 1).
    - eps: small positive float added to the denominator.

    For every key k, with g = grads[k] and s = state["s"][k]:
        s = rho * s + (1 - rho) * g**2      (stored back into state["s"][k])
        params[k] -= lr * g / (sqrt(s) + eps)

    Returns None.
    """
    raise NotImplementedError("rmsprop_step: not implemented yet (see handout.md, section 'Part 3: optimizers')")


def adam_init(params):
    """State of Adam: first and second moment estimates, all zero, and the step count.

    Inputs:
    - params: dict of float64 arrays.

    Returns:
    - {"m": {k: zeros}, "v": {k: zeros}, "t": 0}, the zeros with the shape
      of params[k] for every key k; "m" and "v" hold separate arrays.
    """
    raise NotImplementedError("adam_init: not implemented yet (see handout.md, section 'Part 3: optimizers')")


def adam_step(params, grads, state, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step of Adam, in place.

    Inputs:
    - params: dict of arrays, updated in place.
    - grads: dict of gradients with the keys and shapes of params.
    - state: the dict of adam_init, updated.
    - lr: learning rate, a positive float.
    - beta1, beta2: decay rates of the moment estimates, floats in [0, 1).
    - eps: small positive float added to the denominator.

    First state["t"] += 1 (once per step, not once per key); then, with
    t = state["t"], for every key k with g = grads[k], m = state["m"][k]
    and v = state["v"][k]:
        m = beta1 * m + (1 - beta1) * g        (stored into state["m"][k])
        v = beta2 * v + (1 - beta2) * g**2     (stored into state["v"][k])
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        params[k] -= lr * m_hat / (sqrt(v_hat) + eps)

    Returns None.
    """
    raise NotImplementedError("adam_step: not implemented yet (see handout.md, section 'Part 3: optimizers')")


def cosine_lr(lr0, step, total_steps, lr_min=0.0):
    """Cosine-annealed learning rate.

    Inputs:
    - lr0: learning rate at step 0, a positive float.
    - step: the current step, an int with 0 <= step <= total_steps.
    - total_steps: the number of steps of the whole schedule, a positive int.
    - lr_min: learning rate at step == total_steps.

    Returns:
    - a Python float, lr_min + 0.5 * (lr0 - lr_min) * (1 + cos(pi * step / total_steps)):
      lr0 at step 0, (lr0 + lr_min) / 2 half way, lr_min at the end.
    """
    raise NotImplementedError("cosine_lr: not implemented yet (see handout.md, section 'Part 3: optimizers')")
