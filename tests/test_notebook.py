"""Specification of the walkthrough notebook: its Otter Assign master and nnkit.releases.notebook's build.

The fast tests read the master only. The slow ones run ``otter assign``
(about 15 to 25 s a build: it executes the whole notebook) and execute the
student notebook with nbclient, the way a student's Jupyter would.
"""
import ast
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from nnkit.releases import release
from nnkit.course.config import ROOT, load_config
from nnkit.releases.notebook import (
    MASTER, NOTEBOOK_NAME, NotebookBuildError, assign_environment, build_notebook, lay_out_release,
    run_assign, write_kernel_spec,
)
from nnkit.course.config import TEMPLATE_ROOT

RELEASE_MAKEFILE = ROOT / "assignments" / "nn-from-scratch" / "release" / "Makefile"
TEMPLATE_PACKAGE = TEMPLATE_ROOT / "scratchnet"


def read(path):
    return nbformat.read(path, as_version=4)


def is_raw(cell, first_line):
    return cell.cell_type == "raw" and cell.source.strip().splitlines()[0].strip() == first_line


def question_blocks(nb):
    """Question name -> the master's cells from its BEGIN QUESTION cell to its END QUESTION cell."""
    blocks, current, name = {}, None, None
    for cell in nb.cells:
        if is_raw(cell, "# BEGIN QUESTION"):
            name = yaml.safe_load(cell.source.split("\n", 1)[1])["name"]
            current = [cell]
        elif current is not None:
            current.append(cell)
            if is_raw(cell, "# END QUESTION"):
                blocks[name], current = current, None
    return blocks


def cells_between(cells, begin, end):
    inside, found = False, []
    for cell in cells:
        if is_raw(cell, begin):
            inside = True
        elif is_raw(cell, end):
            inside = False
        elif inside:
            found.append(cell)
    return found


def solution_lines(nb):
    """Non-blank lines of every cell inside the master's SOLUTION regions."""
    cells = cells_between(nb.cells, "# BEGIN SOLUTION", "# END SOLUTION")
    return [line.strip() for cell in cells for line in cell.source.splitlines() if line.strip()]


def string_constants(source):
    return [node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def make_check_options():
    """The options of `make check` in the release Makefile: `pytest tests <these> $(ARGS)`."""
    line = next(l for l in RELEASE_MAKEFILE.read_text().splitlines() if "-m pytest tests" in l)
    return line.split("-m pytest tests", 1)[1].replace("$(ARGS)", "").split()


def public_test_file(part):
    return f"test_{Path(load_config().files[part]).stem}.py"


def assert_runs_public_tests(source, part):
    """Does this test code run the part's public test file with pytest, with the options of `make check`?"""
    strings = string_constants(source)
    options = make_check_options()
    assert "pytest" in strings, f"the check of {part} does not run pytest:\n{source}"
    assert any(s == public_test_file(part) or s.endswith("/" + public_test_file(part)) for s in strings), (
        f"the check of {part} does not name {public_test_file(part)}:\n{source}")
    windows = [strings[i:i + len(options)] for i in range(len(strings))]
    assert options in windows, f"the check of {part} lacks the options of `make check` {options}:\n{source}"


def text_of(nb):
    """Every cell source and the notebook's metadata (where otter keeps the checks), as one string."""
    return "\n".join(cell.source for cell in nb.cells) + "\n" + json.dumps(nb.metadata)


# ---------------------------------------------------------------- the master


def test_master_config_keeps_checks_off_tests_folder():
    """Does the master keep its checks in the notebook's metadata, since tests/ holds `make check`'s files?"""
    nb = read(MASTER)
    assert is_raw(nb.cells[0], "# ASSIGNMENT CONFIG")
    config = yaml.safe_load(nb.cells[0].source)
    assert config["tests"]["files"] is False
    assert config["init_cell"] is False
    setup = [c.source for c in nb.cells if c.cell_type == "code" and "otter.Notebook(" in c.source]
    assert len(setup) == 1 and "tests_dir=None" in setup[0], (
        "the notebook must create its grader with tests_dir=None; otherwise otter looks for "
        "tests/<question>.py in the pytest folder")


def test_master_checks_every_part_with_its_public_tests():
    """Does each graded part have one question whose test cell runs its public test file like `make check`?"""
    cfg = load_config()
    blocks = question_blocks(read(MASTER))
    autograded = {name for name, cells in blocks.items() if cells_between(cells, "# BEGIN TESTS", "# END TESTS")}
    assert autograded == set(cfg.parts)
    for part in cfg.parts:
        tests = cells_between(blocks[part], "# BEGIN TESTS", "# END TESTS")
        assert len(tests) == 1, f"question {part} has {len(tests)} test cells, expected 1"
        assert (release.PUBLIC_TESTS_DIR / public_test_file(part)).is_file()
        assert_runs_public_tests(tests[0].source, part)


def test_master_solution_regions_hold_only_written_answers():
    """Are the master's solution regions markdown answers, never code (the code lives in the .py files)?"""
    cells = cells_between(read(MASTER).cells, "# BEGIN SOLUTION", "# END SOLUTION")
    assert cells, "the master has no solution region, so the stripping test below would prove nothing"
    assert {cell.cell_type for cell in cells} == {"markdown"}


# ---------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both notebooks, each from its own build_notebook call, and the seconds each build took."""
    notebooks, seconds = {}, {}
    for kind in ("student", "solution"):
        start = time.perf_counter()
        notebooks[kind] = build_notebook(kind, tmp_path_factory.mktemp(kind))
        seconds[kind] = time.perf_counter() - start
    print(f"\nbuild_notebook: " + ", ".join(f"{kind} {s:.1f} s" for kind, s in seconds.items()))
    return notebooks


@pytest.mark.slow
def test_build_writes_valid_notebooks_into_release(built, tmp_path):
    """Does build_notebook write a valid notebook.ipynb into the release folder, with stable cell ids?"""
    for kind, path in built.items():
        assert path.name == NOTEBOOK_NAME
        nb = read(path)
        nbformat.validate(nb)
        assert [cell.id for cell in nb.cells] == [f"cell-{i:02d}" for i in range(len(nb.cells))]
        assert not any(cell.get("outputs") for cell in nb.cells), f"the {kind} notebook ships with outputs"


@pytest.mark.slow
def test_student_notebook_has_no_model_answer(built):
    """Is every line of the master's solution regions missing from the student notebook, yet in the solution one?"""
    lines = solution_lines(read(MASTER))
    student, solution = text_of(read(built["student"])), text_of(read(built["solution"]))
    assert lines
    assert [line for line in lines if line not in solution] == []
    assert [line for line in lines if line in student] == []


@pytest.mark.slow
def test_release_leak_check_accepts_both_notebooks(built):
    """Would the release builder's leak check (solution code, markers, hidden tests, secret) accept them?"""
    for kind, path in built.items():
        targets = release.leak_targets(release.POLICIES[kind])
        leaks = release.find_leaks({NOTEBOOK_NAME: path.read_bytes()}, targets)
        assert leaks == [], "\n".join(map(str, leaks))


@pytest.mark.slow
def test_check_cells_run_public_tests_through_harness(built):
    """Does each notebook check every part with grader.check, running its public tests like `make check`?"""
    for kind, path in built.items():
        nb = read(path)
        sources = [cell.source.strip() for cell in nb.cells if cell.cell_type == "code"]
        for part in load_config().parts:
            assert f'grader.check("{part}")' in sources, f"the {kind} notebook has no check cell for {part}"
            assert_runs_public_tests(nb.metadata["otter"]["tests"][part], part)


# ---------------------------------------------------------------- running the student notebook


def execute_in_release(notebook, package_dir, tmp_path, monkeypatch, allow_errors=False):
    """Execute ``notebook`` in a release-like folder around ``package_dir``, as a student's Jupyter would.

    Unlike otter's run, nothing points the checks elsewhere: they read tests/ and the data in data/.
    """
    from nbclient import NotebookClient

    tree = tmp_path / "release"
    lay_out_release(tree, notebook, package_dir)
    (tree / "data").symlink_to(ROOT / "data", target_is_directory=True)
    write_kernel_spec(tmp_path / "jupyter")
    env = assign_environment(tmp_path, tree)
    for name in ("NNKIT_PUBLIC_TESTS", "SCRATCHNET_MNIST_DIR", "PYTHONPATH"):
        env.pop(name, None)
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = read(tree / NOTEBOOK_NAME)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(tree)}}).execute()
    return nb


def check_reports(nb):
    """Part -> the plain-text output of its grader.check cell."""
    reports = {}
    for cell in nb.cells:
        match = re.fullmatch(r'grader\.check\("(\w+)"\)', cell.source.strip()) if cell.cell_type == "code" else None
        if match:
            texts = [o["data"]["text/plain"] for o in cell.outputs if "text/plain" in o.get("data", {})]
            reports[match.group(1)] = "\n".join(texts)
    return reports


@pytest.mark.slow
def test_student_notebook_runs_against_reference(built, tmp_path, monkeypatch):
    """With the reference in scratchnet/, does every cell run, every check pass and every plot draw?"""
    nb = execute_in_release(built["student"], None, tmp_path, monkeypatch)
    reports = check_reports(nb)
    assert set(reports) == set(load_config().parts)
    for part, report in reports.items():
        assert report == f"{part} results: All test cases passed!", report
    for cell in nb.cells:
        if cell.cell_type == "code" and "plots.plot_" in cell.source:
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), f"no figure from:\n{cell.source}"


@pytest.mark.slow
def test_student_notebook_checks_report_stubs(built, tmp_path, monkeypatch):
    """With the stubs in scratchnet/, does every check fail and say which functions are not implemented yet?"""
    nb = execute_in_release(built["student"], TEMPLATE_PACKAGE, tmp_path, monkeypatch, allow_errors=True)
    reports = check_reports(nb)
    assert set(reports) == set(load_config().parts)
    for part, report in reports.items():
        assert report.startswith(f"{part} results:") and "All test cases passed" not in report, report
        assert "is not implemented yet" in report, report


# ---------------------------------------------------------------- failures stop the build


def small_master(tmp_path, extra_code=None):
    """The master cut down to its config, its grader cell, an optional cell and the activations question."""
    nb = read(MASTER)
    grader = [c for c in nb.cells if c.cell_type == "code" and "otter.Notebook(" in c.source]
    extra = [nbformat.v4.new_code_cell(extra_code, id="extra")] if extra_code else []
    nb.cells = [nb.cells[0], *grader, *extra, *question_blocks(nb)["activations"]]
    path = tmp_path / "master.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_assign_fails_when_a_check_fails(tmp_path):
    """Does the build stop, quoting the failing tests, when a check fails (here: against the stubs)?"""
    with pytest.raises(NotebookBuildError, match="otter assign failed") as info:
        run_assign(tmp_path / "work", small_master(tmp_path), package_dir=TEMPLATE_PACKAGE)
    assert "sigmoid() is not implemented yet" in str(info.value)


@pytest.mark.slow
def test_assign_fails_when_a_cell_raises(tmp_path):
    """Does the build stop when any cell raises, even though every check passes?"""
    master = small_master(tmp_path, 'raise RuntimeError("a cell of the walkthrough is broken")')
    with pytest.raises(NotebookBuildError, match="otter assign failed") as info:
        run_assign(tmp_path / "work", master)
    assert "a cell of the walkthrough is broken" in str(info.value)


def test_unknown_kind_is_refused(tmp_path):
    """Does build_notebook name the valid kinds for an unknown one, before running anything?"""
    with pytest.raises(ValueError, match="'solution', 'student'"):
        build_notebook("autograder", tmp_path)
