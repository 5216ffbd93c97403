"""Hidden tests of train.py: every function against the reference on secret
inputs and seeds, and train's whole trajectory (final params and losses)
against the reference's from the same start and seed."""
import numpy as np
import pytest

from nnkit.testing.inputs import random_params
from nnkit.course.causes import cause
from nnkit.testing.checks import (
    check_close, check_keys, check_scalar, check_unmodified, describe_call, fail, first_match,
)

pytestmark = pytest.mark.part("training")

TRAJECTORY_RTOL = 1e-10
"""Largest relative difference to the reference's trajectory (same operations, same order: about 1e-15)."""


def secret_data(rng, N, D, C, classes=None):
    """N noisy points around C centres; labels drawn from ``classes`` (default: all C)."""
    centres = 2.0 * rng.normal(size=(C, D))
    y = rng.choice(np.arange(C) if classes is None else np.asarray(classes), size=N)
    return centres[y] + rng.normal(size=(N, D)), y


@pytest.mark.points(1)
def test_one_hot_matches_reference(submission, reference, rng):
    """Does one_hot match the reference on secret labels (some classes absent)?"""
    C = int(rng.integers(3, 9))
    y = rng.integers(0, C - 1, size=int(rng.integers(1, 15)))
    got = submission.call("one_hot", y, C)
    what = describe_call(f"one_hot(y, num_classes={C})", y=y)
    columns = got.value.shape[1] if isinstance(got.value, np.ndarray) and got.value.ndim == 2 else None
    check_close(got.value, reference.train.one_hot(y, C), what=what, rtol=0, atol=0, reveal=False,
                hint=cause("one_hot_classes_from_labels") if columns == int(y.max()) + 1 != C else
                "a float64 array of shape (N, num_classes) with Y[i, y[i]] = 1.0")
    check_unmodified(y, got.args[0], what=what, name="y")


@pytest.mark.points(1)
def test_iterate_minibatches_matches_reference(submission, reference, rng):
    """Do the batches (and the rng afterwards) match the reference for secret N, batch size and seed?"""
    for _ in range(3):
        N, D, C = int(rng.integers(5, 40)), int(rng.integers(1, 5)), int(rng.integers(2, 5))
        batch_size = int(rng.integers(2, N))
        if N % batch_size == 0:
            batch_size += 1
        X, Y = rng.normal(size=(N, D)), np.eye(C)[rng.integers(0, C, size=N)]
        seed = int(rng.integers(2**31))
        got = submission.call("iterate_minibatches", X, Y, batch_size, seed)
        what = describe_call(f"iterate_minibatches(X, Y, batch_size={batch_size}, rng)", X=X, Y=Y)
        ref_rng = np.random.default_rng(seed)
        expected = list(reference.train.iterate_minibatches(X, Y, batch_size, ref_rng))
        if len(got.value) != len(expected):
            hint = (cause("minibatches_drop_last") if len(got.value) == len(expected) - 1
                    else "one batch per batch_size rows of a single permutation, the last one smaller")
            fail(what, f"{len(expected)} batches", f"{len(got.value)} batches", hint)
        for k, (batch, (X_ref, Y_ref)) in enumerate(zip(got.value, expected)):
            if not (isinstance(batch, tuple) and len(batch) == 2):
                fail(what, f"batch {k} to be a tuple (X_batch, Y_batch)", type(batch).__name__)
            hint = cause("minibatches_not_one_permutation")
            check_close(batch[0], X_ref, what=f"{what}: X_batch {k}", rtol=0, atol=0, reveal=False, hint=hint)
            check_close(batch[1], Y_ref, what=f"{what}: Y_batch {k}", rtol=0, atol=0, reveal=False, hint=hint)
        if got.rng_state != ref_rng.bit_generator.state:
            fail(what, "the rng to be called exactly once, for rng.permutation(N)", "a different rng state",
                 cause("minibatches_not_one_permutation"))
        check_unmodified(X, got.args[0], what=what, name="X")
        check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
def test_sgd_step_matches_reference(submission, reference, rng):
    """Does sgd_step update every entry of a secret 3-layer network like the reference, in place?"""
    params = random_params(rng, [int(rng.integers(2, 7)) for _ in range(4)], scale=1.5, bias_scale=0.1)
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    lr = float(rng.uniform(0.01, 1.0))
    got = submission.call("sgd_step", params, grads, lr)
    what = describe_call("sgd_step(params, grads, lr)", params=params, grads=grads)
    if got.value is not None:
        fail(what, "None (the update happens in place)", type(got.value).__name__)
    expected = {k: v.copy() for k, v in params.items()}
    reference.train.sgd_step(expected, grads, lr)
    updated = check_keys(got.args[0], list(params), what=what + ": params after the call")
    unchanged = [k for k in params if isinstance(updated[k], np.ndarray) and updated[k].shape == params[k].shape
                 and np.array_equal(updated[k], params[k])]
    for key in params:
        hint = first_match(updated[key], {
            cause("sgd_skips_keys") if len(unchanged) < len(params) else cause("sgd_not_in_place"): params[key],
            cause("sgd_ascent"): params[key] + lr * grads[key],
        }, "params[k] - lr * grads[k] for every key, stored in the params dict itself")
        check_close(updated[key], expected[key], what=f"{what}: params[{key!r}] after the call", reveal=False,
                    hint=hint)
    check_unmodified(grads, got.args[1], what=what, name="grads")


@pytest.mark.points(1)
def test_accuracy_matches_reference(submission, reference, rng):
    """Does accuracy match the reference on secret sigmoid and tanh networks?"""
    for activation in ("sigmoid", "tanh"):
        D, C = int(rng.integers(2, 6)), int(rng.integers(2, 5))
        X, y = secret_data(rng, int(rng.integers(20, 50)), D, C)
        for _ in range(100):  # a network on which this activation and relu disagree
            params = random_params(rng, [D, int(rng.integers(3, 8)), C], scale=3.0, bias_scale=0.1)
            expected = reference.train.accuracy(params, X, y, activation)
            if expected != reference.train.accuracy(params, X, y, "relu"):
                break
        got = submission.call("accuracy", params, X, y, activation)
        what = describe_call(f"accuracy(params, X, y, {activation!r})", params=params, X=X, y=y)
        mistakes = {cause("activation_not_passed_on"): reference.train.accuracy(params, X, y, "relu"),
                    cause("accuracy_error_rate"): 1.0 - expected, cause("accuracy_count"): expected * len(y),
                    cause("accuracy_percentage"): 100.0 * expected}
        found = [c for c, v in mistakes.items() if isinstance(got.value, (int, float)) and np.isclose(got.value, v)]
        check_scalar(got.value, expected, what=what, rtol=1e-12, atol=0, reveal=False,
                     hint=found[0] if len(found) == 1 else  # a value two mistakes share names neither
                     "the fraction of rows where predict(params, X, activation) equals y, as a float")


@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["relu-2-layer", "tanh-3-layer-val", "sigmoid-1-layer-val"])
def test_train_matches_reference(submission, reference, rng, case):
    """Does train follow the reference's trajectory (params and losses) from the same start and seed?"""
    activation, layers, with_val = case.split("-")[0], int(case.split("-")[1]), case.endswith("val")
    D, C = int(rng.integers(2, 6)), int(rng.integers(3, 5))
    sizes = [D] + [int(rng.integers(3, 8)) for _ in range(layers - 1)] + [C]
    # The labels never use the last class: C must come from the params, not from y.
    X, y = secret_data(rng, int(rng.integers(25, 45)), D, C, classes=range(C - 1))
    params = random_params(rng, sizes, scale=1.5, bias_scale=0.1)
    batch_size = int(rng.integers(3, 9))
    if X.shape[0] % batch_size == 0:
        batch_size += 1
    options = dict(epochs=int(rng.integers(2, 5)), batch_size=batch_size, lr=float(rng.uniform(0.05, 0.5)),
                   activation=activation)
    if with_val:
        options["X_val"], options["y_val"] = secret_data(rng, int(rng.integers(10, 20)), D, C)
    seed = int(rng.integers(2**31))
    got = submission.call("train", params, X, y, rng=seed, **options)
    what = describe_call(f"train(params, X, y, epochs={options['epochs']}, batch_size={batch_size}, lr, "
                         f"rng, activation={activation!r}{', X_val, y_val' if with_val else ''})",
                         params=params, X=X)
    expected_params = {k: v.copy() for k, v in params.items()}
    expected = reference.train.train(expected_params, X, y, rng=np.random.default_rng(seed), **options)

    updated = check_keys(got.args[0], list(params), what=what + ": params after training")
    for key in params:
        check_close(updated[key], expected_params[key], what=f"{what}: params[{key!r}] after training",
                    rtol=TRAJECTORY_RTOL, atol=1e-14, reveal=False,
                    hint="per epoch: one pass of iterate_minibatches(X, one_hot(y, C), batch_size, rng) with the "
                         "given rng and C = params['WL'].shape[1]; per batch: forward, backward and "
                         "sgd_step(params, grads, lr) on the params passed in, with the given activation")
    history = check_keys(got.value, list(expected), what=what + ": history",
                         hint='history holds "loss", and "val_accuracy" when X_val is given')
    for key in expected:
        values = history[key]
        if not isinstance(values, list) or len(values) != len(expected[key]):
            fail(f"{what}: history[{key!r}]", f"a list of {len(expected[key])} floats (one per epoch)",
                 type(values).__name__ + (f" of length {len(values)}" if hasattr(values, "__len__") else ""))
        if not all(isinstance(v, float) for v in values):
            fail(f"{what}: history[{key!r}]", "Python floats", repr(values), "append float(...)")
        hint = {"loss": "history['loss'][e] is the mean of epoch e's batch losses, each computed before its "
                        "batch's update",
                "val_accuracy": "history['val_accuracy'][e] is accuracy(params, X_val, y_val, activation) "
                                "after epoch e"}[key]
        check_close(np.array(values, dtype=np.float64), np.array(expected[key]), what=f"{what}: history[{key!r}]",
                    rtol=TRAJECTORY_RTOL, atol=1e-14, reveal=False, hint=hint)
    check_unmodified(X, got.args[1], what=what, name="X")
    check_unmodified(y, got.args[2], what=what, name="y")
