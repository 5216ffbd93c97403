"""The class similarity report: which pairs of submissions share unusual code.

For academic integrity: ``python -m nnkit similarity SUBMISSIONS --out OUT``
writes ``OUT/similarity.csv`` (every pair that shares code beyond the
template, with per-file scores) and ``OUT/similarity.html`` (the pairs ranked,
and for each flagged pair its files side by side with the shared fragments
marked). A flag is evidence to look at, never a verdict.

How a pair is scored. copydetect (pinned in pyproject.toml) tokenises each
graded file with Pygments into normalised code: every name becomes ``V`` and
every string ``S``; whitespace and comments are dropped. So renamed variables,
reordered functions and rewritten comments still match. It fingerprints every
run of ``noise_threshold`` tokens (winnowing keeps one in each window of
``guarantee_threshold - noise_threshold + 1``) and drops the fingerprints that
the kit's own code also has (the released template and everything else the
kit gives students). Two copies of the same graded file share the tokens
covered by their common fingerprints; tokens on a line that the template
already has (signatures, docstrings) never count. A file's score is the
smaller of the two counts, a pair's score the sum over the four files. Only
files of the same name are compared.

Reproducibility: copydetect hashes runs with Python's ``hash()``, which is
salted per process, so the fingerprints are computed in worker processes
started with ``PYTHONHASHSEED=0`` (``min(jobs, 4)`` of them, each taking
whole graded files). copydetect compares one pair of files at a time; here
each file is compared with all the others at once (``_HashIndex``), with the
same result, so that 300 submissions take seconds rather than minutes.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nnkit.course.config import ROOT, ConfigError, SimilarityConfig, load_config
from nnkit.grading.stage import GRADED_FILES
from nnkit.grading.submission import SubmissionError, collect, submission_name
from nnkit.course.config import ASSIGNMENT, TEMPLATE_ROOT, TESTS_DIR

HASH_SEED = "0"
"""PYTHONHASHSEED of the processes that fingerprint: the same files always score the same."""

BOILERPLATE = (TEMPLATE_ROOT / "scratchnet", TESTS_DIR / "public")
"""Folders of code every student receives (all their .py files are boilerplate)."""

TEMPLATE_DIR = TEMPLATE_ROOT / "scratchnet"
"""Where the template of each graded file is; its lines never count as shared."""

STYLESHEET = Path(__file__).resolve().parent / "similarity.css"
"""The page's stylesheet, copied next to similarity.html (the page loads nothing from the network)."""

CSV_NAME, HTML_NAME = "similarity.csv", "similarity.html"
SHOWN_BELOW = 10
"""Unflagged pairs listed under the flagged ones, for scale."""
DETAILED = 50
"""Flagged pairs shown side by side (the CSV has them all)."""
CONTEXT_LINES = 3
"""Unshared lines kept around each shared fragment in the side-by-side view."""


class SimilarityError(RuntimeError):
    """The similarity report could not be computed (a failure of the kit, not of a submission)."""


@dataclass(frozen=True)
class FileMatch:
    """What two submissions' copies of one graded file share beyond the template."""

    file: str
    """Graded file name, e.g. "train.py"."""
    tokens: int
    """Tokens of normalised code both copies share, outside template lines (the smaller of the two counts)."""
    lines: int
    """Lines holding shared code (the smaller of the two counts)."""
    fragments_a: tuple[tuple[int, int], ...] = ()
    """Character ranges (start, end) of the first submission's file that are shared."""
    fragments_b: tuple[tuple[int, int], ...] = ()
    """The same for the second submission's file."""


@dataclass
class PairScore:
    """Two submissions and what they share, file by file."""

    a: str
    b: str
    """The two submission names, in sorted order."""
    files: dict[str, FileMatch] = field(default_factory=dict)
    """Graded file name -> what it shares (absent: nothing)."""
    flagged: bool = False
    """Whether the pair reaches a threshold of [similarity]."""

    @property
    def tokens(self) -> int:
        """Shared tokens over the four files: the number pairs are ranked by."""
        return sum(m.tokens for m in self.files.values())

    @property
    def lines(self) -> int:
        """Shared lines over the four files."""
        return sum(m.lines for m in self.files.values())

    def file_tokens(self, name: str) -> int:
        match = self.files.get(name)
        return match.tokens if match else 0


@dataclass
class SimilarityResult:
    """The scores of one class."""

    submissions: list[str]
    """Names of the submissions compared."""
    skipped: list[tuple[str, str]]
    """(entry, reason) for each submission or file left out."""
    pairs: list[PairScore]
    """Every pair that shares anything beyond the template, most shared first."""
    settings: SimilarityConfig
    seconds: float = 0.0
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    """(submission, file) -> text, for the files of the flagged pairs (the side-by-side view)."""

    @property
    def flagged(self) -> list[PairScore]:
        return [p for p in self.pairs if p.flagged]

    @property
    def pair_count(self) -> int:
        """Pairs compared: every two submissions."""
        n = len(self.submissions)
        return n * (n - 1) // 2


# ---- collecting -------------------------------------------------------------

def collect_class(submissions: Path, dest: Path, *, max_bytes: int) -> tuple[dict[str, dict[str, Path]], list]:
    """Copy the graded files of every submission into ``dest/<index>/``, as ``make grade`` finds them.

    Returns (submission -> graded file name -> path, skipped (entry, reason) pairs).
    A submission that cannot be read, or holds no graded file, is skipped.
    """
    from nnkit.grading.runner import find_entries

    entries, skipped_names = find_entries(submissions)
    skipped = []
    for item in skipped_names:  # "name (reason)"
        name, _, reason = item.rpartition(" (")
        skipped.append((name, reason[:-1] if reason.endswith(")") else reason))
    found: dict[str, dict[str, Path]] = {}
    for i, entry in enumerate(entries):
        name = submission_name(entry)
        if name in found:
            skipped.append((entry.name, f"another submission is already named {name!r}"))
            continue
        try:
            got = collect(entry, dest / str(i), max_bytes=max_bytes)
        except (SubmissionError, OSError) as exc:
            skipped.append((entry.name, str(exc) if isinstance(exc, SubmissionError) else f"unreadable ({exc})"))
            continue
        files = {GRADED_FILES[part]: path for part, path in got.files.items() if path is not None}
        skipped += [(name, note) for note in got.notes if " refused: " in note]
        if not files:
            skipped.append((entry.name, "no graded files found"))
            continue
        found[name] = files
    return found, skipped


# ---- comparing (run in workers with a fixed hash seed) -----------------------

def compare_class(files: dict[str, dict[str, Path]], settings: SimilarityConfig, *, jobs: int = 1,
                  hash_seed: str = HASH_SEED) -> tuple[list[PairScore], list[tuple[str, str]]]:
    """Score every pair of submissions in ``min(jobs, 4)`` worker processes (each takes whole graded files).

    Returns (pairs sharing anything, most first, with the shared fragments of the
    flagged pairs that the page shows; files that could not be read).
    """
    names = sorted(files)
    per_file = {filename: [[n, str(files[n][filename])] for n in names if filename in files[n]]
                for filename in GRADED_FILES.values()}
    per_file = {filename: have for filename, have in per_file.items() if len(have) > 1}
    if not per_file:
        return [], []
    groups = _balance(per_file, max(1, min(jobs, len(per_file))))
    common = {"boilerplate": [str(p) for folder in BOILERPLATE for p in sorted(folder.glob("*.py"))],
              "noise": settings.noise_threshold, "guarantee": settings.guarantee_threshold}
    workers = [_Worker(group, hash_seed) for group in groups]
    pairs: dict[tuple[str, str], PairScore] = {}
    unreadable = []
    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        try:
            scoring = [{**common, "files": [{"file": f, "template": str(TEMPLATE_DIR / f),
                                             "submissions": per_file[f]} for f in group]} for group in groups]
            for answer in pool.map(lambda w, r: w.ask(r), workers, scoring):
                for filename, scores in answer.items():
                    have = per_file[filename]
                    unreadable += [(name, f"{filename}: {reason}") for name, reason in scores["unreadable"]]
                    for i, j, tokens, lines in scores["pairs"]:
                        a, b = have[i][0], have[j][0]
                        pairs.setdefault((a, b), PairScore(a, b)).files[filename] = FileMatch(filename, tokens, lines)
            for pair in pairs.values():
                pair.flagged = (pair.tokens >= settings.flag_pair_tokens
                                or any(m.tokens >= settings.flag_file_tokens for m in pair.files.values()))
            shown = sorted((p for p in pairs.values() if p.flagged), key=_rank)[:DETAILED]
            if shown:  # where the shared code of the pairs shown side by side is
                position = {f: {name: i for i, (name, _) in enumerate(have)} for f, have in per_file.items()}
                detail = [{"detail": {f: [[position[f][p.a], position[f][p.b]] for p in shown if f in p.files]
                                      for f in group}} for group in groups]
                for answer in pool.map(lambda w, r: w.ask(r), workers, detail):
                    for filename, fragments in answer.items():
                        have = per_file[filename]
                        for i, j, frag_i, frag_j in fragments:
                            pair = pairs[(have[i][0], have[j][0])]
                            match = pair.files[filename]
                            pair.files[filename] = FileMatch(filename, match.tokens, match.lines,
                                                             tuple(map(tuple, frag_i)), tuple(map(tuple, frag_j)))
        finally:
            for worker in workers:
                worker.close()
    return sorted(pairs.values(), key=_rank), sorted(unreadable)


def _balance(per_file: dict[str, list], n: int) -> list[list[str]]:
    """Graded files split into ``n`` groups of about the same size in bytes (largest first)."""
    size = {f: sum(Path(p).stat().st_size for _, p in have) for f, have in per_file.items()}
    groups: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for f in sorted(per_file, key=lambda f: -size[f]):
        k = load.index(min(load))
        groups[k].append(f)
        load[k] += size[f]
    return [g for g in groups if g]


def _rank(pair: PairScore):
    return -pair.tokens, pair.a, pair.b


class _Worker:
    """A process that fingerprints some graded files of the class, started with a fixed PYTHONHASHSEED.

    It answers JSON requests, one line each: first the files to score, then
    which pairs to show in detail (see ``_worker_main``).
    """

    def __init__(self, files: list[str], hash_seed: str):
        self.files = files
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "nnkit.reports.similarity"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)

    def ask(self, request: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self.proc.kill()
            self.proc.wait()
            self.stderr.seek(0)
            raise SimilarityError(f"the worker comparing {', '.join(self.files)} failed (exit status "
                                  f"{self.proc.returncode}):\n{self.stderr.read()[-2000:]}")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def _worker_main() -> None:
    """The worker's loop: a scoring request, then detail requests, one JSON line each, until stdin closes.

    Scoring: {"boilerplate": [paths], "noise", "guarantee", "files": [{"file", "template", "submissions"}]}
    -> {file: _FileComparison.scores()}. Detail: {"detail": {file: [[i, j]]}} -> {file: fragments}.
    """
    import numpy as np
    from copydetect.detector import CodeFingerprint

    comparisons = {}
    for line in sys.stdin:
        request = json.loads(line)
        if "files" in request:
            k, window = request["noise"], request["guarantee"] - request["noise"] + 1
            boilerplate = set()
            for path in request["boilerplate"]:
                boilerplate |= CodeFingerprint(path, k, 1, language="python").hashes
            boilerplate = np.array(sorted(boilerplate), dtype=np.int64)
            comparisons = {f["file"]: _FileComparison(f, k, window, boilerplate) for f in request["files"]}
            answer = {name: c.scores() for name, c in comparisons.items()}
        else:
            answer = {name: comparisons[name].fragments(wanted) for name, wanted in request["detail"].items()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class _FileComparison:
    """One graded file of every submission, fingerprinted by copydetect (in a worker)."""

    def __init__(self, request: dict, k: int, window: int, boilerplate):
        import logging

        from copydetect.detector import CodeFingerprint

        logging.getLogger().setLevel(logging.ERROR)
        self.k = k
        template = Path(request["template"]).read_text(encoding="utf-8")
        template_lines = {_squeeze(line) for line in template.splitlines()}
        self.docs, self.unreadable = [], []
        for name, path in request["submissions"]:
            try:
                fp = CodeFingerprint(path, k, window, boilerplate, language="python")
                self.docs.append(_Document(fp, template_lines))
            except UnicodeDecodeError:
                self.unreadable.append([name, "not UTF-8 text"])
                self.docs.append(None)
            except Exception as exc:  # noqa: BLE001 - one odd file must not stop the class
                self.unreadable.append([name, f"could not be compared ({type(exc).__name__}: {exc})"])
                self.docs.append(None)
        self.index = _HashIndex(self.docs)

    def scores(self) -> dict:
        """{"unreadable": [[name, reason]], "pairs": [[i, j, tokens, lines]]} for every pair i < j
        (indexes into the request's submissions) that shares anything."""
        import numpy as np

        n = len(self.docs)
        tokens = np.zeros((n, n), dtype=np.int64)
        lines = np.zeros((n, n), dtype=np.int64)
        for i, doc in enumerate(self.docs):
            if doc is not None:
                shared = self.index.shared_with(i, self.k)
                tokens[i] = shared.sum(axis=1)
                lines[i] = doc.lines(shared)
        tokens, lines = np.minimum(tokens, tokens.T), np.minimum(lines, lines.T)
        pairs = [[int(i), int(j), int(tokens[i, j]), int(lines[i, j])]
                 for i, j in zip(*np.nonzero(np.triu(tokens, 1)))]
        return {"unreadable": self.unreadable, "pairs": pairs}

    def fragments(self, wanted: list[list[int]]) -> list:
        """[[i, j, fragments_i, fragments_j]]: the character ranges of the code each pair shares."""
        out = []
        for i, j in wanted:
            a, b = self.docs[i], self.docs[j]
            out.append([i, j, a.fragments(self.index.shared_with(i, self.k)[j]),
                        b.fragments(self.index.shared_with(j, self.k)[i])])
        return out


class _Document:
    """One fingerprinted file: its fingerprints' positions, and which tokens the student wrote."""

    def __init__(self, fp, template_lines: set[str]):
        import numpy as np

        self.raw, self.size = fp.raw_code, len(fp.filtered_code)
        positions = [(int(h), i) for h, idx in fp.hash_idx.items() for i in idx]
        self.hashes = np.array([h for h, _ in positions], dtype=np.int64)
        """Hash of each fingerprint kept (boilerplate removed), in the order of ``starts``."""
        self.starts = np.array([i for _, i in positions], dtype=np.int64)
        """Where each fingerprint's run starts in the normalised code."""
        where = np.arange(self.size)
        offsets = fp.offsets
        if len(offsets):  # copydetect's own mapping from normalised code back to the text
            where = where + offsets[:, 1][np.clip(np.searchsorted(offsets[:, 0], where), 0, len(offsets) - 1)]
        self.start = where
        """Character offset of each token in the text."""
        self.end = np.append(where[1:], len(self.raw))
        text_lines = self.raw.splitlines(keepends=True)
        line_starts = np.cumsum([0] + [len(line) for line in text_lines])[:-1]
        self.line = np.clip(np.searchsorted(line_starts, where, side="right") - 1, 0, None)
        """Line (0-based) of each token."""
        kit = np.array([_squeeze(line) in template_lines for line in text_lines] + [True])
        self.mine = ~kit[np.minimum(self.line, len(text_lines))]
        """Whether each token sits on a line the template does not have."""
        self._line_groups = np.concatenate([[0], np.flatnonzero(np.diff(self.line)) + 1]) if self.size else None

    def lines(self, shared):
        """Lines holding shared tokens, per row of ``shared`` (rows x tokens, bool)."""
        import numpy as np

        if not self.size:
            return np.zeros(shared.shape[0], dtype=np.int64)
        return np.maximum.reduceat(shared, self._line_groups, axis=1).sum(axis=1)

    def fragments(self, shared) -> list[list[int]]:
        """Runs of shared tokens as [start, end) character ranges, trailing whitespace left out."""
        import numpy as np

        padded = np.diff(np.concatenate([[0], shared.astype(np.int8), [0]]))
        out = []
        for s, e in zip(np.flatnonzero(padded == 1), np.flatnonzero(padded == -1)):
            begin, stop = int(self.start[s]), int(self.end[e - 1])
            while stop > begin and self.raw[stop - 1].isspace():
                stop -= 1
            out.append([begin, stop])
        return out


def _squeeze(line: str) -> str:
    """A line without its whitespace: respacing a template line keeps it a template line."""
    return "".join(line.split())


class _HashIndex:
    """Which documents hold each fingerprint: compares one document with all the others at once."""

    def __init__(self, docs: list):
        import numpy as np

        self.docs = docs
        self.n = len(docs)
        per_doc = [np.unique(d.hashes) if d is not None else np.zeros(0, dtype=np.int64) for d in docs]
        owners = np.concatenate([np.full(len(h), i) for i, h in enumerate(per_doc)]) if per_doc else np.zeros(0)
        hashes = np.concatenate(per_doc) if per_doc else np.zeros(0, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        self.sorted_hashes, self.owners = hashes[order], owners[order].astype(np.int64)

    def shared_with(self, i: int, k: int):
        """(documents x tokens of document i), bool: tokens of i covered by a run it shares with that
        document, on lines the student wrote; i's own row is all False."""
        import numpy as np

        doc = self.docs[i]
        lo = np.searchsorted(self.sorted_hashes, doc.hashes, side="left")
        hi = np.searchsorted(self.sorted_hashes, doc.hashes, side="right")
        counts = hi - lo
        rows = np.repeat(np.arange(len(doc.hashes)), counts)
        flat = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        other = self.owners[flat]
        keep = other != i
        rows, other = rows[keep], other[keep]
        edges = np.zeros((self.n, doc.size + 1), dtype=np.int32)
        np.add.at(edges, (other, doc.starts[rows]), 1)
        np.add.at(edges, (other, np.minimum(doc.starts[rows] + k, doc.size)), -1)
        return (np.cumsum(edges[:, :doc.size], axis=1) > 0) & doc.mine


# ---- the whole run ----------------------------------------------------------

def similarity_report(submissions: Path, out: Path, *, settings: SimilarityConfig | None = None,
                      jobs: int = 1, max_bytes: int | None = None) -> SimilarityResult:
    """Compare every submission of ``submissions`` and write similarity.csv and similarity.html into ``out``."""
    start = time.monotonic()
    config = None if settings is not None and max_bytes is not None else load_config()
    settings = settings or config.similarity
    max_bytes = max_bytes if max_bytes is not None else config.grading.max_file_bytes
    with tempfile.TemporaryDirectory(prefix="nnkit-similarity-") as tmp:
        files, skipped = collect_class(Path(submissions), Path(tmp), max_bytes=max_bytes)
        pairs, unreadable = compare_class(files, settings, jobs=jobs)
        result = SimilarityResult(submissions=sorted(files), skipped=skipped + unreadable, pairs=pairs,
                                  settings=settings)
        for pair in result.flagged[:DETAILED]:
            for name in (pair.a, pair.b):
                for filename, path in files[name].items():
                    result.sources[(name, filename)] = path.read_text(encoding="utf-8", errors="replace")
    result.seconds = time.monotonic() - start
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result, out / CSV_NAME)
    write_html(result, out / HTML_NAME)
    return result


def write_csv(result: SimilarityResult, path: Path) -> Path:
    """One row per pair that shares anything, most shared first."""
    parts = {filename: part for part, filename in GRADED_FILES.items()}
    header = ["rank", "submission_a", "submission_b", "flagged", "shared_tokens", "shared_lines"]
    for part in parts.values():
        header += [f"{part}_tokens", f"{part}_lines"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for rank, pair in enumerate(result.pairs, start=1):
            row = [rank, pair.a, pair.b, "yes" if pair.flagged else "no", pair.tokens, pair.lines]
            for filename in parts:
                match = pair.files.get(filename)
                row += [match.tokens, match.lines] if match else [0, 0]
            writer.writerow(row)
    return path


def summary_line(out: Path) -> str | None:
    """One line for the class report ("3 pairs of submissions flagged ..."), or None without a similarity report."""
    if not (Path(out) / HTML_NAME).is_file():
        return None
    try:
        with open(Path(out) / CSV_NAME, newline="", encoding="utf-8") as f:
            flags = [row["flagged"] for row in csv.DictReader(f)]
    except (OSError, KeyError, csv.Error):
        return "the pair scores (similarity.csv) could not be read"
    flagged = flags.count("yes")
    return (f"{flagged} pair{'' if flagged == 1 else 's'} of submissions flagged for a closer look "
            f"({len(flags)} share some code beyond the template)")


# ---- the page -------------------------------------------------------------------

def write_html(result: SimilarityResult, path: Path) -> Path:
    """The page and its stylesheet (copied next to it; the page loads nothing else)."""
    shutil.copyfile(STYLESHEET, path.parent / STYLESHEET.name)
    s = result.settings
    flagged = result.flagged
    shown = flagged + [p for p in result.pairs if not p.flagged][:SHOWN_BELOW]
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [
        f"<h1>Similarity report</h1>\n<p class='meta'>Written {when} in {result.seconds:.1f} s. "
        "Scores by copydetect (Pygments tokens; names, strings, comments and whitespace do not matter).</p>",
        "<p class='read'>A flag is evidence to look at, not a verdict. Read the marked code of both files side "
        "by side. Shared code weighs when it is unusual: the same helper functions, the same order of "
        "statements, the same odd constant or the same mistake. Short standard lines, which honest students "
        "write alike, weigh little. Hear the students before drawing any conclusion.</p>",
        _summary(result),
        _settings(s),
        _skipped(result.skipped),
        "<h2>Pairs, most shared code first</h2>",
        _pairs_table(shown, flagged, result),
    ]
    if flagged:
        body.append("<h2>Flagged pairs side by side</h2>")
        if len(flagged) > DETAILED:
            body.append(f"<p>The first {DETAILED} of {len(flagged)}; {CSV_NAME} lists them all.</p>")
        body += [_pair_detail(rank, pair, result) for rank, pair in enumerate(flagged[:DETAILED], start=1)]
    page = ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>Similarity report</title>\n"
            f"<link rel='stylesheet' href='{STYLESHEET.name}'>\n</head>\n<body>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")
    path.write_text(page, encoding="utf-8", errors="replace")
    return path


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _summary(result: SimilarityResult) -> str:
    rows = [("Submissions compared", len(result.submissions)), ("Pairs compared", result.pair_count),
            ("Pairs sharing code beyond the template", len(result.pairs)), ("Pairs flagged", len(result.flagged)),
            ("Skipped", len(result.skipped))]
    cells = "".join(f"<div class='num'><b>{_e(f'{v:,}')}</b><span>{_e(k)}</span></div>" for k, v in rows)
    return f"<div class='summary'>{cells}</div>"


def _settings(s: SimilarityConfig) -> str:
    return (f"<p class='meta'>Flagged: at least {s.flag_pair_tokens} shared tokens over the four files, or "
            f"{s.flag_file_tokens} in one file ([similarity] in assignments/{ASSIGNMENT}/config.toml). "
            f"Shared runs are at least {s.noise_threshold} tokens long; runs of {s.guarantee_threshold} are "
            "always found. The template and the kit's other files are boilerplate, and lines the template "
            "already has never count.</p>")


def _skipped(skipped: list[tuple[str, str]]) -> str:
    if not skipped:
        return ""
    items = "".join(f"<li><b>{_e(name)}</b>: {_e(reason)}</li>" for name, reason in skipped)
    return f"<h2>Skipped</h2>\n<ul class='skipped'>{items}</ul>"


def _pairs_table(shown: list[PairScore], flagged: list[PairScore], result: SimilarityResult) -> str:
    if not result.pairs:
        return "<p>No two submissions share code beyond the template.</p>"
    files = list(GRADED_FILES.values())
    head = "".join(f"<th>{_e(h)}</th>" for h in ["#", "Submission", "Submission", "Shared tokens", "Lines", *files])
    rows = []
    detailed = {id(p): i for i, p in enumerate(flagged[:DETAILED], start=1)}
    for rank, pair in enumerate(shown, start=1):
        link = f"<a href='#pair-{detailed[id(pair)]}'>{rank}</a>" if id(pair) in detailed else str(rank)
        cells = [link, _e(pair.a), _e(pair.b), f"<b>{pair.tokens}</b>", str(pair.lines)]
        cells += [str(pair.file_tokens(f)) if pair.file_tokens(f) else "&middot;" for f in files]
        rows.append(f"<tr class='{'flag' if pair.flagged else ''}'>"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    note = ""
    if len(shown) > len(flagged):
        note = (f"<p class='meta'>Flagged pairs first (highlighted), then the {len(shown) - len(flagged)} "
                f"largest below the thresholds, for scale. {CSV_NAME} lists all {len(result.pairs)}.</p>")
    return note + f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _pair_detail(rank: int, pair: PairScore, result: SimilarityResult) -> str:
    from copydetect.utils import highlight_overlap
    import numpy as np

    sections = []
    for filename in GRADED_FILES.values():
        match = pair.files.get(filename)
        if match is None:
            continue
        columns = []
        for name, fragments in ((pair.a, match.fragments_a), (pair.b, match.fragments_b)):
            text = result.sources.get((name, filename), "")
            slices = np.array(fragments, dtype=np.int64).T.reshape(2, -1)
            marked, _ = highlight_overlap(text, slices, "<mark>", "</mark>", truncate=CONTEXT_LINES,
                                          escape_html=True)
            columns.append(f"<div class='code'><div class='who'>{_e(name)}/{_e(filename)}</div>"
                           f"<pre><code>{marked}</code></pre></div>")
        sections.append(f"<h4>{_e(filename)}: {match.tokens} shared tokens on {match.lines} lines</h4>"
                        f"<div class='side-by-side'>{''.join(columns)}</div>")
    return (f"<section class='pair' id='pair-{rank}'>\n<h3>{rank}. {_e(pair.a)} and {_e(pair.b)}: "
            f"{pair.tokens} shared tokens</h3>\n" + "\n".join(sections) + "\n</section>")


# ---- command line -----------------------------------------------------------------

def main(argv=None) -> int:
    """``python -m nnkit similarity SUBMISSIONS --out OUT``; exit status 0, or 2 when it could not run."""
    parser = argparse.ArgumentParser(prog="python -m nnkit similarity",
                                     description="Which pairs of submissions share unusual code (for academic "
                                                 "integrity): writes OUT/similarity.csv and OUT/similarity.html.")
    parser.add_argument("submissions", type=Path, help="folder holding one sub-folder or .zip per submission")
    parser.add_argument("--out", type=Path, default=Path("build/grades"), help="output folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes at a time")
    args = parser.parse_args(argv)
    from nnkit.grading.grade import batch_arguments_problem

    problem = batch_arguments_problem(args.submissions, args.jobs)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        result = similarity_report(args.submissions, args.out, jobs=args.jobs)
    except (ConfigError, SimilarityError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(f"compared {len(result.submissions)} submissions ({result.pair_count} pairs) in {result.seconds:.1f} s")
    if result.flagged:
        width = max(len(p.a) + len(p.b) + 5 for p in result.flagged)
        print(f"\n{'flagged pair':<{width}}  {'tokens':>6}  per file")
        for pair in result.flagged:
            per_file = ", ".join(f"{f} {pair.files[f].tokens}" for f in GRADED_FILES.values() if f in pair.files)
            print(f"{pair.a + ' and ' + pair.b:<{width}}  {pair.tokens:>6}  {per_file}")
    else:
        print("no pair reaches the thresholds of [similarity]")
    _refresh_class_report(args.out)
    print(f"\nwrote {args.out / CSV_NAME} and {args.out / HTML_NAME}")
    return 0


def _refresh_class_report(out: Path) -> None:
    """Rewrite an existing report.html in ``out``, for the same submissions as its grades.csv, so that it links
    the new similarity report (grades.csv itself is left as it is)."""
    gradebook = out / "grades.csv"
    if not (out / "report.html").is_file() or not gradebook.is_file():
        return
    from nnkit.reports.report import write_report
    from nnkit.grading.runner import load_results

    with open(gradebook, newline="", encoding="utf-8") as f:
        names = {row["submission"] for row in csv.DictReader(f) if row.get("submission")}
    write_report(load_results(out, names), out)


if __name__ == "__main__":  # a worker (see _Worker)
    _worker_main()
