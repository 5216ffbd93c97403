"""Public tests of trainer.py: train_advanced's history, its use of the rng
(one permutation per epoch, then one rng.random per hidden layer per batch
when p_drop > 0), and whole small trainings retraced step by step as the
docstring specifies them: full-batch SGD with L2, mini-batch Adam with
dropout and validation data, momentum with the cosine schedule.

The retracing (``simulate``) takes each step with your backward_dropout and
your optimizer steps; in the grader those come from the reference solution
when trainer.py is tested, so a mistake there costs points only once. If the
tests of regularization.py or optimizers.py fail, fix those first.
"""
import math
import types

import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.grading.proxy import NotImplementedYet, StudentError
from nnkit.testing.checks import check_close, check_keys, check_unmodified, describe_call, fail
from nnkit.testing.inputs import random_params

pytestmark = pytest.mark.part("trainer")

TRAJECTORY_RTOL = 1e-8
"""Largest relative difference to the retraced training (the same operations: about 1e-15)."""
ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)), "tanh": np.tanh}
MISTAKES = {
    "loss_without_penalty": cause("trainer_loss_without_penalty"),
    "loss_after_update": cause("trainer_loss_after_update"),
    "grads_without_l2": cause("trainer_grads_without_l2"),
    "l2_grads_twice": cause("trainer_l2_grads_twice"),
    "loss_sum": cause("trainer_loss_sum"),
    "loss_last_batch": cause("trainer_loss_not_mean"),
    "schedule_not_passed": cause("trainer_schedule_not_passed"),
    "schedule_off_by_one": cause("trainer_schedule_off_by_one"),
    "schedule_per_epoch": cause("trainer_schedule_per_epoch"),
    "schedule_restarts": cause("trainer_schedule_per_epoch"),
    "lr_history_last": cause("trainer_lr_history"),
    "state_reset": cause("trainer_state_reset"),
    "no_dropout": cause("trainer_no_dropout"),
    "val_with_dropout": cause("trainer_val_with_dropout"),
    "sgd": cause("trainer_wrong_optimizer"),
    "adam": cause("trainer_wrong_optimizer"),
}
"""Mistakes ``simulate`` can make -> their cause."""


def softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward_with_masks(params, X, activation, masks):
    """probs and cache of the forward pass with these masks on the hidden activations (masks[l] for layer l)."""
    L = len(params) // 2
    cache, A = {"A0": X}, X
    for l in range(1, L + 1):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]
        cache[f"Z{l}"] = Z
        if l < L:
            A = ACTIVATIONS[activation](Z) * masks[l]
            cache[f"M{l}"] = masks[l]
        else:
            A = softmax(Z)
        cache[f"A{l}"] = A
    return A, cache


def numpy_forward_dropout(params, X, activation, p_drop, rng):
    """forward_dropout as its docstring specifies it, drawing the masks from ``rng``."""
    L = len(params) // 2
    masks = {l: ((rng.random((X.shape[0], params[f"W{l}"].shape[1])) >= p_drop) / (1 - p_drop)) if p_drop > 0
             else np.ones((X.shape[0], params[f"W{l}"].shape[1])) for l in range(1, L)}
    return forward_with_masks(params, X, activation, masks)


def cross_entropy(probs, Y):
    return float(-np.sum(Y * np.log(np.maximum(probs, 1e-12))) / probs.shape[0])


def l2_penalty(params, lam):
    return 0.5 * lam * sum(float(np.sum(W * W)) for k, W in params.items() if k.startswith("W"))


def cosine(lr0, step, total):
    return lr0 * 0.5 * (1 + math.cos(math.pi * step / total))


def submission_ops(submission):
    """What ``simulate`` computes with: the forward pass in NumPy, backward_dropout and the optimizers' steps
    of the package under test (the reference's in the grader)."""
    def step(optimizer, params, grads, state, lr):
        if optimizer == "sgd":
            return {k: v - lr * grads[k] for k, v in params.items()}, state
        got = submission.call(f"{optimizer}_step", params, grads, state, lr)
        return got.args[0], got.args[2]

    return types.SimpleNamespace(
        forward_dropout=numpy_forward_dropout,
        backward_dropout=lambda params, cache, Y, activation: submission.backward_dropout(params, cache, Y, activation),
        init=lambda optimizer, params: None if optimizer == "sgd" else
        submission.call(f"{optimizer}_init", params).value,
        step=step,
        predict=lambda params, X, activation: np.argmax(forward_with_masks(params, X, activation, {
            l: 1.0 for l in range(1, len(params) // 2)})[0], axis=1))


def simulate(ops, params, X, y, seed, *, epochs, batch_size, lr, optimizer="adam", activation="relu", lam=0.0,
             p_drop=0.0, schedule=None, X_val=None, y_val=None, mistake=None):
    """train_advanced as its docstring specifies it, step by step: (params after training, record);
    ``mistake`` (a key of MISTAKES) makes that mistake instead."""
    rng = np.random.default_rng(seed)
    params = {k: v.copy() for k, v in params.items()}
    L, N = len(params) // 2, X.shape[0]
    Y = np.eye(params[f"W{L}"].shape[1])[y]
    n_batches = -(-N // batch_size)
    total = epochs * n_batches
    optimizer = mistake if mistake in ("sgd", "adam") else optimizer
    state = ops.init(optimizer, params)
    record = {"loss": [], "lr": []} | ({"val_accuracy": []} if X_val is not None else {})
    t = 0
    for epoch in range(epochs):
        if mistake == "state_reset" and epoch:
            state = ops.init(optimizer, params)
        order, losses = rng.permutation(N), []
        for k, start in enumerate(range(0, N, batch_size)):
            Xb, Yb = X[order[start:start + batch_size]], Y[order[start:start + batch_size]]
            step = {"schedule_off_by_one": t + 1, "schedule_per_epoch": epoch * n_batches,
                    "schedule_restarts": k}.get(mistake, t)
            lr_t = cosine(lr, step, total) if schedule == "cosine" else lr
            if k == 0 or (mistake == "lr_history_last" and k == n_batches - 1):
                record["lr"][epoch:] = [float(lr_t)]
            probs, cache = ops.forward_dropout(params, Xb, activation, 0.0 if mistake == "no_dropout" else p_drop, rng)
            data_loss = cross_entropy(probs, Yb)
            penalty = 0.0 if mistake == "loss_without_penalty" else l2_penalty(params, lam)
            grads = ops.backward_dropout(params, cache, Yb, activation)
            l2_times = {"grads_without_l2": 0, "l2_grads_twice": 2}.get(mistake, 1)
            grads = {key: g + l2_times * lam * params[key] if key.startswith("W") else g for key, g in grads.items()}
            params, state = ops.step(optimizer, params, grads, state, lr if mistake == "schedule_not_passed" else lr_t)
            if mistake == "loss_after_update":
                penalty = l2_penalty(params, lam)  # the penalty of the weights after the step
            losses.append(data_loss + penalty)
            t += 1
        record["loss"].append(float({"loss_sum": np.sum(losses), "loss_last_batch": losses[-1]}.get(mistake,
                                                                                                   np.mean(losses))))
        if X_val is not None:
            if mistake == "val_with_dropout":
                predicted = np.argmax(ops.forward_dropout(params, X_val, activation, p_drop, rng)[0], axis=1)
            else:
                predicted = ops.predict(params, X_val, activation)
            record["val_accuracy"].append(float(np.mean(predicted == y_val)))
    return params, record


def blobs(rng, N, D, C, spread=0.5):
    """N points around C well-separated centres in D dimensions, with labels."""
    centres = 3.0 * rng.normal(size=(C, D))
    y = rng.integers(0, C, size=N)
    return centres[y] + spread * rng.normal(size=(N, D)), y


def train(submission, params, X, y, seed, **options):
    """train_advanced(params, X, y, rng=default_rng(seed), **options): the CallResult and a description."""
    got = submission.call("train_advanced", params, X, y, rng=seed, **options)
    shown = ", ".join(f"{k}={v!r}" for k, v in options.items() if not isinstance(v, np.ndarray))
    what = describe_call(f"train_advanced(params, X, y, {shown}, rng{', X_val, y_val' if 'X_val' in options else ''})",
                         params=params, X=X)
    return got, what


def check_history_shape(history, what, epochs, with_val):
    keys = ["loss", "lr"] + (["val_accuracy"] if with_val else [])
    check_keys(history, keys, what=what + ": history",
               hint='return {"loss": [...], "lr": [...]}, plus "val_accuracy" when X_val is given')
    for key in keys:
        values = history[key]
        if not (isinstance(values, list) and len(values) == epochs and all(isinstance(v, float) for v in values)):
            per_step = key == "lr" and isinstance(values, list) and len(values) > epochs and len(values) % epochs == 0
            fail(f"{what}: history[{key!r}]", f"a list of {epochs} Python floats (one per epoch)", repr(values)[:200],
                 cause("trainer_lr_history") if per_step else "append float(...) once per epoch")


def check_training(submission, got, what, params, X, y, seed, options):
    """Compare the params after training and the history with the retraced training; on a difference, name the
    first mistake of MISTAKES whose retracing gives the student's result."""
    ops = submission_ops(submission)
    expected_params, expected = simulate(ops, params, X, y, seed, **options)
    check_history_shape(got.value, what, options["epochs"], "X_val" in options)
    updated = check_keys(got.args[0], list(params), what=what + ": params after training",
                         hint="train_advanced updates the params dict it was given")
    cache = {}

    def hint_for(pick, advice):
        for mistake in MISTAKES:
            if mistake == options.get("optimizer", "adam"):
                continue  # the optimizer asked for: no mistake
            if mistake not in cache:
                cache[mistake] = simulate(ops, params, X, y, seed, **options, mistake=mistake)
            value, candidate = pick(cache[mistake])
            if value is not None and np.shape(value) == np.shape(candidate) and np.allclose(value, candidate,
                                                                                           rtol=1e-7, atol=1e-10):
                return MISTAKES[mistake]
        return advice + " (if the tests of regularization.py or optimizers.py fail, fix those first)"

    advice = {"lr": "history['lr'][e] is the learning rate of epoch e's first step",
              "loss": "history['loss'][e] is the mean over epoch e's batches of cross_entropy + l2_penalty, each "
                      "computed before its batch's update",
              "val_accuracy": "history['val_accuracy'][e] is Assignment 1's accuracy on (X_val, y_val) after epoch e"}
    for key in expected:
        values = np.array(got.value[key])
        if not np.allclose(values, expected[key], rtol=TRAJECTORY_RTOL, atol=1e-12):
            check_close(values, np.array(expected[key]), what=f"{what}: history[{key!r}]", rtol=TRAJECTORY_RTOL,
                        atol=1e-12, hint=hint_for(lambda m: (values, np.array(m[1][key])), advice[key]))
    for key in params:
        if not np.allclose(updated[key], expected_params[key], rtol=TRAJECTORY_RTOL, atol=1e-12):
            check_close(updated[key], expected_params[key], what=f"{what}: params[{key!r}] after training",
                        rtol=TRAJECTORY_RTOL, atol=1e-12, hint=hint_for(
                            lambda m: (updated[key], m[0][key]), "for each batch: forward_dropout, the loss, "
                            "l2_grads(params, backward_dropout(...), lam), then one step of the chosen optimizer"))
    check_unmodified(X, got.args[1], what=what, name="X")
    check_unmodified(y, got.args[2], what=what, name="y")


def expected_rng_state(seed, N, batch_size, epochs, hidden, p_drop):
    """The rng state after training: per epoch one permutation(N), then per batch one rng.random((B_k, n_l)) per
    hidden layer of width n_l when p_drop > 0."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        rng.permutation(N)
        for start in range(0, N, batch_size):
            for n in hidden if p_drop > 0 else ():
                rng.random((min(batch_size, N - start), n))
    return rng.bit_generator.state


@pytest.mark.points(1)
def test_train_advanced_history_determinism_and_rng(submission, rng):
    """Does train_advanced return one loss, lr (and val accuracy) per epoch, repeat itself for the same seed, and use
    the rng for one permutation(N) per epoch and, with dropout, one rng.random per hidden layer per batch?"""
    X, y = blobs(rng, 26, 4, 3)
    X_val, y_val = blobs(rng, 10, 4, 3)
    params = random_params(rng, [4, 6, 5, 3], scale=1.0, bias_scale=0.1)
    for p_drop in (0.0, 0.3):
        options = dict(epochs=3, batch_size=8, lr=0.01, optimizer="adam", activation="tanh", p_drop=p_drop,
                       X_val=X_val, y_val=y_val)
        first, what = train(submission, params, X, y, 11, **options)
        check_history_shape(first.value, what, 3, with_val=True)
        if first.rng_state != expected_rng_state(11, 26, 8, 3, [6, 5], p_drop):
            with_val = first.rng_state == _with_val_draws(11, 26, 8, 3, [6, 5], p_drop, 10)
            undropped = p_drop > 0 and first.rng_state == expected_rng_state(11, 26, 8, 3, [6, 5], 0.0)
            fail(what, "the rng used only by iterate_minibatches (one permutation per epoch) and forward_dropout "
                       "(one rng.random per hidden layer and batch, none when p_drop == 0)", "a different rng state",
                 cause("trainer_val_with_dropout") if with_val else cause("trainer_no_dropout") if undropped
                 else cause("trainer_rng_misused"))
        second, _ = train(submission, params, X, y, 11, **options)
        if first.value != second.value or any(not np.array_equal(first.args[0][k], second.args[0][k]) for k in params):
            fail(what, "identical results for identical params and seed", "different results",
                 cause("trainer_rng_misused"))
    got, what = train(submission, params, X, y, 3, epochs=2, batch_size=8, lr=0.01)
    check_history_shape(got.value, what, 2, with_val=False)


def _with_val_draws(seed, N, batch_size, epochs, hidden, p_drop, M):
    """The rng state of a training that also drops units while measuring val_accuracy (M validation rows)."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        rng.permutation(N)
        for start in range(0, N, batch_size):
            for n in hidden if p_drop > 0 else ():
                rng.random((min(batch_size, N - start), n))
        for n in hidden if p_drop > 0 else ():
            rng.random((M, n))
    return rng.bit_generator.state


@pytest.mark.points(1)
def test_train_advanced_full_batch_sgd_with_l2(submission, rng):
    """With optimizer="sgd", lam > 0 and one batch per epoch, is each epoch one step params -= lr * (grads + lam * W),
    and loss[e] the cross-entropy plus the L2 penalty before it?"""
    X, y = blobs(rng, 12, 3, 3)
    params = random_params(rng, [3, 5, 3], scale=2.0, bias_scale=0.1)
    options = dict(epochs=3, batch_size=64, lr=0.3, optimizer="sgd", activation="sigmoid", lam=0.05)
    got, what = train(submission, params, X, y, 4, **options)
    check_training(submission, got, what, params, X, y, 4, options)


@pytest.mark.points(1)
def test_train_advanced_adam_with_dropout_and_validation(submission, rng):
    """With mini-batches, Adam, dropout and validation data, do params and history follow the specified steps
    (the optimizer's state created once, dropout on every batch, val_accuracy measured without dropout)?"""
    X, y = blobs(rng, 20, 4, 3)
    X_val, y_val = blobs(rng, 9, 4, 3)
    params = random_params(rng, [4, 6, 3], scale=1.5, bias_scale=0.1)
    options = dict(epochs=3, batch_size=7, lr=0.02, optimizer="adam", activation="relu", lam=0.01, p_drop=0.25,
                   X_val=X_val, y_val=y_val)
    got, what = train(submission, params, X, y, 9, **options)
    check_training(submission, got, what, params, X, y, 9, options)


@pytest.mark.points(1)
def test_train_advanced_cosine_schedule(submission, rng):
    """With schedule="cosine", is the lr of global step t cosine_lr(lr, t, epochs * n_batches), history['lr'] the lr of
    each epoch's first step, and the momentum steps taken with it?"""
    X, y = blobs(rng, 17, 3, 4)
    params = random_params(rng, [3, 5, 4], scale=1.5, bias_scale=0.1)
    options = dict(epochs=4, batch_size=5, lr=0.1, optimizer="momentum", activation="tanh", schedule="cosine")
    got, what = train(submission, params, X, y, 6, **options)
    check_history_shape(got.value, what, 4, with_val=False)
    lrs = [cosine(0.1, 4 * e, 16) for e in range(4)]
    check_training(submission, got, what, params, X, y, 6, options)
    check_close(np.array(got.value["lr"]), np.array(lrs), what=what + ": history['lr']")


@pytest.mark.points(1)
def test_train_advanced_rejects_unknown_options(submission, rng):
    """Does train_advanced raise ValueError for optimizer="adamw" and for schedule="linear"?"""
    X, y = blobs(rng, 6, 2, 2)
    params = random_params(rng, [2, 3, 2], scale=1.0, bias_scale=0.1)
    for option in ({"optimizer": "adamw"}, {"schedule": "linear"}):
        what = describe_call(f"train_advanced(params, X, y, epochs=1, batch_size=2, lr=0.1, rng, "
                             f"{', '.join(f'{k}={v!r}' for k, v in option.items())})", X=X)
        try:
            submission.call("train_advanced", params, X, y, epochs=1, batch_size=2, lr=0.1, rng=0, **option)
        except NotImplementedYet:
            raise
        except StudentError as exc:
            if exc.exc_type != "ValueError":
                fail(what, "ValueError", f"{exc.exc_type}: {exc.message}", cause("trainer_bad_option_accepted"))
            continue
        fail(what, "ValueError naming the allowed values", "a result", cause("trainer_bad_option_accepted"))


@pytest.mark.points(1)
def test_train_advanced_reduces_loss(submission, rng):
    """Does Adam with dropout and L2 bring the loss of a 2-layer relu network on separable blobs well down?"""
    X, y = blobs(rng, 60, 2, 3, spread=0.3)
    params = random_params(rng, [2, 16, 3], scale=1.0, bias_scale=0.1)
    got, what = train(submission, params, X, y, 0, epochs=15, batch_size=10, lr=0.02, p_drop=0.1, lam=1e-4)
    check_history_shape(got.value, what, 15, with_val=False)
    loss = got.value["loss"]
    if not loss[-1] < 0.5 * loss[0]:
        fail(what, "the last epoch's loss to be below half of the first's",
             f"{loss[0]:.4g} in the first epoch and {loss[-1]:.4g} in the last",
             "every batch must take one optimizer step against the gradient, on the params passed in")
