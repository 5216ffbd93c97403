"""Assignment 2's three releases and its Gradescope zip, built as an instructor builds them
(`make student|solution|autograder ASSIGNMENT=optimizers-regularization`), each with its
self-check: the template scores 0 and the reference full marks, in the release's own tree."""
import os
import subprocess
import sys
import zipfile

import pytest

from nnkit.course.config import ASSIGNMENT, earlier_graded, load_config
from nnkit.releases import release

CFG = load_config()
PROVIDED = sorted(earlier_graded())
"""Assignment 1's graded files: provided code, complete, in Assignment 2's releases."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """kind -> (folder, zip path), the student and solution releases built with their self-checks.
    The zip's self-check (run_autograder on the reference and the template) runs where Gradescope
    runs it, in tests/test_gradescope_container.py's setup.sh, for every assignment."""
    dist = tmp_path_factory.mktemp("dist")
    return {kind: (builder(dist / kind, check=kind != "autograder"), dist / f"{kind}.zip")
            for kind, builder in release.BUILDERS.items()}


def test_releases_are_built_for_this_assignment():
    assert ASSIGNMENT == "optimizers-regularization"
    assert release.DIST_DIR.name == ASSIGNMENT, "releases of a non-default assignment go to dist/<assignment>/"
    assert release.ZIP_FOLDERS["student"] == ASSIGNMENT


def test_student_release_ships_assignment_1_complete_and_its_own_files_as_stubs(built):
    """Does the student release hold Assignment 1's graded files complete (no stub, no marker), this
    assignment's graded files as stubs, its public tests, handout and notebook, and no hidden test?"""
    folder = built["student"][0].tree
    package = folder / CFG.package
    for filename in PROVIDED:
        text = (package / filename).read_text()
        assert "NotImplementedError" not in text and "SOLUTION" not in text, filename
    for filename in CFG.files.values():
        assert "raise NotImplementedError(" in (package / filename).read_text(), filename
    assert (folder / "handout.md").is_file() and (folder / "notebook.ipynb").is_file()
    assert sorted(p.name for p in (folder / "tests").glob("test_*.py")) == \
        sorted(f"test_{part}.py" for part in CFG.parts)
    for name in ("config.toml", "contract.py", "causes.toml"):
        assert (folder / "assignments" / ASSIGNMENT / name).is_file(), name
    assert "scratchnet.trainer" in (folder / "Makefile").read_text()
    with zipfile.ZipFile(built["student"][1]) as zf:
        names = zf.namelist()
    assert all(n.startswith(f"{ASSIGNMENT}/") for n in names)
    assert not any("hidden" in n or n.endswith("autograder/config.toml") for n in names)


def test_solution_release_has_every_graded_file_complete(built):
    package = built["solution"][0].tree / CFG.package
    for filename in [*PROVIDED, *CFG.files.values()]:
        text = (package / filename).read_text()
        assert "NotImplementedError(" not in text and "SOLUTION" not in text, filename


def test_make_check_in_the_student_release_reports_every_part_not_implemented(built):
    """Does the student's `make check` (pytest with the shipped harness) run in the unzipped release,
    report the stubs as not implemented yet, and end with the points of the four parts?"""
    folder = built["student"][0].tree
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NNKIT_ASSIGNMENT")}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-p", "nnkit.grading.harness", "--submission=.",
                           "-p", "no:cacheprovider"], cwd=folder, capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode != 0
    out = done.stdout
    assert "not implemented yet" in out, out[-3000:]
    for part in CFG.parts:
        assert part in out.split("points per part")[-1], out[-2000:]
    assert "Traceback" not in out, out[-3000:]


def test_make_train_help_works_in_the_student_release(built):
    folder = built["student"][0].tree
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NNKIT_ASSIGNMENT")}
    done = subprocess.run([sys.executable, "-m", "scratchnet.trainer", "--help"], cwd=folder,
                          capture_output=True, text=True, env={**env, "PYTHONPATH": "."}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout


def test_gradescope_zip_holds_this_assignment_only(built):
    """Does the zip hold this assignment's folder, suites and template, the reference without later
    assignments' files, and no other assignment's folder?"""
    with zipfile.ZipFile(built["autograder"][1]) as zf:
        names = set(zf.namelist())
    assert {"setup.sh", "run_autograder"} <= names
    folders = {n.split("/")[1] for n in names if n.startswith("assignments/") and n.count("/") > 1}
    assert folders == {ASSIGNMENT}
    assert any(n.startswith(f"assignments/{ASSIGNMENT}/tests/hidden/test_") for n in names)
    for filename in [*PROVIDED, *CFG.files.values()]:
        assert f"solutions/{CFG.package}/{filename}" in names
