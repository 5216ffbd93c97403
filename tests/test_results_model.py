"""Specification of the results model (nnkit.grading.results) and of the Gradescope format check (nnkit.grading.gradescope)."""
import copy
import json

import pytest
from jsonschema import Draft202012Validator

from nnkit.course.contract import PARTS
from nnkit.grading.gradescope import ResultsFormatError, results_schema, validate_results
from nnkit.grading.results import CSV_COLUMNS, SubmissionResult, TestResult, write_submission

VISIBILITY = {"public": "visible", "hidden": "after_published"}


def sample(problems=(), notes=()):
    """Two parts with tests, one passed and one failed in each; the other parts have none."""
    return SubmissionResult(
        submission="alice",
        tests=[
            TestResult("test_relu_small_case", "activations", "public", 2.0, True, seconds=0.1),
            TestResult("test_softmax_rows[relu]", "activations", "hidden", 3.0, False, kind="failed",
                       output="softmax rows should sum to 1 (rtol 1e-6); got 1.7 on shape (4, 3)"),
            TestResult("test_forward_cache", "forward", "public", 5.0, True),
            TestResult("test_forward_large", "forward", "hidden", 2.5, False, kind="timeout",
                       output="the call took longer than 10 s"),
        ],
        problems=list(problems), notes=list(notes), tier="bwrap: namespaces", seconds=12.64,
    )


def test_score_counts_only_passed_tests():
    """Is the score the sum of the points of the passed tests, and the maximum the sum of all points?"""
    r = sample()
    assert r.score == 2.0 + 5.0
    assert r.max_score == 2.0 + 3.0 + 5.0 + 2.5


def test_part_sums():
    """Do part scores and maxima add up per part, with zero for parts without tests?"""
    r = sample()
    assert (r.part_score("activations"), r.part_max("activations")) == (2.0, 5.0)
    assert (r.part_score("forward"), r.part_max("forward")) == (5.0, 7.5)
    assert (r.part_score("training"), r.part_max("training")) == (0.0, 0.0)
    assert sum(r.part_score(p) for p in PARTS) == r.score


def test_status_is_ok_or_the_problems():
    """Is the status "ok" without problems, and the problems joined by "; " otherwise?"""
    assert sample().status == "ok"
    assert sample(problems=["timeout in 1 test", "not implemented"]).status == "timeout in 1 test; not implemented"


def test_csv_row_follows_the_columns():
    """Does a grades.csv row have exactly CSV_COLUMNS, with points written as 7 rather than 7.0?"""
    row = sample(problems=["grader error"]).csv_row()
    assert list(row) == CSV_COLUMNS
    assert row["score"] == "7" and row["max_score"] == "12.5"
    assert row["activations"] == "2" and row["forward"] == "5" and row["training"] == "0"
    assert row["status"] == "grader error"
    assert row["seconds"] == "12.6"
    assert (row["tests_passed"], row["tests_total"]) == (2, 4)


def test_feedback_lists_failed_tests_under_their_part():
    """Does feedback.md give the score, each failed test with its message under its part, and the notes?"""
    text = sample(notes=["train.py appears 2 times; graded the shallowest copy"]).feedback_markdown()
    assert "**Score: 7 / 12.5**" in text
    assert "| activations | 2 / 5 | 1 / 2 |" in text
    assert "## About your files" in text and "train.py appears 2 times" in text
    activations, forward = text.index("## activations"), text.index("## forward")
    softmax = text.index("**test_softmax_rows[relu]** (3 pt, hidden): softmax rows should sum to 1")
    large = text.index("**test_forward_large** (2.5 pt, hidden): the call took longer than 10 s")
    assert activations < softmax < forward < large
    assert "test_relu_small_case" not in text, "passed tests are not listed"
    assert "(bwrap: namespaces)" in text


def test_feedback_without_notes_has_no_files_section():
    """Is the "About your files" section left out when there is nothing to say?"""
    assert "About your files" not in sample().feedback_markdown()


def test_to_gradescope_maps_tests_and_visibility():
    """Does results.json carry each test's points, status, suite visibility and tags?"""
    data = sample().to_gradescope(VISIBILITY)
    assert data["score"] == 7.0
    assert data["execution_time"] == 13
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "passed", "failed"]
    assert [t["visibility"] for t in data["tests"]] == ["visible", "after_published", "visible", "after_published"]
    assert data["tests"][1]["tags"] == ["activations", "hidden"]
    assert data["tests"][1]["output"].startswith("softmax rows should sum to 1")
    assert sum(t["score"] for t in data["tests"]) == data["score"]


def test_to_gradescope_validates_against_the_schema():
    """Is what we send to Gradescope valid under the schema, with and without problems and notes?"""
    validate_results(sample().to_gradescope(VISIBILITY))
    validate_results(sample(problems=["crashed in 1 test"], notes=["a note"]).to_gradescope(VISIBILITY))
    validate_results(SubmissionResult(submission="nobody").to_gradescope(VISIBILITY))


def test_written_results_json_validates(tmp_path):
    """Does the file write_submission puts on disk validate after a JSON round trip?"""
    write_submission(sample(), tmp_path / "alice", VISIBILITY)
    validate_results(json.loads((tmp_path / "alice" / "results.json").read_text()))


def test_json_round_trip():
    """Does from_json(to_json()) give back the same result?"""
    r = sample(problems=["timeout in 1 test"], notes=["note"])
    assert SubmissionResult.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_schema_is_a_valid_json_schema_citing_its_source():
    """Is the schema itself valid draft 2020-12, and does it say where the format is documented?"""
    Draft202012Validator.check_schema(results_schema())
    assert "gradescope-autograders.readthedocs.io/en/latest/specs" in results_schema()["$comment"]


DOCUMENTED_EXAMPLE = {
    "score": 44.0, "execution_time": 136, "output": "Text relevant to the entire submission",
    "output_format": "simple_format", "test_output_format": "text", "test_name_format": "text",
    "visibility": "after_due_date", "stdout_visibility": "visible", "extra_data": {},
    "tests": [{"score": 2.0, "max_score": 2.0, "status": "passed", "name": "Your name here",
               "name_format": "text", "number": "1.1", "output": "Giant multiline string",
               "output_format": "text", "tags": ["tag1", "tag2", "tag3"], "visibility": "visible",
               "extra_data": {}}],
    "leaderboard": [{"name": "Accuracy", "value": .926}, {"name": "Time", "value": 15.1, "order": "asc"},
                    {"name": "Stars", "value": "*****"}],
}
STATUS_EXAMPLE = {"tests": [{"name": "Compilation check", "status": "passed"},
                            {"name": "Style check", "status": "failed"},
                            {"name": "Test 3", "score": 5, "max_score": 10, "status": "passed"}]}


@pytest.mark.parametrize("data", [DOCUMENTED_EXAMPLE, STATUS_EXAMPLE], ids=["output-format", "test-status"])
def test_documented_examples_validate(data):
    """Are the examples of Gradescope's own documentation accepted?"""
    validate_results(data)


def broken(change):
    data = sample().to_gradescope(VISIBILITY)
    change(data)
    return data


BROKEN = {
    "status not passed/failed": (lambda d: d["tests"][1].update(status="ok"), "tests[1].status"),
    "unknown visibility": (lambda d: d.update(visibility="sometimes"), "visibility"),
    "misspelt key": (lambda d: d["tests"][0].update(max_socre=2), "'max_socre' was unexpected"),
    "score as text": (lambda d: d.update(score="7"), "score: '7' is not of type 'number'"),
    "tags not a list": (lambda d: d["tests"][0].update(tags="activations"), "tests[0].tags"),
    "NaN score": (lambda d: d["tests"][2].update(score=float("nan")), "tests[2].score: nan is not a finite"),
    "no score anywhere": (lambda d: (d.pop("score"), d["tests"][0].pop("score"), d["tests"][0].pop("status")),
                          "tests[0]: has neither 'score' nor 'status'"),
    "no score, no tests": (lambda d: (d.pop("score"), d.pop("tests")), "'tests' is a required property"),
    "leaderboard without value": (lambda d: d.update(leaderboard=[{"name": "Accuracy"}]), "leaderboard[0]"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_results_fail_with_the_field_named(name):
    """Is each kind of malformed results.json refused, with a message that names the field?"""
    change, expected = BROKEN[name]
    with pytest.raises(ResultsFormatError, match="does not follow Gradescope's format") as info:
        validate_results(broken(change))
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once():
    """Are all problems listed in one error, not only the first?"""
    data = broken(lambda d: (d.update(visibility="never"), d["tests"][3].update(status="maybe")))
    with pytest.raises(ResultsFormatError, match=r"\(2 problems\)") as info:
        validate_results(data)
    assert "visibility" in str(info.value) and "tests[3].status" in str(info.value)


def test_validation_does_not_change_the_data():
    """Does validate_results leave its argument as it was?"""
    data = sample().to_gradescope(VISIBILITY)
    before = copy.deepcopy(data)
    validate_results(data)
    assert data == before
