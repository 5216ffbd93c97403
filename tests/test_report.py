"""Specification of the class report (nnkit.reports.report) on synthetic results."""
import csv
import html
import re
import statistics

import pytest

from nnkit.course.causes import catalogue
from nnkit.reports.report import CHARTS, tally_tests, tier_statement, write_report
from nnkit.grading.results import SubmissionResult, TestResult, write_submission

TIER = "bwrap: namespaces (mount, pid, net, ipc), user nobody, rlimits"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE_NAME = "<script>alert('name')</script>"
HOSTILE_STATUS = "<b>bold</b> & <img src=x onerror=alert(1)>"
HOSTILE_OUTPUT = "expected 1.0, got <script>alert('output')</script>"

# (name, part, suite, points)
MANIFEST = [("test_relu", "activations", "public", 1.0), ("test_softmax", "activations", "hidden", 2.0),
            ("test_forward", "forward", "public", 3.0), ("test_backward", "backward", "hidden", 4.0),
            ("test_train", "training", "hidden", 5.0)]


def submission(name, passed, problems=(), tier=TIER, seconds=1.0, output="expected 1.0, got 2.0"):
    """A result over MANIFEST where the tests named in ``passed`` pass."""
    tests = [TestResult(n, part, suite, pts, n in passed, kind="passed" if n in passed else "failed",
                        output="" if n in passed else output)
             for n, part, suite, pts in MANIFEST]
    return SubmissionResult(submission=name, tests=tests, problems=list(problems), tier=tier, seconds=seconds)


ALL = {n for n, *_ in MANIFEST}


def class_of_five():
    return [
        submission("ada", ALL, seconds=3.5),
        submission("bob", {"test_relu", "test_forward"}, seconds=9.25),
        submission(HOSTILE_NAME, {"test_relu"}, problems=[HOSTILE_STATUS], output=HOSTILE_OUTPUT),
        submission("cy$\\frac{1}{0}$", set(), problems=["not implemented"], seconds=0.5),
        submission("dee \udcff zip", {"test_relu", "test_softmax"}, seconds=2.0),
    ]


def read(path):
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    """The report of class_of_five(): (results, folder, page)."""
    out = tmp_path_factory.mktemp("five")
    results = class_of_five()
    return results, out, read(write_report(results, out))


def test_no_submissions(tmp_path):
    """With nothing graded, is there still a page that says so, states the tier, and draws no chart?"""
    page = read(write_report([], tmp_path))
    assert "Nothing to report" in page
    assert "Student code ran in: nothing ran (no submissions)." in page
    assert not list(tmp_path.glob("*.png"))


def test_one_submission(tmp_path):
    """With one submission, are all charts written as PNG files the page refers to?"""
    path = write_report([submission("ada", ALL)], tmp_path)
    page = read(path)
    assert f"Student code ran in: {html.escape(TIER)}." in page
    for name in CHARTS.values():
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
        assert f"src='{name}'" in page


def test_images_are_referenced_by_relative_paths_that_exist(five):
    """Does every <img> point to a PNG file next to report.html?"""
    _, out, page = five
    sources = re.findall(r"<img src='([^']+)'", page)
    assert sorted(sources) == sorted(CHARTS.values())
    assert all((out / s).read_bytes().startswith(PNG_MAGIC) for s in sources)


def test_hostile_strings_are_escaped(five):
    """Do names and statuses from submissions appear escaped, never as raw HTML?"""
    page = five[2]
    assert "<script" not in page.lower(), "the page has no scripts of its own, so any is from data"
    assert "<img src=x" not in page
    assert html.escape(HOSTILE_NAME) in page
    assert html.escape(HOSTILE_STATUS) in page


def test_hostile_test_output_is_escaped(tmp_path):
    """Is a failure message shown in the hardest-tests table escaped?"""
    results = [submission("ada", ALL), submission("eve", ALL - {"test_train"}, output=HOSTILE_OUTPUT)]
    page = read(write_report(results, tmp_path))
    assert "<script" not in page.lower()
    table = page[page.index("<h2>Tests most students fail</h2>"):page.index("<h2>Pass rate")]
    assert html.escape(HOSTILE_OUTPUT) in table


def test_names_that_would_break_charts_or_encoding(five):
    """Do a mathtext name ($...$) and a name with an undecodable byte still give a full report?"""
    _, out, page = five
    assert html.escape("cy$\\frac{1}{0}$") in page
    assert "dee ? zip" in page
    assert (out / CHARTS["slowest"]).read_bytes().startswith(PNG_MAGIC)


def test_summary_numbers(five):
    """Does the summary give the count, mean and median, full marks and zeros computed from the scores?"""
    results, _, page = five
    scores = [r.score for r in results]
    summary = page[page.index("<h2>Summary</h2>"):page.index("<h2>Scores</h2>")]
    assert f"<b>{len(results)}</b><span>Submissions</span>" in summary
    assert f"<b>{statistics.fmean(scores):.1f} / 15</b><span>Mean score</span>" in summary
    assert f"<b>{statistics.median(scores):g} / 15</b><span>Median score</span>" in summary
    assert "<b>1</b><span>Full marks</span>" in summary
    assert "<b>1</b><span>Zero</span>" in summary


def test_what_an_instructor_reads_first_comes_first(five):
    """Is the order tier, summary, histogram, status counts, common mistakes, hardest tests, then the details?"""
    page = five[2]
    marks = ["Student code ran in:", "<h2>Summary</h2>", CHARTS["scores"], "<h2>Status</h2>",
             "<h2>Common mistakes</h2>", "<h2>Tests most students fail</h2>", CHARTS["pass_rate"], CHARTS["parts"],
             "<h2>Slowest submissions</h2>", "<h2>All submissions</h2>"]
    positions = [page.index(m) for m in marks]
    assert positions == sorted(positions)


def test_status_counts_list_the_submissions(five):
    """Does each status row give its count and name its submissions?"""
    page = five[2]
    status = page[page.index("<h2>Status</h2>"):page.index("<h2>Tests most students fail</h2>")]
    assert "<td>ok</td><td>3</td><td>ada, bob, dee" in status
    assert f"<td>not implemented</td><td>1</td><td>{html.escape('cy$')}" in status


def test_hardest_tests_come_first_with_their_counts(five):
    """Is the test passed by fewest submissions first in the table, with its pass count?"""
    results, _, page = five
    stats = {s.name: s for s in tally_tests(results)}
    assert stats["test_relu"].passed == 4 and stats["test_train"].passed == 1
    table = page[page.index("<h2>Tests most students fail</h2>"):page.index("<h2>Pass rate")]
    rows = re.findall(r"<tr class=''><td>(\w+)</td>", table)
    rates = [stats[n].pass_rate for n in rows]
    assert rates == sorted(rates) and len(rows) == len(stats)
    assert "1 / 5 (20%)" in table


def test_links_to_each_submissions_files(tmp_path):
    """Does each row link to the submission's feedback.md and results.json, percent-encoded?"""
    results = class_of_five()
    for r in results[:2]:
        write_submission(r, tmp_path / r.submission, {"public": "visible", "hidden": "after_published"})
    page = read(write_report(results, tmp_path))
    assert "<a href='ada/feedback.md'>feedback.md</a> <a href='ada/results.json'>results.json</a>" in page
    assert "href='dee%20%FF%20zip/" not in page, "no link to files that were not written"
    odd = SubmissionResult(submission="a b&c", tier=TIER)
    write_submission(odd, tmp_path / odd.submission, {})
    page = read(write_report([odd], tmp_path))
    assert "href='a%20b%26c/feedback.md'" in page


def test_mixed_tiers_are_stated(tmp_path):
    """When submissions ran under different tiers, does the report say which and how many?"""
    weak = "rlimits: own session, rlimits, private temp folder"
    results = [submission("a", ALL), submission("b", ALL), submission("c", ALL, tier=weak)]
    statement = tier_statement(results)
    assert statement.startswith("Student code ran in: ")
    assert f"{TIER} (2 submissions)" in statement and f"{weak} (1 submission)" in statement
    page = read(write_report(results, tmp_path))
    assert "class='tier warn'" in page and html.escape(statement) in page


def test_stale_charts_are_removed(tmp_path):
    """Does a report with nothing to chart remove the charts of an earlier run?"""
    write_report([submission("ada", ALL)], tmp_path)
    assert (tmp_path / CHARTS["scores"]).is_file()
    write_report([], tmp_path)
    assert not list(tmp_path.glob("report-*.png"))


def test_a_class_of_a_hundred(tmp_path):
    """Does a report for 100 submissions list every one of them?"""
    results = [submission(f"student{i:03d}", set(list(ALL)[: i % 6]), seconds=i / 10) for i in range(100)]
    page = read(write_report(results, tmp_path))
    assert page.count("<tr class=") >= 100
    missing = [f"student{i:03d}" for i in range(100) if f"student{i:03d}" not in page]
    assert missing == []


def test_figures_are_not_left_open(tmp_path):
    """Does the report leave pyplot's figure registry as it found it?"""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    write_report([submission("ada", ALL), submission("bob", set())], tmp_path)
    assert plt.get_fignums() == before


def graded(name, failures):
    """A result over three backward tests and one training test, each of a function; ``failures`` maps
    the tests that failed to the cause their feedback named ("" for none)."""
    tests = []
    for test, function, part in (("test_grads[1]", "backward", "backward"), ("test_grads[2]", "backward", "backward"),
                                 ("test_linear_backward", "linear_backward", "backward"),
                                 ("test_sgd_step", "sgd_step", "training")):
        failed = test in failures
        tests.append(TestResult(test, part, "public", 1.0, not failed, kind="failed" if failed else "passed",
                                output="expected 1, got 2." if failed else "", cause=failures.get(test, ""),
                                function=function))
    return SubmissionResult(submission=name, tests=tests, tier=TIER)


def class_with_mistakes():
    return [graded("ada", {"test_grads[1]": "derivative_at_A", "test_grads[2]": "derivative_at_A"}),
            graded("bob", {"test_grads[2]": "derivative_at_A", "test_linear_backward": "db_keepdims"}),
            graded("cy", {"test_grads[1]": "derivative_at_A", "test_sgd_step": ""}),
            graded("dee", {})]


def test_common_mistakes_count_submissions_per_cause_and_function(tmp_path):
    """Does mistakes.csv list each cause by the submissions that hit it (most first, unhit ones last), then
    each contract function by the submissions that got it fully right (fewest first)?"""
    write_report(class_with_mistakes(), tmp_path)
    with open(tmp_path / "mistakes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    causes = [r for r in rows if r["kind"] == "cause"]
    assert [(r["id"], r["submissions"], r["names"]) for r in causes[:2]] == [
        ("derivative_at_A", "3", "ada; bob; cy"), ("db_keepdims", "1", "bob")]
    assert causes[0]["text"] == catalogue()["derivative_at_A"].text and causes[0]["total"] == "4"
    assert {r["submissions"] for r in causes[2:]} == {"0"} and len(causes) == len(catalogue())
    functions = [(r["id"], r["part"], r["fully_right"], r["names"]) for r in rows if r["kind"] == "function"]
    assert functions == [("backward", "backward", "1", "ada; bob; cy"), ("linear_backward", "backward", "3", "bob"),
                         ("sgd_step", "training", "3", "cy")]


def test_common_mistakes_section_reads_most_common_first(tmp_path):
    """Does the report's section show the cause most submissions hit first, with who hit it, the causes
    no one hit in one line, and the functions fewest got fully right first?"""
    page = read(write_report(class_with_mistakes(), tmp_path))
    section = page[page.index("<h2>Common mistakes</h2>"):page.index("<h2>Tests most students fail</h2>")]
    assert section.index("<code>derivative_at_A</code>") < section.index("<code>db_keepdims</code>")
    assert "<td>3 / 4</td><td>4</td>" in section and "ada, bob, cy" in section
    assert html.escape(catalogue()["derivative_at_A"].text, quote=True) in section
    assert "Named in no submission's feedback:" in section and "<code>gradient_sign</code>" in section
    functions = section[section.index("<th>Function</th>"):]
    assert functions.index("<code>backward</code>") < functions.index("<code>linear_backward</code>")
    assert "<td>1 / 4</td>" in functions
