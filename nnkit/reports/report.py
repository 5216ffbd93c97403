"""The instructor's class report: ``report.html`` and its charts, from the
results of one grading run.

What an instructor looks at first comes first: the isolation tier, what
changed since an earlier grading run (when compared, nnkit.reports.compare), summary
numbers, the score histogram, the status counts, the common mistakes (each
cause of the catalogue by the submissions that hit it, each contract function
by the submissions that got it fully right; also written to mistakes.csv,
nnkit.reports.mistakes) and the tests most students fail; then the pass rate of every
test, points per part, the slowest submissions and one row per submission
with links to its files.

The charts are PNG files next to report.html, drawn on matplotlib's Agg
canvas without pyplot (no display, no global figure registry to leak). The
page has inline CSS and no scripts. Every string that may come from a
submission (names, statuses, test output) goes through ``html.escape``; chart
labels are cleaned so that a ``$`` in a name cannot start mathtext.
"""
from __future__ import annotations

import html
import math
import statistics
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from nnkit.reports import mistakes as class_mistakes
from nnkit.course.causes import CatalogueError, catalogue
from nnkit.course.contract import PARTS
from nnkit.grading.results import SubmissionResult
from nnkit.sandbox.backend import TIER_DESCRIPTIONS, UNCONFINED_ADVICE

CHARTS = {
    "scores": "report-scores.png",
    "pass_rate": "report-pass-rate.png",
    "parts": "report-parts.png",
    "slowest": "report-slowest.png",
}
"""Chart -> file name next to report.html (stale ones are removed on each run)."""

PART_COLORS = dict(zip(PARTS, ("#4c72b0", "#dd8452", "#55a868", "#c44e52")))
OTHER_COLOR = "#8c8c8c"
SLOWEST = 10
"""Submissions shown in the slowest table and chart."""
HARDEST = 15
"""Tests shown in the "tests most students fail" table."""
NAMES_SHOWN = 20
"""Submission names listed per cause or function before "and N more" (mistakes.csv has them all)."""
STRONGEST_TIER = TIER_DESCRIPTIONS["bwrap"]


@dataclass
class TestStats:
    """One test across all submissions."""

    __test__ = False  # not a pytest test class

    part: str
    suite: str
    name: str
    max_score: float
    passed: int = 0
    total: int = 0
    kinds: Counter = field(default_factory=Counter)
    """Failure kind -> count (timeout, crash, failed, ...)."""
    outputs: Counter = field(default_factory=Counter)
    """First line of the failure message -> count."""

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


def tally_tests(results: list[SubmissionResult]) -> list[TestStats]:
    """Per-test counts, in the collection order of the first submission that has each test."""
    stats: dict[tuple[str, str, str], TestStats] = {}
    for r in results:
        for t in r.tests:
            key = (t.part, t.suite, t.name)
            s = stats.get(key)
            if s is None:
                s = stats[key] = TestStats(t.part, t.suite, t.name, t.max_score)
            s.total += 1
            if t.passed:
                s.passed += 1
            else:
                s.kinds[t.kind] += 1
                s.outputs[_first_line(t.output)] += 1
    return list(stats.values())


def tier_statement(results: list[SubmissionResult]) -> str:
    """"Student code ran in: <tier>." (every tier, with counts, when they differ)."""
    tiers = Counter(r.tier or "not recorded" for r in results)
    if not tiers:
        return "Student code ran in: nothing ran (no submissions)."
    if len(tiers) == 1:
        return f"Student code ran in: {next(iter(tiers))}."
    parts = [f"{tier} ({_plural(n, 'submission')})" for tier, n in tiers.most_common()]
    return "Student code ran in: " + "; ".join(parts) + ". The tiers differ between submissions."


def write_report(results: list[SubmissionResult], out: Path, comparison=None) -> Path:
    """Write ``out/report.html``, its PNG charts and ``out/mistakes.csv``; return the path of the page.

    ``comparison``: what changed since an earlier run (nnkit.reports.compare.Comparison), shown first.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in CHARTS.values():
        (out / name).unlink(missing_ok=True)
    results = sorted(results, key=lambda r: r.submission)
    tally = class_mistakes.tally(results, _catalogue())
    class_mistakes.write_csv(tally, out / "mistakes.csv")
    changes = ""
    if comparison is not None:
        from nnkit.reports.compare import changes_html

        changes = changes_html(comparison) + "\n"
    if results:
        body = _full_report(results, out, tally, changes)
    else:
        body = (_tier_html(results) + changes
                + f"<p class='empty'>Nothing to report: no submissions were graded into {_e(out)}.</p>")
    path = out / "report.html"
    path.write_text(_page(body), encoding="utf-8", errors="replace")
    return path


# ---- the page ---------------------------------------------------------------

def _full_report(results: list[SubmissionResult], out: Path, tally, changes: str = "") -> str:
    stats = tally_tests(results)
    sections = [
        _tier_html(results) + ("\n" + changes.rstrip("\n") if changes else ""),
        _summary_html(results),
        _similarity_html(out),
        _chart_section("Scores", _scores_chart(results, out / CHARTS["scores"]), "Histogram of scores"),
        _status_html(results),
        _mistakes_html(tally),
        _hardest_html(stats),
    ]
    if stats:
        sections.append(_chart_section("Pass rate of every test",
                                       _pass_rate_chart(stats, out / CHARTS["pass_rate"]),
                                       "Pass rate of each test, grouped by part"))
        sections.append(_parts_html(results, out / CHARTS["parts"]))
    sections.append(_slowest_html(results, out / CHARTS["slowest"]))
    sections.append(_submissions_html(results, out))
    return "\n".join(sections)


def _tier_html(results: list[SubmissionResult]) -> str:
    tiers = {r.tier for r in results}
    weak = len(tiers) > 1 or (tiers and tiers != {STRONGEST_TIER})
    return _unconfined_html(results) + f"<p class='tier{' warn' if weak else ''}'>{_e(tier_statement(results))}</p>"


def _unconfined_html(results: list[SubmissionResult]) -> str:
    """The banner above everything when any submission ran in the weakest configuration."""
    warned = [r for r in results if r.tier_warning]
    if not warned:
        return ""
    count = "every submission" if len(warned) == len(results) else _plural(len(warned), "submission")
    return (f"<p class='banner' role='alert'><strong>{_e(warned[0].tier_warning)}</strong> "
            f"This concerns {_e(count)}. {_e(UNCONFINED_ADVICE)}</p>\n")


def _summary_html(results: list[SubmissionResult]) -> str:
    scores = [r.score for r in results]
    top = max(r.max_score for r in results)
    full = sum(1 for r in results if r.max_score > 0 and math.isclose(r.score, r.max_score))
    zero = sum(1 for s in scores if s == 0)
    clean = sum(1 for r in results if r.status == "ok")
    rows = [
        ("Submissions", f"{len(results)}"),
        ("Mean score", f"{statistics.fmean(scores):.1f} / {top:g}"),
        ("Median score", f"{statistics.median(scores):g} / {top:g}"),
        ("Full marks", f"{full}"),
        ("Zero", f"{zero}"),
        ("Graded cleanly (status ok)", f"{clean}"),
        ("Score range", f"{min(scores):g} to {max(scores):g}"),
        ("Grading time, sum over submissions", f"{sum(r.seconds for r in results):.0f} s"),
    ]
    cells = "".join(f"<div class='num'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in rows)
    return f"<h2>Summary</h2>\n<div class='summary'>{cells}</div>"


def _similarity_html(out: Path) -> str:
    """A link to the similarity report (``make similarity``) when ``out`` has one."""
    from nnkit.reports.similarity import HTML_NAME, summary_line

    summary = summary_line(out)
    if summary is None:
        return ""
    return f"<p class='similarity'><a href='{HTML_NAME}'>Similarity report</a>: {_e(summary)}.</p>"


def _chart_section(title: str, image: str, alt: str) -> str:
    return f"<h2>{_e(title)}</h2>\n<img src='{_e(quote(image))}' alt='{_e(alt)}'>"


def _status_html(results: list[SubmissionResult]) -> str:
    groups: dict[str, list[str]] = {}
    for r in results:
        groups.setdefault(r.status, []).append(r.submission)
    order = sorted(groups, key=lambda s: (s != "ok", -len(groups[s]), s))
    rows = [[_e(s), str(len(groups[s])), ", ".join(_e(n) for n in groups[s])] for s in order]
    return "<h2>Status</h2>\n" + _table(["Status", "Count", "Submissions"], rows,
                                         row_classes=["" if s == "ok" else "bad" for s in order])


def _hardest_html(stats: list[TestStats]) -> str:
    failing = sorted((s for s in stats if s.passed < s.total),
                     key=lambda s: (s.pass_rate, -s.max_score, s.part, s.name))
    head = "<h2>Tests most students fail</h2>\n"
    if not stats:
        return head + "<p>No test results were recorded.</p>"
    if not failing:
        return head + "<p>Every test passed in every submission.</p>"
    most = sum(1 for s in stats if s.pass_rate < 0.5)
    lead = (f"<p>{_plural(most, 'test')} failed in more than half of the submissions. "
            f"Lowest pass rate first{' (the first ' + str(HARDEST) + ')' if len(failing) > HARDEST else ''}.</p>")
    rows = []
    for s in failing[:HARDEST]:
        kinds = ", ".join(f"{_e(kind)} {n}" for kind, n in s.kinds.most_common())
        message, count = s.outputs.most_common(1)[0]
        rows.append([_e(s.name), _e(s.part), _e(s.suite), f"{s.max_score:g}",
                     f"{s.passed} / {s.total} ({100 * s.pass_rate:.0f}%)", kinds,
                     f"<code>{_e(_shorten(message, 200))}</code> ({count}&times;)"])
    return head + lead + _table(["Test", "Part", "Suite", "Points", "Passed", "Failures by kind",
                                 "Most common message"], rows)


def _mistakes_html(tally) -> str:
    head = "<h2>Common mistakes</h2>\n"
    hit = [c for c in tally.causes if c.submissions]
    if hit:
        rows = [[f"<code>{_e(c.cause.id)}</code>", f"{len(c.submissions)} / {tally.total}", str(c.tests),
                 _e(c.cause.text), _names(c.submissions)] for c in hit]
        body = ("<p>The likely causes the feedback named, by the number of submissions that hit each "
                "(also in mistakes.csv).</p>\n"
                + _table(["Cause", "Submissions", "Failed tests", "What students read", "Who"], rows))
    else:
        body = "<p>No feedback named a likely cause.</p>"
    unused = [c.cause.id for c in tally.causes if not c.submissions]
    if unused:
        body += f"\n<p>Named in no submission's feedback: {', '.join(f'<code>{_e(i)}</code>' for i in unused)}.</p>"
    if tally.functions:
        rows = [[f"<code>{_e(f.function)}</code>", _e(f.part), str(f.tests),
                 f"{len(f.fully_right)} / {tally.total}", _names(f.not_right)] for f in tally.functions]
        body += ("\n<p>Each contract function by the submissions that passed every test of it, fewest first.</p>\n"
                 + _table(["Function", "Part", "Tests", "Fully right", "Not fully right"], rows,
                          row_classes=["bad" if f.not_right else "" for f in tally.functions]))
    return head + body


def _names(names: list[str]) -> str:
    shown = ", ".join(_e(n) for n in names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def _catalogue() -> dict:
    try:
        return catalogue()
    except CatalogueError:
        return {}


def _parts_html(results: list[SubmissionResult], path: Path) -> str:
    parts = _parts(results)
    rows = []
    for part in parts:
        points = [r.part_score(part) for r in results]
        top = max(r.part_max(part) for r in results)
        full = sum(1 for r in results if r.part_max(part) > 0 and math.isclose(r.part_score(part), r.part_max(part)))
        rows.append([_e(part), f"{top:g}", f"{statistics.fmean(points):.1f}",
                     f"{statistics.median(points):g}", str(full)])
    image = _parts_chart(results, parts, path)
    return (_chart_section("Points per part", image, "Box plot of the share of each part's points")
            + _table(["Part", "Max", "Mean", "Median", "Full marks"], rows))


def _slowest_html(results: list[SubmissionResult], path: Path) -> str:
    slow = sorted(results, key=lambda r: -r.seconds)[:SLOWEST]
    rows = [[_e(r.submission), f"{r.seconds:.1f}", f"{r.score:g} / {r.max_score:g}", _e(r.status)] for r in slow]
    return (_chart_section("Slowest submissions", _slowest_chart(slow, path), "Grading time of the slowest submissions")
            + _table(["Submission", "Seconds", "Score", "Status"], rows,
                     row_classes=["" if r.status == "ok" else "bad" for r in slow]))


def _submissions_html(results: list[SubmissionResult], out: Path) -> str:
    parts = _parts(results)
    mixed = len({r.tier for r in results}) > 1
    header = ["Submission", "Score", *parts, "Status", "Seconds", "Files"] + (["Tier"] if mixed else [])
    rows, classes = [], []
    for r in results:
        row = [_e(r.submission), f"{r.score:g} / {r.max_score:g}",
               *(f"{r.part_score(p):g} / {r.part_max(p):g}" for p in parts),
               _e(r.status), f"{r.seconds:.1f}", _file_links(r.submission, out)]
        rows.append(row + ([_e(r.tier)] if mixed else []))
        classes.append("" if r.status == "ok" else "bad")
    return "<h2>All submissions</h2>\n" + _table(header, rows, row_classes=classes)


def _file_links(name: str, out: Path) -> str:
    folder = quote(name, safe="", errors="surrogateescape")
    links = [f"<a href='{_e(folder)}/{f}'>{f}</a>" for f in ("feedback.md", "results.json")
             if (out / name / f).is_file()]
    return " ".join(links) or "&mdash;"


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """A table from cells that are already HTML (escape data before calling)."""
    row_classes = row_classes or [""] * len(rows)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "\n".join(f"<tr class='{c}'>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                     for row, c in zip(rows, row_classes))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #666; margin-top: 0; }
.tier { font-size: 1.1em; padding: 0.6em 0.8em; background: #eef5ee; border-left: 4px solid #55a868; }
.tier.warn { background: #fff4e0; border-left-color: #dd8452; }
.banner { font-size: 1.1em; padding: 0.6em 0.8em; background: #fde2e1; border: 2px solid #c44e52; }
.summary { display: flex; flex-wrap: wrap; gap: 0.8em; }
.num { background: #f4f6fa; padding: 0.6em 1em; border-radius: 4px; min-width: 8em; }
.num b { display: block; font-size: 1.5em; } .num span { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f6fa; } tr.bad td { background: #fff7ec; }
td code { white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.empty { font-size: 1.2em; }
"""


def _page(body: str) -> str:
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>Class report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>Class report</h1>\n<p class='meta'>Written {when}.</p>\n{body}\n</body>\n</html>\n")


# ---- charts -----------------------------------------------------------------

def _figure(width: float, height: float, layout: str | None = "constrained"):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def _save(fig, path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs in a submission's name are not worth a warning
        fig.savefig(path)
    fig.clear()
    return path.name


def _scores_chart(results: list[SubmissionResult], path: Path) -> str:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    scores = [r.score for r in results]
    top = max(r.max_score for r in results)
    edges = np.linspace(0, top, (20 if top >= 20 else max(1, math.ceil(top))) + 1) if top > 0 else [0, 1]
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    ax.hist(scores, bins=edges, color="#4c72b0", edgecolor="white")
    ax.axvline(top, color="#c44e52", linestyle="--", linewidth=2, label=f"max score {top:g}")
    ax.axvline(statistics.median(scores), color="#333", linestyle=":", label=f"median {statistics.median(scores):g}")
    ax.set_xlim(-0.02 * max(top, 1), 1.04 * max(top, 1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("score (points)")
    ax.set_ylabel("submissions")
    ax.legend(loc="best")
    return _save(fig, path)


def _pass_rate_chart(stats: list[TestStats], path: Path) -> str:
    """One bar per test, grouped by part and sorted by pass rate within it; hidden tests hatched.

    The chart with the most text, so it is laid out by hand: constrained
    layout would draw it twice, and per-bar labels cost more than the bars.
    """
    from matplotlib.patches import Patch

    order = {p: i for i, p in enumerate(PARTS)}
    rows = sorted(stats, key=lambda s: (order.get(s.part, len(PARTS)), s.part, s.pass_rate, s.name))
    labels = [f"{_label(s.name, 48, middle=True)} {100 * s.pass_rate:3.0f}%" for s in rows]
    height = 1.0 + 0.19 * len(rows)
    fig = _figure(9, height, layout=None)
    left = min(0.6, (0.3 + 0.0625 * max(len(t) for t in labels)) / 9)  # 7 pt monospace: 0.06 in a character
    fig.subplots_adjust(left=left, right=0.98, top=1 - 0.55 / height, bottom=0.45 / height)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(rows)), [100 * s.pass_rate for s in rows], height=0.75, edgecolor="white",
                   color=[PART_COLORS.get(s.part, OTHER_COLOR) for s in rows])
    for bar, s in zip(bars, rows):
        if s.suite == "hidden":
            bar.set_alpha(0.55)
            bar.set_hatch("///")
    for i in range(1, len(rows)):
        if rows[i].part != rows[i - 1].part:
            ax.axhline(i - 0.5, color="#999", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7, family="monospace")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.grid(axis="x", color="#ddd")
    ax.set_axisbelow(True)
    ax.set_xlabel("submissions passing (%)")
    parts = list(dict.fromkeys(s.part for s in rows))
    handles = [Patch(color=PART_COLORS.get(p, OTHER_COLOR), label=_label(p)) for p in parts]
    handles += [Patch(facecolor="#bbb", label="public suite"),
                Patch(facecolor="#bbb", alpha=0.55, hatch="///", edgecolor="white", label="hidden suite")]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    return _save(fig, path)


def _parts_chart(results: list[SubmissionResult], parts: list[str], path: Path) -> str:
    import numpy as np
    from matplotlib.lines import Line2D

    data = [[100 * r.part_score(p) / r.part_max(p) for r in results if r.part_max(p) > 0] for p in parts]
    fig = _figure(7.5, 3.4)
    ax = fig.add_subplot()
    box = ax.boxplot(data, showmeans=True, showfliers=False, patch_artist=True, widths=0.5)
    for patch, part in zip(box["boxes"], parts):
        patch.set_facecolor(PART_COLORS.get(part, OTHER_COLOR))
        patch.set_alpha(0.45)
    jitter = np.random.default_rng(0)  # fixed: the same results draw the same chart
    for i, values in enumerate(data, start=1):
        ax.scatter(i + jitter.uniform(-0.12, 0.12, len(values)), values, s=10, color="#333", alpha=0.4, zorder=3)
    tops = [max(r.part_max(p) for r in results) for p in parts]
    ax.set_xticks(range(1, len(parts) + 1), [f"{_label(p)}\n(max {t:g} points)" for p, t in zip(parts, tops)])
    ax.set_ylim(-5, 105)
    ax.set_ylabel("share of the part's points (%)")
    ax.legend(handles=[Line2D([], [], color=box["medians"][0].get_color(), label="median"),
                       Line2D([], [], linestyle="", marker="^", color=box["means"][0].get_color(), label="mean"),
                       Line2D([], [], linestyle="", marker="o", markersize=4, color="#333", alpha=0.4,
                              label="one submission")],
              loc="upper center", bbox_to_anchor=(0.5, 1.13), ncol=3, fontsize=8, frameon=False)
    return _save(fig, path)


def _slowest_chart(slow: list[SubmissionResult], path: Path) -> str:
    fig = _figure(7.5, 0.8 + 0.3 * len(slow))
    ax = fig.add_subplot()
    seconds = [r.seconds for r in slow]
    ax.barh(range(len(slow)), seconds, color=["#4c72b0" if r.status == "ok" else "#dd8452" for r in slow])
    for i, s in enumerate(seconds):
        ax.text(s, i, f" {s:.1f} s", va="center", fontsize=8)
    ax.set_yticks(range(len(slow)), [_label(r.submission, 40) for r in slow], fontsize=8)
    ax.set_ylim(len(slow) - 0.5, -0.5)
    ax.set_xlim(0, 1.15 * max(max(seconds), 1e-3))
    ax.set_xlabel("seconds to grade (orange: status not ok)")
    return _save(fig, path)


# ---- small helpers ----------------------------------------------------------

def _parts(results: list[SubmissionResult]) -> list[str]:
    """The course's parts, then any other part a test names."""
    extra = sorted({t.part for r in results for t in r.tests} - set(PARTS))
    return [*PARTS, *extra]


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _label(text, width: int = 30, *, middle: bool = False) -> str:
    """Text safe for a chart: one line, valid Unicode, at most ``width`` characters, no mathtext."""
    text = " ".join(str(text).encode("utf-8", "replace").decode("utf-8").split())
    return _shorten(text, width, middle=middle).replace("$", r"\$")


def _shorten(text: str, width: int, *, middle: bool = False) -> str:
    """At most ``width`` characters; ``middle`` keeps the end too (a test's parameters)."""
    if len(text) <= width:
        return text
    if middle:
        tail = (width - 1) // 2
        return text[: width - 1 - tail] + "…" + text[-tail:]
    return text[: width - 1] + "…"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
