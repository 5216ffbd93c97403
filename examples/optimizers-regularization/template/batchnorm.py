"""Batch normalization of a layer's pre-activations (Assignment 2, graded part: batchnorm).

A graded part of Assignment 2 "Optimizers and Regularization".

Shapes: Z holds N examples (rows) of H features (columns); gamma, beta and
the statistics mean and var have shape (H,) and broadcast over the rows.

- Training mode (``batchnorm_forward``): every feature is normalised with the
  mean and the biased variance of the current batch, then scaled by gamma
  and shifted by beta.
- Evaluation mode (``batchnorm_eval``): the same, with fixed statistics,
  typically the running averages that ``running_stats`` keeps during
  training.

Everything is float64. No function in this file modifies its inputs.
"""
import numpy as np


def batchnorm_forward(Z, gamma, beta, eps=1e-5):
    """Batch normalization in training mode.

    Inputs:
    - Z: pre-activations, shape (N, H), N >= 1.
    - gamma: scale, shape (H,).
    - beta: shift, shape (H,).
    - eps: small positive float added to the variance.

    Returns a tuple (out, cache):
    - out: shape (N, H), ``gamma * (Z - mu) / sqrt(var + eps) + beta`` where
      mu = Z.mean(axis=0) and var = Z.var(axis=0) (the biased variance:
      divided by N), both of shape (H,).
    - cache: a dict holding what batchnorm_backward needs; the reference
      stores "x_hat" = (Z - mu) / sqrt(var + eps), shape (N, H), "gamma",
      shape (H,), and "inv_std" = 1 / sqrt(var + eps), shape (H,). You may
      store other entries; batchnorm_backward receives this dict.
    """
    raise NotImplementedError("batchnorm_forward: not implemented yet (see handout.md, section 'Part 2: batchnorm')")


def batchnorm_backward(dout, cache):
    """Gradients of batchnorm_forward (training mode).

    Inputs:
    - dout: gradient of the loss with respect to out, shape (N, H).
    - cache: the cache that batchnorm_forward returned.

    Returns a tuple (dZ, dgamma, dbeta):
    - dZ: shape (N, H), gradient with respect to Z. The batch mean and
      variance depend on Z, so every row of dZ depends on every row of dout.
    - dgamma: shape (H,), sum over the rows of dout * x_hat.
    - dbeta: shape (H,), sum over the rows of dout.

    Hint: with dx_hat = dout * gamma, backpropagating through the mean and
    the variance simplifies, column by column, to
    dZ = inv_std / N * (N * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat)),
    where the sums run over the N rows (``axis=0``).
    """
    raise NotImplementedError("batchnorm_backward: not implemented yet (see handout.md, section 'Part 2: batchnorm')")


def batchnorm_eval(Z, gamma, beta, mean, var, eps=1e-5):
    """Batch normalization in evaluation mode, with given statistics.

    Inputs:
    - Z: pre-activations, shape (N, H).
    - gamma, beta: scale and shift, shape (H,).
    - mean, var: the statistics to normalise with, shape (H,) (for example
      the running averages of ``running_stats``).
    - eps: small positive float added to the variance.

    Returns:
    - out: shape (N, H), ``gamma * (Z - mean) / sqrt(var + eps) + beta``.
      Each row is normalised on its own: the result for one row does not
      depend on the other rows.
    """
    raise NotImplementedError("batchnorm_eval: not implemented yet (see handout.md, section 'Part 2: batchnorm')")


def running_stats(mean, var, Z, momentum=0.9):
    """Update the running averages of the batch statistics.

    Inputs:
    - mean, var: the current running mean and variance, shape (H,).
    - Z: the current batch of pre-activations, shape (N, H), N >= 2.
    - momentum: weight of the old value, a float in [0, 1].

    Returns a tuple (new_mean, new_var), new arrays of shape (H,):
    - new_mean = momentum * mean + (1 - momentum) * Z.mean(axis=0)
    - new_var = momentum * var + (1 - momentum) * Z.var(axis=0, ddof=1)

    The variance of the batch here is the unbiased one (divided by N - 1),
    as in PyTorch, unlike the biased one that batchnorm_forward normalises
    with.
    """
    raise NotImplementedError("running_stats: not implemented yet (see handout.md, section 'Part 2: batchnorm')")
