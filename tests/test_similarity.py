"""Specification of the class similarity report (nnkit.reports.similarity) on a generated class.

The class (tests/similarity_class.py) holds 36 independent correct students,
six disguised copies of the first (renamed variables, reordered functions,
rewritten comments, other whitespace, all of it, and all of it with one
function swapped in from the second student) and five template-only
submissions. Every copy must be flagged, no honest pair may be, and the
template must contribute nothing.
"""
import csv
import itertools
import re
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nnkit.course.config import TEMPLATE_ROOT, ConfigError, SimilarityConfig, load_config
from nnkit.reports.similarity import (CSV_NAME, HTML_NAME, STYLESHEET, collect_class, compare_class, main,
                              similarity_report, summary_line)
from tests.similarity_class import (ALTERNATIVES, FILE_OF, GRADED, HABITS, LONG, HonestLimits, Student,
                                    check_correct, generate_class, honest_class, render, same_alternatives, write)

SETTINGS = load_config().similarity


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(class, result, output folder) of the generated class, scored with the shipped [similarity] settings."""
    root = tmp_path_factory.mktemp("similarity")
    klass = generate_class(root / "class")
    result = similarity_report(klass.folder, root / "out", settings=SETTINGS, jobs=2, max_bytes=1_000_000)
    return klass, result, root / "out"


def scores(result):
    """(a, b) in sorted order -> PairScore, for every pair sharing anything."""
    return {(p.a, p.b): p for p in result.pairs}


# ---- the generated class is what it claims to be ------------------------------

def test_generated_students_are_correct(generated):
    """Does every honest student and every disguised copy compute what the reference computes?"""
    klass, _, _ = generated
    problems = check_correct([klass.folder / name for name in klass.honest + list(klass.copies)])
    assert problems and not any(problems.values()), {k: v for k, v in problems.items() if v}


def test_every_alternative_is_correct(tmp_path):
    """Is each way of writing each function, with each way of each habit, correct (not only those drawn)?"""
    rounds = max(max(len(a) for a in ALTERNATIVES.values()), max(len(h) for h in HABITS.values()))
    students = [Student(f"cover{i}", {f: i % len(a) for f, a in ALTERNATIVES.items()},
                        {h: i % len(w) for h, w in HABITS.items()}, variant=i + 1) for i in range(rounds)]
    problems = check_correct([write(render(s), tmp_path / s.name) for s in students])
    assert len(problems) == rounds and not any(problems.values()), {k: v for k, v in problems.items() if v}


def test_honest_students_are_independent(generated):
    """Do two honest students write at most a few functions the same way, and at most one long one?"""
    klass, _, _ = generated
    limits = HonestLimits()
    worst = 0
    for a, b in itertools.combinations(klass.honest, 2):
        same = same_alternatives(klass.students[a], klass.students[b])
        assert len(same) <= limits.functions and len(same & set(LONG)) <= limits.long, (a, b, same)
        worst = max(worst, len(same))
    used = {(f, s.choice[f]) for s in klass.students.values() for f in FILE_OF}
    assert used == {(f, i) for f, alts in ALTERNATIVES.items() for i in range(len(alts))}, "an alternative is unused"
    print(f"\nhonest pairs write at most {worst} of {len(FILE_OF)} functions the same way, "
          f"at most {limits.long} of the {len(LONG)} long ones")


def test_copies_are_disguised(generated):
    """Does every copy differ from its source in every file (so that plain diffs would not find it)?"""
    klass, _, _ = generated
    for copy, source in klass.copies.items():
        for name in GRADED:
            assert (klass.folder / copy / name).read_text() != (klass.folder / source / name).read_text(), (copy, name)


# ---- what the report finds ---------------------------------------------------------

def test_copies_flagged_and_honest_pairs_not(generated):
    """Is every pair of copies (and copy and source) flagged, and no pair of independent students?"""
    klass, result, _ = generated
    found = scores(result)
    names = sorted(result.submissions)
    positives = [(a, b) for a, b in itertools.combinations(names, 2) if klass.is_copy_pair(a, b)]
    honest = [(a, b) for a, b in itertools.combinations(names, 2) if klass.is_honest_pair(a, b)]
    flagged = {(p.a, p.b) for p in result.flagged}
    true_positives = len(flagged & set(positives))
    precision = true_positives / len(flagged) if flagged else 0.0
    recall = true_positives / len(positives)
    copy_min = min(found[p].tokens for p in positives)
    honest_max = max((found[p].tokens for p in honest if p in found), default=0)
    print(f"\n{len(names)} submissions, {len(positives)} copy pairs, {len(honest)} honest pairs: "
          f"precision {precision:.2f}, recall {recall:.2f}; copy pairs share at least {copy_min} tokens, "
          f"honest pairs at most {honest_max} (flagged from {SETTINGS.flag_pair_tokens})")
    missed = sorted(set(positives) - flagged)
    false = sorted(flagged & set(honest))
    assert not missed, f"copies not flagged: {missed}"
    assert not false, f"honest pairs flagged: {[(p, found[p].tokens) for p in false]}"
    assert recall == 1.0 and precision == 1.0
    copy, source, donor = klass.swapped
    assert tuple(sorted((copy, source))) in flagged


def test_template_contributes_nothing(generated):
    """Does a template-only submission share with anyone at most the few lines it wrote itself?"""
    from copydetect.utils import filter_code

    klass, result, _ = generated
    found = scores(result)
    for name in klass.template_only:
        written = _written_tokens(klass, name, filter_code)
        best = max((p.tokens for (a, b), p in found.items() if name in (a, b)), default=0)
        assert best <= written, f"{name} shares {best} tokens but wrote only {written}"
        assert best <= SETTINGS.flag_pair_tokens * 0.1, f"{name} shares {best} tokens"
        print(f"\n{name}: wrote {written} tokens, shares at most {best}", end="")
    assert not any("template_untouched" in (p.a, p.b) for p in result.pairs)


def _written_tokens(klass, name, filter_code) -> int:
    """Tokens of normalised code on the lines a template-only submission wrote."""
    template = {f: set((TEMPLATE_ROOT / "scratchnet" / f).read_text()
                       .splitlines()) for f in GRADED}
    total = 0
    for f in GRADED:
        mine = [line for line in (klass.folder / name / f).read_text().splitlines() if line not in template[f]]
        total += len(filter_code("\n".join(mine), f, "python")[0])
    return total


def test_csv_lists_every_sharing_pair(generated):
    """Does similarity.csv hold one row per pair sharing anything, ranked, with per-file scores that add up?"""
    _, result, out = generated
    with open(out / CSV_NAME, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.pairs)
    totals = [int(r["shared_tokens"]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    for row in rows:
        parts = [int(row[f"{part}_tokens"]) for part in ("activations", "forward", "backward", "training")]
        assert sum(parts) == int(row["shared_tokens"])
    assert sum(r["flagged"] == "yes" for r in rows) == len(result.flagged) > 0
    assert summary_line(out).startswith(f"{len(result.flagged)} pairs of submissions flagged")


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls, self.stylesheets, self.marks, self.code_columns = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.stylesheets.append(attrs["href"])
        self.marks += tag == "mark"
        self.code_columns += tag == "div" and attrs.get("class") == "code"


def test_html_is_self_contained(generated):
    """Does similarity.html load only a stylesheet next to it, with no URL that leaves the machine?"""
    _, result, out = generated
    page = (out / HTML_NAME).read_text()
    parser = _Assets()
    parser.feed(page)
    assert parser.stylesheets == [STYLESHEET.name]
    assert (out / STYLESHEET.name).read_bytes() == STYLESHEET.read_bytes()
    remote = [u for u in parser.urls if re.match(r"(?i)\s*(https?:)?//", u)]
    assert not remote, remote
    for url in parser.urls:
        assert url.startswith("#") or (out / url).is_file(), url
    assert "http" not in page.lower()
    assert "http" not in STYLESHEET.read_text().lower()


def test_html_shows_flagged_pairs_side_by_side(generated):
    """Does each flagged pair get a section with both files of every shared graded file, shared code marked?"""
    _, result, out = generated
    page = (out / HTML_NAME).read_text()
    parser = _Assets()
    parser.feed(page)
    shown = result.flagged
    assert len(re.findall(r"<section class='pair'", page)) == len(shown)
    assert parser.code_columns == 2 * sum(len(p.files) for p in shown)
    assert parser.marks >= parser.code_columns
    for rank, _ in enumerate(shown, start=1):
        assert f"href='#pair-{rank}'" in page and f"id='pair-{rank}'" in page


def test_hash_seed_is_fixed(generated, tmp_path):
    """With winnowing (guarantee above noise), are the scores the same run after run, and is that because the
    workers' hash seed is fixed (another seed gives other scores)?"""
    klass, _, _ = generated
    winnowing = SimilarityConfig(noise_threshold=20, guarantee_threshold=30, flag_pair_tokens=800,
                                 flag_file_tokens=400)
    files, _ = collect_class(klass.folder, tmp_path, max_bytes=1_000_000)
    files = {n: {"train.py": files[n]["train.py"]} for n in sorted(files)[:12]}  # one worker is enough

    def run(seed):
        pairs, _ = compare_class(files, winnowing, jobs=2, hash_seed=seed)
        return [(p.a, p.b, {f: m.tokens for f, m in p.files.items()}) for p in pairs]

    first, again, other = run("0"), run("0"), run("1")
    assert first == again
    assert first != other


# ---- bad input, command line, class report -------------------------------------------

def test_bad_submissions_are_skipped_with_a_reason(tmp_path, capsys):
    """Are broken, empty and unreadable submissions listed as skipped, and the others still compared?"""
    subs = tmp_path / "subs"
    honest = honest_class(3, seed=5)
    for s in honest:
        write(render(s), subs / s.name)
    write(render(honest[0]), subs / "<i>copy & co")
    (subs / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (subs / "empty").mkdir()
    (subs / "notes.txt").write_text("not a submission")
    with zipfile.ZipFile(subs / "zipped.zip", "w") as zf:
        for name, text in render(honest[1]).items():
            zf.writestr(f"hw2/scratchnet/{name}", text)
    write(render(honest[2]), subs / "latin1")
    (subs / "latin1" / "train.py").write_bytes("# caf\xe9\n".encode("latin-1") + b"x = 1\n")
    write(render(honest[2]), subs / "odd")  # odd but readable files are compared like any other
    (subs / "odd" / "train.py").write_text("")
    (subs / "odd" / "forward.py").write_bytes(b"x = 1\x00\x00\ny = 2\n")
    (subs / "odd" / "backward.py").write_text("x = [" + ", ".join(map(str, range(20000))) + "]\n")
    out = tmp_path / "out"
    assert main([str(subs), "--out", str(out), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    result_rows = list(csv.DictReader((out / CSV_NAME).read_text().splitlines()))
    assert "skipped broken.zip: malformed zip" in captured.err
    assert "skipped empty: no graded files found" in captured.err
    assert "skipped notes.txt: not a folder or .zip" in captured.err
    assert "skipped latin1: train.py: not UTF-8 text" in captured.err
    assert "skipped odd" not in captured.err and "compared 7 submissions" in captured.out
    flagged = {(r["submission_a"], r["submission_b"]) for r in result_rows if r["flagged"] == "yes"}
    assert ("<i>copy & co", "student001") in flagged
    assert ("student002", "zipped") in flagged
    page = (out / HTML_NAME).read_text()
    assert "<i>copy & co" not in page and "&lt;i&gt;copy &amp; co" in page


def test_command_line_errors(tmp_path, capsys):
    """Does the command refuse a missing folder and a job count below 1, with status 2?"""
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main([str(tmp_path), "--out", str(tmp_path), "--jobs", "0"]) == 2
    assert "JOBS must be at least 1" in capsys.readouterr().err


def test_class_report_links_the_similarity_report(generated, tmp_path):
    """Does report.html link similarity.html with the number of flagged pairs, and only when it exists?"""
    from nnkit.reports.report import write_report
    from nnkit.grading.results import SubmissionResult, TestResult

    _, result, out = generated
    graded = [SubmissionResult(submission="ada", tests=[TestResult("t", "activations", "public", 1.0, True)])]
    page = write_report(graded, out).read_text()
    assert f"<a href='{HTML_NAME}'>Similarity report</a>: {len(result.flagged)} pairs of submissions flagged" in page
    assert HTML_NAME not in write_report(graded, tmp_path).read_text()


def test_command_refreshes_an_existing_class_report(tmp_path):
    """After grading into OUT, does `similarity` into the same OUT rewrite report.html with the link, for the
    same submissions, and leave grades.csv as it was?"""
    from nnkit.grading.results import CSV_COLUMNS, SubmissionResult, TestResult, write_submission
    from nnkit.grading.runner import write_gradebook

    subs, out = tmp_path / "subs", tmp_path / "out"
    students = honest_class(2, seed=7)
    for s in students:
        write(render(s), subs / s.name)
    write(render(students[0]), subs / "twin")
    for name in ("student001", "old"):
        write_submission(SubmissionResult(submission=name, tests=[TestResult("t", "activations", "public", 1.0, True)]),
                         out / name, {"public": "visible", "hidden": "after_published"})
    write_gradebook(out, {"student001"})
    grades = (out / "grades.csv").read_text()
    assert HTML_NAME not in (out / "report.html").read_text()
    assert main([str(subs), "--out", str(out), "--jobs", "2"]) == 0
    page = (out / "report.html").read_text()
    assert f"<a href='{HTML_NAME}'>Similarity report</a>: 1 pair of submissions flagged" in page
    assert "student001" in page and "old" not in page.split("<h2>All submissions</h2>")[1]
    assert (out / "grades.csv").read_text() == grades and CSV_COLUMNS[0] == "submission"


# ---- the configuration -----------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("flag_pair_tokens"), "missing key 'flag_pair_tokens' in [similarity]"),
    (lambda s: s.update(flag_tokens=3), "unknown key(s) ['flag_tokens'] in [similarity]"),
    (lambda s: s.update(noise_threshold=0), "noise_threshold must be a whole number of at least 1, got 0"),
    (lambda s: s.update(flag_file_tokens=2.5), "flag_file_tokens must be a whole number of at least 1, got 2.5"),
    (lambda s: s.update(guarantee_threshold=10), "guarantee_threshold (10) must be at least noise_threshold (25)"),
])
def test_config_section_is_checked(tmp_path, edit, message):
    """Is a [similarity] section with a missing, unknown or out-of-range key refused, naming the key?"""
    from nnkit.course.config import CONFIG_PATH

    text = CONFIG_PATH.read_text()
    head, _, _ = text.partition("[similarity]")
    section = {"noise_threshold": 25, "guarantee_threshold": 25, "flag_pair_tokens": 800, "flag_file_tokens": 400}
    edit(section)
    path = tmp_path / "config.toml"
    path.write_text(head + "[similarity]\n" + "".join(f"{k} = {v}\n" for k, v in section.items()))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_shipped_config_has_the_section():
    """Does the assignment's config.toml read into a SimilarityConfig whose thresholds make sense?"""
    s = load_config().similarity
    assert s.guarantee_threshold >= s.noise_threshold >= 1
    assert s.flag_pair_tokens >= s.flag_file_tokens >= 1


# ---- scale ---------------------------------------------------------------------

@pytest.mark.slow
def test_300_submissions(tmp_path):
    """Does a class of 300 (294 students drawn freely, the copies and the template-only work) go through, are
    the copies still flagged, and how long does it take with 2 jobs? The time is printed, not asserted."""
    klass = generate_class(tmp_path / "class", honest=294, seed=3, limits=None)
    assert len(list(klass.folder.iterdir())) == 294 + len(klass.copies) + len(klass.template_only)
    start = time.monotonic()
    result = similarity_report(klass.folder, tmp_path / "out", settings=SETTINGS, jobs=2, max_bytes=1_000_000)
    seconds = time.monotonic() - start
    assert len(result.submissions) == len(list(klass.folder.iterdir())) and not result.skipped
    flagged = {(p.a, p.b) for p in result.flagged}
    assert all(tuple(sorted((c, s))) in flagged for c, s in klass.copies.items())
    limits, free = HonestLimits(), []
    for a, b in flagged:  # students drawn freely may write much the same way; a flag needs more than the limits
        if a in klass.students and b in klass.students:
            same = same_alternatives(klass.students[a], klass.students[b])
            assert len(same) > limits.functions or len(same & set(LONG)) > limits.long, (a, b, same)
            free.append(len(same & set(LONG)))
    print(f"\n{len(result.submissions)} submissions, {result.pair_count} pairs, {len(flagged)} flagged "
          f"({len(free)} pairs of freely drawn students, writing {min(free, default=0)} or more of the long "
          f"functions the same way): {seconds:.1f} s with 2 jobs")
