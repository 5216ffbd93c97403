"""Specification of the provided datasets (solutions/scratchnet/data.py)."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from scratchnet import data
from scratchnet.data import DatasetError, load_digits, load_mnist, make_moons, make_xor, read_idx

BUNDLED = data.default_mnist_dir()


def sha256sums_file():
    """{file name: hex digest} parsed from data/mnist/SHA256SUMS."""
    sums = {}
    for line in (BUNDLED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    return sums


def copy_of_bundled(tmp_path):
    """A folder in tmp_path holding copies of the four MNIST files."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in data.MNIST_FILES.values():
        shutil.copyfile(BUNDLED / name, folder / name)
    return folder


def test_bundled_files_match_sha256sums():
    """Do the bundled files hash to the digests of data/mnist/SHA256SUMS, and does data.py agree?"""
    sums = sha256sums_file()
    assert sums == data.MNIST_SHA256
    for name, digest in sums.items():
        assert hashlib.sha256((BUNDLED / name).read_bytes()).hexdigest() == digest, name


def test_load_mnist_shapes_types_and_ranges():
    """Does load_mnist give the official 60,000 / 10,000 split as float64 in [0, 1] and int64 labels 0..9?"""
    X_train, y_train, X_test, y_test = load_mnist()
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert X_train.dtype == X_test.dtype == np.float64
    assert y_train.dtype == y_test.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(np.unique(y_test), np.arange(10))
    # The official split's class counts (e.g. 6742 ones in training, 1135 in test).
    assert np.bincount(y_train)[1] == 6742 and np.bincount(y_test)[1] == 1135


def test_corrupt_file_names_the_file_and_how_to_restore_it(tmp_path):
    """Does a file with one changed byte raise DatasetError naming it and saying how to restore it?"""
    folder = copy_of_bundled(tmp_path)
    victim = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(DatasetError) as info:
        load_mnist(folder)
    message = str(info.value)
    assert str(victim) in message
    assert "corrupt" in message and "expected" in message
    assert "Restore" in message and "SCRATCHNET_MNIST_DIR" in message


def test_missing_file_names_the_file_and_how_to_restore_it(tmp_path):
    """Does a missing file raise DatasetError naming it and saying how to restore it?"""
    folder = copy_of_bundled(tmp_path)
    missing = folder / "train-images-idx3-ubyte.gz"
    missing.unlink()
    with pytest.raises(DatasetError) as info:
        load_mnist(folder)
    message = str(info.value)
    assert str(missing) in message and "missing" in message
    assert "Restore" in message
    with pytest.raises(DatasetError, match="missing"):
        load_mnist(folder, verify=False)


def test_mnist_dir_environment_variable(tmp_path, monkeypatch):
    """Does SCRATCHNET_MNIST_DIR choose the folder that load_mnist reads?"""
    monkeypatch.setenv("SCRATCHNET_MNIST_DIR", str(tmp_path))
    assert data.default_mnist_dir() == tmp_path
    with pytest.raises(DatasetError, match=str(tmp_path)):
        load_mnist()


def test_read_idx_parses_header_and_rejects_other_files(tmp_path):
    """Does read_idx return the (dims) uint8 array of a valid IDX file and refuse a wrong header or size?"""
    values = np.arange(24, dtype=np.uint8)
    good = tmp_path / "good.gz"
    good.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + np.array([2, 3, 4], ">u4").tobytes() + values.tobytes()))
    np.testing.assert_array_equal(read_idx(good), values.reshape(2, 3, 4))

    not_idx = tmp_path / "float.gz"
    not_idx.write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1]) + np.array([1], ">u4").tobytes() + b"\0" * 4))
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(not_idx)

    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + np.array([10], ">u4").tobytes() + b"\0" * 9))
    with pytest.raises(DatasetError, match="header promises 10"):
        read_idx(short)


def test_make_xor_labels_are_xor_of_corners():
    """Are make_xor's labels the XOR of the corner each point was drawn around, and reproducible?"""
    X, y = make_xor(500, noise=0.1, rng=np.random.default_rng(0))
    assert X.shape == (500, 2) and X.dtype == np.float64 and y.dtype == np.int64
    corners = np.rint(X).astype(int)  # noise 0.1 keeps points near their corner
    np.testing.assert_array_equal(y, corners[:, 0] ^ corners[:, 1])
    X2, y2 = make_xor(500, noise=0.1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(X, X2)


def test_make_moons_shapes_and_balance():
    """Does make_moons give (n, 2) float64 points and two balanced int64 classes?"""
    X, y = make_moons(400, seed=0)
    assert X.shape == (400, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [200, 200])


def test_load_digits_split_is_a_partition_scaled_to_unit_range():
    """Do load_digits' train and test parts together hold each of the 1797 images once, scaled by 1/16?"""
    from sklearn.datasets import load_digits as sk_load_digits

    X_train, y_train, X_test, y_test = load_digits()
    assert X_train.shape[1] == X_test.shape[1] == 64
    assert len(X_test) == round(0.25 * 1797) and len(X_train) + len(X_test) == 1797
    X_all, y_all = sk_load_digits(return_X_y=True)
    ours = np.column_stack([np.concatenate([X_train, X_test]) * 16.0, np.concatenate([y_train, y_test])])
    theirs = np.column_stack([X_all, y_all]).astype(np.float64)
    def rows_sorted(a):  # the rows as a multiset: sorted lexicographically
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_array_equal(rows_sorted(ours), rows_sorted(theirs))
