"""``python -m nnkit run-autograder``: the Gradescope entry point.

Gradescope unpacks the autograder zip into ROOT/source (ROOT is /autograder),
runs setup.sh once when it builds the image, and for each submission runs
ROOT/run_autograder, which calls this with ``--root ROOT``. It grades
ROOT/submission with the same runner as `make grade` and writes
ROOT/results/results.json (validated against Gradescope's format) plus
feedback.md next to it. If the grader itself fails, it still writes a valid
results.json that scores zero and says "grader error" (fail closed).

``--prepare`` (run by setup.sh) computes the MNIST reference cache ahead of
time, so no submission pays for it.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path


def _fail_closed(results_dir: Path, message: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    data = {"score": 0.0, "output": f"grader error: {message} (this is not your fault; "
                                     "your instructor has been told)",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}
    (results_dir / "results.json").write_text(json.dumps(data, indent=2) + "\n")


def run(root: Path, *, tier: str | None = None) -> dict:
    """Grade ROOT/submission into ROOT/results; return the results.json data."""
    from nnkit.grade import build_grader
    from nnkit.gradescope import validate_results
    from nnkit.runner import grade_one

    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    grader = build_grader(tier=tier)
    result = grade_one(grader, root / "submission")
    data = result.to_gradescope(grader.visibility())
    validate_results(data)
    (results_dir / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (results_dir / "feedback.md").write_text(result.feedback_markdown())
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnkit run-autograder", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"),
                        help="the autograder root holding submission/ and results/ (default: /autograder)")
    parser.add_argument("--tier", default=None, choices=["bwrap", "setuid", "rlimits"])
    parser.add_argument("--prepare", action="store_true", help="only compute the MNIST reference cache")
    args = parser.parse_args(argv)
    if args.prepare:
        from nnkit.grade import build_grader

        grader = build_grader(tier=args.tier)
        print(f"ready: {len(grader.manifest)} tests, isolation tier {grader.tier_description}")
        return 0
    try:
        data = run(args.root, tier=args.tier)
    except Exception as exc:  # fail closed: a valid results.json that scores zero
        traceback.print_exc()
        _fail_closed(args.root / "results", f"{type(exc).__name__}: {exc}")
        return 1
    print(f"score {data['score']:g}; wrote {args.root / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
