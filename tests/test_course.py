"""The course: every assignment is a complete folder, the engine names none of
them, and what one assignment releases or stages holds nothing of a later one."""
import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnkit.course.config import (
    ASSIGNMENTS_DIR, ROOT, ConfigError, course_assignments, default_assignment, earlier_graded, later_modules,
    load_config,
)

ASSIGNMENT_FILES = ("config.toml", "contract.py", "end_to_end.py", "causes.toml", "handout.md", "notebook.ipynb",
                    "release/Makefile", "release/README.md", "release/pytest.ini")


def _contract(name: str):
    spec = importlib.util.spec_from_file_location(f"contract_{name}", ASSIGNMENTS_DIR / name / "contract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", course_assignments())
def test_every_assignment_is_a_complete_folder(name):
    """Does each assignment of course.toml hold its config, contract, end-to-end reference, catalogue,
    suites, handout, notebook and release inputs, with a committed template and examples?"""
    folder = ASSIGNMENTS_DIR / name
    missing = [f for f in ASSIGNMENT_FILES if not (folder / f).is_file()]
    missing += [f"tests/{suite}/" for suite in ("public", "hidden") if not any((folder / "tests" / suite).glob("test_*.py"))]
    assert not missing, f"assignments/{name} lacks {missing}"
    cfg = load_config(folder / "config.toml")
    package = ROOT / "student_template" / name / cfg.package
    assert all((package / f).is_file() for f in cfg.files.values()), f"run `make template ASSIGNMENT={name}`"
    assert (ROOT / "examples" / name / "reference").is_dir() and (ROOT / "examples" / name / "template").is_dir()
    assert cfg.trainer, f"assignments/{name}/config.toml names no trainer for `make train`"


@pytest.mark.parametrize("name", course_assignments())
def test_contract_agrees_with_the_config(name):
    """Are the contract's parts and modules those of config.toml, and does every function have a
    signature, an owning part and (if it takes a Generator) a parameter of that name?"""
    cfg, contract = load_config(ASSIGNMENTS_DIR / name / "config.toml"), _contract(name)
    assert tuple(contract.PARTS) == cfg.parts
    assert {part: f"{module}.py" for part, module in contract.MODULE_OF_PART.items()} == cfg.files
    assert set(contract.FUNCTIONS) == set(contract.SIGNATURES)
    assert set(contract.FUNCTIONS.values()) <= set(cfg.parts)
    for function, argument in contract.RNG_ARGUMENTS.items():
        assert argument in contract.SIGNATURES[function], (function, argument)


def test_graded_files_belong_to_one_assignment_each():
    """Is each file of the package graded by one assignment at most?"""
    seen = {}
    for name in course_assignments():
        for filename in load_config(ASSIGNMENTS_DIR / name / "config.toml").files.values():
            assert filename not in seen, f"{filename} is graded by {seen[filename]} and {name}"
            seen[filename] = name


def test_the_engine_names_no_function_of_any_assignment():
    """Does nnkit/ call or import no contract function or graded module of any assignment by name?
    (It learns them from the active assignment's folder.)"""
    names = set()
    for name in course_assignments():
        contract = _contract(name)
        names |= set(contract.FUNCTIONS) | {m for m in contract.MODULE_OF_PART.values()}
    found = []
    for path in sorted((ROOT / "nnkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scratchnet":
                imported = {node.module.split(".")[-1], *(alias.name for alias in node.names)}
                if imported & names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {sorted(imported & names)}")
            elif isinstance(node, ast.Attribute) and node.attr in names and isinstance(node.value, ast.Name) \
                    and node.value.id in names | {"scratchnet", "reference"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not found, found


def test_a_release_holds_nothing_of_later_assignments(tmp_path):
    """Do the template and the staged packages of an assignment leave out what later assignments
    introduce, and ship the earlier assignments' graded files complete?"""
    names = course_assignments()
    if len(names) < 2:
        pytest.skip("the course has one assignment")
    first, second = names[0], names[1]
    assert set(load_config(ASSIGNMENTS_DIR / second / "config.toml").files.values()) <= later_modules(first)
    assert later_modules(names[-1]) == set()
    assert set(earlier_graded(second)) == set(load_config(ASSIGNMENTS_DIR / first / "config.toml").files.values())
    code = ("import json, sys; from nnkit.releases.release import template_files; from nnkit.grading.stage "
            "import provided_modules; from nnkit.course.config import ROOT; "
            "print(json.dumps([sorted(template_files()), [p.name for p in provided_modules(ROOT / 'solutions' / "
            "'scratchnet')], {n: d.decode() for n, d in template_files().items()}]))")
    import json

    for name in (first, second):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "NNKIT_ASSIGNMENT": name})
        assert done.returncode == 0, done.stderr[-2000:]
        files, staged, texts = json.loads(done.stdout)
        shipped = {Path(f).name for f in files}
        assert not shipped & later_modules(name), f"{name}'s template holds {shipped & later_modules(name)}"
        assert not set(staged) & later_modules(name), f"{name} stages {set(staged) & later_modules(name)}"
        for filename in earlier_graded(name):
            text = texts[f"scratchnet/{filename}"]
            assert "NotImplementedError" not in text and "BEGIN SOLUTION" not in text, \
                f"{name} should ship {filename} complete, without markers"


def test_an_unknown_assignment_is_refused_with_the_known_ones():
    """Does ASSIGNMENT=<typo> stop every command with a message listing the assignments?"""
    done = subprocess.run([sys.executable, "-m", "nnkit", "--assignment", "nn-from-scrach", "grade", "x"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "unknown assignment 'nn-from-scrach'" in done.stderr
    assert all(name in done.stderr for name in course_assignments())


def test_the_default_assignment_is_the_first_of_the_course():
    assert default_assignment() == "nn-from-scratch" == course_assignments()[0]


def test_a_bad_course_file_is_a_clear_error(tmp_path, monkeypatch):
    from nnkit.course import config

    bad = tmp_path / "course.toml"
    bad.write_text('assignments = ["a"]\ndefault = "b"\n')
    monkeypatch.setattr(config, "COURSE_PATH", bad)
    with pytest.raises(ConfigError, match="default 'b' is not one of the assignments"):
        config.default_assignment()


@pytest.mark.parametrize("name", course_assignments())
def test_the_handout_states_the_graded_configuration(name):
    """Does each handout state the graded MNIST network, learning rate and threshold of its config.toml
    (so that editing one without the other fails here)?"""
    cfg = load_config(ASSIGNMENTS_DIR / name / "config.toml").mnist
    handout = (ASSIGNMENTS_DIR / name / "handout.md").read_text()
    for shown in (str(list(cfg.layer_sizes)), f"{cfg.lr:g}", f"{cfg.threshold * 100:g}%"):
        assert shown in handout, f"assignments/{name}/handout.md does not state {shown} of [mnist]"
