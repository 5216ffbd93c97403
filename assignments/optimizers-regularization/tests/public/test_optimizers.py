"""Public tests of optimizers.py: the state each *_init returns, several steps
of each optimizer against its update rule (params updated in the caller's
dict, the state carried from step to step, grads left alone, a learning rate
that changes between steps as a schedule changes it), the default
hyperparameters, and the cosine schedule at its ends and its middle."""
import math

import numpy as np
import pytest

from nnkit.course.causes import Cause, cause
from nnkit.testing.checks import (
    check_array, check_close, check_keys, check_scalar, check_unmodified, describe_call, fail, first_match,
)
from nnkit.testing.inputs import random_params

pytestmark = pytest.mark.part("optimizers")

DEFAULTS = {"momentum": {"beta": 0.9}, "rmsprop": {"rho": 0.99, "eps": 1e-8},
            "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}}
"""Each optimizer's default hyperparameters (the signature's)."""
MOMENTS = {"momentum": ("v",), "rmsprop": ("s",), "adam": ("m", "v")}
"""The moment dicts of each optimizer's state."""


def rule(name, variant=None):
    """One step of optimizer ``name`` for one array: (p, g, moments, lr, t, hyper) -> (new p, new moments);
    ``variant`` makes a known mistake."""
    def momentum(p, g, mo, lr, t, h):
        b = h["beta"]
        if variant == "dampened":
            v = b * mo[0] + (1 - b) * g
        elif variant == "lr_in_velocity":
            v = b * mo[0] + lr * g
            return p - v, (v,)
        else:
            v = b * mo[0] + g
        step = lr * (g + b * v) if variant == "nesterov" else lr * v
        return (p + step if variant == "ascent" else p - step), (v,)

    def rmsprop(p, g, mo, lr, t, h):
        rho, eps = h["rho"], h["eps"]
        s = rho * mo[0] + (g * g if variant == "no_one_minus_rho" else (1 - rho) * g * g)
        step = lr * g / (np.sqrt(s + eps) if variant == "eps_inside" else np.sqrt(s) + eps)
        return (p + step if variant == "ascent" else p - step), (s,)

    def adam(p, g, mo, lr, t, h):
        b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
        if variant == "swapped":
            b1, b2 = b2, b1
        a1, a2 = (b2, b1) if variant == "swapped_averages" else (b1, b2)  # the bias correction keeps its betas
        m, v = a1 * mo[0] + (1 - a1) * g, a2 * mo[1] + (1 - a2) * g * g
        m_hat, v_hat = (m, v) if variant == "no_bias_correction" else (m / (1 - b1 ** t), v / (1 - b2 ** t))
        step = lr * m_hat / (np.sqrt(v_hat + eps) if variant == "eps_inside" else np.sqrt(v_hat) + eps)
        return (p + step if variant == "ascent" else p - step), (m, v)

    return {"momentum": momentum, "rmsprop": rmsprop, "adam": adam}[name]


VARIANTS = {
    "momentum": {"dampened": cause("momentum_dampened"),
                 "lr_in_velocity": cause("momentum_lr_in_velocity"),
                 "nesterov": cause("momentum_nesterov"),
                 "ascent": cause("optimizer_ascent")},
    "rmsprop": {"no_one_minus_rho": cause("rmsprop_missing_one_minus_rho"),
                "eps_inside": cause("rmsprop_eps_inside_sqrt"),
                "ascent": cause("optimizer_ascent")},
    "adam": {"no_bias_correction": cause("adam_no_bias_correction"),
             "eps_inside": cause("adam_eps_inside_sqrt"),
             "swapped": cause("adam_betas_swapped"),
             "swapped_averages": cause("adam_betas_swapped"),
             "ascent": cause("optimizer_ascent"),
             "t_per_key": cause("adam_t_per_key"),
             "t_stays_1": cause("adam_t_not_incremented")},
}
"""Known mistakes of each optimizer: variant of ``rule`` (or of the step count) -> cause."""


def trajectory(name, params, grads_list, lrs, hyper, variant=None):
    """The params and state after each step of ``name`` from a zero state: a list of (params, state)."""
    moments = {k: tuple(np.zeros_like(v) for _ in MOMENTS[name]) for k, v in params.items()}
    params, out, t = {k: v.copy() for k, v in params.items()}, [], 0
    for grads, lr in zip(grads_list, lrs):
        t += {"t_per_key": len(params)}.get(variant, 1)
        for key in params:
            step_t = 1 if variant == "t_stays_1" else t
            params[key], moments[key] = rule(name, variant)(params[key], grads[key], moments[key], lr, step_t, hyper)
        state = {m: {k: moments[k][i].copy() for k in params} for i, m in enumerate(MOMENTS[name])}
        if name == "adam":
            state["t"] = 0 if variant == "t_stays_1" else t
        out.append(({k: v.copy() for k, v in params.items()}, state))
    return out


def moments_unchanged(before, after, params):
    """Whether every moment array of the state ``after`` a step still equals the one ``before`` it (the caller's
    state untouched: the step built a new state, or rebound its name, instead of updating the one it was given)."""
    return all(isinstance(after.get(m), dict) and all(
        isinstance(after[m].get(k), np.ndarray) and np.array_equal(after[m][k], before[m][k]) for k in params)
        for m in MOMENTS["adam"])


def close(value, expected):
    """Whether ``value`` is an array of ``expected``'s shape with its values (no message: a quick look)."""
    return isinstance(value, np.ndarray) and value.shape == expected.shape and np.allclose(value, expected, rtol=1e-7,
                                                                                              atol=1e-10)


def check_steps(submission, name, params, grads_list, lrs, hyper=None):
    """Run ``name``_step once per (grads, lr), each from the params and state the previous one left, and
    compare params and state after every step with the update rule."""
    given = {} if hyper is None else hyper
    hyper = {**DEFAULTS[name], **given}
    state = {m: {k: np.zeros_like(v) for k, v in params.items()} for m in MOMENTS[name]}
    if name == "adam":
        state["t"] = 0
    expected = trajectory(name, params, grads_list, lrs, hyper)
    variants = {v: trajectory(name, params, grads_list, lrs, hyper, v) for v in VARIANTS[name]}
    current = {k: v.copy() for k, v in params.items()}
    options = "".join(f", {k}={v!r}" for k, v in given.items())
    for step, (grads, lr) in enumerate(zip(grads_list, lrs)):
        got = submission.call(f"{name}_step", current, grads, state, lr, **given)
        what = describe_call(f"{name}_step(params, grads, state, lr={lr:.4g}{options}) at step {step + 1}",
                             params=current, grads=grads)
        if got.value is not None:
            fail(what, "None (the update happens in place)", type(got.value).__name__,
                 "update the params dict and the state dict themselves; the caller keeps using them")
        check_unmodified(grads, got.args[1], what=what, name="grads")
        new_params = check_keys(got.args[0], list(params), what=what + ": params after the call")
        new_state = check_keys(got.args[2], list(state), what=what + ": state after the call",
                               hint=cause("optimizer_state_layout"))
        if all(np.array_equal(new_params[k], current[k]) for k in params):
            fail(what + ": params after the call", "every parameter moved", "params unchanged",
                 cause("optimizer_not_in_place"))
        if name == "adam":
            t = new_state["t"]
            if t == step and moments_unchanged(state, new_state, params):
                hint = cause("optimizer_state_not_updated")  # the whole state, not only the step count
            else:
                hint = {0: cause("adam_t_not_incremented"),
                        (step + 1) * len(params): cause("adam_t_per_key")}.get(t, "state['t'] += 1 once per step")
            if not (isinstance(t, int) and t == step + 1):
                fail(what + ": state['t'] after the call", f"{step + 1}", repr(t), hint)
        for key in params:
            candidates = [(c, variants[v][step][0][key]) for v, c in VARIANTS[name].items()]
            hint = first_match(new_params[key], candidates, f"the update rule of {name}_step's docstring "
                               f"with the hyperparameters {hyper}, the state carried over from the previous step")
            if not given and not isinstance(hint, Cause) and not close(new_params[key], expected[step][0][key]):
                again = submission.call(f"{name}_step", current, grads, state, lr, **DEFAULTS[name]).args[0]
                if close(again.get(key), expected[step][0][key]):
                    hint = cause("optimizer_wrong_defaults")  # right when the defaults are passed explicitly
            check_close(new_params[key], expected[step][0][key], what=f"{what}: params[{key!r}]", hint=hint)
        for m in MOMENTS[name]:
            moment = check_keys(new_state[m], list(params), what=f"{what}: state[{m!r}]",
                                hint=cause("optimizer_state_layout"))
            for key in params:
                unchanged = np.array_equal(moment[key], state[m][key])
                hint = cause("optimizer_state_not_updated") if unchanged else first_match(
                    moment[key], [(c, variants[v][step][1][m][key]) for v, c in VARIANTS[name].items()],
                    f"state[{m!r}][k] holds the new moment after the step")
                check_close(moment[key], expected[step][1][m][key], what=f"{what}: state[{m!r}][{key!r}]", hint=hint)
        current, state = new_params, new_state


def problem(rng, sizes=(4, 5, 3), steps=3):
    """Random params, a list of gradients (some entries tiny, where eps matters) and learning rates that change
    from step to step, as a schedule changes them."""
    params = random_params(rng, list(sizes), scale=1.0, bias_scale=0.5)
    grads_list = []
    for _ in range(steps):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        grads["b1"][0] = 1e-9
        grads_list.append(grads)
    return params, grads_list, [0.05 * 0.7 ** k for k in range(steps)]


@pytest.mark.points(1)
def test_init_state_layout(submission, rng):
    """Do momentum_init, rmsprop_init and adam_init return {"v": ...}, {"s": ...} and {"m": ..., "v": ..., "t": 0},
    each moment a dict of float64 zeros with the keys and shapes of params, leaving params alone?"""
    params = random_params(rng, [3, 4, 2], scale=1.0, bias_scale=0.5)
    for name in ("momentum", "rmsprop", "adam"):
        got = submission.call(f"{name}_init", params)
        what = describe_call(f"{name}_init(params)", params=params)
        keys = list(MOMENTS[name]) + (["t"] if name == "adam" else [])
        state = check_keys(got.value, keys, what=what, hint=cause("optimizer_state_layout"))
        for m in MOMENTS[name]:
            moment = check_keys(state[m], list(params), what=f"{what}: state[{m!r}]",
                                hint=cause("optimizer_state_layout"))
            for key, value in params.items():
                check_array(moment[key], what=f"{what}: state[{m!r}][{key!r}]", shape=value.shape,
                            hint=cause("optimizer_state_layout"))
                check_close(moment[key], np.zeros(value.shape), what=f"{what}: state[{m!r}][{key!r}]", rtol=0, atol=0,
                            hint=cause("optimizer_state_layout"))
        if name == "adam" and not (isinstance(state["t"], int) and state["t"] == 0):
            fail(what + ": state['t']", "0 (an int)", repr(state["t"]), cause("optimizer_state_layout"))
        check_unmodified(params, got.args[0], what=what, name="params")


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_steps_follow_the_update_rule(submission, rng, name):
    """Do three steps with changing learning rates follow the update rule (torch.optim's), each continuing from the
    params and state the previous step left, with params updated in the caller's dict and grads left alone?"""
    params, grads_list, lrs = problem(rng)
    check_steps(submission, name, params, grads_list, lrs)


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_steps_use_their_hyperparameters(submission, rng, name):
    """Are the hyperparameters given (beta; rho, eps; beta1, beta2, eps) the ones used, over two steps?"""
    params, grads_list, lrs = problem(rng, steps=2)
    hyper = {"momentum": {"beta": 0.5}, "rmsprop": {"rho": 0.8, "eps": 1e-3},
             "adam": {"beta1": 0.7, "beta2": 0.95, "eps": 1e-4}}[name]
    check_steps(submission, name, params, grads_list, lrs, hyper)


@pytest.mark.points(1)
def test_adam_first_step_is_lr_times_sign(submission):
    """With bias correction, does Adam's first step move every parameter by about lr against its gradient's sign?"""
    params = {"W1": np.array([[1.0, -1.0], [0.5, 2.0]]), "b1": np.array([0.0, 1.0])}
    grads = {"W1": np.array([[0.5, -2.0], [1e-3, 30.0]]), "b1": np.array([-4.0, 0.25])}
    state = {"m": {k: np.zeros_like(v) for k, v in params.items()},
             "v": {k: np.zeros_like(v) for k, v in params.items()}, "t": 0}
    got = submission.call("adam_step", params, grads, state, 0.01)
    what = describe_call("adam_step(params, grads, state, lr=0.01) from adam_init's state", params=params, grads=grads)
    updated = check_keys(got.args[0], list(params), what=what + ": params after the call")
    for i, key in enumerate(params):
        expected = params[key] - 0.01 * grads[key] / (np.abs(grads[key]) + 1e-8)
        uncorrected = params[key] - 0.01 * 0.1 * grads[key] / (np.sqrt(0.001) * np.abs(grads[key]) + 1e-8)
        t = i + 1  # the step count of this key when it grows once per key
        per_key = params[key] - 0.01 * (0.1 * grads[key] / (1 - 0.9 ** t)) / (
            np.sqrt(0.001 * grads[key] ** 2 / (1 - 0.999 ** t)) + 1e-8)
        swapped = params[key] - 0.01 * (0.001 * grads[key] / 0.1) / (np.sqrt(0.1 * grads[key] ** 2 / 0.001) + 1e-8)
        hint = first_match(updated[key], {cause("adam_no_bias_correction"): uncorrected,
                                          cause("adam_betas_swapped"): swapped,
                                          cause("adam_t_per_key"): per_key if t > 1 else uncorrected,
                                          cause("optimizer_not_in_place"): params[key]},
                           "m_hat = m / (1 - beta1**t) and v_hat = v / (1 - beta2**t) with t = 1")
        if isinstance(updated[key], np.ndarray) and not np.all(np.isfinite(updated[key])):
            hint = cause("adam_t_not_incremented")
        check_close(updated[key], expected, what=f"{what}: params[{key!r}]", rtol=1e-6, hint=hint)


@pytest.mark.points(1)
def test_cosine_lr_ends_and_middle(submission):
    """Is cosine_lr(lr0, step, total_steps) a float equal to lr0 at step 0, lr0 / 2 half way, lr0 * (2 + sqrt 2) / 4
    a quarter of the way, and 0 at the end?"""
    lr0, total = 0.8, 40
    for step, expected in ((0, lr0), (20, lr0 / 2), (10, lr0 * (2 + math.sqrt(2)) / 4), (40, 0.0), (30, lr0 * (
            2 - math.sqrt(2)) / 4)):
        got = submission.call("cosine_lr", lr0, step, total)
        what = f"cosine_lr(lr0={lr0}, step={step}, total_steps={total})"
        c, c2 = math.cos(math.pi * step / total), math.cos(2 * math.pi * step / total)
        shifted = [0.5 * lr0 * (1 + math.cos(math.pi * (step + k) / total)) for k in (1, -1)]  # step off by one
        wrong = {round(x, 9) for x in (lr0 * c, lr0 * (1 + c), 0.5 * lr0 * (1 + c2), *shifted)} - {round(expected, 9)}
        value = got.value
        hint = cause("cosine_formula") if isinstance(value, (int, float)) and round(float(value), 9) in wrong else \
            "lr_min + 0.5 * (lr0 - lr_min) * (1 + cos(pi * step / total_steps))"
        if not isinstance(value, float):
            fail(what, "a Python float", type(value).__name__, "return float(...)")
        check_scalar(value, expected, what=what, atol=1e-12, hint=hint)


@pytest.mark.points(1)
def test_cosine_lr_with_lr_min(submission):
    """With lr_min, does cosine_lr go from lr0 at step 0 to lr_min at the end, (lr0 + lr_min) / 2 half way?"""
    lr0, lr_min, total = 0.5, 0.1, 10
    for step, expected in ((0, lr0), (5, (lr0 + lr_min) / 2), (10, lr_min)):
        got = submission.call("cosine_lr", lr0, step, total, lr_min)
        what = f"cosine_lr(lr0={lr0}, step={step}, total_steps={total}, lr_min={lr_min})"
        annealed = 0.5 * lr0 * (1 + math.cos(math.pi * step / total))  # lr0 annealed to 0, lr_min left out or on top
        ignored = [x for x in (annealed, lr_min + annealed) if not np.isclose(x, expected)]
        hint = cause("cosine_ignores_lr_min") if isinstance(got.value, float) and any(
            np.isclose(got.value, x) for x in ignored) else \
            "lr_min + 0.5 * (lr0 - lr_min) * (1 + cos(pi * step / total_steps))"
        check_scalar(got.value, expected, what=what, atol=1e-12, hint=hint)
