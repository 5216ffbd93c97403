"""Staging: one small `scratchnet` package per graded part.

To test part P, the package holds the student's files for P and the parts
after it, and the reference's files for the parts before it, so one bug
costs points in its own part only; the reference of P itself is absent, so
it cannot be imported while P is tested. The end-to-end configuration (the
MNIST test) holds all four student files. Provided modules (data.py,
gradcheck.py, ...) always come from the kit, never from the submission.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from nnkit.course.config import later_modules
from nnkit.course.contract import MODULE_OF_PART, PARTS, student_parts

CONFIGS = PARTS + ("end_to_end",)
"""Names of the staged configurations: one per part, plus end to end."""

GRADED_FILES = {part: f"{module}.py" for part, module in MODULE_OF_PART.items()}
"""File name of each part's module."""


def provided_modules(reference_pkg: Path) -> list[Path]:
    """The kit's own modules of the package: everything but the graded files, and nothing that a
    later assignment introduces (its reference solutions must not sit beside student code)."""
    left_out = set(GRADED_FILES.values()) | later_modules()
    return sorted(p for p in Path(reference_pkg).glob("*.py") if p.name not in left_out)


def stage(student_files: dict[str, Path | None], reference_pkg: Path, dest: Path) -> dict[str, Path]:
    """Write one package per configuration under ``dest``.

    Inputs:
    - student_files: part -> path of the student's file (None when missing).
    - reference_pkg: the reference ``scratchnet`` folder.
    - dest: an empty folder.

    Returns configuration name -> folder to put on sys.path (holding scratchnet/).
    Configurations made of the same files share one folder (the first part's
    and end to end both use every student file), so they share one worker.
    """
    roots, made = {}, {}
    for config in CONFIGS:
        mine = student_parts(None if config == "end_to_end" else config)
        sources = {filename: student_files.get(part) if part in mine else Path(reference_pkg) / filename
                   for part, filename in GRADED_FILES.items()}
        key = tuple(sorted((name, str(path)) for name, path in sources.items()))
        if key in made:
            roots[config] = made[key]
            continue
        pkg = Path(dest) / config / "scratchnet"
        pkg.mkdir(parents=True)
        for module in provided_modules(reference_pkg):
            shutil.copyfile(module, pkg / module.name)
        for filename, source in sources.items():
            if source is not None:
                shutil.copyfile(source, pkg / filename)
        roots[config] = made[key] = pkg.parent
    return roots


def roots_by_part(roots: dict[str, str]) -> dict[str | None, str]:
    """``stage``'s result (as JSON keeps it) keyed as backends take it: by part, None for end to end."""
    return {(None if config == "end_to_end" else config): root for config, root in roots.items()}
