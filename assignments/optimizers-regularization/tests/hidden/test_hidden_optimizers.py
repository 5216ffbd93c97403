"""Hidden tests of optimizers.py: the initial states and several steps of each
optimizer against the reference on secret networks, gradients, learning rates
and hyperparameters (params and state after every step), and cosine_lr over
a whole secret schedule.

The update rules with known mistakes, which name a likely cause, come from the
public tests (tests/public/test_optimizers.py)."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from nnkit.course.causes import Cause, cause
from nnkit.testing.checks import (
    check_close, check_keys, check_scalar, check_unmodified, describe_call, fail, first_match,
)
from nnkit.testing.inputs import random_params

pytestmark = pytest.mark.part("optimizers")


PUBLIC_DIR = Path(__file__).resolve().parent.parent / "public"
"""The public suite, beside this one."""


def _public_module():
    spec = importlib.util.spec_from_file_location("nnkit_public_test_optimizers",
                                                  PUBLIC_DIR / "test_optimizers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


public = _public_module()
DEFAULTS, MOMENTS, VARIANTS = public.DEFAULTS, public.MOMENTS, public.VARIANTS


def secret_problem(rng, steps, sizes=None):
    """Secret params, gradients (a few entries tiny, where eps matters) and learning rates changing per step."""
    sizes = sizes or [int(rng.integers(2, 8)) for _ in range(int(rng.integers(2, 5)))]
    params = random_params(rng, sizes, scale=float(rng.uniform(0.5, 2.0)), bias_scale=0.5)
    grads_list = []
    for _ in range(steps):
        grads = {k: rng.normal(0.0, float(rng.uniform(0.1, 3.0)), size=v.shape) for k, v in params.items()}
        grads["b1"].reshape(-1)[0] = float(rng.uniform(1e-10, 1e-8))
        grads_list.append(grads)
    lr0 = float(rng.uniform(1e-3, 0.3))
    return params, grads_list, [lr0 * float(rng.uniform(0.3, 1.0)) for _ in range(steps)]


def secret_hyper(rng, name):
    return {"momentum": {"beta": float(rng.uniform(0.3, 0.99))},
            "rmsprop": {"rho": float(rng.uniform(0.5, 0.999)), "eps": float(10 ** rng.uniform(-8, -3))},
            "adam": {"beta1": float(rng.uniform(0.5, 0.95)), "beta2": float(rng.uniform(0.9, 0.9999)),
                     "eps": float(10 ** rng.uniform(-8, -3))}}[name]


def check_steps_against_reference(submission, reference, name, params, grads_list, lrs, given):
    """Each step of the student's ``name``_step, from the params and state the previous one left, against the
    reference's step from the same params and state."""
    opt = reference.optimizers
    hyper = {**DEFAULTS[name], **given}
    state = getattr(opt, f"{name}_init")(params)
    variants = {v: public.trajectory(name, params, grads_list, lrs, hyper, v) for v in VARIANTS[name]}
    current = {k: v.copy() for k, v in params.items()}
    for step, (grads, lr) in enumerate(zip(grads_list, lrs)):
        got = submission.call(f"{name}_step", current, grads, state, lr, **given)
        what = describe_call(f"{name}_step(params, grads, state, lr{''.join(', ' + k for k in given)}) at step "
                             f"{step + 1} of {len(lrs)}", params=current)
        if got.value is not None:
            fail(what, "None (the update happens in place)", type(got.value).__name__)
        expected, expected_state = {k: v.copy() for k, v in current.items()}, _copy_state(state)
        getattr(opt, f"{name}_step")(expected, grads, expected_state, lr, **given)
        check_unmodified(grads, got.args[1], what=what, name="grads")
        new_params = check_keys(got.args[0], list(params), what=what + ": params after the call")
        new_state = check_keys(got.args[2], list(expected_state), what=what + ": state after the call",
                               hint=cause("optimizer_state_layout"))
        if all(isinstance(new_params[k], np.ndarray) and np.array_equal(new_params[k], current[k]) for k in params):
            fail(what + ": params after the call", "every parameter moved", "params unchanged",
                 cause("optimizer_not_in_place"))
        if name == "adam" and new_state["t"] != expected_state["t"]:
            untouched = public.moments_unchanged(state, new_state, params)  # the whole state, not only t
            hint = {state["t"]: cause("optimizer_state_not_updated") if untouched else cause("adam_t_not_incremented"),
                    state["t"] + len(params): cause("adam_t_per_key")}.get(new_state["t"], "state['t'] += 1 per step")
            fail(what + ": state['t'] after the call", str(expected_state["t"]), repr(new_state["t"]), hint)
        for key in params:
            hint = first_match(new_params[key], [(c, variants[v][step][0][key]) for v, c in
                                                 VARIANTS[name].items()],
                               f"the update rule of {name}_step's docstring, from the state the previous step left")
            if not given and not isinstance(hint, Cause) and not public.close(new_params[key], expected[key]):
                again = submission.call(f"{name}_step", current, grads, state, lr, **DEFAULTS[name]).args[0]
                if public.close(again.get(key), expected[key]):
                    hint = cause("optimizer_wrong_defaults")  # right when the defaults are passed explicitly
            check_close(new_params[key], expected[key], what=f"{what}: params[{key!r}]", reveal=False, hint=hint)
        for m in MOMENTS[name]:
            moment = check_keys(new_state[m], list(params), what=f"{what}: state[{m!r}]",
                                hint=cause("optimizer_state_layout"))
            for key in params:
                hint = cause("optimizer_state_not_updated") if np.array_equal(moment[key], state[m][key]) else \
                    first_match(moment[key], [(c, variants[v][step][1][m][key]) for v, c in
                                              VARIANTS[name].items()], f"state[{m!r}][k] holds the new moment")
                check_close(moment[key], expected_state[m][key], what=f"{what}: state[{m!r}][{key!r}]", reveal=False,
                            hint=hint)
        current, state = new_params, new_state


def _copy_state(state):
    return {k: ({kk: vv.copy() for kk, vv in v.items()} if isinstance(v, dict) else v) for k, v in state.items()}


@pytest.mark.points(1)
def test_init_matches_reference(submission, reference, rng):
    """Do the three *_init functions return the reference's state for a secret network?"""
    params = random_params(rng, [int(rng.integers(2, 9)) for _ in range(int(rng.integers(2, 5)))], scale=1.0,
                           bias_scale=0.5)
    for name in ("momentum", "rmsprop", "adam"):
        got = submission.call(f"{name}_init", params)
        what = describe_call(f"{name}_init(params)", params=params)
        expected = getattr(reference.optimizers, f"{name}_init")(params)
        state = check_keys(got.value, list(expected), what=what, hint=cause("optimizer_state_layout"))
        for m in MOMENTS[name]:
            moment = check_keys(state[m], list(params), what=f"{what}: state[{m!r}]",
                                hint=cause("optimizer_state_layout"))
            for key in params:
                check_close(moment[key], expected[m][key], what=f"{what}: state[{m!r}][{key!r}]", rtol=0, atol=0,
                            reveal=False, hint=cause("optimizer_state_layout"))
        if name == "adam" and not (isinstance(state["t"], int) and state["t"] == 0):
            fail(what + ": state['t']", "0 (an int)", repr(state["t"]), cause("optimizer_state_layout"))
        check_unmodified(params, got.args[0], what=what, name="params")


@pytest.mark.points(1)
@pytest.mark.parametrize("hyper", ["defaults", "secret"])
@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_steps_match_reference(submission, reference, rng, name, hyper):
    """Do several steps on a secret network, with secret learning rates (and secret hyperparameters, or the
    defaults), match the reference's steps, params and state alike?"""
    params, grads_list, lrs = secret_problem(rng, int(rng.integers(4, 8)))
    given = {} if hyper == "defaults" else secret_hyper(rng, name)
    check_steps_against_reference(submission, reference, name, params, grads_list, lrs, given)


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_steps_on_other_shapes(submission, reference, rng, name):
    """Do the steps match the reference on a secret network with a single unit per layer and on a wide one?"""
    for sizes in ([1, 1, 1], [int(rng.integers(30, 60)), int(rng.integers(30, 60)), int(rng.integers(5, 12))]):
        params, grads_list, lrs = secret_problem(rng, 3, sizes)
        check_steps_against_reference(submission, reference, name, params, grads_list, lrs, {})


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_many_steps_match_reference(submission, reference, rng, name):
    """After 40 steps with secret gradients and a cosine schedule, are params and state the reference's (Adam's bias
    correction fading as t grows)?"""
    params, grads_list, _ = secret_problem(rng, 40, [int(rng.integers(2, 6)) for _ in range(3)])
    lr0 = float(rng.uniform(1e-3, 0.1))
    lrs = [reference.optimizers.cosine_lr(lr0, k, 40) for k in range(40)]
    check_steps_against_reference(submission, reference, name, params, grads_list, lrs, {})


@pytest.mark.points(1)
@pytest.mark.parametrize("lr_min", ["default", "secret"])
def test_cosine_lr_matches_reference(submission, reference, rng, lr_min):
    """Does cosine_lr match the reference at every step of a secret schedule (with lr_min 0 or a secret one)?"""
    lr0, total = float(rng.uniform(1e-3, 1.0)), int(rng.integers(5, 60))
    extra = () if lr_min == "default" else (float(rng.uniform(0.0, lr0)),)
    low = extra[0] if extra else 0.0
    values = submission.map("cosine_lr", [(lr0, step, total, *extra) for step in range(total + 1)])
    for step, value in enumerate(values):
        what = f"cosine_lr(lr0, step={step}, total_steps={total}{', lr_min' if extra else ''})"
        expected = reference.optimizers.cosine_lr(lr0, step, total, *extra)
        c, c2 = math.cos(math.pi * step / total), math.cos(2 * math.pi * step / total)
        wrong = [low + (lr0 - low) * c, low + (lr0 - low) * (1 + c), low + 0.5 * (lr0 - low) * (1 + c2),
                 *(low + 0.5 * (lr0 - low) * (1 + math.cos(math.pi * (step + k) / total)) for k in (1, -1))]
        near = lambda x: isinstance(value, float) and np.isclose(value, x) and not np.isclose(x, expected)  # noqa: E731
        ignored = (0.5 * lr0 * (1 + c), low + 0.5 * lr0 * (1 + c))  # lr0 annealed to 0, lr_min left out or on top
        hint = (cause("cosine_ignores_lr_min") if extra and any(near(x) for x in ignored) else
                cause("cosine_formula") if any(near(x) for x in wrong) else
                "lr_min + 0.5 * (lr0 - lr_min) * (1 + cos(pi * step / total_steps)), as a float")
        if not isinstance(value, float):
            fail(what, "a Python float", type(value).__name__, "return float(...)")
        check_scalar(value, expected, what=what, rtol=1e-12, atol=1e-15, reveal=False, hint=hint)
