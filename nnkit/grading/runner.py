"""Grading submissions: one, or a whole folder in parallel.

For each submission: collect the four files into a private folder, stage one
package per part (nnkit.grading.stage), then run the public and hidden suites in a
separate pytest process (``python -I``, plugin autoloading off, the kit's own
ini and rootdir). That process makes the assertions; the student's code runs
only in sandboxed workers it starts (nnkit.sandbox.backend). Results are assembled
here after that process and every process below it are gone. If the test
process dies mid-run (a hostile submission may kill it in the weakest tier),
the test it was running scores zero and the rest are run again, within the
submission's time budget. The parts' gates are applied to the assembled
results (nnkit.grading.gates).

A folder of submissions is graded in parallel (``grade_batch``), one output
folder per submission, each written whole or not at all; a rerun skips the
submissions whose inputs have not changed since (nnkit.grading.fingerprint), and a
batch stopped by Ctrl-C (nnkit.grading.interrupt) leaves only finished results.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.grading import fingerprint

from nnkit.grading import end_to_end
from nnkit.course.config import ASSIGNMENT, ASSIGNMENT_ENV, AssignmentConfig, ROOT
from nnkit.grading.gates import apply_gates
from nnkit.grading.interrupt import Interrupted, Stop
from nnkit.sandbox.landlock import NO_LANDLOCK_ENV
from nnkit.grading.results import CSV_COLUMNS, SubmissionResult, TestResult, write_submission
from nnkit.sandbox.backend import (BLAS_ENV, FORKING_DESCRIPTION, TIER_DESCRIPTIONS, detect_tier, forking_available,
                           kill_tree, remove_worker_files)
from nnkit.grading.stage import stage
from nnkit.grading.submission import SubmissionError, collect, submission_name

PYTEST_INI = """[pytest]
addopts = -p no:cacheprovider
console_output_style = classic
"""


@dataclass
class Grader:
    """Everything needed to grade, prepared once per batch."""

    config: AssignmentConfig
    secret: str
    reference_pkg: Path
    tests_dir: Path
    cache_dir: Path
    backend: str = "sandbox"
    """"sandbox" (always, for real grading) or "local" (in-process, overhead benchmark only)."""
    tier: str | None = None
    """Requested isolation tier (None: the strongest available)."""
    suites: tuple[str, ...] = ("public", "hidden")
    skip_files: tuple[str, ...] = ()
    """Test files left out (e.g. "test_mnist.py" for quick checks of the kit itself)."""
    secret_files: tuple[Path, ...] = ()
    """Files holding the course secret (hidden from workers in the setuid tier)."""
    manifest: list[dict] = field(default_factory=list)
    mnist: dict = field(default_factory=dict)
    forking: bool = False
    """Workers are forked from one zygote per submission (see nnkit.sandbox.backend.forking_available)."""

    def prepare(self) -> "Grader":
        """Detect the tier, cache the MNIST reference, collect the test manifest."""
        if self.backend == "sandbox":
            self.tier = detect_tier(self.tier)
            self.forking = forking_available(self.tier)
        else:
            self.tier = "none (in-process)"
        seed = end_to_end.mnist_seed(self.secret)
        self.mnist = {"seed": seed, **end_to_end.ensure(
            self.cache_dir, self.reference_pkg, self.config.mnist, seed)}
        self.manifest = collect_manifest(self)
        if self.tier == "setuid":
            self.limit_worker_access()
        return self

    def limit_worker_access(self) -> None:
        """Without namespaces, workers see the file system as ``nobody``: give that user
        exactly what a worker needs of the kit's files, and nothing more.

        Taken away from other users: the reference, the tests, the course secret, the
        MNIST files and everything in the cache (the test labels). Given: a way through
        (search, not listing) the folders above the cache's ``shared`` folder, and read
        access to that folder and its files (the training split, which workers map).
        Run at every start, so no earlier ``chmod`` (of an image build, say) can leave
        workers unable to read their inputs."""
        hidden = [self.reference_pkg, self.tests_dir, *self.secret_files, ROOT / "data",
                  *(p for p in self.cache_dir.iterdir() if p.name != "shared")]
        for path in hidden:
            if path.exists() and not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o007)
        self.cache_dir.chmod(self.cache_dir.stat().st_mode & ~0o007 | 0o001)
        shared = self.mnist.get("shared")
        if not shared:
            return
        shared = Path(shared).resolve()
        for folder in reversed(shared.parents):
            mode = folder.stat().st_mode
            if mode & 0o001 == 0:
                folder.chmod(mode | 0o001)
        shared.chmod(shared.stat().st_mode & ~0o002 | 0o005)
        for path in shared.iterdir():
            if path.is_file() and not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o002 | 0o004)

    @property
    def tier_description(self) -> str:
        description = TIER_DESCRIPTIONS.get(self.tier, self.tier or "")
        return description + (FORKING_DESCRIPTION if self.forking else "")

    def visibility(self) -> dict[str, str]:
        g = self.config.grading
        return {"public": g.public_visibility, "hidden": g.hidden_visibility}


def _pytest_command(grader: Grader, spec_path: Path, ini: Path, targets: list[str], extra=()) -> list[str]:
    kit = str(ROOT)
    # The sandbox starts before pytest is even imported: its start-up overlaps pytest's.
    start = ("from nnkit.sandbox.backend import start_early; start_early(sys.argv); "
             if grader.backend == "sandbox" and "--collect-only" not in extra else "")
    return [sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {kit!r}); {start}import pytest; "
            "sys.exit(pytest.main(sys.argv[1:]))",
            "-c", str(ini), "--rootdir", str(grader.tests_dir), "--confcutdir", str(grader.tests_dir),
            "-p", "nnkit.grading.harness", "--grading-spec", str(spec_path), "-q",
            *[f"--ignore={grader.tests_dir / suite / name}" for suite in grader.suites for name in grader.skip_files],
            *extra, *targets]


def _pytest_env() -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg", **BLAS_ENV,
           ASSIGNMENT_ENV: ASSIGNMENT}  # the test process must load the contract and causes of the assignment graded
    if NO_LANDLOCK_ENV in os.environ:  # the test process starts the workers: it must agree with the reports
        env[NO_LANDLOCK_ENV] = os.environ[NO_LANDLOCK_ENV]
    return env


def _targets(grader: Grader) -> list[str]:
    return [str(grader.tests_dir / s) for s in grader.suites if (grader.tests_dir / s).is_dir()]


def manifest_key(grader: Grader) -> str:
    """What the manifest depends on, hashed: the suites' files and which of them run, the
    assignment's folder and configuration, the kit's code, and the Python and pytest versions."""
    from nnkit.course.config import CONFIG_PATH

    kit_dir = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    parts = [fingerprint.hash_tree(grader.tests_dir, fingerprint.CACHE_NAMES),
             fingerprint.hash_tree(CONFIG_PATH.parent, fingerprint.CACHE_NAMES),
             json.dumps([list(grader.suites), list(grader.skip_files), sys.version, fingerprint._versions(),
                         dataclasses.asdict(grader.config)], sort_keys=True, default=str)]
    parts += [f"{p.relative_to(kit_dir)}:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in sorted(kit_dir.rglob("*.py"))]
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def collect_manifest(grader: Grader) -> list[dict]:
    """Every test of the suites with its part, points and suite, in collection order; kept in the
    cache folder under a key of everything it depends on (manifest_key), so a run of the autograder
    for each submission, or a batch after an unchanged one, does not collect the suites again."""
    cached = Path(grader.cache_dir) / f"manifest-{manifest_key(grader)}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    manifest = _collect_manifest(grader)
    try:
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache only costs the next run a collection
    return manifest


def _collect_manifest(grader: Grader) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="nnkit-collect-") as tmp:
        tmp = Path(tmp)
        (tmp / "pytest.ini").write_text(PYTEST_INI)
        out = tmp / "manifest.json"
        spec = tmp / "spec.json"
        spec.write_text(json.dumps({"backend": "local", "roots": {}, "manifest": str(out)}))
        cmd = _pytest_command(grader, spec, tmp / "pytest.ini", _targets(grader), ["--collect-only"])
        done = subprocess.run(cmd, capture_output=True, text=True, env=_pytest_env(), cwd=tmp)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"collecting the test suites failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def _read_records(path: Path) -> tuple[dict, list[str]]:
    records, started = {}, []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "started" in item:
                started.append(item["started"])
            else:
                records[item["nodeid"]] = item
    return records, started


def _world_readable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)


def grade_one(grader: Grader, entry: Path, out_dir: Path | None = None, cpu: int | None = None,
              stop: Stop | None = None) -> SubmissionResult:
    """Grade one submission (folder or zip); write its files into ``out_dir`` when given.

    ``cpu``: the processor its test process and workers are kept on (see grade_folder).
    ``stop``: when it is requested, the test process is killed and Interrupted raised.
    """
    started = time.monotonic()
    name = submission_name(entry)
    result = SubmissionResult(submission=name, tier=grader.tier_description)
    tmp = Path(tempfile.mkdtemp(prefix="nnkit-grade-"))
    try:
        try:
            collected = collect(entry, tmp / "files", max_bytes=grader.config.grading.max_file_bytes)
        except SubmissionError as exc:
            result.problems.append(str(exc).split(" (")[0])
            result.notes.append(f"the submission could not be read: {exc}")
            result.tests = [_not_run(t, f"not run: the submission could not be read ({exc})")
                            for t in grader.manifest]
        else:
            result.problems += collected.problems
            result.notes += collected.notes
            if any(collected.files.values()):
                roots = stage(collected.files, grader.reference_pkg, tmp / "stage")
                _world_readable(tmp / "stage")
                (tmp / "stage").chmod(0o755)
                tmp.chmod(0o755)
                result.tests, extra = _run_suites(grader, tmp, roots, cpu, stop)
                result.problems += extra
            else:
                result.tests = [_not_run(t, "not run: none of the four graded files was found")
                                for t in grader.manifest]
        kinds = [t.kind for t in result.tests]
        for kind, label in (("timeout", "timeout"), ("crash", "crashed"), ("grader-error", "grader error")):
            count = kinds.count(kind)
            if count:
                result.problems.append(f"{label} in {count} test{'s' if count > 1 else ''}")
        if kinds and all(k == "not-implemented" for k in kinds):
            result.problems.append("not implemented")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if grader.tier == "setuid":  # workers ran as nobody and could write to /tmp, /dev/shm...
            left = remove_worker_files()
            if left:
                result.notes.append(f"removed {len(left)} file(s) your code left outside its scratch folder "
                                    f"(in {', '.join(sorted({str(Path(p).parent) for p in left})[:4])})")
    result.seconds = time.monotonic() - started
    if out_dir is not None:
        write_submission(result, Path(out_dir) / name, grader.visibility())
    return result


def _not_run(test: dict, why: str, kind: str = "not-run") -> TestResult:
    return TestResult(name=test["name"], part=test["part"], suite=test["suite"],
                      max_score=test["points"], passed=False, kind=kind, output=why, gate=test.get("gate", ""))


def _run_suites(grader: Grader, tmp: Path, roots: dict, cpu: int | None = None,
                stop: Stop | None = None) -> tuple[list[TestResult], list[str]]:
    records_path = tmp / "records.jsonl"
    spec_path = tmp / "spec.json"
    (tmp / "pytest.ini").write_text(PYTEST_INI)
    g = grader.config.grading
    spec = {
        "backend": grader.backend, "tier": grader.tier if grader.backend == "sandbox" else None,
        "roots": {k: str(v) for k, v in roots.items()}, "reference": str(grader.reference_pkg.parent),
        "secret": grader.secret, "results": str(records_path), "mnist": grader.mnist,
        "limits": {"call_timeout": g.call_timeout}, "shared": grader.mnist.get("shared"), "zygote": grader.forking,
        "cpu": cpu,
    }
    spec_path.write_text(json.dumps(spec))
    spec_path.chmod(0o600)
    deadline = time.monotonic() + g.submission_budget
    wanted = [t["nodeid"] for t in grader.manifest]
    interrupted: dict[str, str] = {}
    problems = []
    # Each run of the test process either finishes, runs out of budget, or is
    # killed during a test that then scores zero: at most one run per test.
    for _ in range(len(wanted) + 1):
        records, _ = _read_records(records_path)
        remaining = [n for n in wanted if n not in records and n not in interrupted]
        if not remaining:
            break
        if stop is not None:
            stop.check()
        # Node ids are relative to the tests folder; the test process runs elsewhere.
        targets = (_targets(grader) if len(remaining) == len(wanted)
                   else [f"{grader.tests_dir}/{nodeid}" for nodeid in remaining])
        log = open(tmp / "pytest.log", "ab")
        proc = subprocess.Popen(_pytest_command(grader, spec_path, tmp / "pytest.ini", targets),
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                                env=_pytest_env() | {"TMPDIR": str(tmp)},  # workers' folders go in tmp too
                                start_new_session=True)
        try:
            if _wait(proc, max(deadline, time.monotonic() + 1.0), stop) == "budget":
                problems.append("time budget exhausted")
        finally:
            kill_tree(proc.pid, include_self=True)
            proc.wait()
            log.close()
        if stop is not None:
            stop.check()  # the test process was killed by the grader, not by the student's code
        records, started = _read_records(records_path)
        if problems:
            break
        for nodeid in reversed(started):
            if nodeid not in records and nodeid not in interrupted:
                interrupted[nodeid] = ("the test process was killed while this test ran "
                                       "(by your code?); the test scores zero")
                break
        else:
            if proc.returncode not in (0, 1):
                problems.append("grader error")
                break
    records, _ = _read_records(records_path)
    tests, unreached = [], []
    for t in grader.manifest:
        r = records.get(t["nodeid"])
        if r is not None:
            tests.append(TestResult(name=t["name"], part=t["part"], suite=t["suite"], max_score=t["points"],
                                    passed=bool(r["passed"]), kind=r["kind"], output=r["output"],
                                    seconds=float(r["seconds"]), gate=t.get("gate", ""),
                                    cause=r.get("cause") or "", function=r.get("function") or ""))
        elif t["nodeid"] in interrupted:
            tests.append(_not_run(t, interrupted[t["nodeid"]], kind="crash"))
        else:
            unreached.append(len(tests))
            if "time budget exhausted" in problems:
                tests.append(_not_run(t, f"not run: the submission's time budget of "
                                         f"{g.submission_budget:g} s ran out", kind="timeout"))
            else:
                tests.append(_not_run(t, "not run: grader error (this is not your fault)", kind="grader-error"))
    return apply_gates(tests, unreached), problems


STOP_POLL_SECONDS = 0.2
"""How often a grading thread checks whether the batch was asked to stop."""


def _wait(proc: subprocess.Popen, deadline: float, stop: Stop | None) -> str:
    """Wait for the test process: "exited", "budget" (the deadline passed) or "stopped"."""
    while True:
        try:
            proc.wait(timeout=max(0.0, min(STOP_POLL_SECONDS, deadline - time.monotonic())))
            return "exited"
        except subprocess.TimeoutExpired:
            if stop is not None and stop.requested:
                return "stopped"
            if time.monotonic() >= deadline:
                return "budget"


def find_entries(folder: Path) -> tuple[list[Path], list[str]]:
    """Submissions in a folder (sub-folders and .zip files) and the names of what was skipped."""
    entries, skipped = [], []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink():
            skipped.append(f"{path.name} (symlink)")
        elif path.is_dir() or path.suffix.lower() == ".zip":
            entries.append(path)
        else:
            skipped.append(f"{path.name} (not a folder or .zip)")
    return entries, skipped


STAGING = ".partial"
"""Sub-folder of the output folder where a submission's results are written before they are
moved into place: a result folder is complete or absent, never half-written."""


@dataclass
class Batch:
    """What one run of grade_batch did."""

    results: list[SubmissionResult] = field(default_factory=list)
    """Submissions graded in this run, by name."""
    unchanged: list[str] = field(default_factory=list)
    """Submissions skipped because their results were graded from the same inputs."""
    unfinished: list[str] = field(default_factory=list)
    """Submissions not graded because the batch was stopped."""
    total: int = 0
    """Submissions in the batch (graded, unchanged and unfinished)."""
    stopped_by: str | None = None
    """"SIGINT", "SIGTERM" or "a stop request" when the batch was stopped, else None."""

    @property
    def finished(self) -> int:
        """Submissions with up-to-date results (graded now or unchanged)."""
        return len(self.results) + len(self.unchanged)


def grade_folder(grader: Grader, submissions: Path, out: Path, *, jobs: int = 1,
                 only: str | None = None, progress: bool = True) -> list[SubmissionResult]:
    """Grade every entry of ``submissions`` into ``out``; return the results of this run
    (see grade_batch for the submissions it skipped as unchanged)."""
    return grade_batch(grader, submissions, out, jobs=jobs, only=only, progress=progress).results


def grade_batch(grader: Grader, submissions: Path, out: Path, *, jobs: int = 1, only: str | None = None,
                progress: bool = True, fresh: bool = False, stop: Stop | None = None) -> Batch:
    """Grade the entries of ``submissions`` into ``out``, then write the gradebook.

    A submission whose result folder was graded from the same inputs (nnkit.grading.fingerprint) is
    skipped, unless ``fresh`` or it is the ``only`` one. When ``stop`` is requested (see
    nnkit.grading.interrupt), no further submission starts, the running ones are abandoned (their test
    processes killed, no result folder left) and the gradebook lists the up-to-date results.
    The caller must hold ``out``'s lock (nnkit.grading.outlock).
    """
    if stop is None:
        stop = Stop()
    entries, skipped = find_entries(submissions)
    if only is not None:
        entries = [e for e in entries if submission_name(e) == only]
        if not entries:
            raise FileNotFoundError(f"no submission named {only!r} in {submissions}")
    for item in skipped:
        print(f"skipped {item}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / STAGING, ignore_errors=True)  # left by a grader that was killed
    (out / STAGING).mkdir()
    batch = Batch(total=len(entries))
    with stop.armed():
        shared = fingerprint.grader_inputs(grader)
        todo = []
        for entry in entries:
            digest = fingerprint.submission_digest(entry)
            key = fingerprint.key(digest, shared)
            if not fresh and only is None and fingerprint.is_current(out / submission_name(entry), key):
                batch.unchanged.append(submission_name(entry))
            else:
                todo.append((entry, (key, digest)))
        if batch.unchanged:
            print(f"{len(batch.unchanged)} of {len(entries)} submissions already graded from the same inputs: "
                  f"skipped (FRESH=1 regrades them); grading {len(todo)}", file=sys.stderr)
        bar = _progress(len(todo), progress and bool(todo))
        cpus = _cpu_slots(max(1, jobs))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(_grade_into, cpus, grader, entry, out, shared, stamp, stop): entry
                       for entry, stamp in todo}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Interrupted:
                    batch.unfinished.append(submission_name(futures[future]))
                    continue
                except BaseException:
                    stop.request()  # a failure of the grader itself: the other jobs stop too, not grade on unseen
                    raise
                batch.results.append(result)
                if bar is not None:
                    bar.set_postfix_str(f"{result.submission}: {result.score:g}/{result.max_score:g}")
                    bar.update(1)
        if bar is not None:
            bar.close()
        shutil.rmtree(out / STAGING, ignore_errors=True)
        if stop.requested:
            batch.stopped_by = stop.describe()
        if batch.unfinished and only is None:
            names = {r.submission for r in batch.results} | set(batch.unchanged)
        else:
            names = {submission_name(e) for e in find_entries(submissions)[0]}
        write_gradebook(out, names)
    batch.results.sort(key=lambda r: r.submission)
    batch.unchanged.sort()
    batch.unfinished.sort()
    return batch


def _grade_into(cpus: queue.Queue, grader: Grader, entry: Path, out: Path, shared: dict,
                stamp: tuple[str | None, str | None], stop: Stop) -> SubmissionResult:
    """Grade one entry of a batch on a free processor and publish its result folder, with
    ``stamp`` = (key, submission digest) from nnkit.grading.fingerprint (None, None: not hashable)."""
    stop.check()
    result = _on_a_cpu(cpus, grader, entry, stop)
    _publish(result, out, grader.visibility(), stamp, shared)
    return result


def _publish(result: SubmissionResult, out: Path, visibility: dict,
             stamp: tuple[str | None, str | None], shared: dict) -> None:
    """Write ``result``'s folder under STAGING, inputs.json last, then move it into place
    (replacing the previous one), so that no reader sees it half-written. A result with a
    grader error gets no inputs.json: the next run grades it again."""
    new = Path(tempfile.mkdtemp(prefix=f"{result.submission}.", dir=out / STAGING))
    new.chmod(0o755)
    write_submission(result, new, visibility)
    key, digest = stamp
    grader_failed = "grader error" in result.problems or any(t.kind == "grader-error" for t in result.tests)
    if key is not None and not grader_failed:
        fingerprint.write(new, key, digest, shared)
    final = out / result.submission
    previous = new.with_name(new.name + ".previous")
    if final.is_dir() and not final.is_symlink():
        final.rename(previous)
    elif final.exists() or final.is_symlink():
        final.unlink()
    new.rename(final)
    shutil.rmtree(previous, ignore_errors=True)


def _cpu_slots(jobs: int) -> queue.Queue:
    """One processor per parallel job, taken in turn (None where affinity is not supported).

    A submission's test process and its workers answer each other hundreds of
    times; kept on one processor, each answer is a local context switch rather
    than a wake-up of another (idle) processor, about a third cheaper per call.
    """
    slots: queue.Queue = queue.Queue()
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = []
    for job in range(jobs):
        slots.put(allowed[job % len(allowed)] if allowed else None)
    return slots


def _on_a_cpu(cpus: queue.Queue, grader: Grader, entry: Path, stop: Stop) -> SubmissionResult:
    cpu = cpus.get()
    try:
        return grade_one(grader, entry, None, cpu, stop)
    finally:
        cpus.put(cpu)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="submission", file=sys.stderr)


def load_results(out: Path, names: set[str] | None = None) -> list[SubmissionResult]:
    """Every result.json under ``out`` (restricted to ``names`` when given), sorted by name."""
    results = []
    for path in sorted(Path(out).glob("*/result.json")):
        if names is None or path.parent.name in names:
            results.append(SubmissionResult.from_json(json.loads(path.read_text())))
    return results


def write_gradebook(out: Path, names: set[str] | None = None) -> Path:
    """grades.csv and report.html from the results in ``out``."""
    results = load_results(out, names)
    path = out / "grades.csv"
    partial = out / ".grades.csv.partial"
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerow(r.csv_row())
    partial.replace(path)  # a reader never sees half a gradebook
    try:
        from nnkit.reports import report
    except ImportError:  # the report module is optional in stripped-down copies
        return path
    report.write_report(results, out)
    return path
