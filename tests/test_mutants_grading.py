"""Do the suites catch the bugs they claim to catch, and name the right cause?

Every mutant of tests/corpus/<assignment>/mutants/ (one realistic student mistake each) is graded
by the real grader, sandbox included, in one batch with the variants of
tests/corpus/<assignment>/variants/ (correct but written differently), the reference and the
untouched template. The MNIST test (each suite file with a test marked
end_to_end) is left out here: it is the one end-to-end test, it costs
seconds per submission, and a bug must be caught by the tests of its own part.
"""
import time
from pathlib import Path

import pytest

from nnkit.course.causes import catalogue
from nnkit.course.contract import PARTS
from nnkit.grading.grade import build_grader
from nnkit.grading.runner import collect_manifest, grade_folder
from tests.mutation import (
    MUTANTS_DIR, REFERENCE_DIR, VARIANTS_DIR, end_to_end_files, graded_files, load_entries,
    materialize,
)
from nnkit.course.config import ASSIGNMENT, TEMPLATE_ROOT, load_config
from tests.figures import report_figure

pytestmark = pytest.mark.every_assignment

MUTANTS = {e.name: e for e in load_entries(MUTANTS_DIR)}
VARIANTS = {e.name: e for e in load_entries(VARIANTS_DIR)}
TEMPLATE_DIR = TEMPLATE_ROOT / load_config().package


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for entry in [*MUTANTS.values(), *VARIANTS.values()]:
        materialize(entry, folder)
    for name, source in (("_reference", REFERENCE_DIR), ("_template", TEMPLATE_DIR)):
        (folder / name).mkdir()
        for filename in graded_files():
            (folder / name / filename).write_bytes((source / filename).read_bytes())
    grader = build_grader()
    grader.skip_files = end_to_end_files()
    grader.manifest = collect_manifest(grader)
    started = time.perf_counter()
    results = grade_folder(grader, folder, tmp_path_factory.mktemp("grades"), jobs=2, progress=False)
    report_figure(f"{ASSIGNMENT} corpus: {len(MUTANTS)} mutants, {len(VARIANTS)} variants, the reference and the "
                   f"template graded in {time.perf_counter() - started:.0f} s (2 jobs)")
    return {r.submission: r for r in results}


def _failed(result, part):
    return [f"{t.name}: {t.output}" for t in result.tests if t.part == part and not t.passed]


@pytest.mark.slow
def test_reference_gets_full_marks_and_template_zero(graded):
    """Does the reference pass every test, and does the template fail each one as "not implemented yet"?"""
    reference, template = graded["_reference"], graded["_template"]
    assert reference.score == reference.max_score, [f for p in PARTS for f in _failed(reference, p)]
    assert template.score == 0
    assert all(t.kind == "not-implemented" and "not implemented yet" in t.output for t in template.tests), \
        [t.output for t in template.tests if t.kind != "not-implemented"][:5]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_loses_points_in_its_own_part_only(graded, name):
    """Does this mistake cost points in its own part, and keep full marks in the parts upstream?"""
    entry, result = MUTANTS[name], graded[name]
    assert "grader error" not in result.status, result.status
    assert result.part_score(entry.part) < result.part_max(entry.part), \
        f"{name} ({entry.description}) kept full marks in {entry.part}"
    for upstream in PARTS[:PARTS.index(entry.part)]:
        assert result.part_score(upstream) == result.part_max(upstream), \
            f"{name} lost points upstream in {upstream}: {_failed(result, upstream)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_correct_variant_keeps_full_marks(graded, name):
    """Does this correct but different implementation keep every point?"""
    result = graded[name]
    assert result.score == result.max_score, [f for p in PARTS for f in _failed(result, p)]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_feedback_names_its_declared_cause(graded, name):
    """Does the feedback of this mistake name the cause the mutant declares, and no other cause?"""
    entry, result = MUTANTS[name], graded[name]
    failed = result.failed(entry.part)
    named = {t.cause for t in failed if t.cause}
    assert named == {entry.cause}, (
        f"{name} ({entry.description}) declares {entry.cause!r}; its feedback names {sorted(named)}: "
        + "; ".join(f"{t.name}: {t.output}" for t in failed if t.cause != entry.cause)[:3000])
    feedback = result.feedback_markdown()
    assert feedback.count(catalogue()[entry.cause].text) == 1, "the cause is said once, for all its tests"
