"""Specification of regrade comparisons (nnkit.reports.compare, ``make grade COMPARE=old_out_dir``)."""
import csv
import re
import shutil
from pathlib import Path

import pytest

from nnkit.reports import compare
from nnkit.grading.grade import build_grader, main as grade_main
from nnkit.reports.report import write_report
from nnkit.grading.results import SubmissionResult, TestResult, write_submission
from nnkit.grading.runner import collect_manifest, grade_folder
from nnkit.course.config import TESTS_DIR, EXAMPLES_DIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = EXAMPLES_DIR
VISIBILITY = {"public": "visible", "hidden": "after_published"}


def result(name, outcomes):
    """A result with one test per (test name, passed, points), all in the forward part."""
    return SubmissionResult(name, tests=[TestResult(t, "forward", "public", pts, ok, kind="passed" if ok else "failed")
                                         for t, ok, pts in outcomes], tier="bwrap")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_same_results_say_so_in_one_line(tmp_path):
    """Does a regrade that changes nothing say so in one line, with an empty changes.csv?"""
    old = [result("ada", [("t1", True, 1.0), ("t2", False, 1.0)]), result("bo", [("t1", True, 1.0)])]
    comparison = compare.compare(old, [result("ada", [("t1", True, 1.0), ("t2", False, 1.0)]),
                                       result("bo", [("t1", True, 1.0)])], "build/old")
    assert comparison.nothing_changed
    assert comparison.summary() == ("Compared with build/old: nothing changed (2 submissions, same scores and the "
                                    "same status and points in every test).")
    compare.write_csv(comparison, tmp_path / "changes.csv")
    assert rows(tmp_path / "changes.csv") == []
    assert compare.changes_html(comparison).count("<p>") == 1


def test_changes_name_the_submission_score_tests_and_statuses(tmp_path):
    """Does each changed submission come with its old and new score and each changed test's statuses and points?"""
    old = [result("ada", [("t1", True, 1.0), ("t2", False, 1.0)]), result("bo", [("t1", True, 1.0)]),
           result("cy", [("t1", True, 1.0)])]
    new = [result("ada", [("t1", True, 2.0), ("t2", True, 1.0)]), result("bo", [("t1", True, 1.0)]),
           result("dee", [("t1", False, 1.0)])]
    comparison = compare.compare(old, new, "old")
    assert [(c.submission, c.old_score, c.new_score, c.delta) for c in comparison.changes] == [
        ("ada", 1.0, 3.0, 2.0), ("cy", 1.0, None, 0.0), ("dee", None, 0.0, 0.0)]
    assert comparison.changes[0].tests == [
        compare.TestChange("forward", "public", "t1", "passed", "passed", "1 / 1", "2 / 2"),
        compare.TestChange("forward", "public", "t2", "failed", "passed", "0 / 1", "1 / 1")]
    assert comparison.summary() == ("Compared with old: 1 submission changed score, 2 test results changed "
                                    "in 3 submissions.")
    table = rows(compare.write_csv(comparison, tmp_path / "changes.csv"))
    assert [(r["submission"], r["delta"], r["test"], r["old_status"], r["new_status"]) for r in table] == [
        ("ada", "+2", "t1", "passed", "passed"), ("ada", "+2", "t2", "failed", "passed"),
        ("cy", "+0", "", "", "absent"), ("dee", "+0", "", "absent", "")]


def test_report_shows_the_changes_after_the_tier(tmp_path):
    """Does the report put "Changes since ..." right after the tier line when given a comparison?"""
    new = [result("ada", [("t1", True, 1.0)])]
    comparison = compare.compare([result("ada", [("t1", False, 1.0)])], new, "build/old")
    page = write_report(new, tmp_path, comparison=comparison).read_text()
    assert page.index("Student code ran in:") < page.index("<h2>Changes since build/old</h2>") < page.index(
        "<h2>Summary</h2>")
    assert "forward: t1 (public): failed 0 / 1 &rarr; passed 1 / 1" in page


def test_compare_refuses_a_folder_without_results(tmp_path):
    """Is a COMPARE folder that is missing, or holds no result.json, refused with exit status 2?"""
    assert grade_main([str(EXAMPLES), "--out", str(tmp_path / "out"), "--compare", str(tmp_path / "nope")]) == 2
    assert grade_main([str(EXAMPLES), "--out", str(tmp_path / "out"), "--compare", str(tmp_path)]) == 2


@pytest.fixture(scope="module")
def regraded(tmp_path_factory):
    """The bundled reference, ada and template graded, then regraded after one public test's points
    went from 1 to 3, in a copy of the tests: (old out, new out, comparison)."""
    tmp = tmp_path_factory.mktemp("regrade")
    subs = tmp / "subs"
    for name in ("reference", "ada", "template"):
        shutil.copytree(EXAMPLES / name, subs / name)
    tests = tmp / "tests"
    shutil.copytree(TESTS_DIR, tests, ignore=shutil.ignore_patterns("__pycache__"))
    target = tests / "public" / "test_activations.py"
    text = target.read_text()
    changed = re.sub(r"@pytest.mark.points\(1\)\ndef test_relu_small_case", "@pytest.mark.points(3)\ndef "
                     "test_relu_small_case", text)
    assert changed != text
    target.write_text(changed)
    outs = {}
    for label, folder in (("old", TESTS_DIR), ("new", tests)):
        grader = build_grader(tests=folder)
        grader.skip_files = ("test_mnist.py",)
        grader.manifest = collect_manifest(grader)
        outs[label] = tmp / label
        grade_folder(grader, subs, outs[label], jobs=2, progress=False)
    previous = compare.load_previous(outs["old"])
    return outs["old"], outs["new"], compare.regrade_report(previous, outs["old"], subs, outs["new"])


@pytest.mark.slow
def test_regrading_after_reweighting_a_test_shows_who_gained(regraded):
    """After test_relu_small_case goes from 1 to 3 points, do exactly the submissions that pass it
    gain 2, with that test named, in changes.csv and the report?"""
    old, new, comparison = regraded
    assert [(c.submission, c.delta) for c in comparison.changes] == [("ada", 2.0), ("reference", 2.0),
                                                                     ("template", 0.0)]
    for c in comparison.changes:
        assert [(t.name, t.old_status, t.new_status) for t in c.tests] == [
            ("test_relu_small_case", "passed" if c.delta else "not-implemented",
             "passed" if c.delta else "not-implemented")]
        assert c.tests[0].new_points == ("3 / 3" if c.delta else "0 / 3")
    table = rows(new / "changes.csv")
    assert {(r["submission"], r["test"], r["old_points"], r["new_points"]) for r in table} == {
        ("ada", "test_relu_small_case", "1 / 1", "3 / 3"), ("reference", "test_relu_small_case", "1 / 1", "3 / 3"),
        ("template", "test_relu_small_case", "0 / 1", "0 / 3")}
    page = (new / "report.html").read_text()
    assert f"<h2>Changes since {old}</h2>" in page and "2 submissions changed score" in page


@pytest.mark.slow
def test_regrading_with_the_same_tests_changes_nothing(tmp_path, capsys):
    """Does `python -m nnkit grade ... --compare OUT`, regrading OUT itself with unchanged tests, say
    in one line that nothing changed (the template alone, to stay quick)?"""
    subs, out = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(EXAMPLES / "template", subs / "template")
    options = [str(subs), "--out", str(out), "--no-progress", "--jobs", "1"]
    assert grade_main(options) == 0
    assert not (out / "changes.csv").exists()
    assert grade_main(options + ["--compare", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Compared with {out}: nothing changed (1 submission," in printed
    assert rows(out / "changes.csv") == []
    assert "nothing changed" in (out / "report.html").read_text()
