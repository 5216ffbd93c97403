"""Does `make grade` on the bundled examples say what examples/nn-from-scratch/README.md promises?"""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnkit.releases import markers
from nnkit.grading.results import CSV_COLUMNS
from tests.tiers import tier_missing
from nnkit.course.config import TEMPLATE_ROOT, EXAMPLES_DIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = EXAMPLES_DIR
GRADED = ("activations.py", "forward.py", "backward.py", "train.py")


@pytest.mark.parametrize("filename", GRADED)
def test_reference_example_is_the_reference(filename):
    """Is examples/nn-from-scratch/reference/ the reference with its markers removed?"""
    source = ROOT / "solutions" / "scratchnet" / filename
    expected = markers.remove_markers(source.read_text(), str(source))
    assert (EXAMPLES / "reference" / filename).read_text() == expected, \
        f"examples/nn-from-scratch/reference/{filename} is stale: copy it from solutions/ without the markers"


@pytest.mark.parametrize("filename", GRADED)
def test_template_example_is_the_template(filename):
    """Is examples/nn-from-scratch/template/ the committed student template?"""
    expected = (TEMPLATE_ROOT / "scratchnet" / filename).read_text()
    assert (EXAMPLES / "template" / filename).read_text() == expected, \
        f"examples/nn-from-scratch/template/{filename} is stale: copy it from student_template/nn-from-scratch/"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    done = subprocess.run([sys.executable, "-m", "nnkit", "grade", str(EXAMPLES), "--out", str(out),
                           "--jobs", "2", "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "grades.csv", newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    return out, rows, done.stdout


@pytest.mark.slow
def test_gradebook_columns_and_files(graded):
    """Does grading write grades.csv with the fixed columns, the report and each submission's files?"""
    out, rows, stdout = graded
    with open(out / "grades.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:8] == ["submission", "score", "max_score", "activations", "forward", "backward",
                          "training", "status"]
    assert header == CSV_COLUMNS
    assert set(rows) == {"reference", "template", "ada", "ben", "cleo", "dev"}
    assert (out / "report.html").is_file()
    for name in rows:
        data = json.loads((out / name / "results.json").read_text())
        assert data["score"] == float(rows[name]["score"])
        assert (out / name / "feedback.md").read_text().startswith(f"# Feedback for {name}")
    assert "isolation:" in stdout


@pytest.mark.slow
def test_each_example_gets_what_its_readme_says(graded):
    """Do the example submissions score as examples/nn-from-scratch/README.md describes?"""
    _, rows, _ = graded
    full = {"activations": "20", "forward": "25", "backward": "30", "training": "25"}
    ref = rows["reference"]
    assert (ref["score"], ref["status"]) == ("100", "ok")
    assert rows["template"]["score"] == "0" and rows["template"]["status"] == "not implemented"
    ada = rows["ada"]
    assert (ada["activations"], ada["forward"], ada["training"]) == (full["activations"], full["forward"], "0")
    assert 0 < float(ada["backward"]) < 30
    ben = rows["ben"]
    assert float(ben["activations"]) < 20
    assert (ben["forward"], ben["backward"], ben["training"]) == (full["forward"], full["backward"], full["training"])
    cleo = rows["cleo"]
    assert cleo["status"].startswith("syntax error in train.py line")
    assert cleo["training"] == "0" and cleo["backward"] == full["backward"]
    assert rows["dev"]["status"].startswith("missing forward.py, backward.py, train.py")


@pytest.mark.slow
def test_shallowest_copy_is_graded_and_said(graded):
    """When a file appears twice, is the shallowest copy graded and does the feedback say so?"""
    out, _, _ = graded
    feedback = (out / "ben" / "feedback.md").read_text()
    assert "train.py appears 2 times; graded the shallowest copy, hw2/scratchnet/train.py" in feedback


@pytest.mark.slow
def test_regrading_one_submission_gives_identical_scores(graded, tmp_path):
    """Does ONLY=name regrade one submission to exactly the same result?"""
    out, rows, _ = graded
    done = subprocess.run([sys.executable, "-m", "nnkit", "grade", str(EXAMPLES), "--out", str(out),
                           "--only", "ada", "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "grades.csv", newline="") as f:
        again = {row["submission"]: row for row in csv.DictReader(f)}
    keep = CSV_COLUMNS[:8]
    assert {k: again["ada"][k] for k in keep} == {k: rows["ada"][k] for k in keep}
    assert set(again) == set(rows)


def test_grader_exit_codes(tmp_path):
    """Does the grader exit 2 when it cannot run (missing folder, unknown --only), and 0 on an empty folder?"""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "nnkit", "grade", *args, "--no-progress"],
                              capture_output=True, text=True, cwd=ROOT)
    missing = run(str(tmp_path / "nope"), "--out", str(tmp_path / "o1"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    (tmp_path / "subs").mkdir()
    empty = run(str(tmp_path / "subs"), "--out", str(tmp_path / "o2"))
    assert empty.returncode == 0, empty.stderr[-2000:]
    unknown = run(str(tmp_path / "subs"), "--out", str(tmp_path / "o3"), "--only", "nobody")
    assert unknown.returncode == 2 and "no submission named" in unknown.stderr


def test_parallel_jobs_get_processors_in_turn():
    """Does each of JOBS parallel jobs get a processor of its own while there are enough, in turn after?"""
    import os

    from nnkit.grading.runner import _cpu_slots

    allowed = sorted(os.sched_getaffinity(0))
    slots = _cpu_slots(len(allowed) + 1)
    taken = [slots.get_nowait() for _ in range(len(allowed) + 1)]
    assert taken == allowed + allowed[:1]


@pytest.mark.parametrize("name", ["ada", "reference"])
def test_forked_and_separate_sandboxes_grade_alike(name):
    """Do a forking sandbox per submission and one sandbox per configuration give every test
    the same outcome (the MNIST test left out for time)?"""
    from nnkit.grading.grade import build_grader
    from nnkit.grading.runner import collect_manifest, grade_one

    grader = build_grader()
    if not grader.forking:
        tier_missing("forked workers are not available on this machine")
    grader.skip_files = ("test_mnist.py",)
    grader.manifest = collect_manifest(grader)
    outcomes = {}
    for forking in (True, False):
        grader.forking = forking
        result = grade_one(grader, EXAMPLES / name)
        outcomes[forking] = [(t.name, t.passed, t.output) for t in result.tests]
    assert outcomes[True] == outcomes[False]
