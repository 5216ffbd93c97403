"""Specification of staging: which files each configuration's package holds."""
from __future__ import annotations

from pathlib import Path

import pytest

from nnkit.course.config import ROOT
from nnkit.course.contract import PARTS
from nnkit.grading.stage import GRADED_FILES, stage

REFERENCE = ROOT / "solutions" / "scratchnet"


@pytest.fixture
def student(tmp_path) -> dict[str, Path]:
    """A student's four files, each marked so its origin can be told apart from the reference."""
    files = {}
    for part, filename in GRADED_FILES.items():
        path = tmp_path / "student" / filename
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# student's {filename}\n")
        files[part] = path
    return files


def _origin(package: Path, filename: str) -> str:
    path = package / "scratchnet" / filename
    if not path.is_file():
        return "absent"
    return "student" if path.read_text().startswith("# student's") else "reference"


def test_each_part_gets_the_reference_upstream_and_the_student_from_there_on(student, tmp_path):
    """Does the package of part P hold the reference for the parts before P, the student's files
    for P and after, and no reference file for P itself?"""
    roots = stage(student, REFERENCE, tmp_path / "stage")
    for i, part in enumerate(PARTS):
        expected = {GRADED_FILES[p]: ("reference" if j < i else "student") for j, p in enumerate(PARTS)}
        assert {f: _origin(roots[part], f) for f in expected} == expected, part
    assert {_origin(roots["end_to_end"], f) for f in GRADED_FILES.values()} == {"student"}


def test_configurations_of_the_same_files_share_one_folder(student, tmp_path):
    """Do the first part and end to end (both all student files) share one folder, and only they?"""
    roots = stage(student, REFERENCE, tmp_path / "stage")
    assert roots["end_to_end"] == roots[PARTS[0]]
    assert len(set(roots.values())) == len(PARTS)


def test_a_missing_student_file_is_absent_where_it_would_be_used(student, tmp_path):
    """Is a missing student file absent from the packages that need it, while the parts
    upstream of it still get the reference?"""
    student[PARTS[1]] = None
    roots = stage(student, REFERENCE, tmp_path / "stage")
    missing = GRADED_FILES[PARTS[1]]
    assert _origin(roots[PARTS[0]], missing) == "absent"
    assert _origin(roots[PARTS[1]], missing) == "absent"
    assert _origin(roots[PARTS[2]], missing) == "reference"
