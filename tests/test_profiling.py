"""Specification of measured calls (nnkit.sandbox.profiling): counted calls, array work, limits, plain results."""
import sys

import numpy as np
import pytest

from nnkit.sandbox.profiling import LimitReached, MeasuredArray, Profile, measured_call

A, B = np.ones((4, 5)), np.ones((5, 3))


def work_of(fn, *args):
    """The work measured_call counts for ``fn(*args)``."""
    return measured_call(fn, list(args), {})[3].work


@pytest.mark.parametrize("product", [
    lambda a, b: a @ b, np.dot, np.matmul, lambda a, b: np.einsum("ij,jk->ik", a, b), lambda a, b: a.T.T @ b,
], ids=["@", "dot", "matmul", "einsum", "views"])
def test_a_product_counts_its_multiply_adds(product):
    """Does a (4, 5) by (5, 3) product count 4 * 5 * 3 = 60, however it is written?"""
    assert work_of(product, A, B) == 60


def test_elementwise_and_reductions_count_their_elements():
    """Does an elementwise operation count the size of its result, and a reduction the size of its input?"""
    assert work_of(lambda a: np.exp(a) + 1.0, A) == 20 + 20
    assert work_of(lambda a: a.sum(axis=0), A) == 20
    assert work_of(lambda a: np.outer(a[0], a[1]), A) == 25


def test_work_follows_arrays_derived_from_the_arguments():
    """Are arrays computed from the arguments (copies, views, results, zeros_like) measured too?"""
    def chain(a, b):
        c = a.copy()
        d = np.zeros_like(c)  # 20
        d += c  # 20
        return (d @ b).sum()  # 60 + 12

    assert work_of(chain, A, B) == 112


def test_views_and_questions_about_arrays_cost_nothing():
    """Do views and facts about an array (np.transpose, np.reshape, np.shape, np.ndim) count no work?"""
    assert work_of(lambda a: (np.transpose(a), np.reshape(a, (20,)), np.shape(a), np.ndim(a), a.T), A) == 0


def test_arrays_made_plain_are_not_seen():
    """Is work on arrays converted with np.asarray invisible (the documented blind spot)?"""
    assert work_of(lambda a, b: np.asarray(a) @ np.asarray(b), A, B) == 0


def test_results_and_arguments_come_back_plain():
    """Does the value (and the arguments as the call left them) come back as plain ndarrays?"""
    value, args, _, _ = measured_call(lambda d: {"out": d["x"] * 2}, [{"x": A}], {})
    assert type(value["out"]) is np.ndarray and type(args[0]["x"]) is np.ndarray
    np.testing.assert_array_equal(value["out"], 2 * A)


def defined_in(path, source: str) -> dict:
    """The names ``source`` defines, compiled as if read from the file ``path``."""
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


def test_calls_of_named_functions_in_the_package_are_counted(tmp_path):
    """Are calls of the named functions of scratchnet/<file> counted, and a same-named function elsewhere not?"""
    forward = defined_in(tmp_path / "scratchnet" / "forward.py", "def forward(x):\n    return x + 1\n")["forward"]
    elsewhere = defined_in(tmp_path / "scratchnet" / "backward.py", "def forward(x):\n    return x\n")["forward"]

    def caller(x):
        return [forward(x) for _ in range(3)] + [elsewhere(x)]

    _, _, _, profile = measured_call(caller, [1.0], {}, count={"forward": "forward.py"})
    assert profile.calls == {"forward": 3}
    _, _, _, profile = measured_call(caller, [1.0], {}, count={"forward": "forward.py"}, max_calls=2)
    assert profile.stopped == "calls" and profile.calls["forward"] == 3


def test_work_limit_stops_the_call_even_when_the_student_catches_it():
    """Is a call stopped once its work passes max_work (value None), even if its code catches the stop?"""
    def stubborn(a):
        for _ in range(100):
            try:
                a = a + 1.0
            except BaseException:  # noqa: BLE001  (what a student might write)
                pass
        return a

    value, _, _, profile = measured_call(stubborn, [A], {}, max_work=100)
    assert value is None and profile.stopped == "work" and profile.work > 100
    assert issubclass(LimitReached, BaseException) and not issubclass(LimitReached, Exception)


def test_without_arrays_only_calls_and_time_are_measured():
    """With arrays=False, are the arguments left plain and the processor time measured?"""
    seen = []
    _, _, _, profile = measured_call(lambda a: seen.append(type(a)), [A], {}, arrays=False)
    assert seen == [np.ndarray] and profile.work == 0 and profile.cpu_seconds >= 0
    _, _, _, profile = measured_call(lambda a: seen.append(type(a)), [A], {})
    assert seen[-1] is MeasuredArray


def test_profile_from_a_worker_is_checked():
    """Is a malformed profile (from the student's process) refused, and a good one read back as it was sent?"""
    good = Profile(calls={"forward": 2}, work=10, operations=3, stopped="", cpu_seconds=0.5)
    assert Profile.from_plain(good.to_plain()) == good
    for bad in ({}, {**good.to_plain(), "work": -1}, {**good.to_plain(), "calls": {"forward": "2"}},
                {**good.to_plain(), "stopped": "bored"}, {**good.to_plain(), "cpu_seconds": float("nan")}):
        with pytest.raises(ValueError):
            Profile.from_plain(bad)


def test_processor_time_limit_stops_the_call():
    """Is a call stopped once it has used max_seconds of processor time, even one that never touches an array?"""
    def spin():
        total = 0
        while True:
            total += 1

    value, _, _, profile = measured_call(spin, [], {}, max_seconds=0.05, arrays=False)
    assert value is None and profile.stopped == "time" and 0.04 < profile.cpu_seconds < 1.0


@pytest.fixture
def own_scratchnet(monkeypatch):
    """The in-process backend imports scratchnet afresh: give the other tests back their copy afterwards."""
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "scratchnet"}
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "scratchnet"]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_submission_measure_reports_a_profile(own_scratchnet):
    """Does Submission.measure bring back the profile: one forward pass of the reference does N * P work?"""
    from nnkit.course.config import ROOT
    from nnkit.testing.inputs import random_params
    from nnkit.grading.local import LocalBackend
    from nnkit.grading.proxy import Submission

    rng = np.random.default_rng(0)
    params = random_params(rng, [6, 5, 3], scale=1.0, bias_scale=0.1)
    X = rng.normal(size=(4, 6))
    got = Submission(LocalBackend(ROOT / "solutions"), "backward").measure("forward", params, X, "tanh",
                                                                             count=("forward",))
    assert got.profile.calls == {"forward": 1} and got.profile.stopped == ""
    assert got.profile.work >= 4 * sum(v.size for v in params.values())
    assert type(got.value[0]) is np.ndarray and got.value[0].shape == (4, 3)
