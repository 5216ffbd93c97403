"""Release builds, derived from the reference by subtraction.

- ``template``: student_template/scratchnet/, the reference package with
  every solution region replaced by a ``raise NotImplementedError`` stub
  (nnkit.releases.markers); the provided modules are copied as they are. The folder
  is committed, and ``check-template`` fails when it is stale.
- ``student``: dist/student/ and dist/student.zip: the template package,
  MNIST, the public tests, the handout, the student README, Makefile and
  pytest.ini, config.toml and the student harness (STUDENT_HARNESS).
- ``solution``: the same tree with the reference package (markers removed).
- ``autograder``: not written yet; it is one more builder in BUILDERS.

Every release goes through ``publish``: scan the files for leaks, write the
tree, run ``self_check``, then build the zip, scan its entries again and
only then write it. A file of the release is a path relative to the
release root, always with "/" separators, mapped to its bytes.
"""
from __future__ import annotations

import argparse
import ast
import io
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from nnkit.releases import markers
from nnkit.course.causes import CATALOGUE_PATH
from nnkit.course.config import (
    ASSIGNMENT, ASSIGNMENT_DIR, CONFIG_PATH, ROOT, TEMPLATE_ROOT, TESTS_DIR, AssignmentConfig, ConfigError,
    default_assignment, earlier_graded, later_modules, load_config, load_course_secret,
)

Files = dict[str, bytes]
"""Release-relative path ("tests/test_forward.py") -> content."""

SOLUTIONS_DIR = ROOT / "solutions"
TEMPLATE_DIR = TEMPLATE_ROOT
"""The folder holding the active assignment's committed package (student_template/<assignment>/)."""
PUBLIC_TESTS_DIR = TESTS_DIR / "public"
HIDDEN_TESTS_DIR = TESTS_DIR / "hidden"
RELEASE_INPUTS_DIR = ASSIGNMENT_DIR / "release"
MNIST_DIR = ROOT / "data" / "mnist"
DIST_DIR = ROOT / "dist" if ASSIGNMENT == default_assignment() else ROOT / "dist" / ASSIGNMENT
"""Where releases are built: dist/ for the course's default assignment (as before the course had
several), dist/<assignment>/ for the others."""

STUDENT_HARNESS = [
    "__init__.py",
    "course/__init__.py", "course/config.py", "course/contract.py", "course/causes.py",
    "testing/__init__.py", "testing/checks.py", "testing/gradient_checks.py", "testing/inputs.py",
    "grading/__init__.py", "grading/proxy.py", "grading/local.py", "grading/harness.py", "grading/results.py",
    "grading/gates.py",
    "sandbox/__init__.py", "sandbox/invoke.py", "sandbox/transport.py", "sandbox/profiling.py",
    "reports/__init__.py", "reports/grouping.py",
]
"""The files of nnkit/ (paths below it) that ship with the student and solution releases (those that exist)."""

MNIST_FILES = (
    "README.md",
    "SHA256SUMS",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
)
"""The files of data/mnist/ that ship with the releases."""

RELEASE_INPUTS = {
    "handout.md": ASSIGNMENT_DIR / "handout.md",
    "README.md": RELEASE_INPUTS_DIR / "README.md",
    "Makefile": RELEASE_INPUTS_DIR / "Makefile",
    "pytest.ini": RELEASE_INPUTS_DIR / "pytest.ini",
    f"assignments/{ASSIGNMENT}/config.toml": CONFIG_PATH,
    f"assignments/{ASSIGNMENT}/causes.toml": CATALOGUE_PATH,
    f"assignments/{ASSIGNMENT}/contract.py": ASSIGNMENT_DIR / "contract.py",
}
"""Single files of the student and solution releases: release path -> source."""

ZIP_FOLDERS = {"student": ASSIGNMENT, "solution": f"{ASSIGNMENT}-solution", "autograder": ""}
"""Top folder of each release's zip (what unzipping creates)."""

ASSIGNMENT_FILES = ("config.toml", "causes.toml", "contract.py", "end_to_end.py")
"""The files of the assignment folder that the grader reads (besides its tests)."""

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
EXECUTABLES = frozenset({"setup.sh", "run_autograder"})
"""Release files that keep their executable bit (Gradescope runs them)."""
"""Timestamp of every zip entry (the earliest a zip can hold), for byte-identical rebuilds."""

GENERIC_TEST_NAMES = frozenset({"__init__.py", "conftest.py"})
"""Hidden-test file names too common to betray anything (every test folder may hold them)."""

_SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache"})


class ReleaseError(RuntimeError):
    """A release cannot be built: an input is missing, stale or inconsistent."""


def _display(path: Path) -> str:
    """``path`` relative to the kit's root when it lies inside it (for messages)."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path, ships_as: str) -> bytes:
    """The bytes of a release input, which ships as ``ships_as``."""
    if path.is_symlink():
        raise ReleaseError(f"{_display(path)} is a symlink; releases hold regular files only")
    if not path.is_file():
        renamed = f" (ships as {ships_as})" if ships_as != _display(path) else ""
        raise ReleaseError(f"missing input {_display(path)}{renamed}")
    return path.read_bytes()


def _skipped(relative: Path) -> bool:
    return bool(_SKIPPED_PARTS.intersection(relative.parts)) or relative.suffix == ".pyc"


def tree_files(folder: Path, prefix: str) -> Files:
    """Every regular file under ``folder`` as ``prefix/relative/path``, sorted.

    Caches (__pycache__, .pytest_cache, *.pyc) are left out; a symlink is
    an error, since a release holds regular files only.
    """
    files: Files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if _skipped(relative):
            continue
        if path.is_symlink():
            raise ReleaseError(f"{_display(path)} is a symlink; releases hold regular files only")
        if path.is_file():
            files[f"{prefix}/{relative.as_posix()}" if prefix else relative.as_posix()] = path.read_bytes()
    return files


# ---------------------------------------------------------------- template


def handout_section(part: str, cfg: AssignmentConfig) -> str:
    """Title of the handout section of a graded part, as the stubs cite it."""
    return f"Part {cfg.parts.index(part) + 1}: {part}"


def _package_sources(solutions_dir: Path, cfg: AssignmentConfig) -> list[Path]:
    """The reference package's .py files that the active assignment ships (none that a later
    assignment introduces), sorted; anything else in the package is an error."""
    package_dir = solutions_dir / cfg.package
    if not package_dir.is_dir():
        raise ReleaseError(f"reference package not found: {_display(package_dir)}")
    sources, later = [], later_modules()
    for path in sorted(package_dir.iterdir()):
        if path.name in _SKIPPED_PARTS or path.name in later:
            continue
        if path.is_symlink() or not path.is_file() or path.suffix != ".py":
            raise ReleaseError(
                f"{_display(path)}: the reference package may hold only .py files; "
                "the release builder would not know what to do with this entry"
            )
        sources.append(path)
    return sources


def template_files(solutions_dir: Path = SOLUTIONS_DIR, cfg: AssignmentConfig | None = None) -> Files:
    """The student template's files ("scratchnet/forward.py" -> bytes).

    Each graded file of config.toml is stripped (its regions become stubs
    citing the handout section of its part); every other module is copied
    byte for byte. A graded file without regions, or regions in a file that
    config.toml does not grade, is an error.
    """
    cfg = cfg or load_config()
    part_of = {name: part for part, name in cfg.files.items()}
    provided = earlier_graded()
    files: Files = {}
    for path in _package_sources(solutions_dir, cfg):
        data = path.read_bytes()
        text = data.decode("utf-8")
        regions = markers.parse(text, _display(path))
        if path.name in part_of:
            if not regions:
                raise ReleaseError(
                    f"{_display(path)}: graded in config.toml ([files]) but holds no solution region"
                )
            section = handout_section(part_of[path.name], cfg)
            data = markers.strip_solutions(text, _display(path), section=section).encode("utf-8")
        elif path.name in provided:  # graded in an earlier assignment: complete here
            data = markers.remove_markers(text, _display(path)).encode("utf-8")
        elif regions:
            raise ReleaseError(
                f"{_display(path)}:{regions[0].begin}: solution region in a file that config.toml "
                "does not grade; list the file in [files] or remove the markers"
            )
        files[f"{cfg.package}/{path.name}"] = data
    missing = sorted(set(part_of) - {p.rsplit("/", 1)[1] for p in files})
    if missing:
        raise ReleaseError(f"graded files of config.toml missing from the reference: {missing}")
    return files


@dataclass(frozen=True)
class SyncResult:
    """What ``sync_tree`` changed."""

    written: tuple[str, ...]
    """Files created or rewritten because their content differed."""
    removed: tuple[str, ...]
    """Stale files deleted."""


def sync_tree(files: Mapping[str, bytes], folder: Path) -> SyncResult:
    """Make ``folder`` hold exactly ``files``, touching only what differs (caches are left alone)."""
    written = []
    for name, data in sorted(files.items()):
        target = folder / name
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(name)
    removed = []
    if folder.is_dir():
        for name in sorted(set(tree_files(folder, "")) - set(files)):
            (folder / name).unlink()
            removed.append(name)
        for path in sorted(folder.rglob("*"), reverse=True):  # deepest first
            if path.is_dir() and not _skipped(path.relative_to(folder)) and not any(path.iterdir()):
                path.rmdir()
    return SyncResult(tuple(written), tuple(removed))


def write_template(template_dir: Path = TEMPLATE_DIR) -> SyncResult:
    """Regenerate ``template_dir`` (student_template/) from the reference."""
    return sync_tree(template_files(), template_dir)


def template_differences(template_dir: Path = TEMPLATE_DIR) -> list[str]:
    """How ``template_dir`` differs from what ``write_template`` would write (empty: up to date)."""
    expected = template_files()
    actual = tree_files(template_dir, "") if template_dir.is_dir() else {}
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"{name}: missing")
        elif name not in expected:
            problems.append(f"{name}: stale (the reference has no such module)")
        elif actual[name] != expected[name]:
            problems.append(f"{name}: differs from the stripped reference")
    return problems


# ---------------------------------------------------------------- leak check


@dataclass(frozen=True)
class LeakPolicy:
    """What a release must not contain."""

    solution_lines: bool
    """No line of a solution region (see ``leak_targets`` for the rule)."""
    hidden_test_names: bool
    """No file name of autograder/tests/hidden/."""
    course_secret: bool
    """Not the course secret of autograder/config.toml."""
    markers: bool
    """No solution marker (a leftover means stripping or marker removal failed)."""


POLICIES = {
    "student": LeakPolicy(solution_lines=True, hidden_test_names=True, course_secret=True, markers=True),
    "solution": LeakPolicy(solution_lines=False, hidden_test_names=True, course_secret=True, markers=True),
    "autograder": LeakPolicy(solution_lines=False, hidden_test_names=False, course_secret=False, markers=False),
}
"""The leak policy of each release kind."""


@dataclass(frozen=True)
class LeakTargets:
    """The strings a release is scanned for."""

    solution_lines: tuple[markers.SolutionLine, ...] = ()
    """Solution lines that betray code (see ``leak_targets``)."""
    hidden_test_names: tuple[str, ...] = ()
    """File names of the hidden tests."""
    course_secret: str | None = None
    """The course secret, or None when the policy does not check it."""
    markers: bool = False
    """Whether marker lines count as leaks."""

    def summary(self) -> str:
        """One line for the build log (never the secret itself)."""
        secret = "course secret" if self.course_secret else "no secret check"
        return (
            f"{len(self.solution_lines)} solution lines, "
            f"{len(self.hidden_test_names)} hidden test names, {secret}"
            + (", solution markers" if self.markers else "")
        )


@dataclass(frozen=True)
class Leak:
    """One forbidden string found in a release."""

    path: str
    """Release-relative path of the file (inside the zip: the entry's name)."""
    line: int
    """1-based line number, or 0 when the file's name or a binary file is at fault."""
    what: str
    """What was found, with its origin (never the secret itself)."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}" if self.line else f"{self.path}: {self.what}"


class LeakError(ReleaseError):
    """A release contains something it must not; nothing more is written."""

    def __init__(self, where: str, leaks: list[Leak]):
        shown = "\n".join(f"  {leak}" for leak in leaks[:20])
        more = f"\n  ... and {len(leaks) - 20} more" if len(leaks) > 20 else ""
        super().__init__(f"{where}: {len(leaks)} leak(s), build stopped:\n{shown}{more}")
        self.leaks = leaks


def leak_targets(
    policy: LeakPolicy,
    *,
    solutions_dir: Path = SOLUTIONS_DIR,
    hidden_dir: Path = HIDDEN_TESTS_DIR,
    public_dir: Path = PUBLIC_TESTS_DIR,
) -> LeakTargets:
    """Collect what ``policy`` forbids.

    Solution lines: every line of every region whose code (comment removed,
    whitespace stripped) is not trivial by ``markers.is_trivial`` (under
    12 characters, no letter, a block header, or a statement that computes
    nothing, like ``N = X.shape[0]``) and whose code and computation
    (``markers.computation``: the value of ``name = value`` or ``return
    value``) both do not occur anywhere in the student template. What the
    template shows ships legitimately (``order = rng.permutation(N)`` quoted
    in a docstring, ``sum(1 for key in params ...)`` in a provided helper),
    so finding it proves nothing; every other solution line is code a
    student must write, and finding it in a release (as a substring of any
    line) is a leak.

    Hidden test names: the file names under autograder/tests/hidden/, less
    GENERIC_TEST_NAMES and names that the public tests use as well.
    """
    lines: list[markers.SolutionLine] = []
    if policy.solution_lines:
        cfg = load_config()
        shipped = "\n".join(data.decode("utf-8") for data in template_files(solutions_dir, cfg).values())
        seen = set()
        for path in _package_sources(solutions_dir, cfg):
            for line in markers.solution_lines(path.read_text(encoding="utf-8"), _display(path)):
                shown = line.code in shipped or markers.computation(line.code) in shipped
                if not shown and line.code not in seen:
                    seen.add(line.code)
                    lines.append(line)
    names: list[str] = []
    if policy.hidden_test_names and hidden_dir.is_dir():
        public = {Path(p).name for p in tree_files(public_dir, "")} if public_dir.is_dir() else set()
        hidden = {Path(p).name for p in tree_files(hidden_dir, "")}
        names = sorted(hidden - public - GENERIC_TEST_NAMES)
    secret = load_course_secret() if policy.course_secret else None
    return LeakTargets(tuple(lines), tuple(names), secret, policy.markers)


def _as_text(data: bytes) -> str | None:
    """The text of a file, or None for a binary file (NUL byte or not UTF-8)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def find_leaks(files: Mapping[str, bytes], targets: LeakTargets) -> list[Leak]:
    """Every occurrence of a target in ``files``: text files line by line, binaries for the secret."""
    leaks: list[Leak] = []
    secret = targets.course_secret
    for path, data in sorted(files.items()):
        name = path.rsplit("/", 1)[-1]
        if name in targets.hidden_test_names:
            leaks.append(Leak(path, 0, f"file named like the hidden test {name!r}"))
        text = _as_text(data)
        if text is None:
            if secret and secret.encode("utf-8") in data:
                leaks.append(Leak(path, 0, "the course secret (autograder/config.toml), in a binary file"))
            continue
        for number, line in enumerate(text.split("\n"), start=1):
            for solution in targets.solution_lines:
                if solution.code in line:
                    leaks.append(Leak(
                        path, number,
                        f"solution code from {solution.filename}:{solution.line}: {solution.code!r}",
                    ))
            for hidden in targets.hidden_test_names:
                if hidden in line:
                    leaks.append(Leak(path, number, f"name of the hidden test file {hidden!r}"))
            if secret and secret in line:
                leaks.append(Leak(path, number, "the course secret (autograder/config.toml)"))
            if targets.markers and markers.mentions_marker(line):
                leaks.append(Leak(path, number, f"solution marker {line.strip()!r}"))
    return leaks


# ---------------------------------------------------------------- zips


def zip_bytes(files: Mapping[str, bytes], folder: str) -> bytes:
    """A deterministic zip of ``files`` under ``folder/``.

    Entries are sorted, carry ZIP_DATE_TIME and mode 0644, and are regular
    files only (no directory entries, no symlinks). Already compressed files
    (.gz) are stored, everything else deflated.
    """
    buffer = io.BytesIO()
    prefix = f"{folder}/" if folder else ""
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{prefix}{name}", date_time=ZIP_DATE_TIME)
            mode = 0o755 if name in EXECUTABLES else 0o644
            info.external_attr = (0o100000 | mode) << 16  # regular file
            info.create_system = 3  # Unix, so that the mode above is honoured
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".gz") else zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def zip_entries(data: bytes, folder: str) -> Files:
    """The files of a zip made by ``zip_bytes``; raises ReleaseError on anything else in it."""
    files: Files = {}
    prefix = f"{folder}/" if folder else ""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            parts = Path(info.filename).parts
            if not info.filename.startswith(prefix) or info.is_dir():
                raise ReleaseError(f"zip entry {info.filename!r} is not a file under {folder}/")
            if (mode & 0o170000) != 0o100000:
                raise ReleaseError(f"zip entry {info.filename!r} is not a regular file (mode {mode:o})")
            if _SKIPPED_PARTS.intersection(parts) or info.filename.endswith(".pyc"):
                raise ReleaseError(f"zip entry {info.filename!r} is a cache file")
            if info.date_time != ZIP_DATE_TIME:
                raise ReleaseError(f"zip entry {info.filename!r} has timestamp {info.date_time}")
            files[info.filename[len(prefix):]] = archive.read(info)
    return files


# ---------------------------------------------------------------- releases


@dataclass(frozen=True)
class Release:
    """A built release."""

    kind: str
    """"student", "solution", ..."""
    tree: Path
    """The release folder."""
    zip_path: Path
    """The zip of the folder."""
    files: int
    """Number of files in the release."""
    zip_size: int
    """Size of the zip in bytes."""
    checked: str
    """What the leak check looked for (``LeakTargets.summary``)."""


def self_check(kind: str, tree: Path) -> None:
    """Grade a written release tree before its zip is made.

    The reference must get full marks and the student template zero; a
    release that fails this is not zipped.
    """
    from nnkit.grading.grade import build_grader
    from nnkit.grading.runner import grade_one

    cfg = load_config()
    grader = build_grader()
    if kind == "autograder":
        check_autograder(tree)
        return
    expectations = [(tree / cfg.package, "the solution package", cfg.max_score)]
    if kind == "student":
        expectations = [(tree / cfg.package, "the student template", 0.0),
                        (SOLUTIONS_DIR / cfg.package, "the reference", cfg.max_score)]
    for package, label, wanted in expectations:
        result = grade_one(grader, package)
        if result.score != wanted or result.max_score != cfg.max_score:
            wrong = [t.name for t in result.tests if t.passed != (wanted > 0)]
            raise ReleaseError(
                f"self-check of the {kind} release: {label} scored {result.score:g}/{result.max_score:g}, "
                f"expected {wanted:g}/{cfg.max_score:g} (status {result.status}; tests: {', '.join(wrong[:8])})")
        print(f"self-check: {label} scores {result.score:g}/{result.max_score:g} as it should")


def _replace_tree(files: Mapping[str, bytes], out_dir: Path, package: str) -> None:
    """Write ``files`` to ``out_dir``, replacing a previous release there."""
    if out_dir.exists() or out_dir.is_symlink():
        previous = out_dir.is_dir() and not out_dir.is_symlink() and (
            (out_dir / package / "__init__.py").is_file() or not any(out_dir.iterdir())
        )
        if not previous:
            raise ReleaseError(
                f"refusing to replace {_display(out_dir)}: it is not empty and holds no "
                f"{package}/ package, so it does not look like an earlier release"
            )
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    for name, data in sorted(files.items()):
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)


def publish(
    kind: str,
    files: Mapping[str, bytes],
    out_dir: Path,
    *,
    zip_path: Path | None = None,
    targets: LeakTargets | None = None,
    check: bool = True,
) -> Release:
    """Check, write and zip a release.

    Order: the previous zip is removed (a failed build leaves none behind);
    ``files`` are scanned for ``targets`` (default: the kind's policy) and
    nothing is written on a leak; the tree is written; ``self_check`` runs;
    the zip is built, read back, compared with ``files`` and scanned again;
    only then is it written. Returns what was built. ``check=False`` skips
    the self-check (for tests that build the same release twice).
    """
    out_dir = Path(out_dir)
    zip_path = Path(zip_path) if zip_path is not None else out_dir.with_name(out_dir.name + ".zip")
    targets = targets if targets is not None else leak_targets(POLICIES[kind])
    zip_path.unlink(missing_ok=True)
    leaks = find_leaks(files, targets)
    if leaks:
        raise LeakError(f"{kind} release", leaks)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _replace_tree(files, out_dir, "nnkit" if kind == "autograder" else load_config().package)
    written = tree_files(out_dir, "")
    if written != dict(files):
        raise ReleaseError(f"{_display(out_dir)} does not hold what was written")
    if check:
        self_check(kind, out_dir)
    folder = ZIP_FOLDERS[kind]
    data = zip_bytes(files, folder)
    if zip_entries(data, folder) != dict(files):
        raise ReleaseError(f"{kind} zip does not hold the release's files")
    leaks = find_leaks(zip_entries(data, folder), targets)
    if leaks:
        raise LeakError(_display(zip_path), leaks)
    zip_path.write_bytes(data)
    return Release(kind, out_dir, zip_path, len(files), len(data), targets.summary())


def notebook_files(kind: str) -> Files:
    """The Otter notebook of a release ("student" or "solution"), built by
    ``otter assign``, whose own run of the checks against the reference must pass.

    Builds are cached in build/cache/ under a hash of every input (the master
    notebook, the reference package, the public tests, the shipped harness and
    otter's version), so an unchanged notebook is not rebuilt.
    """
    import hashlib
    import tempfile
    from importlib.metadata import version

    from nnkit.releases.notebook import MASTER, build_notebook

    digest = hashlib.sha256(version("otter-grader").encode())
    inputs = [Path(MASTER), *sorted(SOLUTIONS_DIR.rglob("*.py")), *sorted(PUBLIC_TESTS_DIR.rglob("*.py")),
              *[ROOT / "nnkit" / name for name in STUDENT_HARNESS], ROOT / "nnkit" / "releases" / "notebook.py", CATALOGUE_PATH]
    for path in inputs:
        if path.is_file() and not _skipped(path.relative_to(ROOT)):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    cached = ROOT / "build" / "cache" / f"notebook-{kind}-{digest.hexdigest()[:16]}.ipynb"
    if not cached.is_file():
        with tempfile.TemporaryDirectory(prefix="nnkit-release-notebook-") as tmp:
            path = build_notebook(kind, Path(tmp))
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".partial")
            partial.write_bytes(path.read_bytes())
            partial.replace(cached)
    return {"notebook.ipynb": cached.read_bytes()}


def shared_files() -> Files:
    """Everything the student and solution releases share: all but the package."""
    files: Files = {}
    for name in MNIST_FILES:
        files[f"data/mnist/{name}"] = _read(MNIST_DIR / name, f"data/mnist/{name}")
    if not PUBLIC_TESTS_DIR.is_dir():
        raise ReleaseError(f"missing input {_display(PUBLIC_TESTS_DIR)} (the public tests)")
    public = tree_files(PUBLIC_TESTS_DIR, "tests")
    if not any(Path(name).name.startswith("test_") for name in public):
        raise ReleaseError(f"{_display(PUBLIC_TESTS_DIR)} holds no test_*.py file")
    files.update(public)
    for name, source in RELEASE_INPUTS.items():
        files[name] = _read(source, name)
    for name in STUDENT_HARNESS:
        source = ROOT / "nnkit" / name
        if source.exists():
            files[f"nnkit/{name}"] = _read(source, f"nnkit/{name}")
    missing = missing_harness_imports(files)
    if missing:
        raise ReleaseError("the student harness would not import:\n  " + "\n  ".join(missing))
    return files


def _import_time_statements(nodes: list) -> Iterator[ast.AST]:
    """Statements that run when a module is imported (function bodies excluded)."""
    for node in nodes:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _import_time_statements(inner)


def _is_shipped(module: str, shipped: set[str]) -> bool:
    """Is the dotted ``module`` a shipped module, or a shipped package (its __init__)?"""
    return module in shipped or f"{module}.__init__" in shipped


def missing_harness_imports(files: Mapping[str, bytes]) -> list[str]:
    """Import-time ``nnkit.X`` imports of the release's nnkit/ files whose nnkit/X.py does not ship.

    Imports inside functions are not followed: they may belong to the
    grader's code paths (the sandbox, the runner), which students never take.
    """
    shipped = {name[:-3].replace("/", ".") for name in files if name.startswith("nnkit/") and name.endswith(".py")}
    problems = []
    for name in sorted(files):
        if not (name.startswith("nnkit/") and name.endswith(".py")):
            continue
        for node in _import_time_statements(ast.parse(files[name], filename=name).body):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "nnkit":
                modules = [f"nnkit.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from nnkit.pkg import x` needs nnkit.pkg.x where x is a module, else nnkit.pkg
                modules = [f"{node.module}.{alias.name}" if _is_shipped(f"{node.module}.{alias.name}", shipped)
                           else node.module for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.split(".")[0] == "nnkit" and module != "nnkit" and not _is_shipped(module, shipped):
                    path = module.replace(".", "/")
                    problems.append(
                        f"{name}:{node.lineno} imports {module}, "
                        f"but {path}.py is not in STUDENT_HARNESS"
                    )
    return problems


def student_files(template_dir: Path = TEMPLATE_DIR) -> Files:
    """The student release's files; the package comes from the committed template, which must be current."""
    cfg = load_config()
    stale = template_differences(template_dir)
    if stale:
        raise ReleaseError(
            f"{_display(template_dir)} is out of date, run `make template` first:\n  " + "\n  ".join(stale)
        )
    files = shared_files()
    files.update(notebook_files("student"))
    files.update(tree_files(template_dir / cfg.package, cfg.package))
    return dict(sorted(files.items()))


def solution_files() -> Files:
    """The solution release's files: the reference package with its marker lines removed."""
    cfg = load_config()
    files = shared_files()
    files.update(notebook_files("solution"))
    for path in _package_sources(SOLUTIONS_DIR, cfg):
        text = markers.remove_markers(path.read_bytes().decode("utf-8"), _display(path))
        files[f"{cfg.package}/{path.name}"] = text.encode("utf-8")
    return dict(sorted(files.items()))


def build_student(out_dir: Path = DIST_DIR / "student", *, check: bool = True) -> Release:
    """dist/student/ and dist/student.zip."""
    return publish("student", student_files(), out_dir, check=check)


def build_solution(out_dir: Path = DIST_DIR / "solution", *, check: bool = True) -> Release:
    """dist/solution/ and dist/solution.zip."""
    return publish("solution", solution_files(), out_dir, check=check)


def autograder_files() -> Files:
    """The Gradescope autograder: setup.sh and run_autograder at the root, then
    the kit's grader, both suites, the reference, the configuration (course
    secret included) and the data, laid out as in this repository."""
    cfg = load_config()
    files: Files = {}
    gradescope = ROOT / "autograder" / "gradescope"
    for name in ("setup.sh", "run_autograder", "requirements.txt"):
        files[name] = _read(gradescope / name, name)
    for path in sorted((ROOT / "nnkit").rglob("*")):
        if path.suffix in (".py", ".json", ".css") and "__pycache__" not in path.parts:
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    files.update(tree_files(TESTS_DIR, f"assignments/{ASSIGNMENT}/tests"))
    files["autograder/config.toml"] = _read(ROOT / "autograder" / "config.toml", "autograder/config.toml")
    for path in _package_sources(SOLUTIONS_DIR, cfg):
        files[f"solutions/{cfg.package}/{path.name}"] = path.read_bytes()
    template = f"student_template/{ASSIGNMENT}/{cfg.package}"
    for filename in cfg.files.values():  # graded by setup.sh's self-check: it must score zero
        files[f"{template}/{filename}"] = _read(TEMPLATE_DIR / cfg.package / filename, f"{template}/{filename}")
    for name in ASSIGNMENT_FILES:
        if (ASSIGNMENT_DIR / name).is_file():
            files[f"assignments/{ASSIGNMENT}/{name}"] = _read(ASSIGNMENT_DIR / name, f"assignments/{ASSIGNMENT}/{name}")
    for name in MNIST_FILES:
        files[f"data/mnist/{name}"] = _read(MNIST_DIR / name, f"data/mnist/{name}")
    return dict(sorted(files.items()))


def check_autograder(tree: Path, *, python: str | None = None) -> None:
    """Run the written autograder like Gradescope would, in temporary roots
    standing in for /autograder: the reference must get full marks, the
    template zero, and both results.json must be valid."""
    import json
    import subprocess
    import tempfile

    from nnkit.grading.gradescope import validate_results

    cfg = load_config()
    cases = [(SOLUTIONS_DIR / cfg.package, cfg.max_score, "the reference"),
             (TEMPLATE_DIR / cfg.package, 0.0, "the student template")]
    for package, wanted, label in cases:
        with tempfile.TemporaryDirectory(prefix="nnkit-autograder-") as root:
            root = Path(root)
            shutil.copytree(tree, root / "source")
            (root / "submission").mkdir()
            for part, filename in cfg.files.items():
                shutil.copyfile(package / filename, root / "submission" / filename)
            env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python or sys.executable}
            env.pop("PYTHONPATH", None)
            done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                                  capture_output=True, text=True)
            results = root / "results" / "results.json"
            if not results.is_file():
                raise ReleaseError(f"autograder self-check: no results.json for {label}:\n{done.stderr[-2000:]}")
            data = json.loads(results.read_text())
            validate_results(data)
            if data["score"] != wanted:
                raise ReleaseError(f"autograder self-check: {label} scored {data['score']:g}, expected {wanted:g}")
            print(f"self-check: run_autograder gives {label} {data['score']:g}/{cfg.max_score:g}; "
                  "results.json is valid")


def build_autograder(out_dir: Path = DIST_DIR / "autograder", *, check: bool = True) -> Release:
    """dist/autograder/ and dist/autograder.zip for Gradescope."""
    return publish("autograder", autograder_files(), out_dir, check=check)


BUILDERS: dict[str, Callable[[Path], Release]] = {
    "student": build_student,
    "solution": build_solution,
    "autograder": build_autograder,
}
"""Release kind -> builder taking the output folder (the zip goes next to it)."""


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m nnkit release {template,check-template,student,solution,autograder}``."""
    parser = argparse.ArgumentParser(prog="python -m nnkit release", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("template", help="regenerate student_template/ from solutions/")
    commands.add_parser("check-template", help="fail when student_template/ is stale")
    for kind in BUILDERS:
        sub = commands.add_parser(kind, help=f"build the {kind} release into dist/")
        sub.add_argument("--out", type=Path, default=DIST_DIR / kind,
                         help=f"release folder; the zip goes next to it (default: dist/{kind})")
    args = parser.parse_args(argv)
    try:
        if args.command == "template":
            result = write_template()
            for name in result.written:
                print(f"wrote {_display(TEMPLATE_DIR / name)}")
            for name in result.removed:
                print(f"removed {_display(TEMPLATE_DIR / name)}")
            print(f"{_display(TEMPLATE_DIR)}/ is up to date")
            return 0
        if args.command == "check-template":
            problems = template_differences()
            if problems:
                print(f"{_display(TEMPLATE_DIR)}/ is out of date; run `make template`:", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print(f"{_display(TEMPLATE_DIR)}/ is up to date")
            return 0
        release = BUILDERS[args.command](args.out)
    except (ReleaseError, markers.MarkerError, ConfigError, NotImplementedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{_display(release.tree)}/: {release.files} files; leak check: {release.checked}: none found")
    print(f"{_display(release.zip_path)}: {release.zip_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
