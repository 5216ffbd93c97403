"""``make bench-grade``: seconds per submission, sandboxed vs in-process, in one run.

Grades the same submissions (default: the bundled examples) with every test,
MNIST included:

1. sandboxed, one at a time (what `make grade JOBS=1` does);
2. in-process, one at a time (student code imported into the test process:
   the baseline the sandbox's overhead is measured against; never used for
   real grading);
3. sandboxed and in-process with JOBS=2, to show how parallel grading
   scales and what the sandbox costs when no core is idle.

Targets: sandboxed <= 10 s per submission on 2 cores, sandboxed / in-process
<= 1.25, and JOBS=2 close to half the JOBS=1 time. At JOBS=1 the sandbox's
workers start up on the core the test process leaves idle; the JOBS=2 ratio
shows the cost with every core busy.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from nnkit.config import ROOT


def _run(grader, submissions: Path, jobs: int) -> tuple[float, list]:
    from nnkit.runner import grade_folder

    with tempfile.TemporaryDirectory(prefix="nnkit-bench-") as out:
        start = time.perf_counter()
        results = grade_folder(grader, submissions, Path(out), jobs=jobs, progress=False)
        return time.perf_counter() - start, results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnkit bench-grade", description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=Path, default=ROOT / "examples" / "submissions")
    parser.add_argument("--skip-parallel", action="store_true", help="skip the JOBS=2 run")
    args = parser.parse_args(argv)
    from nnkit.grade import build_grader

    sandboxed = build_grader(backend="sandbox")
    in_process = build_grader(backend="local")
    runs = {}
    for label, grader, jobs in (("sandboxed", sandboxed, 1), ("in-process", in_process, 1),
                                ("sandboxed, JOBS=2", sandboxed, 2), ("in-process, JOBS=2", in_process, 2)):
        if jobs == 2 and args.skip_parallel:
            continue
        seconds, results = _run(grader, args.submissions, jobs)
        runs[label] = (seconds, results)
        n = len(results)
        scores = ", ".join(f"{r.submission} {r.score:g}" for r in results)
        print(f"{label:<19} {n} submissions in {seconds:6.1f} s = {seconds / max(n, 1):5.2f} s per submission"
              f"  ({scores})")
    print(f"isolation tier: {sandboxed.tier_description}")
    s, n = runs["sandboxed"][0], max(len(runs["sandboxed"][1]), 1)
    i = runs["in-process"][0]
    if "sandboxed, JOBS=2" in runs:
        p, q = runs["sandboxed, JOBS=2"][0], runs["in-process, JOBS=2"][0]
        print(f"JOBS=2 speed-up over JOBS=1: {s / p:.2f}x (ideal 2.00x)")
        print(f"ratio with JOBS=2 (sandboxed / in-process): {p / q:.2f}")
    print(f"sandboxed seconds per submission: {s / n:.2f} (target <= 10)")
    print(f"ratio (sandboxed / in-process, s per submission): {s / i:.2f}")
    return 0
