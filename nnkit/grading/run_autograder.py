"""``python -m nnkit run-autograder``: the Gradescope entry point.

Gradescope unpacks the autograder zip into ROOT/source (ROOT is /autograder),
runs setup.sh once when it builds the image, and for each submission runs
ROOT/run_autograder, which calls this with ``--root ROOT``. It grades
ROOT/submission with the same runner as `make grade` and writes
ROOT/results/results.json (validated against Gradescope's format) plus
feedback.md next to it. If the grader itself fails, it still writes a valid
results.json that scores zero and says "grader error" (fail closed).

``--prepare`` (run by setup.sh) computes the MNIST reference cache ahead of
time, so no submission pays for it, then grades the reference and the
student template as submissions, in the isolation tier that grading will
use: any score other than full marks and zero fails the image build, with
the failing tests' messages.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from nnkit.course.config import TEMPLATE_ROOT


def _fail_closed(results_dir: Path, message: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    data = {"score": 0.0, "output": f"grader error: {message} (this is not your fault; "
                                     "your instructor has been told)",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}
    (results_dir / "results.json").write_text(json.dumps(data, indent=2) + "\n")


def run(root: Path, *, tier: str | None = None) -> dict:
    """Grade ROOT/submission into ROOT/results; return the results.json data."""
    from nnkit.grading.grade import build_grader
    from nnkit.grading.gradescope import validate_results
    from nnkit.grading.runner import grade_one

    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    grader = build_grader(tier=tier)
    result = grade_one(grader, root / "submission")
    data = result.to_gradescope(grader.visibility())
    validate_results(data)
    (results_dir / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (results_dir / "feedback.md").write_text(result.feedback_markdown())
    return data


def self_check(grader) -> list[str]:
    """Grade the reference and the student template as submissions with ``grader``; return
    what went wrong (empty: the reference got full marks and the template zero)."""
    from nnkit.course.config import ROOT
    from nnkit.grading.runner import grade_one

    cfg = grader.config
    cases = [(grader.reference_pkg, cfg.max_score, "the reference"),
             (TEMPLATE_ROOT / cfg.package, 0.0, "the student template")]
    problems = []
    for package, wanted, label in cases:
        with tempfile.TemporaryDirectory(prefix="nnkit-self-check-") as tmp:
            submission = Path(tmp) / "submission"
            submission.mkdir()
            for filename in cfg.files.values():
                if (package / filename).is_file():
                    shutil.copyfile(package / filename, submission / filename)
            result = grade_one(grader, submission)
        print(f"self-check: {label} scored {result.score:g}/{result.max_score:g} in {result.seconds:.1f} s")
        if result.score != wanted:
            wrong = [t for t in result.tests if t.passed != (wanted > 0)]
            details = "".join(f"\n  - {t.part}: {t.name}: {t.output.splitlines()[0] if t.output else t.kind}"
                              for t in wrong[:8])
            problems.append(f"{label} scored {result.score:g}, expected {wanted:g}{details}")
    return problems


def prepare(tier: str | None = None) -> int:
    """Prepare grading (MNIST cache, test manifest, file access) and check it on the reference
    and the template in the tier grading will use; 0 when both scored as they must."""
    from nnkit.grading.grade import build_grader

    grader = build_grader(tier=tier)
    print(f"ready: {len(grader.manifest)} tests, isolation tier {grader.tier_description}")
    problems = self_check(grader)
    if problems:
        print("error: the autograder does not grade correctly here, so this image must not be used:\n"
              + "\n".join(problems), file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnkit run-autograder", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"),
                        help="the autograder root holding submission/ and results/ (default: /autograder)")
    parser.add_argument("--tier", default=None, choices=["bwrap", "setuid", "rlimits"])
    parser.add_argument("--prepare", action="store_true",
                        help="compute the MNIST reference cache, then grade the reference and the template")
    args = parser.parse_args(argv)
    if args.prepare:
        try:
            return prepare(args.tier)
        except Exception as exc:  # noqa: BLE001  (the image build must fail, with the reason)
            traceback.print_exc()
            print(f"error: preparing the autograder failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
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
