"""Does the Gradescope autograder work end to end, as Gradescope would run it?

The build's own self-check unpacks nothing: it runs run_autograder from the
written tree in temporary roots standing in for /autograder, against the
reference (full marks) and the template (zero), and validates both
results.json against Gradescope's format. These tests run the zip itself.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nnkit.releases import release
from nnkit.grading.gradescope import validate_results
from nnkit.course.config import ASSIGNMENT, EXAMPLES_DIR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    built = release.build_autograder(tmp_path_factory.mktemp("dist") / "autograder")
    return built.zip_path


def _unpack(zip_path: Path, root: Path) -> Path:
    """Unpack like Gradescope: the zip's root becomes ROOT/source."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(root / "source" / info.filename, mode)
    (root / "submission").mkdir()
    return root


def _run(root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    return subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_zip_layout(autograder_zip):
    """Are setup.sh and run_autograder at the zip's root, executable, with the hidden tests and the secret inside?"""
    with zipfile.ZipFile(autograder_zip) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    for name in ("setup.sh", "run_autograder"):
        assert name in infos
        assert (infos[name].external_attr >> 16) & stat.S_IXUSR, f"{name} is not executable"
    assert any(n.startswith(f"assignments/{ASSIGNMENT}/tests/hidden/test_") for n in infos)
    assert "autograder/config.toml" in infos
    assert "solutions/scratchnet/forward.py" in infos
    assert subprocess.run(["bash", "-n", str(ROOT / "autograder" / "gradescope" / "setup.sh")]).returncode == 0


@pytest.mark.slow
def test_partial_submission_from_the_zip(autograder_zip, tmp_path):
    """Does a submission with one correct file, nested in folders, get that part's points and valid JSON?"""
    root = _unpack(autograder_zip, tmp_path)
    nested = root / "submission" / "my work" / "scratchnet"
    nested.mkdir(parents=True)
    shutil.copyfile(EXAMPLES_DIR / "reference" / "activations.py", nested / "activations.py")
    done = _run(root)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    by_part = {}
    for test in data["tests"]:
        part = test["tags"][0]
        by_part[part] = by_part.get(part, 0) + test["score"]
    assert by_part["activations"] == 20 and data["score"] == 20
    assert "Isolation:" in data["output"]
    hidden = [t for t in data["tests"] if "hidden" in t["tags"]]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)


@pytest.mark.slow
def test_grader_failure_fails_closed(autograder_zip, tmp_path):
    """When the kit itself is broken, is results.json still valid, scoring zero with "grader error"?"""
    root = _unpack(autograder_zip, tmp_path)
    (root / "source" / "assignments" / "nn-from-scratch" / "config.toml").write_text("[broken\n")
    shutil.copyfile(EXAMPLES_DIR / "reference" / "forward.py", root / "submission" / "forward.py")
    done = _run(root)
    assert done.returncode != 0
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    assert data["score"] == 0 and data["output"].startswith("grader error")
