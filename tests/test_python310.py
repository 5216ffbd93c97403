"""Does the kit run on Python 3.10, Gradescope's interpreter?

This machine may have no Python 3.10, so the check is static: vermin reads
every module and names the newest Python that each language feature,
standard library module or member it uses needs. Imports guarded by a
version test (``if sys.version_info >= (3, 11): import tomllib``, ``tomli``
otherwise) count as optional; vermin does not read a ``try: ... except
ImportError:`` fallback that way, so the kit guards with version tests.
Annotations are checked as if evaluated, and a file the running interpreter
cannot parse is listed too (``--pessimistic``), so nothing is passed over.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("nnkit", "solutions", "student_template", "autograder/tests", "tests")
"""Everything that runs on Gradescope or in `make test` (examples/ holds broken submissions on purpose)."""
OLDEST_PYTHON = "3.10"
VERMIN = ["--no-config-file", f"--target={OLDEST_PYTHON}-", "--violations", "--quiet", "--no-tips",
          "--eval-annotations", "--pessimistic"]


def violations(*paths: Path) -> str:
    """What in ``paths`` needs a Python newer than OLDEST_PYTHON, as vermin lists it ("" when nothing)."""
    done = subprocess.run([sys.executable, "-c", "import sys; from vermin import main; sys.exit(main())",
                           *VERMIN, *map(str, paths)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    found = (done.stdout + done.stderr).strip()
    return found or (f"vermin exited with {done.returncode} and printed nothing" if done.returncode else "")


def test_the_kit_needs_nothing_newer_than_python_310():
    """Do the kit, the reference, the template and both test suites use nothing newer than Python 3.10?"""
    found = violations(*(ROOT / path for path in CHECKED))
    assert not found, f"these files need a Python newer than {OLDEST_PYTHON}:\n{found}"


def test_the_check_catches_what_python_310_lacks(tmp_path):
    """Does the same check list code that needs 3.11, and pass the version-guarded tomllib import?"""
    (tmp_path / "needs_tomllib.py").write_text("import tomllib\n")
    (tmp_path / "needs_except_star.py").write_text("try:\n    pass\nexcept* ValueError:\n    pass\n")
    (tmp_path / "needs_self.py").write_text("from typing import Self\n")
    (tmp_path / "guarded.py").write_text("import sys\nif sys.version_info >= (3, 11):\n    import tomllib\n"
                                         "else:\n    import tomli as tomllib\n")
    found = violations(tmp_path)
    for name, feature in (("needs_tomllib.py", "'tomllib' module requires !2, 3.11"),
                          ("needs_except_star.py", "`except*` requires !2, 3.11"),
                          ("needs_self.py", "'typing.Self' member requires !2, 3.11")):
        assert f"{name}\n  {feature}" in found, found
    assert "guarded.py" not in found
    assert violations(tmp_path / "guarded.py") == ""


def test_a_file_python_cannot_parse_is_listed(tmp_path):
    """Is a file the running interpreter cannot parse listed, rather than passed over?"""
    (tmp_path / "broken.py").write_text("for x in y\n    pass\n")
    found = violations(tmp_path)
    assert "broken.py" in found and "error: expected ':'" in found, found


def test_dependencies_install_on_python_310():
    """Do the kit's and Gradescope's requirements allow Python 3.10 and bring tomli only where tomllib is missing?"""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert OLDEST_PYTHON in SpecifierSet(project["requires-python"]), project["requires-python"]
    gradescope = (ROOT / "autograder" / "gradescope" / "requirements.txt").read_text().splitlines()
    for source, lines in (("pyproject.toml", project["dependencies"]), ("requirements.txt", gradescope)):
        requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]

        def installed(python: str) -> set[str]:
            env = {"python_version": python, "python_full_version": f"{python}.0"}
            return {r.name for r in requirements if r.marker is None or r.marker.evaluate(env)}

        assert "tomli" in installed(OLDEST_PYTHON), f"{source}: no tomli (tomllib's fallback) on Python 3.10"
        assert "tomli" not in installed("3.11"), f"{source}: tomli installed on Python 3.11, which has tomllib"
