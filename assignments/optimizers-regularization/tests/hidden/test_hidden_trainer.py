"""Hidden tests of trainer.py: train_advanced's whole trajectory (final params
and every history entry) against the reference's from the same start and
seed, for each optimizer, on secret problems with secret L2 strengths,
dropout probabilities and schedules; its use of the rng; and its inputs.

Known mistakes are named by retracing the training with the mistake
(``simulate`` of the public tests, here on the reference's functions)."""
import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.testing.checks import check_close, check_keys, check_unmodified, describe_call, fail
from nnkit.testing.inputs import random_params

pytestmark = pytest.mark.part("trainer")

TRAJECTORY_RTOL = 1e-9
"""Largest relative difference to the reference's trajectory (same operations, same order: about 1e-15)."""


PUBLIC_DIR = Path(__file__).resolve().parent.parent / "public"
"""The public suite, beside this one."""


def _public_module():
    spec = importlib.util.spec_from_file_location("nnkit_public_test_trainer",
                                                  PUBLIC_DIR / "test_trainer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


public = _public_module()


def reference_ops(reference):
    """``simulate``'s operations, from the reference's functions."""
    reg, opt = reference.regularization, reference.optimizers

    def step(optimizer, params, grads, state, lr):
        params = {k: v.copy() for k, v in params.items()}
        if optimizer == "sgd":
            reference.train.sgd_step(params, grads, lr)
            return params, state
        state = {k: ({kk: vv.copy() for kk, vv in v.items()} if isinstance(v, dict) else v) for k, v in state.items()}
        getattr(opt, f"{optimizer}_step")(params, grads, state, lr)
        return params, state

    return types.SimpleNamespace(
        forward_dropout=reg.forward_dropout, backward_dropout=reg.backward_dropout, step=step,
        init=lambda optimizer, params: None if optimizer == "sgd" else getattr(opt, f"{optimizer}_init")(params),
        predict=reference.forward.predict)


def secret_problem(rng, layers=None):
    """Secret data (the labels never use the last class: C comes from the params), params and a batch size that
    does not divide N."""
    layers = int(rng.integers(1, 4)) if layers is None else layers
    D, C = int(rng.integers(2, 6)), int(rng.integers(3, 5))
    sizes = [D] + [int(rng.integers(3, 8)) for _ in range(layers - 1)] + [C]
    centres = 2.0 * rng.normal(size=(C, D))

    def data(n):
        y = rng.integers(0, C - 1, size=n)
        return centres[y] + rng.normal(size=(n, D)), y

    X, y = data(int(rng.integers(20, 40)))
    batch_size = int(rng.integers(3, 9))
    if X.shape[0] % batch_size == 0:
        batch_size += 1
    return sizes, X, y, random_params(rng, sizes, scale=1.5, bias_scale=0.1), batch_size, data


def run(submission, params, X, y, seed, options):
    got = submission.call("train_advanced", params, X, y, rng=seed, **options)
    shown = ", ".join(f"{k}={v!r}" if k in ("optimizer", "activation", "schedule") else k
                      for k, v in options.items() if k != "y_val")
    return got, describe_call(f"train_advanced(params, X, y, {shown}, rng)", params=params, X=X)


def check_against_reference(submission, reference, got, what, params, X, y, seed, options):
    """Params after training and every history entry against the reference's run from the same start and seed;
    on a difference, the first mistake of the public MISTAKES whose retracing gives the student's result is named."""
    expected_params = {k: v.copy() for k, v in params.items()}
    expected = reference.trainer.train_advanced(expected_params, X, y, rng=np.random.default_rng(seed), **options)
    public.check_history_shape(got.value, what, options["epochs"], "X_val" in options)
    updated = check_keys(got.args[0], list(params), what=what + ": params after training",
                         hint="train_advanced updates the params dict it was given")
    ops, retraced = reference_ops(reference), {}

    def hint_for(pick, advice):
        for mistake in public.MISTAKES:
            if mistake == options.get("optimizer", "adam"):
                continue  # the optimizer asked for: no mistake
            if mistake not in retraced:
                retraced[mistake] = public.simulate(ops, params, X, y, seed, **options, mistake=mistake)
            value, candidate = pick(retraced[mistake])
            if np.shape(value) == np.shape(candidate) and np.allclose(value, candidate, rtol=1e-7, atol=1e-10):
                return public.MISTAKES[mistake]
        return advice

    advice = {"lr": "history['lr'][e] is the learning rate of epoch e's first step",
              "loss": "history['loss'][e] is the mean over epoch e's batches of cross_entropy + l2_penalty, each "
                      "computed before its batch's update",
              "val_accuracy": "history['val_accuracy'][e] is Assignment 1's accuracy on (X_val, y_val) after epoch e"}
    for key in expected:
        values = np.array(got.value[key])
        if not np.allclose(values, expected[key], rtol=TRAJECTORY_RTOL, atol=1e-13):
            check_close(values, np.array(expected[key]), what=f"{what}: history[{key!r}]", rtol=TRAJECTORY_RTOL,
                        atol=1e-13, reveal=False, hint=hint_for(lambda m: (values, np.array(m[1][key])), advice[key]))
    for key in params:
        if not (isinstance(updated[key], np.ndarray) and np.allclose(updated[key], expected_params[key],
                                                                     rtol=TRAJECTORY_RTOL, atol=1e-13)):
            check_close(updated[key], expected_params[key], what=f"{what}: params[{key!r}] after training",
                        rtol=TRAJECTORY_RTOL, atol=1e-13, reveal=False, hint=hint_for(
                            lambda m: (updated[key], m[0][key]), "per epoch one pass of iterate_minibatches; per "
                            "batch: forward_dropout, the loss, l2_grads(params, backward_dropout(...), lam) and one "
                            "step of the chosen optimizer (its state created once)"))


@pytest.mark.points(1)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam"])
def test_train_advanced_matches_reference(submission, reference, rng, optimizer):
    """Does train_advanced follow the reference's trajectory (params, loss, lr, val_accuracy) from the same start and
    seed, with a secret L2 strength, dropout probability, schedule and activation?"""
    sizes, X, y, params, batch_size, data = secret_problem(rng, layers=int(rng.integers(2, 4)))
    X_val, y_val = data(int(rng.integers(8, 16)))
    options = dict(epochs=int(rng.integers(2, 5)), batch_size=batch_size,
                   lr=float(rng.uniform(0.05, 0.3) if optimizer in ("sgd", "momentum") else rng.uniform(0.002, 0.03)),
                   optimizer=optimizer, activation=str(rng.choice(["relu", "sigmoid", "tanh"])),
                   lam=float(rng.uniform(1e-3, 0.05)), p_drop=float(rng.uniform(0.1, 0.5)),
                   schedule="cosine" if rng.random() < 0.5 else None, X_val=X_val, y_val=y_val)
    seed = int(rng.integers(2**31))
    got, what = run(submission, params, X, y, seed, options)
    check_against_reference(submission, reference, got, what, params, X, y, seed, options)


@pytest.mark.points(1)
def test_train_advanced_defaults_match_reference(submission, reference, rng):
    """Called without optimizer, activation, lam, p_drop or schedule, does train_advanced train as the reference does
    (Adam, relu, no L2, no dropout, a constant lr)?"""
    sizes, X, y, params, batch_size, _ = secret_problem(rng)
    options = dict(epochs=int(rng.integers(2, 4)), batch_size=batch_size, lr=float(rng.uniform(0.002, 0.03)))
    seed = int(rng.integers(2**31))
    got, what = run(submission, params, X, y, seed, options)
    check_against_reference(submission, reference, got, what, params, X, y, seed, options)
    if "val_accuracy" in got.value:
        fail(what + ": history", "no 'val_accuracy' without X_val", "a 'val_accuracy' entry",
             "add val_accuracy only when X_val is given")


@pytest.mark.points(1)
def test_train_advanced_cosine_lr_history(submission, reference, rng):
    """With the cosine schedule, is history['lr'] the reference's on a secret problem of many short epochs?"""
    sizes, X, y, params, batch_size, _ = secret_problem(rng)
    options = dict(epochs=int(rng.integers(5, 9)), batch_size=batch_size, lr=float(rng.uniform(0.01, 0.1)),
                   optimizer="momentum", schedule="cosine")
    seed = int(rng.integers(2**31))
    got, what = run(submission, params, X, y, seed, options)
    check_against_reference(submission, reference, got, what, params, X, y, seed, options)


@pytest.mark.points(1)
def test_train_advanced_rng_use(submission, reference, rng):
    """With dropout on a secret 3-layer network, does train_advanced leave the rng where the reference leaves it
    (one permutation per epoch, one rng.random per hidden layer per batch)?"""
    sizes, X, y, params, batch_size, data = secret_problem(rng, layers=3)
    X_val, y_val = data(int(rng.integers(5, 12)))
    options = dict(epochs=int(rng.integers(2, 4)), batch_size=batch_size, lr=0.01, p_drop=float(rng.uniform(0.1, 0.6)),
                   X_val=X_val, y_val=y_val)
    seed = int(rng.integers(2**31))
    got, what = run(submission, params, X, y, seed, options)
    ref_rng = np.random.default_rng(seed)
    reference.trainer.train_advanced({k: v.copy() for k, v in params.items()}, X, y, rng=ref_rng, **options)
    if got.rng_state != ref_rng.bit_generator.state:
        with_val = got.rng_state == public._with_val_draws(seed, X.shape[0], batch_size, options["epochs"], sizes[1:-1],
                                                            options["p_drop"], X_val.shape[0])
        undropped = got.rng_state == public.expected_rng_state(seed, X.shape[0], batch_size, options["epochs"],
                                                               sizes[1:-1], 0.0)  # permutations only: no masks drawn
        fail(what, "the rng used only by iterate_minibatches and forward_dropout, as the reference uses it",
             "a different rng state", cause("trainer_val_with_dropout") if with_val else
             cause("trainer_no_dropout") if undropped else cause("trainer_rng_misused"))


@pytest.mark.points(1)
def test_train_advanced_same_seed_same_result(submission, rng):
    """Do two runs with the same secret seed give identical params and history, and runs with another seed (dropout
    on) different ones?"""
    sizes, X, y, params, batch_size, _ = secret_problem(rng, layers=2)
    options = dict(epochs=2, batch_size=batch_size, lr=0.01, p_drop=0.3)
    seed = int(rng.integers(2**31))
    first, what = run(submission, params, X, y, seed, options)
    second, _ = run(submission, params, X, y, seed, options)
    other, _ = run(submission, params, X, y, seed + 1, options)
    public.check_history_shape(first.value, what, 2, with_val=False)
    same = lambda a, b: a.value == b.value and all(np.array_equal(a.args[0][k], b.args[0][k]) for k in params)  # noqa
    if not same(first, second):
        fail(what, "identical results for identical params and seed", "different results", cause("trainer_rng_misused"))
    if same(first, other):
        fail(what, "different results for another seed (the batches and the masks come from the rng)",
             "identical results", cause("trainer_rng_misused"))


@pytest.mark.points(1)
def test_train_advanced_inputs_unmodified(submission, rng):
    """Does train_advanced update params in place yet leave X, y, X_val and y_val exactly as they were?"""
    sizes, X, y, params, batch_size, data = secret_problem(rng)
    X_val, y_val = data(int(rng.integers(5, 12)))
    options = dict(epochs=2, batch_size=batch_size, lr=0.01, lam=0.01, p_drop=0.2, X_val=X_val, y_val=y_val)
    got = submission.call("train_advanced", params, X, y, rng=int(rng.integers(2**31)), **options)
    what = describe_call("train_advanced(params, X, y, epochs=2, batch_size, lr, rng, lam, p_drop, X_val, y_val)",
                         params=params, X=X)
    updated = check_keys(got.args[0], list(params), what=what + ": params after training")
    if all(np.array_equal(updated[k], params[k]) for k in params):
        fail(what + ": params after training", "the params passed in, trained", "params unchanged",
             "update the params dict given (the optimizer steps update it in place)")
    check_unmodified(X, got.args[1], what=what, name="X")
    check_unmodified(y, got.args[2], what=what, name="y")
    check_unmodified(X_val, got.kwargs.get("X_val"), what=what, name="X_val")
    check_unmodified(y_val, got.kwargs.get("y_val"), what=what, name="y_val")
