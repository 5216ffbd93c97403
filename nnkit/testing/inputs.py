"""Random inputs for the suites (shipped with the public tests)."""
import numpy as np


def random_params(rng, sizes, *, scale, bias_scale):
    """Random weights and non-zero biases (so a forgotten bias shows), float64.

    Inputs:
    - rng: a numpy Generator.
    - sizes: [n0, n1, ..., nL].
    - scale: W_l entries have standard deviation scale / sqrt(n_{l-1}).
    - bias_scale: standard deviation of the b_l entries.

    Returns a dict "W1", "b1", ... with W_l of shape (n_{l-1}, n_l) and b_l of shape (n_l,).
    """
    params = {}
    for l in range(1, len(sizes)):
        params[f"W{l}"] = rng.normal(0.0, scale / np.sqrt(sizes[l - 1]), size=(sizes[l - 1], sizes[l]))
        params[f"b{l}"] = rng.normal(0.0, bias_scale, size=sizes[l])
    return params
