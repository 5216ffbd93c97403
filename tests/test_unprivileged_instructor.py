"""Does grading work for an instructor without root, as on a laptop?

Run as root (in CI), this creates an ordinary user, gives it a copy of the kit
whose ``.venv`` is made from the system interpreter, and as that user:

- runs ``make grade`` on the bundled examples, which must choose the
  ``rlimits`` tier and give every example the score it gets here;
- runs the sandbox and hostile tests of the ``rlimits`` tier, with tiers
  required, so none of them can skip for want of a tier.

Run by someone who is not root, the rest of the suite already is that run.
"""
from __future__ import annotations

import csv
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.figures import report_figure

from nnkit.grading.grade import build_grader
from nnkit.grading.runner import grade_folder
from nnkit.sandbox.backend import _world_executable
from nnkit.course.config import EXAMPLES_DIR

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
USER = "nnkit-instructor"
SYSTEM_PYTHON = "/usr/bin/python3"
LEFT_OUT = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache"}


def _user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True, capture_output=True)
        return pwd.getpwnam(USER)


@pytest.fixture(scope="module")
def instructor(tmp_path_factory):
    """(user, kit copy, python) for an ordinary user, or a skip when not run as root."""
    if os.geteuid() != 0:
        pytest.skip("not root: this whole run is an unprivileged instructor's")
    if not shutil.which("useradd") or not Path(SYSTEM_PYTHON).is_file():
        pytest.fail("an unprivileged run needs useradd and the system interpreter", pytrace=False)
    user = _user()
    home = Path(tempfile.mkdtemp(prefix="nnkit-instructor-"))
    kit = home / "kit"
    shutil.copytree(ROOT, kit, ignore=lambda folder, names: [n for n in names if n in LEFT_OUT])
    # The kit's .venv: this checkout's own where the user can run it (as in CI, where it is made from
    # the system interpreter; the Makefile's PYTHONPATH puts the copy's code first), else one made
    # as `make setup` makes it, with root's package cache.
    venv = kit / ".venv"
    if _runnable_by_others(ROOT / ".venv" / "bin" / "python") and (ROOT / ".venv" / ".installed").is_file():
        venv.symlink_to(ROOT / ".venv")
    else:
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True)
        done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(kit)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        (venv / ".installed").touch()
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(home)], check=True)
    home.chmod(0o755)
    yield user, kit, venv / "bin" / "python"
    shutil.rmtree(home, ignore_errors=True)


def _runnable_by_others(path: Path) -> bool:
    """Can any user run this interpreter (a symlink, as in a venv: the folders above the link too)?"""
    return (path.resolve().is_file() and _world_executable(path)
            and all(folder.stat().st_mode & 0o001 for folder in path.parents))


def _as_user(user, kit: Path, cmd: list[str], **env) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "HOME": user.pw_dir, "LANG": "C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
                           "--inh-caps=-all", "--bounding-set=-all", "--", *cmd],
                          cwd=kit, env=environment, capture_output=True, text=True)


def test_grading_as_an_ordinary_user(instructor, tmp_path):
    """Does `make grade` as an ordinary user choose the rlimits tier and score every example as root does?"""
    user, kit, python = instructor
    done = _as_user(user, kit, ["make", "grade", "OUT=out", "JOBS=2", "ARGS=--no-progress"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "isolation: rlimits" in done.stdout, done.stdout[-2000:]
    with open(kit / "out" / "grades.csv", newline="") as f:
        theirs = {row["submission"]: float(row["score"]) for row in csv.DictReader(f)}
    ours = {r.submission: r.score for r in grade_folder(build_grader(), EXAMPLES_DIR,
                                                        tmp_path / "out", jobs=2, progress=False)}
    assert theirs == ours


def test_sandbox_and_hostile_tests_as_an_ordinary_user(instructor):
    """Do the rlimits tier's sandbox and hostile tests pass as an ordinary user, with no tier skipped?"""
    user, kit, python = instructor
    done = _as_user(user, kit, [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-k", "rlimits",
                                "tests/test_sandbox.py", "tests/test_hostile.py"], NNKIT_REQUIRE_TIERS="1")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    report_figure(f"\n[as {USER}] {summary}")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in summary
