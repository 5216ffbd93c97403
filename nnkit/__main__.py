"""The kit's command line: ``python -m nnkit [--assignment NAME] <command> [options]``.

``--assignment`` picks the assignment of the course every command works on
(it sets NNKIT_ASSIGNMENT before any command module is imported; see
nnkit.course.config); without it, the course's default.

Each command is a function ``main(argv) -> int`` in some module; this file
only picks it. To add a command, add an entry to COMMANDS.
"""
import importlib
import os
import sys

COMMANDS = {
    "bench": ("nnkit.benches.bench:main", "time the reference trainer against scikit-learn's MLPClassifier"),
    "release": ("nnkit.releases.release:main", "build student_template/ and the student and solution releases"),
    "grade": ("nnkit.grading.grade:main", "grade a folder of submissions into a gradebook, feedback and a report"),
    "bench-grade": ("nnkit.benches.bench_grade:main", "seconds per submission, sandboxed vs in-process"),
    "run-autograder": ("nnkit.grading.run_autograder:main", "Gradescope entry point: grade /autograder/submission"),
    "similarity": ("nnkit.reports.similarity:main", "which pairs of submissions share unusual code (academic integrity)"),
    "train": ("nnkit.course.train:main", "train the reference on MNIST with the assignment's own trainer"),
}
"""Command name -> ("module:function" called with the remaining arguments, one-line help)."""


def usage():
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m nnkit [--assignment NAME] <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in sorted(COMMANDS.items())]
    lines += ["", "python -m nnkit <command> --help describes a command's options."]
    return "\n".join(lines)


def main(argv=None):
    """Run the command named by argv[0] with the rest of argv; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--assignment"] or (argv and argv[0].startswith("--assignment=")):
        value = argv[1] if argv[0] == "--assignment" and len(argv) > 1 else argv[0].partition("=")[2]
        argv = argv[2:] if argv[0] == "--assignment" else argv[1:]
        os.environ["NNKIT_ASSIGNMENT"] = value
    try:
        from nnkit.course.config import active_assignment

        active_assignment()
    except ValueError as exc:  # nnkit.course.config.ConfigError: an unknown assignment, a bad course.toml
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}: expected one of {', '.join(sorted(COMMANDS))}\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    module_name, function_name = COMMANDS[name][0].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    return function(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
