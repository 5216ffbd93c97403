"""Finding the four graded files in a submission, safely.

A submission is a folder or a ``.zip`` holding activations.py, forward.py,
backward.py and train.py anywhere inside. When a file appears more than
once, the shallowest copy is graded (ties: the first path in sorted order)
and a note says so. Symlinks are never followed, zip entries are never
extracted to disk (only the four files are read, into the grader's private
folder), and files over the size cap are refused. Nothing here runs the
student's code: the checks use ``ast`` only.
"""
from __future__ import annotations

import ast
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nnkit.course.contract import FUNCTIONS, MODULE_OF_PART, SIGNATURES

GRADED = {f"{module}.py": part for part, module in MODULE_OF_PART.items()}
"""Graded file name -> part."""


class SubmissionError(Exception):
    """The submission cannot be read at all (malformed zip, not a folder or zip)."""


@dataclass
class Collected:
    """What was found in one submission."""

    name: str
    """Submission name: the folder name or the zip's stem."""
    files: dict[str, Path | None] = field(default_factory=dict)
    """Part -> the copied file in the grader's folder (None when missing or refused)."""
    notes: list[str] = field(default_factory=list)
    """Messages for the student's feedback (duplicates, refused files, syntax, signatures)."""
    problems: list[str] = field(default_factory=list)
    """Short reasons for the status column (empty: nothing wrong with the files)."""


def submission_name(entry: Path) -> str:
    """The folder name, or the zip's stem."""
    return entry.stem if entry.suffix.lower() == ".zip" and entry.is_file() else entry.name


def _pick(candidates: dict[str, list[str]], name: str, notes: list[str]) -> str | None:
    paths = candidates.get(name, [])
    if not paths:
        return None
    paths.sort(key=lambda p: (len(PurePosixPath(p).parts), p))
    if len(paths) > 1:
        notes.append(f"{name} appears {len(paths)} times; graded the shallowest copy, {paths[0]} "
                     f"(ignored: {', '.join(paths[1:])})")
    return paths[0]


def _walk_folder(root: Path, notes: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for d in list(dirs):
            if os.path.islink(os.path.join(folder, d)):
                dirs.remove(d)
                notes.append(f"symlink {os.path.relpath(os.path.join(folder, d), root)} ignored "
                             "(symlinks are never followed)")
        dirs.sort()
        for f in sorted(files):
            if f in GRADED:
                found.setdefault(f, []).append(os.path.relpath(os.path.join(folder, f), root))
    return found


def _copy_from_folder(root: Path, rel: str, dest: Path, max_bytes: int) -> str | None:
    """Copy one file without following symlinks; return a refusal reason or None."""
    path = root / rel
    try:
        # O_NONBLOCK: opening a FIFO named like a graded file would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return "it is a symlink (symlinks are never followed)" if os.path.islink(path) else f"unreadable ({exc.strerror})"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "it is not a regular file"
        if info.st_size > max_bytes:
            return f"it is {info.st_size:,} bytes; the limit is {max_bytes:,}"
        dest.write_bytes(f.read(max_bytes + 1))
    return None


def _zip_candidates(zf: zipfile.ZipFile, notes: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            notes.append(f"zip entry {info.filename!r} ignored (it points outside the submission)")
            continue
        if info.is_dir() or not parts or parts[-1] not in GRADED:
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            notes.append(f"zip entry {info.filename} ignored (symlinks are never followed)")
            continue
        if parts[0] == "__MACOSX":
            continue
        found.setdefault(parts[-1], []).append(name)
    return found


def collect(entry: Path, dest: Path, *, max_bytes: int = 1_000_000) -> Collected:
    """Copy the graded files of one submission into ``dest`` (a private folder).

    Raises SubmissionError when the entry is neither a folder nor a readable zip.
    """
    entry = Path(entry)
    dest.mkdir(parents=True, exist_ok=True)
    result = Collected(name=submission_name(entry))
    if entry.is_symlink():
        raise SubmissionError("the submission itself is a symlink (never followed)")
    if entry.is_dir():
        candidates = _walk_folder(entry, result.notes)
        reader = lambda rel, target: _copy_from_folder(entry, rel, target, max_bytes)  # noqa: E731
        zf = None
    elif entry.is_file() and entry.suffix.lower() == ".zip":
        try:
            zf = zipfile.ZipFile(entry)
            candidates = _zip_candidates(zf, result.notes)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise SubmissionError(f"malformed zip ({exc})") from None

        def reader(rel, target):
            info = zf.getinfo(rel) if rel in zf.namelist() else zf.getinfo(rel.replace("/", "\\"))
            if info.file_size > max_bytes:
                return f"it is {info.file_size:,} bytes; the limit is {max_bytes:,}"
            try:
                with zf.open(info) as f:
                    data = f.read(max_bytes + 1)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
                return f"it could not be read from the zip ({exc})"
            if len(data) > max_bytes:
                return f"it is over {max_bytes:,} bytes"
            target.write_bytes(data)
            return None
    else:
        raise SubmissionError("not a folder or a .zip file")
    try:
        for filename, part in GRADED.items():
            rel = _pick(candidates, filename, result.notes)
            target = dest / filename
            refused = reader(rel, target) if rel is not None else None
            if rel is None:
                result.files[part] = None
            elif refused:
                result.files[part] = None
                result.notes.append(f"{rel} refused: {refused}")
                result.problems.append(f"refused {filename}")
            else:
                result.files[part] = target
    finally:
        if zf is not None:
            zf.close()
    missing = [f for f, part in GRADED.items() if result.files[part] is None
               and f"refused {f}" not in result.problems]
    if len(missing) == len(GRADED):
        result.problems.insert(0, "no graded files found")
        result.notes.append("none of activations.py, forward.py, backward.py, train.py was found")
    elif missing:
        result.problems.insert(0, "missing " + ", ".join(missing))
        result.notes.append("missing: " + ", ".join(missing) + " (those parts score zero)")
    for filename, part in GRADED.items():
        if result.files[part] is not None:
            lint(result.files[part], filename, result)
    return result


def lint(path: Path, filename: str, result: Collected) -> None:
    """Note syntax errors and contract signatures that differ, without running anything."""
    try:
        tree = ast.parse(path.read_bytes(), filename=filename)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f"{filename} line {line}" if line else filename
        result.problems.append(f"syntax error in {where}")
        result.notes.append(f"syntax error in {where}: {getattr(exc, 'msg', exc)} "
                            "(every test of this file fails until it parses)")
        return
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    part = GRADED[filename]
    for function, owner in FUNCTIONS.items():
        if owner != part:
            continue
        node = defined.get(function)
        if node is None:
            result.problems.append(f"{function}() missing")
            result.notes.append(f"{filename} does not define {function}() at top level")
            continue
        a = node.args
        names = tuple(x.arg for x in a.posonlyargs + a.args + a.kwonlyargs)
        if names != SIGNATURES[function] and not a.vararg and not a.kwarg:
            result.problems.append(f"signature of {function}()")
            result.notes.append(f"{function}({', '.join(names)}) differs from the contract "
                                f"{function}({', '.join(SIGNATURES[function])})")
