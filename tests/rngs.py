"""A Generator wrapper for the kit's tests that checks how code uses its rng."""
import numpy as np


class CountingRng:
    """Wraps ``np.random.default_rng(seed)`` and records the name of every method called on it.

    Draws are those of the wrapped Generator, so a CountingRng(seed) gives
    the same numbers as default_rng(seed); ``calls`` lists the method names
    in call order and ``bit_generator`` is the wrapped one (to compare states).
    """

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self._rng, name)
        if callable(attr):
            def recorded(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)
            return recorded
        return attr
