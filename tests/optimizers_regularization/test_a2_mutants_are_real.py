"""Is every entry of Assignment 2's mutation corpus what it claims to be?

As tests/test_mutants_are_real.py does for Assignment 1: a mutant
(tests/corpus/optimizers-regularization/mutants/) must be a real bug, some call into the file of
its part behaving observably differently from the reference on some input
(an output value, dtype, shape or type, an exception, a warning, a modified
input, the state an optimizer is left in, or the state the rng is left in);
a variant (.../variants/) must be indistinguishable from the reference on the
same calls, within ATOL and RTOL. The encoding and comparison of
observations are Assignment 1's; the probes call Assignment 2's functions.

The probes run in one subprocess: each mutated copy is written as a
``scratchnet`` package, put first on sys.path, imported afresh, and called on
the same inputs as the reference. Running this file as a script is that
subprocess (it reads its job as JSON on stdin and prints JSON). The file's
name differs from Assignment 1's because pytest needs unique basenames in
tests/ (it has no __init__.py).
"""
from __future__ import annotations

import contextlib
import copy
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnkit.course.contract import MODULE_OF_PART
from tests.mutation import MUTANTS_DIR, VARIANTS_DIR, load_entries
from tests.test_mutants_are_real import (
    NUMPY_DEFAULT_ERRORS, _encode, _entry_observations, _import_package, observation_differences, probe_corpus,
)
from tests.test_mutants_are_real import _equal_inputs as _equal_values

ACTIVATIONS = ("relu", "sigmoid", "tanh")
NETWORKS = ((4, 3), (4, 5, 3), (4, 6, 5, 3))
"""Layer sizes of the probed networks: 1, 2 and 3 layers."""
CACHE_PREFIXES = "AZM"
"""forward_dropout's cache entries the contract fixes: "A{l}", "Z{l}", "M{l}" (a cache may hold more)."""

# --------------------------------------------------------------------------
# Inputs. Every builder is deterministic.
# --------------------------------------------------------------------------


def _rng(seed):
    return np.random.default_rng(seed)


def _params(sizes, seed):
    """Random weights and non-zero biases, so a penalised or forgotten bias shows."""
    r = _rng(seed)
    params = {}
    for l in range(1, len(sizes)):
        params[f"W{l}"] = r.standard_normal((sizes[l - 1], sizes[l])) * 0.8
        params[f"b{l}"] = r.standard_normal(sizes[l]) * 0.5
    return params


def _like(params, seed, scale=1.0, positive=False):
    """Arrays with the keys and shapes of params (gradients, or optimizer moments)."""
    r = _rng(seed)
    out = {k: r.standard_normal(v.shape) * scale for k, v in params.items()}
    return {k: np.abs(v) for k, v in out.items()} if positive else out


def _one_hot(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


def _mask(shape, p_drop, seed):
    return (_rng(seed).random(shape) >= p_drop) / (1 - p_drop)


def _state(kind, params, seed):
    """An optimizer state part way through training (not zeros), so every term of a step shows."""
    if kind == "momentum":
        return {"v": _like(params, seed, 0.3)}
    if kind == "rmsprop":
        return {"s": _like(params, seed, 0.2, positive=True)}
    return {"m": _like(params, seed, 0.3), "v": _like(params, seed + 1, 0.2, positive=True), "t": 3}


# --------------------------------------------------------------------------
# Probes: (probe id, what to call, kwargs, names of arguments whose final state is an output).
# What to call is a function name, or ("run", init, step, steps): the module's own init,
# then `steps` steps with fresh gradients each, observing params and state after.
# --------------------------------------------------------------------------


def _probes(part, modules):
    mod = modules[part]
    if part == "regularization":
        for sizes in NETWORKS:
            for lam in (0.0, 0.1, 2.5):
                yield f"l2_penalty/{sizes}/lam={lam}", "l2_penalty", {"params": _params(sizes, 1), "lam": lam}, ()
                args = {"params": _params(sizes, 2), "grads": _like(_params(sizes, 2), 3), "lam": lam}
                yield f"l2_grads/{sizes}/lam={lam}", "l2_grads", args, ()
        for shape in ((5, 4), (1, 6), (3, 3)):
            for p_drop in (0.0, 0.25, 0.5, 0.9):
                args = {"A": _rng(10 + shape[0]).standard_normal(shape), "p_drop": p_drop, "rng": _rng(11)}
                yield f"dropout_forward/{shape}/p={p_drop}", "dropout_forward", args, ()
                args = {"dout": _rng(12).standard_normal(shape), "mask": _mask(shape, p_drop, 13)}
                yield f"dropout_backward/{shape}/p={p_drop}", "dropout_backward", args, ()
        for p_drop in (1.0, -0.1, 1.5):
            args = {"A": _rng(14).standard_normal((3, 4)), "p_drop": p_drop, "rng": _rng(15)}
            yield f"dropout_forward/invalid p={p_drop}", "dropout_forward", args, ()
        for act in ACTIVATIONS:
            for sizes in NETWORKS:
                for N in (6, 1):
                    for p_drop in (0.0, 0.3):
                        params = _params(sizes, 20 + len(sizes))
                        X = _rng(21 + N).standard_normal((N, sizes[0])) * 1.5
                        args = {"params": params, "X": X, "activation": act, "p_drop": p_drop, "rng": _rng(22)}
                        yield f"forward_dropout/{act}/{sizes}/N={N}/p={p_drop}", "forward_dropout", args, ()
                        _, cache = mod.forward_dropout(copy.deepcopy(params), X.copy(), act, p_drop, _rng(22))
                        Y = _one_hot(_rng(23 + N).integers(0, sizes[-1], N), sizes[-1])
                        args = {"params": params, "cache": cache, "Y": Y, "activation": act}
                        yield f"backward_dropout/{act}/{sizes}/N={N}/p={p_drop}", "backward_dropout", args, ()
    elif part == "batchnorm":
        constant = np.array([[1.0, 2.0, -1.0], [1.0, -3.0, 0.5], [1.0, 0.5, 4.0], [1.0, 1.0, 1.0]])
        inputs = {"6x3": _rng(30).standard_normal((6, 3)) * 2 + 1, "2x4": _rng(31).standard_normal((2, 4)),
                  "1x3": _rng(32).standard_normal((1, 3)), "constant_column": constant}
        for key, Z in inputs.items():
            H = Z.shape[1]
            gamma, beta = _rng(33).standard_normal(H) + 1.5, _rng(34).standard_normal(H)
            for eps in (1e-5, 1e-2):
                args = {"Z": Z, "gamma": gamma, "beta": beta, "eps": eps}
                yield f"batchnorm_forward/{key}/eps={eps}", "batchnorm_forward", args, ()
                _, cache = mod.batchnorm_forward(Z.copy(), gamma.copy(), beta.copy(), eps)
                args = {"dout": _rng(35).standard_normal(Z.shape), "cache": cache}
                yield f"batchnorm_backward/{key}/eps={eps}", "batchnorm_backward", args, ()
                args = {"Z": Z, "gamma": gamma, "beta": beta, "mean": _rng(36).standard_normal(H),
                        "var": _rng(37).random(H) * 3 + 0.1, "eps": eps}
                yield f"batchnorm_eval/{key}/eps={eps}", "batchnorm_eval", args, ()
            if Z.shape[0] >= 2:
                for momentum in (0.9, 0.5, 0.0):
                    args = {"mean": _rng(38).standard_normal(H), "var": _rng(39).random(H) + 0.5, "Z": Z,
                            "momentum": momentum}
                    yield f"running_stats/{key}/momentum={momentum}", "running_stats", args, ()
    elif part == "optimizers":
        for kind in ("momentum", "rmsprop", "adam"):
            for sizes in ((4, 3), (4, 5, 3)):
                yield f"{kind}_init/{sizes}", f"{kind}_init", {"params": _params(sizes, 40)}, ()
                for lr in (0.1, 0.01):
                    params = _params(sizes, 41)
                    args = {"params": params, "grads": _like(params, 42), "state": _state(kind, params, 43), "lr": lr}
                    yield f"{kind}_step/{sizes}/lr={lr}", f"{kind}_step", args, ("params", "state")
                small = _params(sizes, 44)
                args = {"params": small, "grads": _like(small, 45, 1e-5), "state": _state(kind, small, 46),
                        "lr": 0.05}
                if kind != "momentum":  # tiny second moments: where eps matters
                    args["state"] = {k: ({key: v * 1e-9 for key, v in s.items()} if isinstance(s, dict) else s)
                                     for k, s in args["state"].items()}
                yield f"{kind}_step/{sizes}/small", f"{kind}_step", args, ("params", "state")
                params = _params(sizes, 47)
                grads = [_like(params, 48 + i) for i in range(3)]
                args = {"params": params, "grads": grads, "lr": 0.05}
                yield f"{kind}_run/{sizes}", ("run", f"{kind}_init", f"{kind}_step", 3), args, ("params",)
        extra = {"momentum": {"beta": 0.5}, "rmsprop": {"rho": 0.8, "eps": 1e-3},
                 "adam": {"beta1": 0.7, "beta2": 0.95, "eps": 1e-3}}
        for kind, hyper in extra.items():
            params = _params((4, 5, 3), 50)
            args = {"params": params, "grads": _like(params, 51), "state": _state(kind, params, 52), "lr": 0.1, **hyper}
            yield f"{kind}_step/hyperparameters", f"{kind}_step", args, ("params", "state")
        for lr0, step, total, lr_min in ((0.1, 0, 10, 0.0), (0.1, 5, 10, 0.0), (0.1, 10, 10, 0.0), (0.3, 3, 7, 0.01),
                                         (1.0, 0, 1, 0.5), (0.2, 9, 12, 0.05)):
            args = {"lr0": lr0, "step": step, "total_steps": total, "lr_min": lr_min}
            yield f"cosine_lr/{lr0}/{step}/{total}/{lr_min}", "cosine_lr", args, ()
        yield "cosine_lr/default lr_min", "cosine_lr", {"lr0": 0.5, "step": 2, "total_steps": 8}, ()
    elif part == "trainer":
        r = _rng(60)
        X, X_val = r.standard_normal((13, 4)), r.standard_normal((9, 4))
        y, y_val = r.integers(0, 3, 13), r.integers(0, 3, 9)
        runs = (  # optimizer, activation, sizes, batch size, lr, lam, p_drop, schedule, with validation
            ("sgd", "relu", (4, 5, 3), 4, 0.3, 0.0, 0.0, None, True),
            ("sgd", "tanh", (4, 5, 3), 5, 0.3, 0.01, 0.3, "cosine", True),
            ("momentum", "relu", (4, 6, 5, 3), 4, 0.05, 0.01, 0.2, None, True),
            ("momentum", "sigmoid", (4, 5, 3), 13, 0.1, 0.0, 0.0, "cosine", False),
            ("rmsprop", "relu", (4, 5, 3), 5, 0.01, 0.05, 0.0, "cosine", True),
            ("adam", "relu", (4, 5, 3), 4, 0.01, 0.0, 0.3, None, True),
            ("adam", "tanh", (4, 6, 5, 3), 3, 0.02, 0.02, 0.25, "cosine", True),
            ("adam", "relu", (4, 3), 13, 0.05, 0.1, 0.0, None, False),
        )
        for opt, act, sizes, B, lr, lam, p_drop, schedule, with_val in runs:
            kwargs = {"params": _params(sizes, 61 + len(sizes)), "X": X.copy(), "y": y.copy(), "epochs": 3,
                      "batch_size": B, "lr": lr, "rng": _rng(1234), "optimizer": opt, "activation": act,
                      "lam": lam, "p_drop": p_drop, "schedule": schedule}
            if with_val:
                kwargs.update(X_val=X_val.copy(), y_val=y_val.copy())
            probe_id = f"train_advanced/{opt}/{act}/{sizes}/B={B}/lam={lam}/p={p_drop}/{schedule}/val={with_val}"
            yield probe_id, "train_advanced", kwargs, ("params",)
        for key, bad in (("optimizer", "adagrad"), ("schedule", "linear")):
            kwargs = {"params": _params((4, 5, 3), 70), "X": X.copy(), "y": y.copy(), "epochs": 1, "batch_size": 5,
                      "lr": 0.1, "rng": _rng(71), key: bad}
            yield f"train_advanced/{key}={bad}", "train_advanced", kwargs, ("params",)
    else:
        raise ValueError(f"unknown part {part!r}")


# --------------------------------------------------------------------------
# Observations: what a call did, as JSON (encoded as Assignment 1's are).
# --------------------------------------------------------------------------


def _contract_cache(cache):
    """The cache entries the contract fixes; a cache may hold more."""
    if not isinstance(cache, dict):
        return cache
    return {k: v for k, v in cache.items()
            if isinstance(k, str) and k[:1] in CACHE_PREFIXES and k[1:].isdigit()}


def _call(module, what, kwargs):
    if isinstance(what, tuple):  # ("run", init, step, steps): the module's own state from start to finish
        _, init, step, steps = what
        params = kwargs["params"]
        state = getattr(module, init)(params)
        for i in range(steps):
            getattr(module, step)(params, kwargs["grads"][i], state, kwargs["lr"])
        return state
    result = getattr(module, what)(**kwargs)
    if what == "forward_dropout" and isinstance(result, tuple) and len(result) == 2:
        result = (result[0], _contract_cache(result[1]))
    if what == "batchnorm_forward" and isinstance(result, tuple) and len(result) == 2:
        result = result[0]  # the cache's contents are the student's own
    return result


def _equal_inputs(a, b):
    """Exact equality of a call's argument before and after the call (lists element by element)."""
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_equal_inputs(x, y) for x, y in zip(a, b))
    return _equal_values(a, b)


def _observe(module, what, kwargs, outputs):
    """Call into ``module`` and describe everything observable about the call."""
    before = {k: copy.deepcopy(v) for k, v in kwargs.items() if not isinstance(v, np.random.Generator)}
    obs = {}
    with warnings.catch_warnings(record=True) as caught, np.errstate(**NUMPY_DEFAULT_ERRORS):
        warnings.simplefilter("always")
        try:
            obs["result"] = _encode(_call(module, what, kwargs))
        except Exception as exc:  # a crash is an observation like any other
            obs["error"] = type(exc).__name__
    obs["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    obs["modified"] = sorted(k for k in before if k not in outputs and not _equal_inputs(before[k], kwargs[k]))
    obs["after"] = {k: _encode(kwargs[k]) for k in outputs}
    rngs = {k: v for k, v in kwargs.items() if isinstance(v, np.random.Generator)}
    obs["rng"] = {k: str(v.bit_generator.state["state"]) for k, v in rngs.items()}
    return obs


def run_probes(part, root):
    """Observations of every probe of ``part`` on the package under ``root``."""
    modules = _import_package(root)
    return {probe_id: _observe(modules[part], what, kwargs, outputs)
            for probe_id, what, kwargs, outputs in _probes(part, modules)}


def _main():
    """Subprocess entry point: job {"reference": root, "entries": [[name, part, root], ...]} on stdin."""
    job = json.load(sys.stdin)
    report = {"reference": {}, "entries": {}}
    with contextlib.redirect_stdout(sys.stderr):
        for part in MODULE_OF_PART:
            report["reference"][part] = run_probes(part, job["reference"])
        for name, part, root in job["entries"]:
            report["entries"][name] = run_probes(part, root)
    json.dump(report, sys.stdout)


# --------------------------------------------------------------------------
# The tests.
# --------------------------------------------------------------------------

MUTANTS = load_entries(MUTANTS_DIR)
VARIANTS = load_entries(VARIANTS_DIR)
ENTRIES = MUTANTS + VARIANTS


@pytest.fixture(scope="module")
def probe_report(tmp_path_factory):
    """Observations of the reference and of every entry, from one subprocess."""
    return probe_corpus(ENTRIES, Path(__file__), tmp_path_factory.mktemp("corpus"))


def test_reference_probes_are_clean(probe_report):
    """Does the reference pass every probe without a warning or a modified input, and raise only where
    the contract asks it to (an invalid p_drop, an unknown optimizer or schedule)?"""
    for part, observations in probe_report["reference"].items():
        for probe_id, obs in observations.items():
            invalid = "invalid" in probe_id or "optimizer=" in probe_id or "schedule=" in probe_id
            assert obs.get("error") == ("ValueError" if invalid else None), f"reference {probe_id}: {obs}"
            assert obs["warnings"] == [] and obs["modified"] == [], f"reference {probe_id}: {obs}"


@pytest.mark.parametrize("entry", MUTANTS, ids=lambda e: e.name)
def test_mutant_is_observable(entry, probe_report):
    """Does the mutant differ from the reference on at least one probe of its part?"""
    diffs = observation_differences(*_entry_observations(entry, probe_report))
    assert diffs, f"{entry.name} ({entry.description}) behaves like the reference on every {entry.part} probe"


@pytest.mark.parametrize("entry", VARIANTS, ids=lambda e: e.name)
def test_variant_matches_reference(entry, probe_report):
    """Does the variant agree with the reference on every probe of its part (atol/rtol 1e-10)?"""
    diffs = observation_differences(*_entry_observations(entry, probe_report))
    assert not diffs, f"{entry.name} differs from the reference:\n" + "\n".join(diffs[:10])


if __name__ == "__main__":
    _main()
