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

from nnkit.course.config import ROOT
from nnkit.course.config import EXAMPLES_DIR


def _run(grader, submissions: Path, jobs: int) -> tuple[float, list]:
    from nnkit.grading.runner import grade_folder

    with tempfile.TemporaryDirectory(prefix="nnkit-bench-") as out:
        start = time.perf_counter()
        results = grade_folder(grader, submissions, Path(out), jobs=jobs, progress=False)
        return time.perf_counter() - start, results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnkit bench-grade", description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=Path, default=EXAMPLES_DIR)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of each mode, in alternating order, so drift in the machine's speed "
                             "and cold caches weigh on both modes alike (default 2)")
    parser.add_argument("--skip-parallel", action="store_true", help="skip the JOBS=2 runs")
    args = parser.parse_args(argv)
    from nnkit.grading.grade import build_grader

    graders = {"sandboxed": build_grader(backend="sandbox"), "in-process": build_grader(backend="local")}
    plan = []
    for r in range(max(1, args.rounds)):
        order = ["sandboxed", "in-process"] if r % 2 == 0 else ["in-process", "sandboxed"]
        plan += [(mode, 1) for mode in order]
    if not args.skip_parallel:
        plan += [("sandboxed", 2), ("in-process", 2)]
    totals: dict[tuple[str, int], list[float]] = {}
    n = 0
    for mode, jobs in plan:
        seconds, results = _run(graders[mode], args.submissions, jobs)
        totals.setdefault((mode, jobs), []).append(seconds)
        n = max(n, len(results))
        label = mode + (", JOBS=2" if jobs == 2 else "")
        scores = ", ".join(f"{r.submission} {r.score:g}" for r in results)
        print(f"{label:<19} {len(results)} submissions in {seconds:6.1f} s = "
              f"{seconds / max(len(results), 1):5.2f} s per submission  ({scores})")
    n = max(n, 1)
    print(f"isolation tier: {graders['sandboxed'].tier_description}")
    s, i = sum(totals[("sandboxed", 1)]), sum(totals[("in-process", 1)])
    rounds = len(totals[("sandboxed", 1)])
    if ("sandboxed", 2) in totals:
        p, q = totals[("sandboxed", 2)][0], totals[("in-process", 2)][0]
        print(f"JOBS=2 speed-up over JOBS=1: {s / rounds / p:.2f}x (ideal 2.00x)")
        print(f"ratio with JOBS=2 (sandboxed / in-process): {p / q:.2f}")
    print(f"sandboxed seconds per submission: {s / rounds / n:.2f} (target <= 10)")
    per_round = ", ".join(f"{a / b:.2f}" for a, b in zip(totals[("sandboxed", 1)], totals[("in-process", 1)]))
    print(f"ratio (sandboxed / in-process, s per submission, {rounds} rounds): {s / i:.2f}  (per round: {per_round})")
    return 0
