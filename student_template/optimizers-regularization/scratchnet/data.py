"""Datasets for the assignment (provided, not graded).

- ``load_mnist()``: the official MNIST split (60,000 train, 10,000 test) from
  the IDX files bundled in ``data/mnist/``, checked against their SHA-256
  sums; pixels scaled to [0, 1] as float64, images flattened to 784 columns.
  ``load_mnist(source="openml")`` fetches the same data from OpenML instead
  (needs network access; opt-in).
- ``make_xor``, ``make_moons``, ``load_digits``: small problems for quick
  experiments (XOR, scikit-learn's two moons and 8x8 digits).

Every loader returns float64 inputs of shape (N, D) and int64 labels (N,).
"""
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

MNIST_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
}

_RESTORE_HINT = (
    "Restore it from the course release (data/mnist/ in the zip you were given), "
    "set SCRATCHNET_MNIST_DIR to a folder holding the four official IDX files, "
    "or load with load_mnist(source='openml') if you have network access."
)


class DatasetError(RuntimeError):
    """A bundled data file is missing, corrupt or not in the expected format."""


def default_mnist_dir():
    """The folder holding the MNIST files.

    Order: $SCRATCHNET_MNIST_DIR, then the first ``data/mnist`` found in this
    package's folder or one of its parents (the repository or release root).
    """
    env = os.environ.get("SCRATCHNET_MNIST_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        candidate = folder / "data" / "mnist"
        if candidate.is_dir():
            return candidate
    return here.parent / "data" / "mnist"


def sha256_of(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path, expected_sha256):
    """Raise DatasetError unless ``path`` exists and has the expected SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"MNIST file missing: {path}. {_RESTORE_HINT}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DatasetError(
            f"MNIST file corrupt: {path} has SHA-256 {actual}, expected {expected_sha256}. "
            + _RESTORE_HINT
        )


def read_idx(path):
    """Read a gzip-compressed IDX file of unsigned bytes into a uint8 array.

    The header is two zero bytes, the type byte 0x08, the number of
    dimensions, then one big-endian uint32 size per dimension.
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes. {_RESTORE_HINT}")
    ndim = data[3]
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise DatasetError(
            f"{path}: header promises {expected} values of shape {shape}, "
            f"found {len(data) - offset}. {_RESTORE_HINT}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_mnist(data_dir=None, *, source="bundled", verify=True):
    """Load the official MNIST split.

    Inputs:
    - data_dir: folder with the four .gz IDX files (default: default_mnist_dir()).
    - source: "bundled" (the IDX files) or "openml" (scikit-learn's
      fetch_openml, which needs network access; the first 60,000 rows are
      the official training split).
    - verify: check the SHA-256 of every bundled file first.

    Returns (X_train, y_train, X_test, y_test) with shapes (60000, 784),
    (60000,), (10000, 784), (10000,); X float64 in [0, 1], y int64 in 0..9.
    """
    if source == "openml":
        return _load_mnist_openml()
    if source != "bundled":
        raise ValueError(f"unknown source {source!r}: expected 'bundled' or 'openml'")
    folder = Path(data_dir) if data_dir is not None else default_mnist_dir()
    arrays = {}
    for key, name in MNIST_FILES.items():
        path = folder / name
        if verify:
            verify_file(path, MNIST_SHA256[name])
        elif not path.is_file():
            raise DatasetError(f"MNIST file missing: {path}. {_RESTORE_HINT}")
        arrays[key] = read_idx(path)
    return (
        _scale(arrays["train_images"]),
        arrays["train_labels"].astype(np.int64),
        _scale(arrays["test_images"]),
        arrays["test_labels"].astype(np.int64),
    )


def _scale(images):
    """(N, 28, 28) uint8 -> (N, 784) float64 in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _load_mnist_openml():
    from sklearn.datasets import fetch_openml

    X, y = fetch_openml("mnist_784", version=1, return_X_y=True, as_frame=False, parser="liac-arff")
    X = np.asarray(X, dtype=np.float64) / 255.0
    y = np.asarray(y).astype(np.int64)
    return X[:60000], y[:60000], X[60000:], y[60000:]


def make_xor(n=200, *, noise=0.1, rng=None):
    """Noisy XOR: points around the four corners of the unit square.

    Returns X of shape (n, 2) and y of shape (n,), where y = 1 for the
    corners (0, 1) and (1, 0) and y = 0 for (0, 0) and (1, 1).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    corners = rng.integers(0, 2, size=(n, 2))
    X = corners + noise * rng.standard_normal((n, 2))
    y = (corners[:, 0] ^ corners[:, 1]).astype(np.int64)
    return X.astype(np.float64), y


def make_moons(n=400, *, noise=0.2, seed=0):
    """scikit-learn's two interleaving half circles: X (n, 2), y (n,) in {0, 1}."""
    from sklearn.datasets import make_moons as sk_make_moons

    X, y = sk_make_moons(n_samples=n, noise=noise, random_state=seed)
    return X.astype(np.float64), y.astype(np.int64)


def load_digits(*, test_fraction=0.25, seed=0):
    """scikit-learn's 8x8 digits, scaled to [0, 1], split into train and test.

    Returns (X_train, y_train, X_test, y_test) with D = 64 and C = 10.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    X, y = sk_load_digits(return_X_y=True)
    X = X.astype(np.float64) / 16.0
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    test, tr = order[:n_test], order[n_test:]
    return X[tr], y[tr].astype(np.int64), X[test], y[test].astype(np.int64)
