"""What the hidden MNIST test compares against, computed once and cached.

- ``mnist-<sha>.npz``: the official split as uint8 pixels and int64 labels,
  read (and checksum-verified) through the reference's data.py.
- ``shared/X_train.npy``, ``shared/y_train.npy``: the training split as the
  student's train() receives it (float64 in [0, 1]). The sandboxed worker of
  the MNIST test sees this folder read-only and maps the files instead of
  receiving 376 MB through a pipe (``nnkit.sandbox.transport.load_shared``); the
  test split never leaves the grader.
- ``test/X_test.npy``, ``test/y_test.npy``: the test split, likewise, for the
  grader alone (mapped, not decompressed, by each test process).
- ``trajectory-<sha>.npz``: what the active assignment's end-to-end check
  compares against: the arrays its ``end_to_end.py`` computes with the
  reference package (``reference(config, seed, X_train, y_train, X_test,
  y_test)``; for both assignments, the weights after training with the graded
  configuration from ``init_params(layer_sizes, default_rng(seed))`` and
  ``rng = default_rng(seed + 1)``), for the seed the grader draws from the
  course secret. The key hashes the reference package, the assignment's
  end_to_end.py, the [mnist] configuration and the seed, so editing any of
  them recomputes it.

Computed in a subprocess (``python -m nnkit.grading.end_to_end``) with one BLAS
thread, so the grader's own process never imports a scratchnet package.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from nnkit.course.config import ASSIGNMENT_DIR, MnistConfig

REFERENCE_FILE = "end_to_end.py"
"""The assignment's reference computation of its end-to-end check (in its folder)."""


def mnist_seed(secret: str) -> int:
    """The seed of the hidden MNIST test, derived from the course secret."""
    return int.from_bytes(hashlib.sha256(f"{secret}:mnist".encode()).digest()[:4], "little")


def _config_json(mnist: MnistConfig) -> str:
    return json.dumps(dataclasses.asdict(mnist), default=list, sort_keys=True)


def _key(reference_pkg: Path, mnist: MnistConfig, seed: int) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(reference_pkg).glob("*.py")) + [ASSIGNMENT_DIR / REFERENCE_FILE]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{_config_json(mnist)}\0{seed}".encode())
    return digest.hexdigest()[:16]


def ensure(cache_dir: Path, reference_pkg: Path, mnist: MnistConfig, seed: int) -> dict[str, str]:
    """Return {"data": path, "trajectory": path, "shared": folder}, computing what is missing."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _key(reference_pkg, mnist, seed)
    paths = {"data": cache_dir / "mnist.npz", "trajectory": cache_dir / f"trajectory-{key}.npz"}
    if not all(p.is_file() for p in paths.values()):
        from nnkit.sandbox.backend import BLAS_ENV

        env = {**os.environ, **BLAS_ENV}
        kit = Path(__file__).resolve().parent.parent.parent
        cmd = [sys.executable, "-I", "-c",
               f"import sys; sys.path[:0] = [{str(kit)!r}, {str(Path(reference_pkg).parent)!r}]; "
               "from nnkit.grading.end_to_end import main; main(sys.argv[1:])",
               "--data", str(paths["data"]), "--trajectory", str(paths["trajectory"]),
               "--seed", str(seed), "--config", _config_json(mnist),
               "--reference", str(ASSIGNMENT_DIR / REFERENCE_FILE)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"computing the MNIST reference failed:\n{done.stderr[-3000:]}")
    paths["shared"] = _write_split(paths["data"], cache_dir / "shared", "train", mode=0o444)
    _write_split(paths["data"], cache_dir / "test", "test", mode=0o400)
    return {k: str(v) for k, v in paths.items()}


def _split_files(split: str) -> tuple[str, str]:
    return f"X_{split}.npy", f"y_{split}.npy"


def _write_split(data: Path, folder: Path, split: str, mode: int) -> Path:
    """Write one split of ``data`` into ``folder`` as .npy files, X as float64 in [0, 1]
    (unless they are newer than ``data``); return the folder. The training split is
    readable by everyone (workers of any tier map it); the test split by the grader only."""
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755 if mode & 0o004 else 0o700)
    targets = [folder / name for name in _split_files(split)]
    if all(t.is_file() and t.stat().st_mtime >= data.stat().st_mtime for t in targets):
        return folder
    with np.load(data) as z:
        arrays = (z[f"X_{split}"].astype(np.float64) / 255.0, z[f"y_{split}"])
    for target, array in zip(targets, arrays):
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, array)
        tmp.chmod(mode)
        os.replace(tmp, target)
    return folder


def load_training_split(shared: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(X_train (60000, 784) float64 in [0, 1], y_train (60000,) int64), mapped read-only from the
    shared folder; passed to a sandboxed submission, they cross as file names, not bytes."""
    from nnkit.sandbox import transport

    return tuple(transport.load_shared(Path(shared) / name) for name in _split_files("train"))


def load_test_split(data: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(X_test (10000, 784) float64 in [0, 1], y_test (10000,)), mapped read-only from the
    ``test`` folder next to ``data`` (the cache's mnist.npz)."""
    folder = Path(data).parent / "test"
    return tuple(np.load(folder / name, mmap_mode="r") for name in _split_files("test"))


def load_data(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train (60000, 784) float64 in [0, 1], y_train, X_test, y_test) from the cache."""
    with np.load(path) as z:
        return (z["X_train"].astype(np.float64) / 255.0, z["y_train"],
                z["X_test"].astype(np.float64) / 255.0, z["y_test"])


def load_assignment_module(path: str | Path | None = None):
    """The active assignment's end_to_end.py (or the one at ``path``) as a module."""
    spec = importlib.util.spec_from_file_location("assignment_end_to_end", path or ASSIGNMENT_DIR / REFERENCE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--trajectory", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", required=True, help="the [mnist] section as JSON")
    parser.add_argument("--reference", required=True, help="the assignment's end_to_end.py")
    args = parser.parse_args(argv)
    cfg = json.loads(args.config)
    from scratchnet import data

    assignment = load_assignment_module(args.reference)

    if not Path(args.data).is_file():
        X_train, y_train, X_test, y_test = data.load_mnist()
        tmp = args.data + ".tmp.npz"
        np.savez(tmp, X_train=np.rint(X_train * 255).astype(np.uint8), y_train=y_train,
                 X_test=np.rint(X_test * 255).astype(np.uint8), y_test=y_test)
        os.replace(tmp, args.data)
    X_train, y_train, X_test, y_test = load_data(args.data)
    arrays = assignment.reference(cfg, args.seed, X_train, y_train, X_test, y_test)
    tmp = args.trajectory + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, args.trajectory)


if __name__ == "__main__":
    main()
