"""Do the public and hidden suites carry the markers the grader scores them by?

The suites are collected the way the grader collects them (pytest with the
nnkit.grading.harness plugin, in a subprocess), and every collected test's part,
points and gate are read from its markers. The points of a part, public and
hidden together, must add up to its entry in the assignment config; a gate
test is worth no points (a gate is a condition on the part, see nnkit.grading.gates)
and the handout's grading section names it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from nnkit.course.config import ASSIGNMENT_DIR, ROOT, TESTS_DIR, load_config
from tests.mutation import GATES_DIR

pytestmark = pytest.mark.every_assignment

SUITES = TESTS_DIR
MNIST_TEST = SUITES / "hidden" / "test_mnist.py"
HANDOUT = ASSIGNMENT_DIR / "handout.md"
MNIST_POINTS = 10.0
"""Points of the last part (training) that the MNIST test carries; counted only while its file is missing."""

COLLECT = r"""
import json, sys
import pytest
from nnkit.grading.harness import gate_of, is_hidden, part_of, points_of
from nnkit.course.config import TESTS_DIR

class Dump:
    items = []
    def pytest_collection_finish(self, session):
        self.items = [{
            "nodeid": item.nodeid,
            "part": part_of(item),
            "points": points_of(item),
            "points_markers": len(list(item.iter_markers("points"))),
            "gate": gate_of(item),
            "name": item.name,
            "hidden": is_hidden(item),
            "fixtures": list(item.fixturenames),
        } for item in session.items]

dump = Dump()
code = pytest.main([sys.argv[2], "--collect-only", "-q", "-p", "nnkit.grading.harness", "-p", "no:cacheprovider"],
                   plugins=[dump])
with open(sys.argv[1], "w") as f:
    json.dump({"exit_code": int(code), "items": dump.items}, f)
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Every test of both suites, as collected by pytest with the harness plugin."""
    out = tmp_path_factory.mktemp("collect") / "items.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "solutions"), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", COLLECT, str(out), str(SUITES)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert out.exists(), f"collecting {SUITES} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert data["exit_code"] == 0, f"collecting {SUITES} reported errors:\n{proc.stdout[-3000:]}"
    return data["items"]


def test_both_suites_have_tests_for_every_part(collected):
    """Does every part have public tests and hidden tests?"""
    parts = load_config().parts
    for hidden in (False, True):
        suite = "hidden" if hidden else "public"
        present = {item["part"] for item in collected if item["hidden"] == hidden}
        missing = [part for part in parts if part not in present]
        assert not missing, f"the {suite} suite has no tests for {missing}"


def test_every_test_has_a_part_and_positive_points(collected):
    """Is every test marked with a known part and exactly one points marker, positive except on a gate (zero)?"""
    parts = load_config().parts
    bad = [f"{item['nodeid']}: part {item['part']!r}, points {item['points']:g}, "
           f"{item['points_markers']} points markers{', gate' if item['gate'] else ''}"
           for item in collected
           if item["part"] not in parts or item["points_markers"] != 1
           or not (item["points"] == 0 if item["gate"] else item["points"] > 0)]
    assert not bad, "tests with a missing or invalid part/points marker:\n" + "\n".join(bad)


def test_every_gate_is_in_the_handout(collected):
    """Does the handout's grading section name every gate of the suites, with its test, before students submit?
    An assignment whose corpus has gate entries (tests/corpus/<assignment>/gates/) must have a gate."""
    gates = [item for item in collected if item["gate"]]
    if GATES_DIR.is_dir() and any(GATES_DIR.glob("*.toml")):
        assert gates, f"no gate in the suites, but {GATES_DIR} holds gate entries (Assignment 1's backward part has one)"
    if not gates:
        return
    handout = HANDOUT.read_text()
    grading = handout[handout.index("## 11. How grading works"):]
    missing = [f"{item['nodeid']} ({item['gate']!r})" for item in gates
               if f"| {item['gate']} | `{item['name']}`" not in grading]
    assert not missing, "gates missing from the handout's table of gates: " + ", ".join(missing)


def test_points_add_up_to_the_config(collected):
    """Do the public and hidden points of each part add up to config [points] (MNIST included)?"""
    config = load_config()
    total = defaultdict(float)
    for item in collected:
        total[item["part"]] += item["points"]
    expected = dict(config.points)
    if not MNIST_TEST.exists():
        expected[config.parts[-1]] -= MNIST_POINTS
    wrong = {part: (total.get(part, 0.0), expected[part]) for part in config.parts
             if abs(total.get(part, 0.0) - expected[part]) > 1e-9}
    assert not wrong, "points per part (collected, expected): " + ", ".join(
        f"{part} {got:g} != {want:g}" for part, (got, want) in wrong.items()
    ) + ("" if MNIST_TEST.exists() else f" (without {MNIST_TEST.name}, worth {MNIST_POINTS:g})")


def test_public_tests_never_use_the_reference(collected):
    """Do public tests stay away from the reference fixture (students have no reference)?"""
    offenders = [item["nodeid"] for item in collected if not item["hidden"] and "reference" in item["fixtures"]]
    assert not offenders, f"public tests requesting the reference: {offenders}"
