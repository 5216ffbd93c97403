"""Does the gate hold against the real grader?

Every entry of tests/corpus/<assignment>/gates/ is graded by the real grader, sandbox included,
in one batch. In Assignment 1 the gate is backward's: the submissions that compute gradients another
way than backpropagation (finite differences through forward and cross_entropy, np.gradient, a
forward pass of their own, plain arrays the array count cannot see, numerical differentiation on
small networks only) must score zero on backward, and honest backpropagation written three ways
(vectorised, layer by layer, one example at a time) full marks. In Assignment 2 it is
regularization's (backward_dropout must be backpropagation), with a finite-difference cheat, one
that backpropagates on large networks only, and two honest ways. All entries of a corpus edit the
part whose gate they test (GATES); the MNIST test is left out (every suite file with an
end-to-end test): every entry keeps the other parts the reference's.
"""
import pytest

from nnkit.course.config import ASSIGNMENT
from nnkit.course.contract import PARTS
from nnkit.grading.grade import build_grader
from nnkit.grading.runner import collect_manifest, grade_folder
from tests.mutation import GATES_DIR, end_to_end_files, load_entries, materialize

pytestmark = pytest.mark.every_assignment

ENTRIES = {e.name: e for e in load_entries(GATES_DIR)} if GATES_DIR.is_dir() else {}
"""The gate entries; an assignment without a gate corpus (its session deselects these tests) has none."""
GATES = {"nn-from-scratch": ("backward", "test_backward_is_backpropagation"),
         "optimizers-regularization": ("regularization", "test_backward_dropout_is_backpropagation")}
"""Each assignment's gated part, whose gate the entries test, and the gate's test."""
GATE_PART, GATE_TEST = GATES.get(ASSIGNMENT, (None, None))
MIN_EACH = {"nn-from-scratch": 3}.get(ASSIGNMENT, 1)
"""Fewest cheats ("gated") and fewest honest entries ("full-marks") the corpus must hold."""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gates")
    for entry in ENTRIES.values():
        materialize(entry, folder)
    grader = build_grader()
    grader.skip_files = end_to_end_files()
    grader.manifest = collect_manifest(grader)
    results = grade_folder(grader, folder, tmp_path_factory.mktemp("grades"), jobs=2, progress=False)
    for result in sorted(results, key=lambda r: r.submission):
        print(f"{result.submission}: {result.score:g}/{result.max_score:g}, {GATE_PART} "
              f"{result.part_score(GATE_PART):g}/{result.part_max(GATE_PART):g}, status {result.status}")
    return {r.submission: r for r in results}


def _failed(result, part):
    return [f"{t.name}: {t.output}" for t in result.tests if t.part == part and not t.passed]


def test_the_corpus_has_cheats_and_honest_backprop():
    """Does tests/corpus/<assignment>/gates/ hold cheats and honest ways (Assignment 1: at least three of each),
    all in the assignment's gated part?"""
    if not GATES_DIR.is_dir():
        pytest.skip(f"{ASSIGNMENT} has no gate corpus ({GATES_DIR})")
    expects = [e.expect for e in ENTRIES.values()]
    assert expects.count("gated") >= MIN_EACH and expects.count("full-marks") >= MIN_EACH
    assert {e.part for e in ENTRIES.values()} == {GATE_PART}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.expect == "gated"))
def test_cheat_scores_zero_on_its_part_only(graded, name):
    """Does this submission, which does its part another way than asked, score zero on that part, every test
    saying why, and keep the rest?"""
    result = graded[name]
    assert "grader error" not in result.status, result.status
    assert result.part_score(GATE_PART) == 0, _failed(result, GATE_PART)
    tests = [t for t in result.tests if t.part == GATE_PART]
    gate = next(t for t in tests if t.name == GATE_TEST)
    assert gate.kind == "failed" and gate.output.startswith(gate.gate), gate.output
    zeroed = [t for t in tests if t.kind == "gated"]
    assert zeroed, "the gate zeroed no test: did every test fail on its own?"
    assert all(t.output.startswith(f"{gate.gate}: {GATE_TEST} failed") for t in zeroed)
    for part in PARTS:
        if part != GATE_PART:
            assert result.part_score(part) == result.part_max(part), _failed(result, part)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.expect == "full-marks"))
def test_honest_backprop_keeps_full_marks(graded, name):
    """Does this honest implementation pass the gate and keep every point?"""
    result = graded[name]
    assert result.score == result.max_score, [f for p in PARTS for f in _failed(result, p)]
