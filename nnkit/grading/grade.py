"""``python -m nnkit grade SUBMISSIONS --out OUT``: grade a folder of submissions.

Submissions whose results in OUT were graded from the same inputs are
skipped (``--fresh`` regrades them), so running it again after an
interruption resumes where it stopped. Ctrl-C (SIGINT) or SIGTERM stops
every test process within seconds and writes the gradebook of what
finished. One grader at a time writes to OUT (nnkit.grading.outlock).

Exit status: 0 when grading completed (whatever the submissions scored),
2 when the grader could not run (bad arguments, missing SUBMISSIONS, a
broken kit configuration, another grader writing to OUT), 128 + the signal's
number when stopped by one (130 for Ctrl-C).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path

from nnkit.grading import outlock
from nnkit.course.config import AUTOGRADER_CONFIG_PATH, ROOT, ConfigError, load_config, load_course_secret
from nnkit.grading.interrupt import Stop
from nnkit.grading.proxy import GraderError
from nnkit.course.config import TESTS_DIR


def build_grader(*, backend: str = "sandbox", tier: str | None = None,
                 reference: Path | None = None, tests: Path | None = None,
                 cache: Path | None = None, secret_file: Path | None = None,
                 limits: dict | None = None):
    """A prepared Grader from the kit's configuration.

    ``limits`` overrides entries of the config's [grading] section
    (call_timeout, submission_budget, max_file_bytes); the kit's own tests
    use it to grade hanging submissions in seconds rather than minutes.
    """
    from nnkit.grading.runner import Grader

    config = load_config()
    if limits:
        known = {"call_timeout", "submission_budget", "max_file_bytes"}
        unknown = sorted(set(limits) - known)
        if unknown:
            raise ConfigError(f"unknown grading limits {unknown}: expected some of {sorted(known)}")
        config = dataclasses.replace(config, grading=dataclasses.replace(config.grading, **limits))
    grader = Grader(
        config=config,
        secret=load_course_secret(secret_file or AUTOGRADER_CONFIG_PATH),
        reference_pkg=Path(reference or ROOT / "solutions" / "scratchnet").resolve(),
        tests_dir=Path(tests or TESTS_DIR).resolve(),
        cache_dir=Path(cache or ROOT / "build" / "cache").resolve(),
        backend=backend, tier=tier,
        secret_files=(Path(secret_file or AUTOGRADER_CONFIG_PATH).resolve(),),
    )
    return grader.prepare()


def batch_arguments_problem(submissions: Path, jobs: int) -> str | None:
    """What is wrong with the SUBMISSIONS and JOBS of a command over a class (None: nothing)."""
    if not submissions.is_dir():
        return f"SUBMISSIONS={submissions} is not a folder"
    if jobs < 1:
        return f"JOBS must be at least 1, got {jobs}"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnkit grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder holding one sub-folder or .zip per submission")
    parser.add_argument("--out", type=Path, default=Path("build/grades"), help="output folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded in parallel")
    parser.add_argument("--only", default=None, help="grade only the submission with this name (always regraded)")
    parser.add_argument("--fresh", action="store_true",
                        help="regrade every submission, even those whose results are up to date")
    parser.add_argument("--tier", default=None, choices=["bwrap", "setuid", "rlimits"],
                        help="isolation tier (default: the strongest available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="an earlier grading run's OUT: write OUT/changes.csv and a report section on what changed")
    args = parser.parse_args(argv)
    problem = batch_arguments_problem(args.submissions, args.jobs)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create OUT={args.out}: {exc}", file=sys.stderr)
        return 2
    stop = Stop()
    try:
        with outlock.hold(args.out), stop.on_signals():
            return _grade(args, stop)
    except outlock.LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if stop.signum is None:  # before the handlers were installed: Python's own KeyboardInterrupt
            stop.request(signal.SIGINT)
        print(f"\n{stop.describe()}: stopped before grading started; nothing was graded", file=sys.stderr)
        return stop.exit_status


def _grade(args, stop: Stop) -> int:
    from nnkit.reports import compare
    from nnkit.grading.runner import grade_batch

    try:
        previous = compare.load_previous(args.compare) if args.compare else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        grader = build_grader(tier=args.tier)
    except (ConfigError, FileNotFoundError, RuntimeError, GraderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with stop.armed():  # from here on, a signal stops the batch and the gradebook still comes out
        try:
            batch = grade_batch(grader, args.submissions, args.out, jobs=args.jobs, only=args.only,
                                progress=not args.no_progress, fresh=args.fresh, stop=stop)
        except (FileNotFoundError, RuntimeError, GraderError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return _summary(args, grader, batch, stop, previous)


def _summary(args, grader, batch, stop: Stop, previous=None) -> int:
    """Print what the batch did (and, with ``previous`` results, what changed); return the exit status."""
    from nnkit.reports import compare
    from nnkit.sandbox.backend import UNCONFINED_ADVICE, tier_warning

    results = batch.results
    if results:
        width = max([len(r.submission) for r in results] + [10])
        print(f"\n{'submission':<{width}}  {'score':>9}  status")
        for r in results:
            print(f"{r.submission:<{width}}  {r.score:>4g}/{r.max_score:<4g}  {r.status}")
        print(f"\nisolation: {grader.tier_description}")
        warning = tier_warning(grader.tier_description)
        if warning:
            print(f"{warning}\n{UNCONFINED_ADVICE}")
    if batch.unchanged:
        n = len(batch.unchanged)
        print(f"skipped {n} submission{'s' if n != 1 else ''} already graded from the same inputs "
              "(FRESH=1 regrades them)")
    if previous is not None:
        print("\n" + compare.regrade_report(previous, args.compare, args.submissions, args.out).summary())
    print(f"wrote {args.out / 'grades.csv'}, {args.out / 'report.html'} and one folder per submission")
    if batch.stopped_by is None:
        return 0
    print(f"\ninterrupted by {batch.stopped_by}: {batch.finished} of {batch.total} submissions graded "
          f"({len(results)} in this run, {len(batch.unchanged)} unchanged from before), "
          f"{len(batch.unfinished)} not graded. Run `make grade` again (same SUBMISSIONS and OUT) "
          "to grade the rest: the finished ones are skipped.")
    return stop.exit_status


if __name__ == "__main__":
    sys.exit(main())
