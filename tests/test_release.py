"""Specification of the release builds (nnkit.releases.release): template, student and solution releases."""
import ast
import importlib.util
import inspect
import shutil
import zipfile
from pathlib import Path

import pytest

from nnkit.releases import markers

from nnkit.releases import release
from nnkit.course.config import ROOT, earlier_graded, later_modules, load_config, load_course_secret
from nnkit.course.contract import FUNCTIONS, MODULE_OF_PART

CFG = load_config()
PACKAGE_DIR = release.SOLUTIONS_DIR / CFG.package
TEMPLATE_PACKAGE = release.TEMPLATE_DIR / CFG.package
GRADED = sorted(CFG.files.values())


def contract_functions(filename):
    """Contract functions defined in a graded file, e.g. "train.py" -> {"one_hot", ...}."""
    module = filename[: -len(".py")]
    return {name for name, part in FUNCTIONS.items() if MODULE_OF_PART[part] == module}


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def functions_of(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def without_markers(text):
    return "\n".join(l for l in text.split("\n") if l.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION"))


# ---------------------------------------------------------------- template


def test_template_is_up_to_date(capsys):
    """Does student_template/ hold exactly what `make template` would write (else: run it)?"""
    status = release.main(["check-template"])
    assert status == 0, capsys.readouterr().err


def test_stale_template_is_detected(tmp_path):
    """Are a changed, a missing and an extra template file each reported, and repaired by a rebuild?"""
    stale = tmp_path / "student_template"
    shutil.copytree(release.TEMPLATE_DIR, stale, ignore=shutil.ignore_patterns("__pycache__"))
    (stale / CFG.package / "forward.py").write_text("# edited by hand\n")
    (stale / CFG.package / "backward.py").unlink()
    (stale / CFG.package / "old_module.py").write_text("x = 1\n")
    problems = release.template_differences(stale)
    assert problems == [
        f"{CFG.package}/backward.py: missing",
        f"{CFG.package}/forward.py: differs from the stripped reference",
        f"{CFG.package}/old_module.py: stale (the reference has no such module)",
    ]
    result = release.sync_tree(release.template_files(), stale)
    assert set(result.written) == {f"{CFG.package}/backward.py", f"{CFG.package}/forward.py"}
    assert result.removed == (f"{CFG.package}/old_module.py",)
    assert release.template_differences(stale) == []


def test_provided_modules_are_copied_verbatim():
    """Is every module without markers copied byte for byte into the template?"""
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.name not in GRADED and path.name not in later_modules() and path.name not in earlier_graded():
            assert (TEMPLATE_PACKAGE / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("filename", GRADED)
def test_template_keeps_signatures_and_docstrings(filename):
    """Does each template function keep the reference's signature and docstring, with only contract bodies stubbed?"""
    reference = functions_of(PACKAGE_DIR / filename)
    template = functions_of(TEMPLATE_PACKAGE / filename)
    assert set(template) == set(reference)
    graded = contract_functions(filename)
    assert graded <= set(reference)
    for name, ref in reference.items():
        tpl = template[name]
        assert ast.dump(tpl.args) == ast.dump(ref.args), name
        assert ast.get_docstring(tpl, clean=False) == ast.get_docstring(ref, clean=False), name
        if name in graded:
            body = tpl.body[1:] if ast.get_docstring(tpl) is not None else tpl.body
            assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{name} is not a stub"
        else:
            assert ast.dump(tpl) == ast.dump(ref), f"{name} is not graded but differs from the reference"


@pytest.mark.parametrize("filename", GRADED)
def test_template_functions_raise_naming_themselves(filename):
    """Is the template valid Python in which every graded function raises NotImplementedError naming itself?"""
    module = load_module(TEMPLATE_PACKAGE / filename, f"template_{filename[:-3]}")
    part = CFG.part_of_file(filename)
    for name in sorted(contract_functions(filename)):
        function = getattr(module, name)
        signature = inspect.signature(function)
        args = [None for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        kwargs = {p.name: None for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}
        with pytest.raises(NotImplementedError) as info:
            function(*args, **kwargs)
        section = release.handout_section(part, CFG)
        assert str(info.value) == f"{name}: not implemented yet (see handout.md, section '{section}')"


# ---------------------------------------------------------------- leak check


@pytest.fixture(scope="module")
def student_targets():
    return release.leak_targets(release.POLICIES["student"])


def test_leak_check_covers_every_graded_file(student_targets):
    """Does the leak check look for lines of every graded file, none of which the template contains?"""
    files = {Path(line.filename).name for line in student_targets.solution_lines}
    assert files == set(GRADED)
    shipped = "\n".join(p.read_text(encoding="utf-8") for p in TEMPLATE_PACKAGE.glob("*.py"))
    for line in student_targets.solution_lines:
        assert line.code not in shipped and markers.computation(line.code) not in shipped
        assert not markers.is_trivial(line.code)
    assert student_targets.course_secret == load_course_secret()


def test_leak_checker_catches_planted_leaks(student_targets):
    """Are a solution line, a hidden test name and the secret each caught, with file and line?"""
    solution = next(l for l in student_targets.solution_lines if l.filename.endswith("backward.py"))
    secret = student_targets.course_secret
    targets = release.LeakTargets(
        solution_lines=student_targets.solution_lines,
        hidden_test_names=("test_mnist_hidden.py",),
        course_secret=secret,
        markers=True,
    )
    files = {
        "README.md": b"clean\n",
        "tests/test_public.py": f"import numpy as np\n\n    {solution.code}  # copied\n".encode(),
        "handout.md": b"see\nalso test_mnist_hidden.py\n",
        "notes.txt": f"key: {secret}\n".encode(),
        "data/blob.bin": b"\0\1" + secret.encode() + b"\0",
        "tests/test_mnist_hidden.py": b"x = 1\n",
        "scratchnet/forward.py": b"    # END SOLUTION\n",
    }
    found = {(leak.path, leak.line) for leak in release.find_leaks(files, targets)}
    assert found == {
        ("tests/test_public.py", 3),
        ("handout.md", 2),
        ("notes.txt", 1),
        ("data/blob.bin", 0),
        ("tests/test_mnist_hidden.py", 0),
        ("scratchnet/forward.py", 1),
    }
    messages = "\n".join(str(leak) for leak in release.find_leaks(files, targets))
    assert f"{solution.filename}:{solution.line}" in messages
    assert secret not in messages


def test_planted_leak_stops_the_build(tmp_path, student_targets):
    """Does a leak stop the build before the tree or the zip is written?"""
    solution = student_targets.solution_lines[0]
    files = {"scratchnet/__init__.py": b"", "tests/test_x.py": f"{solution.code}\n".encode()}
    out = tmp_path / "student"
    with pytest.raises(release.LeakError, match=r"tests/test_x\.py:1: solution code from "):
        release.publish("student", files, out, targets=student_targets)
    assert not out.exists()
    assert not (tmp_path / "student.zip").exists()


def test_missing_harness_module_is_reported():
    """Is an import-time import of an nnkit module that does not ship reported (and a lazy one not)?"""
    files = {
        "nnkit/__init__.py": b"",
        "nnkit/local.py": b"from nnkit.sandbox.invoke import invoke\nfrom nnkit import proxy\n",
        "nnkit/proxy.py": b"def f():\n    from nnkit.sandbox.backend import run\n",
    }
    assert release.missing_harness_imports(files) == [
        "nnkit/local.py:1 imports nnkit.sandbox.invoke, but nnkit/sandbox/invoke.py is not in STUDENT_HARNESS"
    ]


# ---------------------------------------------------------------- releases


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return release.build_student(tmp_path_factory.mktemp("dist") / "student")


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    return release.build_solution(tmp_path_factory.mktemp("dist") / "solution")


def released(build):
    """(files of the tree, files of the zip) of a release."""
    return release.tree_files(build.tree, ""), release.zip_entries(
        build.zip_path.read_bytes(), release.ZIP_FOLDERS[build.kind]
    )


def hidden_test_names():
    names = {p.name for p in release.HIDDEN_TESTS_DIR.rglob("*") if p.is_file()}
    public = {p.name for p in release.PUBLIC_TESTS_DIR.rglob("*") if p.is_file()}
    return names - public - release.GENERIC_TEST_NAMES


def test_student_release_contents(student):
    """Does the student release hold the template package, public tests, data, handout and harness?"""
    tree, entries = released(student)
    assert tree == entries
    for name in release.MNIST_FILES:
        assert tree[f"data/mnist/{name}"] == (ROOT / "data" / "mnist" / name).read_bytes()
    for path in sorted(TEMPLATE_PACKAGE.glob("*.py")):
        assert tree[f"{CFG.package}/{path.name}"] == path.read_bytes()
    for path in sorted(release.PUBLIC_TESTS_DIR.glob("test_*.py")):
        assert tree[f"tests/{path.name}"] == path.read_bytes()
    for name, source in release.RELEASE_INPUTS.items():
        assert tree[name] == source.read_bytes()
    for name in release.STUDENT_HARNESS:
        assert (f"nnkit/{name}" in tree) == (ROOT / "nnkit" / name).exists()
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in tree)


def test_student_release_has_no_solution_secret_or_hidden_name(student, student_targets):
    """Is every solution line, hidden test name and the secret absent from the tree and the zip?"""
    secret = load_course_secret().encode()
    names = hidden_test_names()
    for files in released(student):
        assert release.find_leaks(files, student_targets) == []
        for path, data in files.items():
            assert secret not in data, path
            assert Path(path).name not in names, path
            assert not any(name.encode() in data for name in names), path
            assert b"# BEGIN SOLUTION" not in data and b"# END SOLUTION" not in data, path


def test_zip_is_deterministic(student, tmp_path):
    """Does a rebuild give a byte-identical zip of sorted regular files with a fixed timestamp?"""
    again = release.build_student(tmp_path / "student", check=False)
    assert again.zip_path.read_bytes() == student.zip_path.read_bytes()
    with zipfile.ZipFile(student.zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    for info in infos:
        assert info.date_time == release.ZIP_DATE_TIME
        assert (info.external_attr >> 16) == 0o100644, info.filename
        assert not info.is_dir()


def test_solution_release_is_the_reference_without_markers(solution):
    """Does the solution release hold the reference package with only the marker lines removed?"""
    tree, entries = released(solution)
    assert tree == entries
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name in later_modules():  # a later assignment's: never shipped with this one
            assert f"{CFG.package}/{path.name}" not in tree
            continue
        assert tree[f"{CFG.package}/{path.name}"].decode("utf-8") == without_markers(text)
    secret = load_course_secret().encode()
    for path, data in tree.items():
        assert b"BEGIN SOLUTION" not in data and b"END SOLUTION" not in data, path
        assert secret not in data, path


def test_solution_and_student_releases_differ_only_in_the_package(student, solution):
    """Do the two releases hold the same files, and differ only in the graded files and the notebook?"""
    student_tree, _ = released(student)
    solution_tree, _ = released(solution)
    assert set(student_tree) == set(solution_tree)
    differing = {name for name in student_tree if student_tree[name] != solution_tree[name]}
    assert differing == {f"{CFG.package}/{name}" for name in GRADED} | {"notebook.ipynb"}


def test_make_check_runs_the_parts_in_order_and_ends_with_grouped_causes(student, tmp_path):
    """Does the student's `make check` run activations, forward, backward, training in the config's order,
    and end with the points per part and the failures grouped by likely cause, with no short summary
    listing them again?"""
    import subprocess
    import sys

    from nnkit.course.causes import catalogue
    from tests.mutation import MUTANTS_DIR, load_entry, materialize

    desk = tmp_path / "desk"
    shutil.copytree(student.tree, desk)
    mutant = materialize(load_entry(MUTANTS_DIR / "db_keepdims.toml"), tmp_path / "mutant")
    for name in GRADED:
        shutil.copyfile(mutant / name, desk / CFG.package / name)
    # The release's own Makefile, with this interpreter instead of a fresh .venv (README.md: a stamp that exists).
    run = subprocess.run(["make", "--no-print-directory", "check", f"PY={sys.executable}", "STAMP=README.md"],
                         cwd=desk, capture_output=True, text=True, timeout=600,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    out = run.stdout
    assert run.returncode != 0 and "Traceback" not in out, out[-3000:] + run.stderr[-2000:]
    files = [line.split()[0] for line in out.splitlines() if line.startswith("tests/test_")]
    assert files == [f"tests/test_{name}.py" for name in ("activations", "forward", "backward", "train")], files
    assert "short test summary info" not in out
    summary = out[out.index("scratchnet: points per part"):].splitlines()[1:]
    parts = [line.split()[0] for line in summary[:len(CFG.parts)]]
    assert parts == list(CFG.parts)
    grouped = summary[len(CFG.parts):]
    assert grouped[:2] == ["", "  backward:"]
    assert grouped[2].startswith("    Likely cause of ") and grouped[2].endswith(catalogue()["db_keepdims"].text)
    assert grouped[3].startswith("      tests: test_linear_backward_shapes, ")
    # One cause, named by every failure it explains (each "Likely cause: ...") and once in the summary.
    assert out.count(catalogue()["db_keepdims"].text) == out.count("Likely cause:") + 1 > 2
    assert "failed" in grouped[-1] and "passed" in grouped[-1] and grouped[-1].startswith("="), grouped[-1]
