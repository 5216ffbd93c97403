"""What a submission's grade depends on, hashed, so that a rerun skips what is up to date.

A grade is a function of:

- the submission: a folder's relative paths and file contents (symlinks by
  their target, never followed; FIFOs and other special files by their
  kind), or a zip's bytes;
- the test suites: every file under the tests folder (caches aside);
- the grading configuration: the assignment's config as loaded (points,
  MNIST configuration, limits), the suites and test files run, the backend
  and the isolation tier;
- the course secret (it seeds the hidden tests' inputs);
- the kit: nnkit/*.py, every file of the reference package, and the
  versions of Python, NumPy and pytest. Any change to the kit's code counts,
  even one that cannot change a grade (a report template): reusing a grade
  by mistake costs more than regrading.

``key`` combines them into one sha256. A result folder holds it in
``inputs.json``, written after the result files (see nnkit.grading.runner), so a
folder without it, or with another key, is graded again. inputs.json also
lists each input's hash except the secret's, to see what changed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import stat
import time
from importlib import metadata
from pathlib import Path

INPUTS_FILE = "inputs.json"
CACHE_NAMES = {"__pycache__", ".pytest_cache"}
_CHUNK = 1 << 20


def hash_tree(root: Path, ignore: set[str] = frozenset()) -> str:
    """sha256 of every entry under ``root``: relative path, kind and contents, in sorted order.

    Symlinks are hashed by their target and never followed; FIFOs, sockets
    and devices by their kind only (opening a FIFO would wait forever).
    Raises OSError when something cannot be read.
    """
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root, followlinks=False, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if d not in ignore)
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
            if stat.S_ISLNK(info.st_mode):
                digest.update(b"link\0" + os.fsencode(os.readlink(path)))
            elif stat.S_ISREG(info.st_mode):
                digest.update(b"file\0" + _file_digest(Path(path)).encode())
            else:
                digest.update(b"special\0" + str(stat.S_IFMT(info.st_mode)).encode())
            digest.update(b"\0")
    return digest.hexdigest()


def _raise(error: OSError) -> None:
    raise error


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def submission_digest(entry: Path) -> str | None:
    """Hash of a submission (folder or zip); None when part of it cannot be read (then it is
    graded every time, and grading says what could not be read)."""
    try:
        if Path(entry).is_dir():
            return hash_tree(Path(entry))
        return _file_digest(Path(entry))
    except OSError:
        return None


def grader_inputs(grader) -> dict[str, str]:
    """Hashes of everything but the submission that a grade depends on (see the module's
    docstring), computed once per batch: "tests", "config", "secret", "kit"."""
    settings = {"config": dataclasses.asdict(grader.config), "suites": list(grader.suites),
                "skip_files": list(grader.skip_files), "backend": grader.backend, "tier": grader.tier}
    kit_dir = Path(__file__).resolve().parent.parent
    kit = hashlib.sha256()
    for path in sorted(kit_dir.rglob("*.py")):
        kit.update(path.relative_to(kit_dir).as_posix().encode() + b"\0" + _file_digest(path).encode() + b"\0")
    kit.update(b"reference\0" + hash_tree(grader.reference_pkg, CACHE_NAMES).encode())
    kit.update(json.dumps(_versions(), sort_keys=True).encode())
    return {
        "tests": hash_tree(grader.tests_dir, CACHE_NAMES),
        "config": _text_digest(json.dumps(settings, sort_keys=True, default=str)),
        "secret": _text_digest(grader.secret),
        "kit": kit.hexdigest(),
    }


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("numpy", "pytest"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def key(submission: str | None, inputs: dict[str, str]) -> str | None:
    """The one hash a result is stored under; None when the submission could not be hashed."""
    if submission is None:
        return None
    return _text_digest(json.dumps({"submission": submission, **inputs}, sort_keys=True))


def write(folder: Path, key_: str, submission: str, inputs: dict[str, str]) -> None:
    """Write ``folder``/inputs.json: the key, and each input's hash but the secret's."""
    shown = {"submission": submission, **{k: v for k, v in inputs.items() if k != "secret"}}
    data = {"key": key_, "inputs": shown, "graded_at": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    (Path(folder) / INPUTS_FILE).write_text(json.dumps(data, indent=2) + "\n")


def is_current(folder: Path, key_: str | None) -> bool:
    """Does ``folder`` hold a complete result graded from inputs with this key?"""
    if key_ is None:
        return False
    try:
        stored = json.loads((Path(folder) / INPUTS_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and stored.get("key") == key_ and (Path(folder) / "result.json").is_file()
