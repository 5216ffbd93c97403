"""The mutation corpus: single-bug and correct-but-different copies of the reference.

An entry is one TOML file. ``tests/corpus/<assignment>/mutants/<name>.toml`` holds a realistic
student mistake (``expect = "loses-points"``); ``tests/corpus/<assignment>/variants/<name>.toml``
holds a correct solution written differently (``expect = "full-marks"``);
``tests/corpus/<assignment>/gates/<name>.toml`` holds a submission that does a part another way
than the assignment asks (``expect = "gated"``: it must fail the part's gate,
see nnkit.grading.gates) or an honest one close to such a way (``"full-marks"``).
Each entry names the graded part its bug (or difference) lives in and lists
edits, each replacing one snippet of a graded reference file:

    part = "backward"
    description = "db keeps the summed axis, so it has shape (1, n_l)."
    expect = "loses-points"
    cause = "db_keepdims"

    [[edit]]
    file = "backward.py"
    find = "db = dZ.sum(axis=0)"
    replace = "db = dZ.sum(axis=0, keepdims=True)"

A mutant declares ``cause``: the id (in the assignment's causes.toml) of
the likely cause its feedback must name, and no other; variants have none.
Edits apply in order; each ``find`` must occur exactly once in its file as
the previous edits of the entry left it, so a change to the reference that
breaks an entry fails loudly instead of silently producing a non-mutant.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from nnkit.course.causes import catalogue
from nnkit.course.config import ASSIGNMENT, ROOT, TESTS_DIR, load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REFERENCE_DIR = ROOT / "solutions" / "scratchnet"
"""The reference package the entries are edits of."""

CORPUS_DIR = Path(__file__).resolve().parent / "corpus" / ASSIGNMENT
"""The active assignment's corpus (tests/corpus/<assignment>/)."""
MUTANTS_DIR = CORPUS_DIR / "mutants"
VARIANTS_DIR = CORPUS_DIR / "variants"
GATES_DIR = CORPUS_DIR / "gates"
"""Submissions that do a part another way than asked ("gated") and honest ones close to them ("full-marks")."""

EXPECTATIONS = ("loses-points", "full-marks", "gated")
"""Allowed values of ``expect``: a mutant must lose points, a variant must not, and a submission of
tests/corpus/<assignment>/gates/ that does its part another way than asked must fail that part's gate."""


class MutationError(ValueError):
    """An entry file is malformed, or one of its edits does not apply to the reference."""


@dataclass(frozen=True)
class Edit:
    """One textual replacement in one graded file."""

    file: str
    """Graded file name, e.g. "activations.py"."""
    find: str
    """Snippet of the file that must occur exactly once."""
    replace: str
    """Text that takes the snippet's place."""


@dataclass(frozen=True)
class Entry:
    """One mutant or variant of the reference."""

    name: str
    """The entry file's stem, e.g. "softmax_no_max_shift"."""
    part: str
    """The graded part whose file the edits change (activations, forward, backward, training)."""
    description: str
    """One sentence: the student mistake, or how the variant differs."""
    expect: str
    """"loses-points" for a mutant, "full-marks" for a variant."""
    edits: tuple[Edit, ...]
    """Replacements, applied in order."""
    path: Path
    """The TOML file the entry was read from."""
    cause: str = ""
    """Mutants: id of the likely cause the feedback must name (causes.toml); "" for variants."""

    @property
    def files(self) -> tuple[str, ...]:
        """Graded files the entry changes, in order of first edit."""
        return tuple(dict.fromkeys(edit.file for edit in self.edits))


def graded_files() -> tuple[str, ...]:
    """File names of the graded parts, in part order (from the assignment config)."""
    config = load_config()
    return tuple(config.files[part] for part in config.parts)


def end_to_end_files() -> tuple[str, ...]:
    """File names of the active assignment's suite files holding an end-to-end test (marked
    ``end_to_end``, e.g. test_mnist.py): the corpus is graded without them, since a bug must be
    caught by the tests of its own part and the end-to-end test costs seconds per submission."""
    return tuple(sorted({path.name for path in TESTS_DIR.rglob("test_*.py")
                         if "mark.end_to_end" in path.read_text()}))


def _string(data: dict, key: str, path: Path, where: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MutationError(f"{path}: {where}key {key!r} must be a non-empty string, got {value!r}")
    return value


def load_entry(path: Path | str) -> Entry:
    """Read and check one entry file; raise MutationError naming the file and the problem."""
    path = Path(path)
    config = load_config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise MutationError(f"{path}: {exc}") from None
    unknown = set(data) - {"part", "description", "expect", "cause", "edit"}
    if unknown:
        raise MutationError(f"{path}: unknown keys {sorted(unknown)}; "
                            "expected part, description, expect, cause, [[edit]]")
    part = _string(data, "part", path)
    if part not in config.parts:
        raise MutationError(f"{path}: part {part!r} is not one of {list(config.parts)}")
    expect = _string(data, "expect", path)
    if expect not in EXPECTATIONS:
        raise MutationError(f"{path}: expect {expect!r} is not one of {list(EXPECTATIONS)}")
    if expect == "loses-points":
        cause = _string(data, "cause", path)
        if cause not in catalogue():
            raise MutationError(f"{path}: cause {cause!r} is not in the catalogue of causes (causes.toml)")
    elif "cause" in data:
        raise MutationError(f"{path}: a variant keeps full marks, so it names no cause; remove 'cause'")
    else:
        cause = ""
    raw_edits = data.get("edit")
    if not isinstance(raw_edits, list) or not raw_edits:
        raise MutationError(f"{path}: needs at least one [[edit]] table")
    files = set(config.files.values())
    edits = []
    for i, raw in enumerate(raw_edits, start=1):
        where = f"edit {i}: "
        unknown = set(raw) - {"file", "find", "replace"}
        if unknown:
            raise MutationError(f"{path}: {where}unknown keys {sorted(unknown)}; expected file, find, replace")
        file = _string(raw, "file", path, where)
        if file not in files:
            raise MutationError(f"{path}: {where}file {file!r} is not a graded file {sorted(files)}")
        replace = raw.get("replace")
        if not isinstance(replace, str):
            raise MutationError(f"{path}: {where}key 'replace' must be a string, got {replace!r}")
        edits.append(Edit(file=file, find=_string(raw, "find", path, where), replace=replace))
    return Entry(
        name=path.stem, part=part, description=_string(data, "description", path),
        expect=expect, edits=tuple(edits), path=path, cause=cause,
    )


def load_entries(folder: Path | str) -> list[Entry]:
    """All entries of a folder (its ``*.toml`` files), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MutationError(f"entry folder not found: {folder}")
    return [load_entry(path) for path in sorted(folder.glob("*.toml"))]


def apply_edits(entry: Entry, sources: dict[str, str]) -> dict[str, str]:
    """The graded sources with the entry's edits applied (``sources`` is not modified).

    Raises MutationError naming the entry, the file and the snippet when a
    ``find`` does not occur exactly once.
    """
    out = dict(sources)
    for i, edit in enumerate(entry.edits, start=1):
        text = out[edit.file]
        count = text.count(edit.find)
        if count != 1:
            raise MutationError(
                f"entry {entry.name!r} ({entry.path}), edit {i}: the snippet {edit.find!r} occurs "
                f"{count} times in {edit.file} (expected exactly once); the reference "
                f"{REFERENCE_DIR / edit.file} changed, so update the entry's 'find'"
            )
        out[edit.file] = text.replace(edit.find, edit.replace)
    return out


def reference_sources(reference_dir: Path | str = REFERENCE_DIR) -> dict[str, str]:
    """Text of each graded reference file, by file name."""
    reference_dir = Path(reference_dir)
    return {name: (reference_dir / name).read_text() for name in graded_files()}


def materialize(entry: Entry, dest_dir: Path | str, reference_dir: Path | str = REFERENCE_DIR) -> Path:
    """Write the entry's four graded files to ``dest_dir/<entry name>/`` and return that folder.

    The folder is flat (activations.py, forward.py, backward.py, train.py),
    like a submission. Solution markers are kept: they are comments.
    """
    files = apply_edits(entry, reference_sources(reference_dir))
    out = Path(dest_dir) / entry.name
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    return out


def materialize_package(entry: Entry, dest_dir: Path | str, reference_dir: Path | str = REFERENCE_DIR) -> Path:
    """Write an importable copy of the reference package with the entry's edits applied.

    Creates ``dest_dir/<entry name>/scratchnet/`` holding the reference's
    provided modules (``__init__.py``, data.py, ...) and the entry's graded
    files, and returns ``dest_dir/<entry name>``: the folder to put first on
    sys.path to ``import scratchnet`` from it.
    """
    reference_dir = Path(reference_dir)
    files = apply_edits(entry, reference_sources(reference_dir))
    root = Path(dest_dir) / entry.name
    package = root / "scratchnet"
    package.mkdir(parents=True, exist_ok=True)
    for source in reference_dir.glob("*.py"):
        if source.name not in files:
            shutil.copyfile(source, package / source.name)
    for name, text in files.items():
        (package / name).write_text(text)
    return root
