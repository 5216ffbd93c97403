"""Does `make grade ASSIGNMENT=optimizers-regularization` on the bundled examples say what
examples/optimizers-regularization/README.md promises?

Assignment 1's examples are checked by tests/test_examples.py; this file checks
Assignment 2's the same way: reference/ and template/ are current copies, and
grading the folder with ``python -m nnkit grade`` (the real grader, sandbox
included) gives each submission the score and status its README line says.
(The file's name differs from Assignment 1's because pytest needs unique
basenames in tests/.)
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnkit.course.causes import catalogue
from nnkit.course.config import ASSIGNMENT, EXAMPLES_DIR, TEMPLATE_ROOT, load_config
from nnkit.grading.results import CSV_COLUMNS
from nnkit.releases import markers
from tests.mutation import graded_files

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = EXAMPLES_DIR
GRADED = graded_files()
SUBMISSIONS = {"reference", "template", "emil", "fay", "gus"}


def test_this_is_assignment_2():
    """Is this file checking the assignment whose folder it lives in?"""
    assert ASSIGNMENT == "optimizers-regularization"
    assert GRADED == ("regularization.py", "batchnorm.py", "optimizers.py", "trainer.py")


@pytest.mark.parametrize("filename", GRADED)
def test_reference_example_is_the_reference(filename):
    """Is examples/optimizers-regularization/reference/ the reference with its markers removed?"""
    source = ROOT / "solutions" / "scratchnet" / filename
    expected = markers.remove_markers(source.read_text(), str(source))
    assert (EXAMPLES / "reference" / filename).read_text() == expected, \
        f"{EXAMPLES / 'reference' / filename} is stale: copy it from solutions/ without the markers"


@pytest.mark.parametrize("filename", GRADED)
def test_template_example_is_the_template(filename):
    """Is examples/optimizers-regularization/template/ the committed student template?"""
    expected = (TEMPLATE_ROOT / load_config().package / filename).read_text()
    assert (EXAMPLES / "template" / filename).read_text() == expected, \
        f"{EXAMPLES / 'template' / filename} is stale: copy it from {TEMPLATE_ROOT}"


def test_readme_names_every_example():
    """Does the README have a line for every example submission, and no other?"""
    readme = (EXAMPLES / "README.md").read_text()
    on_disk = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert on_disk == SUBMISSIONS
    assert all(f"| `{name}/` |" in readme for name in SUBMISSIONS)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    env = dict(os.environ, NNKIT_ASSIGNMENT=ASSIGNMENT)
    done = subprocess.run([sys.executable, "-m", "nnkit", "grade", str(EXAMPLES), "--out", str(out),
                           "--jobs", "2", "--no-progress"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "grades.csv", newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    return out, rows, done.stdout


def _full():
    return {part: f"{points:g}" for part, points in load_config().points.items()}


@pytest.mark.slow
def test_gradebook_columns_and_files(graded):
    """Does grading write grades.csv with Assignment 2's parts as columns, the report and each submission's files?"""
    out, rows, stdout = graded
    with open(out / "grades.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:8] == ["submission", "score", "max_score", "regularization", "batchnorm", "optimizers",
                          "trainer", "status"]
    assert header == CSV_COLUMNS
    assert set(rows) == SUBMISSIONS
    assert (out / "report.html").is_file()
    for name in rows:
        data = json.loads((out / name / "results.json").read_text())
        assert data["score"] == float(rows[name]["score"])
        assert (out / name / "feedback.md").read_text().startswith(f"# Feedback for {name}")


@pytest.mark.slow
def test_reference_full_marks_and_template_zero(graded):
    """Does the reference get 100 and the untouched template 0, "not implemented"?"""
    _, rows, _ = graded
    assert (rows["reference"]["score"], rows["reference"]["status"]) == ("100", "ok")
    assert rows["template"]["score"] == "0" and rows["template"]["status"] == "not implemented"


@pytest.mark.slow
def test_emil_own_style_gets_full_marks(graded):
    """Does emil's correct code, written his own way, keep every point (the MNIST test included)?"""
    _, rows, _ = graded
    emil = rows["emil"]
    assert (emil["score"], emil["status"]) == ("100", "ok"), emil
    assert {part: emil[part] for part in _full()} == _full()


@pytest.mark.slow
def test_fay_loses_points_in_three_parts_and_is_told_why(graded):
    """Do fay's three bugs (L2 penalty on the biases, running variance with ddof=0, Adam without bias
    correction) each cost points in their own part, does her correct trainer lose only the MNIST test
    (which trains with all her files), and does her feedback name each bug's cause?"""
    out, rows, _ = graded
    fay, full = rows["fay"], _full()
    assert fay["status"] == "ok"
    for part in ("regularization", "batchnorm", "optimizers"):
        assert 0 < float(fay[part]) < float(full[part]), (part, fay[part])
    assert 0 < float(fay["trainer"]) < float(full["trainer"]), fay["trainer"]
    result = json.loads((out / "fay" / "result.json").read_text())
    trainer_failures = [t["name"] for t in result["tests"] if t["part"] == "trainer" and not t["passed"]]
    assert trainer_failures == ["test_mnist_accuracy_above_threshold"], trainer_failures
    feedback = (out / "fay" / "feedback.md").read_text()
    for cause_id in ("l2_on_biases", "bn_running_variance_biased", "adam_no_bias_correction"):
        assert catalogue()[cause_id].text in feedback, cause_id


@pytest.mark.slow
def test_gus_missing_batchnorm_and_crashing_trainer(graded):
    """Is gus's missing batchnorm.py said in his status and worth zero there, do his complete parts keep
    full marks, and does his trainer, which crashes on every call, keep only what it does before crashing?"""
    out, rows, _ = graded
    gus, full = rows["gus"], _full()
    assert gus["status"].startswith("missing batchnorm.py"), gus["status"]
    assert gus["batchnorm"] == "0"
    assert (gus["regularization"], gus["optimizers"]) == (full["regularization"], full["optimizers"])
    assert float(gus["trainer"]) < float(full["trainer"]) / 2, gus["trainer"]
    result = json.loads((out / "gus" / "result.json").read_text())
    crashed = [t for t in result["tests"] if t["part"] == "trainer" and not t["passed"]]
    assert crashed and all("raised KeyError" in t["output"] for t in crashed), [t["output"][:200] for t in crashed][:3]
