"""Helpers for the kit's tests that compare dicts of arrays."""
import numpy as np


def copies(d):
    """A dict of independent copies of the arrays in ``d``."""
    return {k: np.array(v, copy=True) for k, v in d.items()}


def assert_same(a, b):
    """Assert two dicts of arrays have the same keys and bit-identical values."""
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
