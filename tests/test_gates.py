"""Specification of gates (nnkit.grading.gates): a failed gate zeroes its part, and only a decided failure does."""
import pytest

from nnkit.grading.gates import GATE_FAILURES, apply_gates, failed_gates
from nnkit.grading.results import SubmissionResult, TestResult

GATE = "backward must compute gradients by backpropagation"


def part_with_gate(kind="failed", gate_output="backward called forward() 11 times"):
    """A backward part (a gate of 0 points, two passing tests, one failing) and a passing forward test."""
    return [
        TestResult("test_forward_cache", "forward", "public", 5.0, True),
        TestResult("test_linear_backward_values", "backward", "public", 1.0, True),
        TestResult("test_backward_gradient_check[1-layer]", "backward", "public", 1.0, False, kind="failed",
                   output="grads['W1'] differs from the finite differences"),
        TestResult("test_backward_is_backpropagation", "backward", "public", 0.0, kind == "passed", kind=kind,
                   output="" if kind == "passed" else gate_output, gate=GATE),
        TestResult("test_backward_matches_reference[relu]", "backward", "hidden", 2.0, True),
    ]


def test_failed_gate_zeroes_every_test_of_its_part_only():
    """Does a failed gate make every test of its part score zero, leaving the other parts alone?"""
    result = SubmissionResult("cheat", tests=apply_gates(part_with_gate()))
    assert result.part_score("backward") == 0
    assert result.part_max("backward") == 4.0
    assert result.part_score("forward") == 5.0


def test_each_zeroed_test_says_why_in_one_line_naming_the_gate():
    """Does each test the gate zeroes say, in one line, the gate's requirement, the gate test and that it passed?"""
    tests = apply_gates(part_with_gate())
    zeroed = [t for t in tests if t.kind == "gated"]
    assert [t.name for t in zeroed] == ["test_linear_backward_values", "test_backward_matches_reference[relu]"]
    for t in zeroed:
        assert t.output.startswith(f"{GATE}: test_backward_is_backpropagation failed")
        assert "passed on its own" in t.output and "\n" not in t.output
        assert not t.passed and t.score == 0


def test_gate_message_starts_with_its_requirement_and_failures_keep_theirs():
    """Does the gate test's message start with the requirement, and a test that failed anyway keep its message?"""
    tests = {t.name: t for t in apply_gates(part_with_gate())}
    gate = tests["test_backward_is_backpropagation"]
    assert gate.output.startswith(GATE) and gate.output.endswith("backward called forward() 11 times")
    assert tests["test_backward_gradient_check[1-layer]"].output == "grads['W1'] differs from the finite differences"


@pytest.mark.parametrize("kind", ["timeout", "crash"])
def test_a_timeout_or_crash_of_the_gate_fails_it(kind):
    """Does a gate whose test timed out or whose test process was killed fail (a crash cannot dodge it)?"""
    assert kind in GATE_FAILURES
    assert SubmissionResult("s", tests=apply_gates(part_with_gate(kind))).part_score("backward") == 0


@pytest.mark.parametrize("kind", ["passed", "not-implemented", "skipped", "grader-error", "not-run"])
def test_a_gate_that_did_not_decide_leaves_its_part_alone(kind):
    """Does a gate that passed, or did not decide (not implemented, skipped, grader error), change nothing?"""
    tests = part_with_gate(kind)
    assert apply_gates(tests) == tests
    assert failed_gates(tests) == {}


def test_a_gate_that_never_ran_leaves_its_part_alone():
    """Does a gate test that never ran (the submission's time budget ran out first) leave its part alone?"""
    tests = part_with_gate("timeout", "not run: the submission's time budget of 300 s ran out")
    assert apply_gates(tests, unreached={3}) == tests


def test_order_of_tests_does_not_matter():
    """Does the gate apply to the tests of its part that come before it as well as after it?"""
    tests = part_with_gate()
    tests.reverse()
    assert SubmissionResult("s", tests=apply_gates(tests)).part_score("backward") == 0


def test_gate_survives_the_json_round_trip():
    """Do the gate field and the "gated" kind survive result.json, so the class report and regrades see them?"""
    result = SubmissionResult("s", tests=apply_gates(part_with_gate()))
    again = SubmissionResult.from_json(result.to_json())
    assert again.tests == result.tests
    assert again.part_score("backward") == 0
