"""Specification of the reference training loop of Assignment 2 (solutions/scratchnet/trainer.py)."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchnet.data import load_mnist, make_moons
from scratchnet.forward import cross_entropy, forward, init_params
from scratchnet.optimizers import (
    adam_init, adam_step, cosine_lr, momentum_init, momentum_step, rmsprop_init, rmsprop_step,
)
from scratchnet.regularization import backward_dropout, forward_dropout, l2_grads, l2_penalty
from scratchnet.train import accuracy, iterate_minibatches, one_hot, sgd_step, train
from scratchnet.trainer import OPTIMIZERS, train_advanced
from tests.arrays import assert_same, copies
from tests.rngs import CountingRng

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_PATH = Path(__file__).resolve().parent.parent / "assignments" / "optimizers-regularization" / "config.toml"

MNIST_MARGIN = 0.002
"""How far above the grader's threshold the reference must land on the graded MNIST configuration."""

STEPS = {
    "sgd": (lambda params: None, lambda params, grads, state, lr: sgd_step(params, grads, lr)),
    "momentum": (momentum_init, momentum_step),
    "rmsprop": (rmsprop_init, rmsprop_step),
    "adam": (adam_init, adam_step),
}
"""Each optimizer's (init, step), with the step taking (params, grads, state, lr)."""


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(200, seed=0)
    return X, y


def replay(start, X, y, *, epochs, batch_size, lr, seed, optimizer, activation, lam, p_drop, schedule):
    """The loop train_advanced must run, written out: returns (params, losses per epoch, lr per epoch)."""
    params = copies(start)
    rng = np.random.default_rng(seed)
    init, step = STEPS[optimizer]
    state = init(params)
    n_batches = math.ceil(len(X) / batch_size)
    Y = one_hot(y, start[f"W{len(start) // 2}"].shape[1])
    losses, lrs, t = [], [], 0
    for _ in range(epochs):
        batch_losses = []
        for xb, yb in iterate_minibatches(X, Y, batch_size, rng):
            lr_t = cosine_lr(lr, t, epochs * n_batches) if schedule == "cosine" else lr
            if not batch_losses:
                lrs.append(lr_t)
            probs, cache = forward_dropout(params, xb, activation, p_drop, rng)
            batch_losses.append(cross_entropy(probs, yb) + l2_penalty(params, lam))
            grads = l2_grads(params, backward_dropout(params, cache, yb, activation), lam)
            step(params, grads, state, lr_t)
            t += 1
        losses.append(np.mean(batch_losses))
    return params, losses, lrs


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("schedule", [None, "cosine"])
def test_train_advanced_runs_the_specified_loop(moons, optimizer, schedule):
    """Are params, losses and learning rates those of the loop written out in replay()?"""
    X, y = moons
    start = init_params([2, 6, 5, 2], np.random.default_rng(0))
    settings = dict(epochs=3, batch_size=48, lr=0.05 if optimizer in ("sgd", "momentum") else 0.01,
                    optimizer=optimizer, activation="tanh", lam=0.01, p_drop=0.2, schedule=schedule)
    params = copies(start)
    history = train_advanced(params, X, y, rng=np.random.default_rng(5), **settings)
    expected, losses, lrs = replay(start, X, y, seed=5, **settings)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-15, err_msg=k)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-12)
    np.testing.assert_allclose(history["lr"], lrs, rtol=1e-15)
    assert not np.allclose(params["W1"], start["W1"])


def test_sgd_without_regularization_is_assignment_1_train(moons):
    """With sgd, lam = 0, p_drop = 0 and no schedule, is train_advanced exactly Assignment 1's train?"""
    X, y = moons
    start = init_params([2, 8, 2], np.random.default_rng(1))
    a, b = copies(start), copies(start)
    h_adv = train_advanced(a, X, y, epochs=3, batch_size=16, lr=0.1, rng=np.random.default_rng(2),
                           optimizer="sgd", X_val=X, y_val=y)
    h_a1 = train(b, X, y, epochs=3, batch_size=16, lr=0.1, rng=np.random.default_rng(2), X_val=X, y_val=y)
    assert_same(a, b)
    assert h_adv["loss"] == h_a1["loss"]
    assert h_adv["val_accuracy"] == h_a1["val_accuracy"]
    assert h_adv["lr"] == [0.1, 0.1, 0.1]


@pytest.mark.parametrize("p_drop, hidden_layers", [(0.0, 2), (0.3, 1), (0.3, 2)])
def test_rng_calls_per_epoch(moons, p_drop, hidden_layers):
    """Per epoch: one permutation, then per batch one rng.random per hidden layer when p_drop > 0?"""
    X, y = moons
    sizes = [2] + [4] * hidden_layers + [2]
    params = init_params(sizes, np.random.default_rng(0))
    rng = CountingRng(3)
    train_advanced(params, X, y, epochs=2, batch_size=64, lr=0.01, rng=rng, p_drop=p_drop)
    per_batch = ["random"] * hidden_layers if p_drop > 0 else []
    per_epoch = ["permutation"] + per_batch * math.ceil(200 / 64)
    assert rng.calls == per_epoch * 2


def test_history_keys_lengths_and_types(moons):
    """Does history hold "loss" and "lr" (and "val_accuracy" with X_val), one float per epoch?"""
    X, y = moons
    params = init_params([2, 5, 2], np.random.default_rng(0))
    history = train_advanced(params, X, y, epochs=4, batch_size=32, lr=0.01, rng=np.random.default_rng(0))
    assert set(history) == {"loss", "lr"}
    params = init_params([2, 5, 2], np.random.default_rng(0))
    history = train_advanced(params, X, y, epochs=4, batch_size=32, lr=0.01, rng=np.random.default_rng(0),
                             X_val=X[:50], y_val=y[:50], p_drop=0.5)
    assert set(history) == {"loss", "lr", "val_accuracy"}
    for key, values in history.items():
        assert len(values) == 4 and all(isinstance(v, float) for v in values), key
    assert history["lr"] == [0.01] * 4
    assert history["val_accuracy"][-1] == accuracy(params, X[:50], y[:50], "relu")


def test_cosine_history_lr_is_each_epochs_first_step(moons):
    """With the cosine schedule, is history["lr"][e] = cosine_lr(lr, e * n_batches, epochs * n_batches)?"""
    X, y = moons
    params = init_params([2, 5, 2], np.random.default_rng(0))
    history = train_advanced(params, X, y, epochs=5, batch_size=30, lr=0.02, rng=np.random.default_rng(0),
                             schedule="cosine")
    n = math.ceil(200 / 30)
    assert history["lr"][0] == 0.02
    np.testing.assert_allclose(history["lr"], [cosine_lr(0.02, e * n, 5 * n) for e in range(5)], rtol=1e-15)
    assert all(a > b > 0 for a, b in zip(history["lr"], history["lr"][1:]))


def test_l2_penalty_is_part_of_the_loss(moons):
    """Is the first epoch's loss with lam > 0 larger, by about the penalty, than with lam = 0 (lr tiny)?"""
    X, y = moons
    start = init_params([2, 16, 2], np.random.default_rng(0))
    kwargs = dict(epochs=1, batch_size=200, lr=1e-12, optimizer="sgd")
    plain = train_advanced(copies(start), X, y, rng=np.random.default_rng(0), **kwargs)
    penalised = train_advanced(copies(start), X, y, rng=np.random.default_rng(0), lam=0.5, **kwargs)
    assert penalised["loss"][0] - plain["loss"][0] == pytest.approx(l2_penalty(start, 0.5), rel=1e-9)


def test_train_advanced_learns_moons(moons):
    """Does Adam with dropout, L2 and the cosine schedule learn the moons?"""
    X, y = moons
    params = init_params([2, 32, 2], np.random.default_rng(0))
    start_loss = cross_entropy(forward(params, X, "relu")[0], one_hot(y, 2))
    history = train_advanced(params, X, y, epochs=40, batch_size=16, lr=0.01, rng=np.random.default_rng(1),
                             lam=1e-4, p_drop=0.1, schedule="cosine", X_val=X, y_val=y)
    assert history["loss"][-1] < 0.5 * start_loss
    assert history["val_accuracy"][-1] > 0.9


def test_equal_seeds_give_identical_params(moons):
    """Do equal seeds give bit-identical parameters and histories (dropout included)?"""
    X, y = moons
    results = []
    for _ in range(2):
        params = init_params([2, 8, 8, 2], np.random.default_rng(3))
        history = train_advanced(params, X, y, epochs=3, batch_size=10, lr=0.01, rng=np.random.default_rng(4),
                                 optimizer="rmsprop", lam=1e-3, p_drop=0.3, schedule="cosine")
        results.append((params, history))
    assert_same(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_inputs_left_alone(moons):
    """Are X, y, X_val and y_val unchanged by train_advanced?"""
    X, y = moons
    X0, y0 = X.copy(), y.copy()
    params = init_params([2, 4, 2], np.random.default_rng(0))
    train_advanced(params, X, y, epochs=1, batch_size=32, lr=0.01, rng=np.random.default_rng(0),
                   p_drop=0.2, lam=0.1, X_val=X, y_val=y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("bad, allowed", [({"optimizer": "adagrad"}, "adam"), ({"optimizer": "Adam"}, "rmsprop"),
                                          ({"schedule": "step"}, "cosine")])
def test_unknown_optimizer_or_schedule_raises_before_training(moons, bad, allowed):
    """Does an unknown optimizer or schedule raise ValueError naming the allowed values, with nothing trained?"""
    X, y = moons
    params = init_params([2, 4, 2], np.random.default_rng(0))
    p0 = copies(params)
    rng = CountingRng(0)
    with pytest.raises(ValueError, match=allowed):
        train_advanced(params, X, y, epochs=1, batch_size=32, lr=0.01, rng=rng, **bad)
    assert rng.calls == []
    assert_same(params, p0)


def mnist_settings():
    """The [mnist] table of Assignment 2's config.toml."""
    with open(CONFIG_PATH, "rb") as f:
        return tomllib.load(f)["mnist"]


@pytest.mark.slow
def test_mnist_graded_config_reaches_threshold_with_margin():
    """Does the graded configuration (config.toml [mnist]) reach threshold + MNIST_MARGIN on the test set?

    Seeded like the hidden MNIST test: init_params with default_rng(seed),
    train_advanced with default_rng(seed + 1).
    """
    m = mnist_settings()
    X_train, y_train, X_test, y_test = load_mnist()
    params = init_params(list(m["layer_sizes"]), np.random.default_rng(m["seed"]))
    history = train_advanced(
        params, X_train, y_train, epochs=m["epochs"], batch_size=m["batch_size"], lr=m["lr"],
        rng=np.random.default_rng(m["seed"] + 1), optimizer=m["optimizer"], activation=m["activation"],
        lam=m["lam"], p_drop=m["p_drop"], schedule=m.get("schedule"))
    acc = accuracy(params, X_test, y_test, m["activation"])
    floor = m["threshold"] + MNIST_MARGIN
    assert acc >= floor, f"test accuracy {acc:.4f} < {floor} (losses {history['loss']})"


def test_cli_fallback_matches_config():
    """Does the command line find Assignment 2's config.toml, and do its built-in settings match [mnist]?"""
    from scratchnet.cli_advanced import MNIST_FALLBACK, config_path, mnist_defaults

    assert config_path() == CONFIG_PATH
    m = mnist_settings()
    assert {key: m.get(key) for key in MNIST_FALLBACK} == MNIST_FALLBACK
    assert mnist_defaults() == MNIST_FALLBACK


def test_cli_options_override_the_config():
    """Do --lr, --schedule none and --p-drop replace the configured values, and bad values exit?"""
    from scratchnet.cli_advanced import MNIST_FALLBACK, build_parser, resolve_settings

    parser = build_parser()
    args = parser.parse_args(["--lr", "0.1", "--schedule", "none", "--p-drop", "0"])
    settings = resolve_settings(args, 784, 10, parser)
    assert settings == {**MNIST_FALLBACK, "lr": 0.1, "schedule": None, "p_drop": 0.0}
    for bad in (["--p-drop", "1"], ["--layer-sizes", "784", "10", "3"], ["--lam", "-1"]):
        with pytest.raises(SystemExit):
            resolve_settings(parser.parse_args(bad), 784, 10, parser)


@pytest.mark.slow
def test_cli_trains_and_writes_outputs(tmp_path, capsys):
    """Does ``python -m scratchnet.trainer --train-size 2000 --epochs 2`` write its four files and report?"""
    import json

    from scratchnet.cli_advanced import OUTPUT_FILES, main_advanced

    assert main_advanced(["--train-size", "2000", "--epochs", "2", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUT_FILES)
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["epochs"] == 2 and len(record["loss"]) == len(record["val_accuracy"]) == 2
    assert record["lr_per_epoch"][0] == record["lr"]
    assert record["test_accuracy"] == record["val_accuracy"][-1] > 0.8
    with np.load(tmp_path / "params.npz") as z:
        assert sorted(z.files) == ["W1", "W2", "b1", "b2"]
    assert f"test accuracy: {100 * record['test_accuracy']:.2f}%" in capsys.readouterr().out
