"""Specification of the catalogue of likely causes (nnkit.course.causes), of failures that carry
their cause (nnkit.testing.checks), and of feedback grouped by cause (nnkit.reports.grouping, nnkit.grading.results)."""
import ast
from pathlib import Path

import numpy as np
import pytest

from nnkit.course.causes import CATALOGUE_PATH, CatalogueError, catalogue, cause, load_catalogue, with_cause, without_cause
from nnkit.testing.checks import IN_PLACE, WRONG_DTYPE, CheckFailed, check_array, check_close, check_unmodified, fail
from nnkit.course.contract import FUNCTIONS
from nnkit.reports.grouping import group_failures, markdown, summary_lines
from nnkit.grading.results import SubmissionResult, TestResult
from tests.mutation import MUTANTS_DIR, MutationError, load_entries, load_entry
from nnkit.course.config import ASSIGNMENT, TESTS_DIR, load_config

ROOT = Path(__file__).resolve().parent.parent
SUITE_FILES = sorted(TESTS_DIR.rglob("*.py"))
MIN_CAUSES = {"nn-from-scratch": 40}
"""Fewest causes each assignment's catalogue may hold (what it held when this was written): a catalogue
that shrinks below lost causes. An assignment not listed needs at least as many causes as graded parts."""


def helper_files():
    """The kit's modules (nnkit/...) that the active assignment's suites import: the check helpers
    whose causes their failures can carry (for Assignment 1, nnkit.testing.gradient_checks among others)."""
    modules = set()
    for path in SUITE_FILES:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
    files = set()
    for module in modules:
        if module == "nnkit" or module.startswith("nnkit."):
            base = ROOT.joinpath(*module.split("."))
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    files.add(candidate)
    return sorted(files)


def named_ids():
    """Every id passed as a literal to cause("...") in the suites and the kit helpers they import,
    with where it is."""
    found = []
    for path in [*SUITE_FILES, *helper_files()]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "cause"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.append((node.args[0].value, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


@pytest.mark.every_assignment
def test_catalogue_reads_and_every_function_is_a_contract_function():
    """Does the assignment's catalogue load, each cause with a sentence and contract functions?"""
    causes = load_catalogue()
    assert len(causes) >= MIN_CAUSES.get(ASSIGNMENT, len(load_config().parts)), len(causes)
    for c in causes.values():
        assert c.text.endswith(".") and c.text[0].islower(), f"{c.id}: a sentence after 'Likely cause:'"
        assert set(c.functions) <= set(FUNCTIONS) | {"*"}, c
    assert IN_PLACE in causes and WRONG_DTYPE in causes, "the check helpers name these two"


@pytest.mark.every_assignment
def test_every_named_cause_is_in_the_catalogue_and_every_cause_is_named():
    """Does every cause("...") in the suites and helpers exist, and does some test name each cause?"""
    causes = catalogue()
    named = named_ids()
    unknown = [(i, where) for i, where in named if i not in causes]
    assert not unknown, unknown
    named_somewhere = {i for i, _ in named} | {IN_PLACE, WRONG_DTYPE}
    assert sorted(set(causes) - named_somewhere) == []


@pytest.mark.every_assignment
def test_every_mutant_declares_a_cause_of_the_catalogue():
    """Does each mutant of the corpus declare the cause its feedback must name?"""
    entries = load_entries(MUTANTS_DIR)
    assert entries and all(e.cause in catalogue() for e in entries)


def test_a_mutant_without_a_cause_or_with_an_unknown_one_is_refused(tmp_path):
    """Is a mutant that declares no cause, or one missing from the catalogue, refused with its file named?"""
    body = 'part = "backward"\ndescription = "x."\nexpect = "loses-points"\n{}' \
           '[[edit]]\nfile = "backward.py"\nfind = "a"\nreplace = "b"\n'
    (tmp_path / "none.toml").write_text(body.format(""))
    (tmp_path / "typo.toml").write_text(body.format('cause = "db_keepdim"\n'))
    with pytest.raises(MutationError, match="none.toml.*'cause'"):
        load_entry(tmp_path / "none.toml")
    with pytest.raises(MutationError, match="typo.toml.*'db_keepdim' is not in the catalogue"):
        load_entry(tmp_path / "typo.toml")


@pytest.mark.parametrize("text,message", [
    ('[bad-id]\ntext = "x."\nfunctions = ["relu"]\n', "an id is letters"),
    ('[a]\ntext = ""\nfunctions = ["relu"]\n', "text must be a non-empty sentence"),
    ('[a]\ntext = "x."\nfunctions = ["relu_prime"]\n', r"\['relu_prime'\] are not contract functions"),
    ('[a]\ntext = "x."\nfunctions = []\n', "functions must be a non-empty list"),
    ('[a]\ntext = "x."\nfunctions = ["relu"]\nhint = "y"\n', r"unknown keys \['hint'\]"),
    ('[a\n', "causes.toml"),
])
def test_a_malformed_catalogue_is_refused_naming_the_cause(tmp_path, text, message):
    """Is each kind of mistake in a catalogue reported with the file and the cause?"""
    path = tmp_path / "causes.toml"
    path.write_text(text)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_an_unknown_cause_is_a_kit_error():
    """Does naming a cause the catalogue lacks raise CatalogueError (not a student's failure)?"""
    with pytest.raises(CatalogueError, match=str(CATALOGUE_PATH.name)):
        cause("no_such_cause")
    assert not issubclass(CatalogueError, AssertionError)


def test_a_failure_carries_its_cause_id_and_sentence():
    """Does a check failing with a cause end with "Likely cause: <sentence>" and carry the id?"""
    with pytest.raises(CheckFailed) as info:
        fail("db", "shape (3,)", "shape (1, 3)", cause("db_keepdims"))
    assert info.value.cause == "db_keepdims"
    assert str(info.value) == with_cause("db: expected shape (3,), got shape (1, 3).", cause("db_keepdims"))
    assert without_cause(str(info.value), cause("db_keepdims")) == "db: expected shape (3,), got shape (1, 3)."
    with pytest.raises(CheckFailed) as info:
        fail("db", "shape (3,)", "shape (1, 3)", "sum over axis 0")
    assert info.value.cause == "" and str(info.value).endswith("Hint: sum over axis 0")


def test_dtype_and_in_place_failures_name_their_causes():
    """Does a wrong dtype name wrong_dtype (even with shape advice given), and an input changed in place
    name input_modified_in_place?"""
    with pytest.raises(CheckFailed) as info:
        check_array(np.zeros(3, dtype=bool), what="relu_derivative(z)", shape=(3,), hint="shape advice")
    assert info.value.cause == WRONG_DTYPE
    with pytest.raises(CheckFailed) as info:
        check_close(np.zeros(3, dtype=int), np.zeros(3), what="one_hot(y)", hint=cause("one_hot_classes_from_labels"))
    assert info.value.cause == "one_hot_classes_from_labels", "a cause the test recognised wins"
    with pytest.raises(CheckFailed) as info:
        check_unmodified(np.ones(2), np.zeros(2), what="relu(z)", name="z")
    assert info.value.cause == IN_PLACE


def failure(name, cause_id="", suite="public", points=1.0, message="f(x): expected 1, got 2."):
    c = catalogue().get(cause_id)
    return TestResult(name, "backward", suite, points, False, kind="failed",
                      output=with_cause(message, c) if c else message, cause=cause_id)


def test_failures_are_grouped_by_cause_most_tests_first_then_the_others():
    """Does each cause come once with its tests, the largest group first, then each unexplained failure?"""
    tests = [failure("t1", "gradient_sign"), failure("t2"), failure("t3", "derivative_at_A"),
             failure("t4", "derivative_at_A", points=2.0), failure("t5", "an_id_from_an_older_catalogue")]
    groups = group_failures(tests, catalogue())
    assert [g.cause.id if g.cause else None for g in groups] == ["derivative_at_A", "gradient_sign", None, None]
    assert [[t.name for t in g.tests] for g in groups] == [["t3", "t4"], ["t1"], ["t2"], ["t5"]]
    assert groups[0].points == 3.0
    assert groups[0].example == "f(x): expected 1, got 2."


def test_grouped_markdown_says_each_cause_once():
    """In feedback.md, is a cause's sentence written once for all its tests, with one example?"""
    tests = [failure(f"test_backward_{i}", "derivative_at_A", suite=s) for i, s in enumerate(["public", "hidden"] * 3)]
    tests.append(failure("test_backward_speed", message="backward: expected under 2 s, got 3 s."))
    text = "\n".join(markdown(group_failures(tests, catalogue())))
    assert text.count(cause("derivative_at_A").text) == 1
    assert "**Likely cause of 6 failed tests (6 pt):**" in text
    assert all(f"- test_backward_{i} (1 pt, {s})" in text for i, s in enumerate(["public", "hidden"] * 3))
    assert text.count("Example, test_backward_0: f(x): expected 1, got 2.") == 1
    assert text.index("**Other failures:**") < text.index("**test_backward_speed** (1 pt, public): backward: expected")


def test_summary_lines_list_causes_and_count_the_rest():
    """Do the plain-text lines give each cause, its tests and an example, then how many others failed?"""
    tests = [failure("t1", "db_keepdims"), failure("t2", "db_keepdims"), failure("t3"), failure("t4")]
    lines = summary_lines(group_failures(tests, catalogue()))
    assert lines == [f"  Likely cause of 2 failed tests: {cause('db_keepdims').text}", "    tests: t1, t2",
                     "    e.g. f(x): expected 1, got 2.",
                     "  2 failed tests without a recognised cause: see each test's message."]


def one_bug():
    """A submission with one backward bug, caught by public and hidden tests alike."""
    tests = [TestResult("test_relu", "activations", "public", 1.0, True)]
    tests += [failure(f"test_gradients[{i}]", "derivative_at_A", suite=s) for i, s in
              enumerate(["public", "public", "hidden", "hidden"])]
    tests.append(failure("test_speed", message="backward: expected under 2 s, got 3 s."))
    return SubmissionResult("ada", tests=tests, tier="bwrap")


def test_feedback_groups_a_parts_failures_by_cause():
    """Does feedback.md name the one cause once under its part, then the failure it does not explain?"""
    text = one_bug().feedback_markdown()
    part = text.index("## backward")
    assert text.count(cause("derivative_at_A").text) == 1
    assert part < text.index("**Likely cause of 4 failed tests (4 pt):**") < text.index("**Other failures:**")
    assert "**test_speed** (1 pt, public): backward: expected under 2 s, got 3 s." in text


def test_gradescope_summary_groups_only_what_students_may_see():
    """Does the Gradescope summary group the part's visible failures by cause, leaving hidden ones
    (not yet published) out, while each test keeps its whole message?"""
    data = one_bug().to_gradescope({"public": "visible", "hidden": "after_published"})
    lines = data["output"].splitlines()
    at = lines.index("backward: 0 / 5")
    assert lines[at + 1] == f"  Likely cause of 2 failed tests: {cause('derivative_at_A').text}"
    assert lines[at + 2] == "    tests: test_gradients[0], test_gradients[1]"
    assert lines[at + 4] == "  1 failed test without a recognised cause: see each test's message."
    assert all(t["output"].endswith(cause("derivative_at_A").text) for t in data["tests"][1:5])
    everyone = one_bug().to_gradescope({"public": "visible", "hidden": "visible"})["output"]
    assert "Likely cause of 4 failed tests" in everyone


def test_result_json_keeps_cause_and_function():
    """Do cause and function survive result.json, and do records without them still load?"""
    r = SubmissionResult("ada", tests=[TestResult("t", "backward", "public", 1.0, False, kind="failed",
                                                  cause="gradient_sign", function="backward")])
    back = SubmissionResult.from_json(r.to_json())
    assert (back.tests[0].cause, back.tests[0].function) == ("gradient_sign", "backward")
    old = r.to_json()
    for t in old["tests"]:
        del t["cause"], t["function"]
    assert SubmissionResult.from_json(old).tests[0].cause == ""
