"""Does the backward gate hold against the real grader?

Every entry of tests/corpus/<assignment>/gates/ is graded by the real grader, sandbox included,
in one batch: the submissions that compute gradients another way than
backpropagation (finite differences through forward and cross_entropy,
np.gradient, a forward pass of their own, plain arrays the array count cannot
see, numerical differentiation on small networks only) must score zero on
backward, and honest backpropagation written three ways (vectorised, layer by
layer, one example at a time) full marks. The MNIST test is left out: it
belongs to the training part, which every entry keeps as the reference's.
"""
import pytest

from nnkit.course.contract import PARTS
from nnkit.grading.grade import build_grader
from nnkit.grading.runner import collect_manifest, grade_folder
from tests.mutation import GATES_DIR, load_entries, materialize

ENTRIES = {e.name: e for e in load_entries(GATES_DIR)}
GATE_TEST = "test_backward_is_backpropagation"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gates")
    for entry in ENTRIES.values():
        materialize(entry, folder)
    grader = build_grader()
    grader.skip_files = ("test_mnist.py",)
    grader.manifest = collect_manifest(grader)
    results = grade_folder(grader, folder, tmp_path_factory.mktemp("grades"), jobs=2, progress=False)
    for result in sorted(results, key=lambda r: r.submission):
        print(f"{result.submission}: {result.score:g}/{result.max_score:g}, backward "
              f"{result.part_score('backward'):g}/{result.part_max('backward'):g}, status {result.status}")
    return {r.submission: r for r in results}


def _failed(result, part):
    return [f"{t.name}: {t.output}" for t in result.tests if t.part == part and not t.passed]


def test_the_corpus_has_cheats_and_honest_backprop():
    """Does tests/corpus/<assignment>/gates/ hold at least three cheats and three honest ways, all in the backward part?"""
    expects = [e.expect for e in ENTRIES.values()]
    assert expects.count("gated") >= 3 and expects.count("full-marks") >= 3
    assert {e.part for e in ENTRIES.values()} == {"backward"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.expect == "gated"))
def test_cheat_scores_zero_on_backward_only(graded, name):
    """Does this non-backpropagation backward score zero on backward, every test saying why, and keep the rest?"""
    result = graded[name]
    assert "grader error" not in result.status, result.status
    assert result.part_score("backward") == 0, _failed(result, "backward")
    tests = [t for t in result.tests if t.part == "backward"]
    gate = next(t for t in tests if t.name == GATE_TEST)
    assert gate.kind == "failed" and gate.output.startswith(gate.gate), gate.output
    zeroed = [t for t in tests if t.kind == "gated"]
    assert zeroed, "the gate zeroed no test: did every test fail on its own?"
    assert all(t.output.startswith(f"{gate.gate}: {GATE_TEST} failed") for t in zeroed)
    for part in PARTS:
        if part != "backward":
            assert result.part_score(part) == result.part_max(part), _failed(result, part)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.expect == "full-marks"))
def test_honest_backprop_keeps_full_marks(graded, name):
    """Does this honest backpropagation pass the gate and keep every point?"""
    result = graded[name]
    assert result.score == result.max_score, [f for p in PARTS for f in _failed(result, p)]
