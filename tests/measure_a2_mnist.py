"""Measure Assignment 2's graded MNIST configuration with the reference.

    python -m tests.measure_a2_mnist                    # seeds 0..9, the config's [mnist]
    python -m tests.measure_a2_mnist --seeds 0 1 2      # some seeds
    python -m tests.measure_a2_mnist --set lr=0.002 --set epochs=4   # try other settings
    python -m tests.measure_a2_mnist --trajectory       # run-to-run distances, seed 0

Seeded like the grader: ``init_params(layer_sizes, default_rng(seed))`` and
``train_advanced(..., rng=default_rng(seed + 1))`` on the full training
split, scored with ``accuracy`` on the 10,000 test images. Prints the test
accuracy and the training seconds of each seed, then the min and the mean.
Runs the seeds one after the other in this one process, with one BLAS
thread (OMP/OPENBLAS/MKL_NUM_THREADS default to 1 here, as in the grader);
only the train_advanced call is timed.

--trajectory trains seed 0 four times: twice with the reference, once with
``alternative_train`` below (the same algorithm written with different but
mathematically equivalent formulas) and once with a deliberate Adam bug, and
prints the grader's distance max_k ||p_k - ref_k|| / ||ref_k - start_k|| of
each to the first run.

Run from the kit's root with PYTHONPATH=solutions:. (as the tests run).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

if sys.version_info >= (3, 11):  # noqa: E402
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_PATH = Path(__file__).resolve().parent.parent / "assignments" / "optimizers-regularization" / "config.toml"
TRAIN_KEYS = ("epochs", "batch_size", "lr", "optimizer", "activation", "lam", "p_drop", "schedule")


def load_settings(path=CONFIG_PATH):
    """The [mnist] table of Assignment 2's config.toml, as a dict."""
    with open(path, "rb") as f:
        m = tomllib.load(f)["mnist"]
    return {**m, "schedule": m.get("schedule")}  # TOML has no null: no key means no schedule


def parse_value(text):
    """An override's value: a list of ints, an int, a float, None or a string."""
    if "," in text:
        return [int(v) for v in text.split(",")]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text.lower() == "none" else text


def train_reference(settings, seed, X_train, y_train):
    """Train the reference from the grader's start; return (start, params, history, seconds)."""
    from scratchnet.forward import init_params
    from scratchnet.trainer import train_advanced

    start = init_params(list(settings["layer_sizes"]), np.random.default_rng(seed))
    params = {k: v.copy() for k, v in start.items()}
    kwargs = {k: settings[k] for k in TRAIN_KEYS}
    t0, c0 = time.perf_counter(), time.process_time()
    history = train_advanced(params, X_train, y_train, rng=np.random.default_rng(seed + 1), **kwargs)
    return start, params, history, (time.perf_counter() - t0, time.process_time() - c0)


def alternative_train(settings, seed, X_train, y_train, eps_inside_sqrt=False):
    """The specified algorithm written independently, with equivalent but differently rounded formulas.

    Differences from the reference: dropout scales as ``A * keep / (1 - p)``
    (not ``A * mask``); the backward pass multiplies by the activation's
    derivative before the mask and skips dA0; the L2 gradient is added in
    the loop; Adam is written as torch.optim.Adam does (m and v by lerp,
    ``step_size = lr / bc1``, ``denom = sqrt(v) / sqrt(bc2) + eps``); the
    cosine schedule uses numpy's cos. Only Adam and the ReLU/tanh/sigmoid
    activations of the reference are supported.

    With eps_inside_sqrt=True it makes a common mistake instead: Adam's
    denominator becomes sqrt(v_hat + eps) (not equivalent), to show what
    distance a wrong implementation lands at.
    """
    from scratchnet.forward import init_params

    assert settings["optimizer"] == "adam", "alternative_train implements Adam only"
    act, dact = {
        "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0) * 1.0),
        "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
        "sigmoid": (lambda z: 0.5 * (1 + np.tanh(0.5 * z)),
                    lambda z: 0.25 * (1 - np.tanh(0.5 * z) ** 2)),
    }[settings["activation"]]
    start = init_params(list(settings["layer_sizes"]), np.random.default_rng(seed))
    params = {k: v.copy() for k, v in start.items()}
    rng = np.random.default_rng(seed + 1)
    L = len(settings["layer_sizes"]) - 1
    C = settings["layer_sizes"][-1]
    N, B = len(X_train), settings["batch_size"]
    p, lam, lr0 = settings["p_drop"], settings["lam"], settings["lr"]
    Y = np.eye(C)[y_train]
    total = settings["epochs"] * -(-N // B)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(w) for k, w in params.items()}
    t = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(settings["epochs"]):
        order = rng.permutation(N)
        for s in range(0, N, B):
            idx = order[s:s + B]
            Xb, Yb = X_train[idx], Y[idx]
            lr = lr0 * 0.5 * (1 + np.cos(np.pi * t / total)) if settings["schedule"] == "cosine" else lr0
            As, Zs, Ms = [Xb], [None], [None]
            for l in range(1, L + 1):
                Z = As[-1] @ params[f"W{l}"] + params[f"b{l}"]
                Zs.append(Z)
                if l < L:
                    if p > 0:
                        keep = rng.random(Z.shape) >= p
                        As.append(act(Z) * keep / (1 - p))
                        Ms.append(keep / (1 - p))
                    else:
                        As.append(act(Z))
                        Ms.append(None)
                else:
                    e = np.exp(Z - Z.max(axis=1, keepdims=True))
                    As.append(e / e.sum(axis=1, keepdims=True))
            dZ = (As[L] - Yb) / len(Xb)
            grads = {}
            for l in range(L, 0, -1):
                grads[f"W{l}"] = As[l - 1].T @ dZ + lam * params[f"W{l}"]
                grads[f"b{l}"] = dZ.sum(axis=0)
                if l > 1:
                    dZ = (dZ @ params[f"W{l}"].T) * dact(Zs[l - 1])
                    if Ms[l - 1] is not None:
                        dZ = dZ * Ms[l - 1]
            t += 1
            bc1, bc2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            for k in params:
                g = grads[k]
                m[k] += (g - m[k]) * (1 - 0.9)
                v[k] += (g * g - v[k]) * (1 - 0.999)
                if eps_inside_sqrt:
                    params[k] -= lr * (m[k] / bc1) / np.sqrt(v[k] / bc2 + 1e-8)
                else:
                    params[k] -= (lr / bc1) * m[k] / (np.sqrt(v[k]) / np.sqrt(bc2) + 1e-8)
    return start, params, None, (time.perf_counter() - t0, time.process_time() - c0)


def distance(params, reference, start):
    """The grader's trajectory distance: max over keys of ||p - ref|| / ||ref - start||."""
    return max(float(np.linalg.norm(params[k] - reference[k]))
               / max(float(np.linalg.norm(reference[k] - start[k])), 1e-12) for k in reference)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.measure_a2_mnist", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of [mnist], e.g. lr=0.002 or layer_sizes=784,256,10")
    parser.add_argument("--trajectory", action="store_true",
                        help="measure run-to-run distances for the first seed instead")
    args = parser.parse_args(argv)

    from scratchnet.data import load_mnist
    from scratchnet.train import accuracy

    settings = load_settings() if CONFIG_PATH.is_file() else {}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = parse_value(value)
    shown = {k: settings[k] for k in ("layer_sizes", *TRAIN_KEYS)}
    threads = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"settings: {shown}")
    print(f"BLAS threads: {threads}")
    X_train, y_train, X_test, y_test = load_mnist()

    if args.trajectory:
        seed = args.seeds[0]
        start, first, _, (wall, cpu) = train_reference(settings, seed, X_train, y_train)
        acc = accuracy(first, X_test, y_test, settings["activation"])
        print(f"seed {seed}: reference run 1: accuracy {acc:.4f}, {wall:.2f} s ({cpu:.2f} s CPU)")
        _, again, _, (wall, cpu) = train_reference(settings, seed, X_train, y_train)
        print(f"seed {seed}: reference run 2: distance to run 1 {distance(again, first, start):.3g}, "
              f"{wall:.2f} s ({cpu:.2f} s CPU)")
        for label, wrong in (("equivalent alternative implementation", False),
                             ("alternative with eps inside the sqrt (a bug)", True)):
            _, alt, _, (wall, cpu) = alternative_train(settings, seed, X_train, y_train, eps_inside_sqrt=wrong)
            acc = accuracy(alt, X_test, y_test, settings["activation"])
            print(f"seed {seed}: {label}: distance to run 1 {distance(alt, first, start):.3g}, "
                  f"accuracy {acc:.4f}, {wall:.2f} s")
        return 0

    print(f"{'seed':>4}  {'accuracy':>8}  {'wall s':>6}  {'CPU s':>6}  final loss")
    accs, walls, cpus = [], [], []
    for seed in args.seeds:
        _, params, history, (wall, cpu) = train_reference(settings, seed, X_train, y_train)
        acc = accuracy(params, X_test, y_test, settings["activation"])
        accs.append(acc)
        walls.append(wall)
        cpus.append(cpu)
        print(f"{seed:>4}  {acc:>8.4f}  {wall:>6.2f}  {cpu:>6.2f}  {history['loss'][-1]:.4f}", flush=True)
    print(f"accuracy: min {min(accs):.4f}, mean {np.mean(accs):.4f}, max {max(accs):.4f}")
    print(f"seconds per training run: wall mean {np.mean(walls):.2f} (min {min(walls):.2f}, "
          f"max {max(walls):.2f}); CPU mean {np.mean(cpus):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
