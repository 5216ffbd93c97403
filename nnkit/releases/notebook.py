"""The walkthrough notebook of the releases, built from its Otter Assign master.

``build_notebook(kind, release_dir)`` runs ``otter assign`` on
assignments/nn-from-scratch/notebook.ipynb and copies one of its two outputs
into the release: the student notebook (solutions stripped) for "student",
the autograder notebook (model answers kept) for "solution".

Otter runs the master's checks against the reference before it writes
anything, so ``otter assign`` executes in a temporary folder laid out like a
release: the reference package (whatever release is built: the student
release's stubs would fail every check), the harness files that ship with
the releases, the public tests and pytest.ini. Every cell must run without
an error (``--debug``), not only the checks.

The run is offline and headless, and writes nothing outside its temporary
folder except Matplotlib's font cache: the kernel spec, Jupyter's runtime
files, IPython's profile and otter's own temporary files all live in it, and
the kernel is this interpreter (with ipykernel installed).

Two environment variables reach the notebook's kernel: SCRATCHNET_MNIST_DIR,
because Otter executes the notebook in a folder of its own that holds no
data/, and NNKIT_PUBLIC_TESTS, because Otter replaces that folder's tests/
with its own test files; the check cells read the public tests from there
when it is set and from tests/ otherwise, as students run them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nnkit.course.config import ASSIGNMENT_DIR, ROOT, load_config

MASTER = ASSIGNMENT_DIR / "notebook.ipynb"
"""The Otter Assign master notebook."""

NOTEBOOK_NAME = "notebook.ipynb"
"""The notebook's name in a release (its checks open it by this name)."""

OUTPUT_OF_KIND = {"student": "student", "solution": "autograder"}
"""Release kind -> the folder of ``otter assign``'s output that holds its notebook."""

ASSIGN_TIMEOUT = 600
"""Seconds ``otter assign`` may take (it executes the whole notebook) before the build gives up."""

OUTPUT_SHOWN = 20_000
"""Characters of otter's output quoted in a NotebookBuildError (the end, where the failure is)."""

SINGLE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""BLAS thread limits set to 1 unless already set: the notebook's matrices are small, and on a busy
2-core machine a second BLAS thread made its MNIST training about ten times slower."""


class NotebookBuildError(RuntimeError):
    """``otter assign`` failed, or did not write the expected notebook."""


@dataclass(frozen=True)
class AssignResult:
    """What one ``otter assign`` run produced."""

    student: Path
    """The student notebook: model answers removed, outputs cleared."""
    solution: Path
    """The autograder notebook: the master without Otter's markup, model answers kept."""
    seconds: float
    """Wall-clock time of the run, including the execution of the notebook."""
    output: str
    """Otter's log (stdout and stderr)."""

    def notebook(self, kind: str) -> Path:
        """The notebook of a release kind ("student" or "solution")."""
        return self.student if _check_kind(kind) == "student" else self.solution


def _check_kind(kind: str) -> str:
    if kind not in OUTPUT_OF_KIND:
        raise ValueError(f"unknown release kind {kind!r}: expected one of {sorted(OUTPUT_OF_KIND)}")
    return kind


def _copy_tree_files(source: Path, target: Path) -> None:
    """Copy a folder's regular files (no caches) to ``target``."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))


def lay_out_release(tree: Path, master: Path = MASTER, package_dir: Path | None = None) -> None:
    """Fill ``tree`` like a release for otter's run: master notebook, package, harness, public tests
    and the assignment's files they read (config, contract, catalogue of causes).

    The package is the reference (solutions/scratchnet) unless
    ``package_dir`` names another. The harness is the set of nnkit/ files
    that ships with the releases (nnkit.releases.release.STUDENT_HARNESS), so a check
    that needs anything else fails here as it would for students.
    """
    from nnkit.releases.release import (PUBLIC_TESTS_DIR, RELEASE_INPUTS, RELEASE_INPUTS_DIR, SOLUTIONS_DIR,
                                        STUDENT_HARNESS)

    package = load_config().package
    tree.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(master, tree / NOTEBOOK_NAME)
    _copy_tree_files(package_dir or SOLUTIONS_DIR / package, tree / package)
    (tree / "nnkit").mkdir()  # subfolders are made per file below
    for name in STUDENT_HARNESS:
        if (ROOT / "nnkit" / name).is_file():
            (tree / "nnkit" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "nnkit" / name, tree / "nnkit" / name)
    _copy_tree_files(PUBLIC_TESTS_DIR, tree / "tests")
    shutil.copyfile(RELEASE_INPUTS_DIR / "pytest.ini", tree / "pytest.ini")
    for name, source in RELEASE_INPUTS.items():  # the assignment's config, contract and catalogue of causes
        if name.startswith("assignments/"):
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tree / name)


def write_kernel_spec(jupyter_path: Path, python: str = sys.executable) -> Path:
    """A "python3" kernel spec running ``python`` under ``jupyter_path`` (a JUPYTER_PATH entry).

    Kernel specs found on JUPYTER_PATH take precedence over the user's and
    the system's, so the notebook runs with this interpreter whatever else
    is installed. Returns the spec's folder.
    """
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (nnkit build)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return spec_dir


def assign_environment(work: Path, tree: Path) -> dict[str, str]:
    """The environment of ``otter assign`` and of the kernels it starts.

    PYTHONPATH is dropped, so the notebook imports scratchnet and nnkit
    from the folder it runs in, as in a release, and never the kit's copies.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update({
        "MPLBACKEND": "Agg",
        "JUPYTER_PATH": str(work / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(work / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
        "IPYTHONDIR": str(work / "ipython"),
        "TMPDIR": str(work / "tmp"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "SCRATCHNET_MNIST_DIR": str(ROOT / "data" / "mnist"),
        "NNKIT_PUBLIC_TESTS": str(tree / "tests"),
    })
    for name in SINGLE_THREAD:
        env.setdefault(name, "1")
    return env


def _require_kernel_packages() -> None:
    missing = [name for name in ("ipykernel", "otter") if _missing(name)]
    if missing:
        raise NotebookBuildError(
            f"the notebook build needs the Python packages {', '.join(missing)} in {sys.executable}'s "
            "environment (otter-grader for `otter assign`, ipykernel for the kernel that runs the notebook)"
        )


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


def _tail(text: str) -> str:
    if len(text) <= OUTPUT_SHOWN:
        return text
    return f"[... {len(text) - OUTPUT_SHOWN} characters before this ...]\n" + text[-OUTPUT_SHOWN:]


def run_assign(work: Path, master: Path = MASTER, package_dir: Path | None = None) -> AssignResult:
    """Run ``otter assign`` on ``master`` in ``work/release`` (a release-like folder).

    ``work`` must be empty or missing; ``package_dir`` replaces the reference
    package (the kit's tests use it to prove that failures stop the build).
    Raises NotebookBuildError with otter's output when the run fails: a
    check that fails against the package, a cell that raises, a malformed
    master.
    """
    _require_kernel_packages()
    work = Path(work)
    if work.exists() and any(work.iterdir()):
        raise NotebookBuildError(f"{work} is not empty; run_assign needs a fresh folder")
    tree = work / "release"
    lay_out_release(tree, master, package_dir)
    write_kernel_spec(work / "jupyter")
    (work / "tmp").mkdir()
    out = work / "dist"
    command = [sys.executable, "-m", "otter", "assign", "--no-pdfs", "--debug", NOTEBOOK_NAME, str(out)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=tree, env=assign_environment(work, tree), capture_output=True,
                              text=True, timeout=ASSIGN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        raise NotebookBuildError(
            f"otter assign on {master} did not finish within {ASSIGN_TIMEOUT} s:\n{_tail(output)}"
        ) from None
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise NotebookBuildError(
            f"otter assign failed on {master} (exit status {proc.returncode}); every check must pass "
            f"and every cell must run against the reference. Otter's output:\n{_tail(output)}"
        )
    result = AssignResult(out / "student" / NOTEBOOK_NAME, out / "autograder" / NOTEBOOK_NAME, seconds, output)
    for path in (result.student, result.solution):
        if not path.is_file():
            raise NotebookBuildError(f"otter assign succeeded but wrote no {path}. Otter's output:\n{_tail(output)}")
    return result


def write_with_stable_ids(source: Path, target: Path) -> None:
    """Copy a notebook, numbering its cell ids by position ("cell-00", "cell-01", ...).

    otter gives the cells it adds (answer cells, check cells) random ids;
    without this, two builds of the same release would differ.
    """
    import nbformat

    nb = nbformat.read(source, as_version=nbformat.NO_CONVERT)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:02d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def build_notebook(kind: str, release_dir: Path) -> Path:
    """Write the notebook of a release (kind "student" or "solution") to ``release_dir/notebook.ipynb``.

    Runs ``otter assign`` on the master in a temporary folder (see
    run_assign) and copies the notebook of ``kind`` out of it, with stable
    cell ids. Returns the path written. Raises NotebookBuildError when
    otter fails.
    """
    _check_kind(kind)
    with tempfile.TemporaryDirectory(prefix="nnkit-notebook-") as tmp:
        result = run_assign(Path(tmp) / "work")
        target = Path(release_dir) / NOTEBOOK_NAME
        write_with_stable_ids(result.notebook(kind), target)
    return target
