"""Is every entry of the mutation corpus what it claims to be?

A mutant (tests/corpus/<assignment>/mutants/) must be a real bug: some call into the file of its
part, on some input, behaves observably differently from the reference (an
output value, dtype, shape or type, an exception, a warning, a modified
input, or the state the rng is left in). A variant (tests/corpus/<assignment>/variants/) must be
indistinguishable from the reference on the same calls, within ATOL and RTOL.

The probes run in one subprocess: each mutated copy is written as a
``scratchnet`` package, put first on sys.path, imported afresh, and called on
the same inputs as the reference. Running this file as a script is that
subprocess (it reads its job as JSON on stdin and prints JSON).

The probes here call Assignment 1's functions; the checks of the corpus
itself (its size, each entry's part and edits) are those of any assignment
(marked every_assignment). A later assignment probes its own functions in
tests/<assignment>/test_mutants_are_real.py.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnkit.course.config import load_config
from nnkit.course.contract import MODULE_OF_PART
from tests.mutation import (
    MUTANTS_DIR, VARIANTS_DIR, Edit, Entry, MutationError, apply_edits, load_entries,
    materialize, materialize_package, reference_sources,
)

ATOL = 1e-10
RTOL = 1e-10
"""Tolerance within which a variant must agree with the reference (and a mutant must not)."""

ROOT = Path(__file__).resolve().parent.parent
ACTIVATIONS = ("relu", "sigmoid", "tanh")
PROBE_TIMEOUT = 240
"""Seconds the probe subprocess may take (it needs about 2)."""
NUMPY_DEFAULT_ERRORS = {"divide": "warn", "over": "warn", "invalid": "warn", "under": "ignore"}
"""numpy's default floating-point error handling, which a student's code runs under."""

# --------------------------------------------------------------------------
# Probes: what is called, on which inputs. Every builder is deterministic.
# --------------------------------------------------------------------------


def _rng(seed):
    return np.random.default_rng(seed)


def _params(sizes, seed):
    """Random weights and non-zero biases, so a forgotten bias shows."""
    r = _rng(seed)
    params = {}
    for l in range(1, len(sizes)):
        params[f"W{l}"] = r.standard_normal((sizes[l - 1], sizes[l])) * 0.8
        params[f"b{l}"] = r.standard_normal(sizes[l]) * 0.5
    return params


def _one_hot(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


def _softmax_rows(N, C, seed):
    z = _rng(seed).standard_normal((N, C)) * 2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ELEMENTWISE_INPUTS = {
    "small": lambda: _rng(1).standard_normal((3, 4)),
    "zeros": lambda: np.array([[-2.0, -0.5, 0.0, 0.5, 2.0], [0.0, 1e-3, -1e-3, 0.0, 3.0]]),
    "large": lambda: np.array([[-1000.0, -710.0, -50.0, 0.0, 50.0, 710.0, 1000.0]]),
    "row": lambda: _rng(2).standard_normal((1, 5)) * 3,
    "vector": lambda: _rng(3).standard_normal(6),
}
SOFTMAX_INPUTS = {
    "small": lambda: _rng(4).standard_normal((3, 4)),
    "square": lambda: _rng(5).standard_normal((4, 4)) * 3,
    "large": lambda: np.array([[1e4, -1e4, 0.0], [5e3, 5e3, -1e4], [-1e4, -1e4, -1e4]]),
    "row": lambda: _rng(6).standard_normal((1, 5)),
    "tall": lambda: _rng(7).standard_normal((6, 2)),
}
NETWORKS = ((4, 3), (4, 5, 3), (4, 6, 5, 3))
"""Layer sizes of the probed networks: 1, 2 and 3 layers."""


def _probes(part, modules):
    """Yield (probe id, function name, kwargs, names of arguments whose final state is an output).

    ``modules`` are the graded modules of the package under test; only the
    backward probes use one (forward, to build the cache backward receives).
    """
    if part == "activations":
        for name in ("sigmoid", "sigmoid_derivative", "relu", "relu_derivative", "tanh", "tanh_derivative"):
            for key, make in ELEMENTWISE_INPUTS.items():
                yield f"{name}/{key}", name, {"z": make()}, ()
        for key, make in SOFTMAX_INPUTS.items():
            yield f"softmax/{key}", "softmax", {"z": make()}, ()
    elif part == "forward":
        for sizes in ((5, 3), (6, 4, 3), (7, 5, 4, 3), (4, 4, 4)):
            yield f"init_params/{sizes}", "init_params", {"layer_sizes": list(sizes), "rng": _rng(7)}, ()
        for N, D, H in ((5, 4, 3), (1, 4, 3), (3, 3, 3)):
            r = _rng(10 + N)
            args = {"A_prev": r.standard_normal((N, D)), "W": r.standard_normal((D, H)), "b": r.standard_normal(H)}
            yield f"linear_forward/{N}x{D}x{H}", "linear_forward", args, ()
        for act in ACTIVATIONS:
            for sizes in NETWORKS:
                for N in (6, 1):
                    X = _rng(20 + N).standard_normal((N, sizes[0])) * 1.5
                    args = {"params": _params(sizes, 30 + len(sizes)), "X": X, "activation": act}
                    yield f"forward/{act}/{sizes}/N={N}", "forward", args, ()
                X = _rng(40).standard_normal((8, sizes[0]))
                args = {"params": _params(sizes, 50 + len(sizes)), "X": X, "activation": act}
                yield f"predict/{act}/{sizes}", "predict", args, ()
        for N, C in ((5, 3), (1, 4)):
            Y = _one_hot(_rng(60 + N).integers(0, C, N), C)
            yield f"cross_entropy/{N}x{C}", "cross_entropy", {"probs": _softmax_rows(N, C, 61), "Y": Y}, ()
        probs = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
        Y = _one_hot(np.array([1, 2, 0]), 3)
        yield "cross_entropy/zeros", "cross_entropy", {"probs": probs, "Y": Y}, ()
    elif part == "backward":
        for N, C in ((5, 3), (1, 4)):
            Y = _one_hot(_rng(70 + N).integers(0, C, N), C)
            args = {"probs": _softmax_rows(N, C, 71), "Y": Y}
            yield f"softmax_cross_entropy_backward/{N}x{C}", "softmax_cross_entropy_backward", args, ()
        for N, D, H in ((5, 4, 3), (1, 4, 3), (3, 3, 3)):
            r = _rng(80 + N)
            args = {"dZ": r.standard_normal((N, H)), "A_prev": r.standard_normal((N, D)),
                    "W": r.standard_normal((D, H))}
            yield f"linear_backward/{N}x{D}x{H}", "linear_backward", args, ()
        for act in ACTIVATIONS:
            for sizes in NETWORKS:
                for N in (6, 1):
                    params = _params(sizes, 90 + len(sizes))
                    X = _rng(100 + N).standard_normal((N, sizes[0])) * 1.5
                    _, cache = modules["forward"].forward(params, X, act)
                    Y = _one_hot(_rng(110 + N).integers(0, sizes[-1], N), sizes[-1])
                    args = {"params": params, "cache": cache, "Y": Y, "activation": act}
                    yield f"backward/{act}/{sizes}/N={N}", "backward", args, ()
    elif part == "training":
        for labels, C in (([0, 2, 1, 2, 0], 4), ([1], 3), (list(range(5)) * 2, 5)):
            yield f"one_hot/{len(labels)}x{C}", "one_hot", {"y": np.array(labels), "num_classes": C}, ()
        for N, B in ((10, 3), (10, 5), (10, 1), (1, 4), (7, 7)):
            r = _rng(120 + N)
            args = {"X": r.standard_normal((N, 3)), "Y": _one_hot(r.integers(0, 4, N), 4),
                    "batch_size": B, "rng": _rng(121)}
            yield f"iterate_minibatches/N={N}/B={B}", "iterate_minibatches", args, ()
        for lr in (0.1, 0.5):
            args = {"params": _params((4, 5, 3), 130), "grads": _params((4, 5, 3), 131), "lr": lr}
            yield f"sgd_step/lr={lr}", "sgd_step", args, ("params",)
        for act in ACTIVATIONS:
            for sizes in ((4, 3), (4, 5, 3)):
                r = _rng(140)
                args = {"params": _params(sizes, 141), "X": r.standard_normal((40, 4)),
                        "y": r.integers(0, 3, 40), "activation": act}
                yield f"accuracy/{act}/{sizes}", "accuracy", args, ()
        r = _rng(150)
        X, X_val = r.standard_normal((13, 4)), r.standard_normal((9, 4))
        y, y_val = r.integers(0, 3, 13), r.integers(0, 3, 9)
        runs = (
            ("relu", (4, 5, 3), y, 4, 0.3, True),
            ("sigmoid", (4, 5, 3), y, 5, 0.5, False),
            ("tanh", (4, 3), y, 13, 0.05, True),
            ("relu", (4, 6, 5, 3), y % 2, 3, 0.2, True),  # labels without the top class
        )
        for act, sizes, labels, B, lr, with_val in runs:
            kwargs = {"params": _params(sizes, 160 + len(sizes)), "X": X.copy(), "y": labels.copy(),
                      "epochs": 3, "batch_size": B, "lr": lr, "rng": _rng(1234), "activation": act}
            if with_val:
                kwargs.update(X_val=X_val.copy(), y_val=y_val.copy())
            yield f"train/{act}/{sizes}/B={B}/val={with_val}", "train", kwargs, ("params",)
    else:
        raise ValueError(f"unknown part {part!r}")


# --------------------------------------------------------------------------
# Observations: what a call did, as JSON.
# --------------------------------------------------------------------------


def _encode(value):
    """JSON form of a result that keeps dtypes, shapes and Python types."""
    if isinstance(value, np.ndarray):
        data = value.ravel().tolist() if value.dtype != object else [repr(v) for v in value.ravel()]
        return {"ndarray": str(value.dtype), "shape": list(value.shape), "data": data}
    if isinstance(value, np.generic):
        return {"scalar": str(value.dtype), "value": value.item()}
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [_encode(v) for v in value]}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return {"py": type(value).__name__, "value": value}
    return {"other": type(value).__name__, "value": repr(value)}


def _equal_inputs(a, b):
    """Exact equality of a call's argument before and after the call."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal_inputs(a[k], b[k]) for k in a)
    if isinstance(a, np.random.Generator):
        return True
    return type(a) is type(b) and a == b


def _contract_cache(cache):
    """The cache entries the contract fixes ("A0", "Z{l}", "A{l}"); a cache may hold more."""
    if not isinstance(cache, dict):
        return cache
    return {k: v for k, v in cache.items() if isinstance(k, str) and k[:1] in "AZ" and k[1:].isdigit()}


def _observe(module, name, kwargs, outputs):
    """Call ``module.name(**kwargs)`` and describe everything observable about the call."""
    before = {k: copy.deepcopy(v) for k, v in kwargs.items() if not isinstance(v, np.random.Generator)}
    obs = {}
    with warnings.catch_warnings(record=True) as caught, np.errstate(**NUMPY_DEFAULT_ERRORS):
        warnings.simplefilter("always")
        try:
            result = getattr(module, name)(**kwargs)
            if name == "iterate_minibatches":
                result = [list(batch) for batch in result]
            if name == "forward" and isinstance(result, tuple) and len(result) == 2:
                result = (result[0], _contract_cache(result[1]))
            obs["result"] = _encode(result)
        except Exception as exc:  # a crash is an observation like any other
            obs["error"] = type(exc).__name__
    obs["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    obs["modified"] = sorted(k for k in before if k not in outputs and not _equal_inputs(before[k], kwargs[k]))
    obs["after"] = {k: _encode(kwargs[k]) for k in outputs}
    rngs = {k: v for k, v in kwargs.items() if isinstance(v, np.random.Generator)}
    obs["rng"] = {k: str(v.bit_generator.state["state"]) for k, v in rngs.items()}
    return obs


def _import_package(root):
    """Import ``scratchnet`` afresh from ``root`` and return its graded modules by part."""
    for key in [k for k in sys.modules if k == "scratchnet" or k.startswith("scratchnet.")]:
        del sys.modules[key]
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        modules = {part: importlib.import_module(f"scratchnet.{name}") for part, name in MODULE_OF_PART.items()}
    finally:
        sys.path.remove(str(root))
    for module in modules.values():
        if not str(Path(module.__file__).resolve()).startswith(str(Path(root).resolve())):
            raise RuntimeError(f"{module.__name__} was imported from {module.__file__}, not from {root}")
    return modules


def run_probes(part, root):
    """Observations of every probe of ``part`` on the package under ``root``."""
    modules = _import_package(root)
    return {probe_id: _observe(modules[part], name, kwargs, outputs)
            for probe_id, name, kwargs, outputs in _probes(part, modules)}


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
# Comparison.
# --------------------------------------------------------------------------


def _differences(ref, got, where):
    """Human-readable differences between two encoded values (empty when they agree)."""
    if type(ref) is not type(got):
        return [f"{where}: {ref!r:.80} vs {got!r:.80}"]
    if isinstance(ref, dict):
        if ref.keys() != got.keys():
            return [f"{where}: keys {sorted(ref)} vs {sorted(got)}"]
        if "ndarray" in ref:
            if ref["ndarray"] != got["ndarray"] or ref["shape"] != got["shape"]:
                return [f"{where}: {ref['ndarray']}{ref['shape']} vs {got['ndarray']}{got['shape']}"]
            a, b = np.array(ref["data"]), np.array(got["data"])
            if a.dtype.kind in "iuf" and b.dtype.kind in "iuf":
                close = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
                if close.all():
                    return []
                i = int(np.argmin(close))
                return [f"{where}: {np.count_nonzero(~close)} of {close.size} values differ, "
                        f"e.g. {a[i].item()!r} vs {b[i].item()!r}"]
            return [] if ref["data"] == got["data"] else [f"{where}: values differ"]
        out = []
        for key in ref:
            out += _differences(ref[key], got[key], f"{where}.{key}")
        return out
    if isinstance(ref, list):
        if len(ref) != len(got):
            return [f"{where}: {ref!r:.120} vs {got!r:.120}"]
        out = []
        for i, (r, g) in enumerate(zip(ref, got)):
            out += _differences(r, g, f"{where}[{i}]")
        return out
    if isinstance(ref, float) and isinstance(got, float):
        same = np.isclose(ref, got, rtol=RTOL, atol=ATOL, equal_nan=True)
        return [] if same else [f"{where}: {ref!r} vs {got!r}"]
    return [] if ref == got else [f"{where}: {ref!r:.80} vs {got!r:.80}"]


def observation_differences(ref_obs, obs):
    """Every probe on which ``obs`` differs from the reference's observations."""
    out = []
    for probe_id, ref in ref_obs.items():
        out += _differences(ref, obs.get(probe_id), probe_id)
    return out


# --------------------------------------------------------------------------
# The tests.
# --------------------------------------------------------------------------

MUTANTS = load_entries(MUTANTS_DIR)
VARIANTS = load_entries(VARIANTS_DIR)
ENTRIES = MUTANTS + VARIANTS


def probe_corpus(entries, script: Path, folder: Path) -> dict:
    """Observations of the reference and of every entry, from one subprocess running ``script`` (a probe
    module, which reads the job on stdin and prints its report); an entry whose edits no longer apply
    is listed under "broken" and fails its own tests only."""
    job = {"reference": str(ROOT / "solutions"), "entries": []}
    broken = {}
    for entry in entries:
        try:
            job["entries"].append([entry.name, entry.part, str(materialize_package(entry, folder))])
        except MutationError as exc:
            broken[entry.name] = str(exc)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(script)], input=json.dumps(job), capture_output=True, text=True,
        env=env, cwd=folder, timeout=PROBE_TIMEOUT,
    )
    assert proc.returncode == 0, f"probe subprocess failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    report["broken"] = broken
    return report


@pytest.fixture(scope="module")
def probe_report(tmp_path_factory):
    """Observations of the reference and of every entry, from one subprocess."""
    return probe_corpus(ENTRIES, Path(__file__), tmp_path_factory.mktemp("corpus"))


def _entry_observations(entry, report):
    """(reference observations of the entry's part, the entry's observations); fails for a stale entry."""
    if entry.name in report["broken"]:
        pytest.fail(report["broken"][entry.name])
    return report["reference"][entry.part], report["entries"][entry.name]


@pytest.mark.every_assignment
def test_corpus_size():
    """Are there at least 30 mutants (6 per part) and 6 variants, all uniquely named?"""
    assert len(MUTANTS) >= 30 and len(VARIANTS) >= 6, (len(MUTANTS), len(VARIANTS))
    for part in load_config().parts:
        count = sum(1 for e in MUTANTS if e.part == part)
        assert count >= 6, f"part {part!r} has {count} mutants, expected at least 6"
    names = [e.name for e in ENTRIES]
    assert len(names) == len(set(names)), "a mutant and a variant share a name"
    assert all(e.expect == "loses-points" for e in MUTANTS)
    assert all(e.expect == "full-marks" for e in VARIANTS)


@pytest.mark.every_assignment
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_part_names_its_file(entry):
    """Is the entry's part a graded part, and is every edit in that part's file?"""
    config = load_config()
    assert entry.part in config.parts, f"{entry.path}: part {entry.part!r} not in {config.parts}"
    expected = config.files[entry.part]
    for edit in entry.edits:
        assert edit.file == expected, f"{entry.path}: part {entry.part!r} lives in {expected}, edit is in {edit.file}"


@pytest.mark.every_assignment
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_applies_cleanly(entry, tmp_path):
    """Does every edit apply, change the file, and leave a file that still compiles?"""
    out = materialize(entry, tmp_path)
    assert out == tmp_path / entry.name
    reference = reference_sources()
    assert sorted(p.name for p in out.iterdir()) == sorted(reference)
    for name, text in reference.items():
        mutated = (out / name).read_text()
        if name in entry.files:
            assert mutated != text, f"{entry.name}: edits leave {name} unchanged"
            compile(mutated, str(out / name), "exec")
        else:
            assert mutated == text, f"{entry.name}: {name} is not in the entry's edits but changed"


def test_materialize_names_entry_and_snippet_when_find_is_missing(tmp_path):
    """Does an edit whose snippet is absent fail with the entry's name and the snippet?"""
    entry = Entry(name="stale", part="backward", description="d", expect="loses-points",
                  edits=(Edit("backward.py", "db = dZ.mean(axis=0)", "x"),), path=tmp_path / "stale.toml")
    with pytest.raises(MutationError, match=r"'stale'.*'db = dZ.mean\(axis=0\)' occurs 0 times in backward.py"):
        materialize(entry, tmp_path)


def test_apply_edits_rejects_ambiguous_snippet(tmp_path):
    """Does a snippet occurring more than once fail instead of editing one occurrence at random?"""
    entry = Entry(name="vague", part="forward", description="d", expect="loses-points",
                  edits=(Edit("forward.py", "params[f\"W{l}\"]", "x"),), path=tmp_path / "vague.toml")
    with pytest.raises(MutationError, match=r"'vague'.*occurs [2-9] times in forward.py"):
        apply_edits(entry, reference_sources())


def test_load_entry_rejects_unknown_part(tmp_path):
    """Is an entry naming a part that does not exist refused with the file's name?"""
    bad = tmp_path / "bad.toml"
    bad.write_text('part = "loss"\ndescription = "d"\nexpect = "loses-points"\n'
                   '[[edit]]\nfile = "forward.py"\nfind = "a"\nreplace = "b"\n')
    with pytest.raises(MutationError, match=r"bad.toml: part 'loss'"):
        load_entries(tmp_path)


def test_reference_probes_are_clean(probe_report):
    """Does the reference pass every probe without an exception, a warning or a modified input?"""
    for part, observations in probe_report["reference"].items():
        for probe_id, obs in observations.items():
            assert "error" not in obs, f"reference {probe_id}: {obs['error']}"
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
