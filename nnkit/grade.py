"""``python -m nnkit grade SUBMISSIONS --out OUT``: grade a folder of submissions.

Exit status: 0 when grading completed (whatever the submissions scored),
2 when the grader could not run (bad arguments, missing SUBMISSIONS, a
broken kit configuration).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from nnkit.config import AUTOGRADER_CONFIG_PATH, ROOT, ConfigError, load_config, load_course_secret
from nnkit.proxy import GraderError


def build_grader(*, backend: str = "sandbox", tier: str | None = None,
                 reference: Path | None = None, tests: Path | None = None,
                 cache: Path | None = None, secret_file: Path | None = None,
                 limits: dict | None = None):
    """A prepared Grader from the kit's configuration.

    ``limits`` overrides entries of the config's [grading] section
    (call_timeout, submission_budget, max_file_bytes); the kit's own tests
    use it to grade hanging submissions in seconds rather than minutes.
    """
    from nnkit.runner import Grader

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
        tests_dir=Path(tests or ROOT / "autograder" / "tests").resolve(),
        cache_dir=Path(cache or ROOT / "build" / "cache").resolve(),
        backend=backend, tier=tier,
        secret_files=(Path(secret_file or AUTOGRADER_CONFIG_PATH).resolve(),),
    )
    return grader.prepare()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnkit grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder holding one sub-folder or .zip per submission")
    parser.add_argument("--out", type=Path, default=Path("build/grades"), help="output folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded in parallel")
    parser.add_argument("--only", default=None, help="grade only the submission with this name")
    parser.add_argument("--tier", default=None, choices=["bwrap", "setuid", "rlimits"],
                        help="isolation tier (default: the strongest available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="an earlier grading run's OUT: write OUT/changes.csv and a report section on what changed")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"error: SUBMISSIONS={args.submissions} is not a folder", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"error: JOBS must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    from nnkit import compare
    from nnkit.runner import grade_folder

    try:
        previous = compare.load_previous(args.compare) if args.compare else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        grader = build_grader(tier=args.tier)
        results = grade_folder(grader, args.submissions, args.out, jobs=args.jobs, only=args.only,
                               progress=not args.no_progress)
    except (ConfigError, FileNotFoundError, RuntimeError, GraderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    width = max([len(r.submission) for r in results] + [10])
    print(f"\n{'submission':<{width}}  {'score':>9}  status")
    for r in results:
        print(f"{r.submission:<{width}}  {r.score:>4g}/{r.max_score:<4g}  {r.status}")
    if previous is not None:
        print("\n" + compare.regrade_report(previous, args.compare, args.submissions, args.out).summary())
    print(f"\nisolation: {grader.tier_description}")
    print(f"wrote {args.out / 'grades.csv'}, {args.out / 'report.html'} and one folder per submission")
    return 0


if __name__ == "__main__":
    sys.exit(main())
