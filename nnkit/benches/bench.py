"""`python -m nnkit bench`: the reference trainer against scikit-learn's MLPClassifier.

Both trainers run in this process on the same MNIST arrays, under the same
BLAS thread limit, with the graded configuration of config.toml ([mnist]:
layer sizes, activation, batch size, learning rate, epochs, seed) and the
same algorithm: plain mini-batch SGD (no momentum, no L2 penalty, constant
learning rate), data reshuffled every epoch, one epoch per call
(``train(..., epochs=1)`` and ``MLPClassifier.partial_fit``) so every epoch
is timed on its own. The two alternate epoch by epoch, so a change in the
machine's load hits both alike. Only training is timed; the test accuracy
after each epoch is measured outside the clock. Before the clock starts,
each trainer makes one untimed pass over a few examples, so neither pays
one-off costs (page faults, BLAS thread start-up) in its first timed epoch.

The two differ where the libraries differ: MLPClassifier initialises with
Glorot-uniform weights and its own random stream, so accuracies agree
closely but not exactly.

Reports seconds per epoch and test accuracy for both, the training time
the reference needs to reach --target test accuracy (checked after each
epoch, up to --max-epochs) and, on the last line,
``ratio (reference / MLPClassifier, s per epoch): X.XX``.
Timings are only meaningful on an otherwise idle machine: the report says
how much CPU other processes took while it ran.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from nnkit.course.config import load_config

TARGET_RATIO = 0.8
"""Goal: the reference takes at most this fraction of MLPClassifier's time per epoch."""

TARGET_ACCURACY = 0.97
"""Goal: test accuracy the reference reaches ..."""

TARGET_SECONDS = 5.0
"""... within this many seconds of training."""

QUICK_TRAIN, QUICK_TEST = 3000, 1000
"""Examples used by --quick (a smoke test of the bench itself, not a measurement)."""

BUSY_WARNING = 0.10
"""Share of the machine's CPU time taken by other processes above which the report warns."""

SPREAD_WARNING = 1.25
"""Slowest over fastest epoch time of one trainer above which the report warns."""

SKLEARN_ACTIVATION = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}


@dataclass
class TrainerRun:
    """Per-epoch measurements of one trainer."""

    name: str
    """Label in the report."""
    seconds: list[float] = field(default_factory=list)
    """Wall-clock training time of each epoch."""
    accuracy: list[float] = field(default_factory=list)
    """Test accuracy after each epoch, in [0, 1]."""

    def seconds_per_epoch(self, epochs: int) -> float:
        """Median training time of the first ``epochs`` epochs.

        The median, not the mean, so that one epoch slowed down by another
        process does not decide the comparison.
        """
        return float(np.median(self.seconds[:epochs]))

    def spread(self, epochs: int) -> float:
        """Slowest over fastest of the first ``epochs`` epoch times (1.0 when all are equal)."""
        times = self.seconds[:epochs]
        return max(times) / min(times)

    def time_to(self, target: float) -> tuple[int, float] | None:
        """(epochs, seconds of training) when test accuracy first reached ``target``, or None."""
        for epoch, acc in enumerate(self.accuracy):
            if acc >= target:
                return epoch + 1, float(sum(self.seconds[:epoch + 1]))
        return None


@dataclass(frozen=True)
class Settings:
    """What the bench trains, and how."""

    layer_sizes: tuple[int, ...]
    activation: str
    batch_size: int
    lr: float
    seed: int
    epochs: int
    max_epochs: int
    target: float
    threads: int
    warmup: int
    quick: bool


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    m = load_config().mnist
    parser = argparse.ArgumentParser(
        prog="python -m nnkit bench",
        description="Time the reference trainer against scikit-learn's MLPClassifier on MNIST "
                    "(graded configuration, same data, same BLAS threads).",
    )
    parser.add_argument("--epochs", type=int, default=m.epochs,
                        help=f"epochs timed for s/epoch and accuracy (default: {m.epochs}, from config.toml)")
    parser.add_argument("--max-epochs", type=int, default=5,
                        help="train the reference up to this many epochs to reach --target (default: 5)")
    parser.add_argument("--target", type=float, default=TARGET_ACCURACY,
                        help=f"test accuracy to time the reference to (default: {TARGET_ACCURACY})")
    parser.add_argument("--seed", type=int, default=m.seed, help=f"seed of both trainers (default: {m.seed})")
    parser.add_argument("--threads", type=int, default=available_cpus(),
                        help="BLAS threads for both trainers (default: the CPUs available)")
    parser.add_argument("--warmup", type=int, default=2000,
                        help="examples of the untimed warm-up pass (default: 2000; 0 to skip)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_TRAIN} training and {QUICK_TEST} test examples, "
                             "1 epoch; checks the bench runs, measures nothing useful")
    return parser


def settings_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Settings:
    """Check the options and combine them with the config's [mnist] section."""
    m = load_config().mnist
    epochs, max_epochs, warmup = args.epochs, args.max_epochs, args.warmup
    if args.quick:
        epochs, max_epochs, warmup = 1, 1, min(warmup, 200)
    if epochs < 1:
        parser.error(f"--epochs must be at least 1, got {epochs}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if not 0.0 < args.target <= 1.0:
        parser.error(f"--target is an accuracy in (0, 1], got {args.target}")
    return Settings(
        layer_sizes=m.layer_sizes, activation=m.activation, batch_size=m.batch_size, lr=m.lr,
        seed=args.seed, epochs=epochs, max_epochs=max(epochs, max_epochs), target=args.target,
        threads=args.threads, warmup=max(warmup, 0), quick=args.quick,
    )


def load_data(quick: bool):
    """MNIST as (X_train, y_train, X_test, y_test); the first few thousand rows with --quick."""
    from scratchnet.data import load_mnist

    X_train, y_train, X_test, y_test = load_mnist()
    if quick:
        return X_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN], X_test[:QUICK_TEST], y_test[:QUICK_TEST]
    return X_train, y_train, X_test, y_test


def make_mlp(s: Settings):
    """MLPClassifier doing the reference's algorithm: plain SGD, fixed epochs, no early stop."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=tuple(s.layer_sizes[1:-1]),
        activation=SKLEARN_ACTIVATION[s.activation],
        solver="sgd",
        batch_size=s.batch_size,
        learning_rate="constant",
        learning_rate_init=s.lr,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        shuffle=True,
        random_state=s.seed,
        max_iter=s.max_epochs,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=s.max_epochs + 1,  # never declare convergence before the last epoch
    )


class ReferenceTrainer:
    """The reference, trained one timed epoch at a time with one rng, through the hooks of the
    assignment's end_to_end.py (``bench_hooks``)."""

    def __init__(self, s: Settings, data):
        self.hooks = bench_hooks()
        self.s, self.data = s, data
        self.rng = np.random.default_rng(s.seed)
        self.params = self.hooks.initial_params(list(s.layer_sizes), self.rng)
        self.run = TrainerRun("reference")

    def epoch(self) -> None:
        """Train one timed epoch, then measure test accuracy (untimed)."""
        X_train, y_train, X_test, y_test = self.data
        start = time.perf_counter()
        self.hooks.train_epochs(self.params, X_train, y_train, epochs=1, batch_size=self.s.batch_size,
                                lr=self.s.lr, rng=self.rng, activation=self.s.activation)
        self.run.seconds.append(time.perf_counter() - start)
        self.run.accuracy.append(self.hooks.test_accuracy(self.params, X_test, y_test, self.s.activation))


BENCH_HOOKS = ("initial_params", "train_epochs", "test_accuracy")
"""What an assignment's end_to_end.py must define for `make bench` (plain mini-batch SGD, comparable
with MLPClassifier's "sgd" solver)."""


def bench_hooks():
    """The active assignment's end_to_end.py, which must define BENCH_HOOKS; SystemExit otherwise."""
    from nnkit.grading.end_to_end import load_assignment_module

    module = load_assignment_module()
    missing = [name for name in BENCH_HOOKS if not hasattr(module, name)]
    if missing:
        raise SystemExit(f"make bench compares plain SGD with MLPClassifier; this assignment's end_to_end.py "
                         f"does not define {', '.join(missing)}")
    return module


class MLPTrainer:
    """scikit-learn's MLPClassifier: one partial_fit call (one epoch) per epoch."""

    def __init__(self, s: Settings, data):
        self.s, self.data = s, data
        self.mlp = make_mlp(s)
        self.classes = np.arange(s.layer_sizes[-1])
        self.run = TrainerRun("MLPClassifier")

    def epoch(self) -> None:
        """Train one timed epoch, then measure test accuracy (untimed)."""
        from sklearn import config_context

        X_train, y_train, X_test, y_test = self.data
        # assume_finite skips the scan for nan/inf that partial_fit would repeat on
        # every call (fit would do it once); the reference does no such scan.
        with config_context(assume_finite=True), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            start = time.perf_counter()
            self.mlp.partial_fit(X_train, y_train, classes=self.classes)
            self.run.seconds.append(time.perf_counter() - start)
        self.run.accuracy.append(float(self.mlp.score(X_test, y_test)))


class CpuShare:
    """Share of the machine's CPU time used by other processes between start() and stop()."""

    def start(self):
        try:
            import psutil
        except ImportError:  # pragma: no cover
            self._psutil = None
            return self
        self._psutil = psutil
        self._me = psutil.Process()
        self._t0 = time.perf_counter()
        self._sys0, self._own0 = self._busy(), self._own()
        return self

    def _busy(self):
        t = self._psutil.cpu_times()
        fields = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is inside user
        return sum(getattr(t, name, 0.0) for name in fields)

    def _own(self):
        t = self._me.cpu_times()
        return t.user + t.system

    def stop(self) -> float | None:
        """Other processes' CPU seconds over (wall seconds x CPUs); None without psutil."""
        if self._psutil is None:
            return None
        wall = time.perf_counter() - self._t0
        others = (self._busy() - self._sys0) - (self._own() - self._own0)
        return max(others, 0.0) / (wall * self._psutil.cpu_count())


def blas_name() -> str:
    from threadpoolctl import threadpool_info

    names = sorted({info.get("internal_api", "?") for info in threadpool_info() if info["user_api"] == "blas"})
    return ", ".join(names) or "unknown BLAS"


def format_report(s: Settings, data, ref: TrainerRun, mlp: TrainerRun, others: float | None) -> list[str]:
    """The lines of the report; the last one is the ratio."""
    X_train, _, X_test, _ = data
    E = s.epochs
    lines = [
        f"bench: MNIST{' (--quick: a smoke test, not a measurement)' if s.quick else ''}, "
        f"{len(X_train)} training / {len(X_test)} test examples",
        f"graded config: layers {list(s.layer_sizes)}, {s.activation}, batch size {s.batch_size}, "
        f"lr {s.lr}, seed {s.seed}",
        f"both: plain SGD (no momentum, no L2, constant lr), reshuffled every epoch, "
        f"{s.threads} BLAS thread{'s' if s.threads != 1 else ''} ({blas_name()}), "
        f"untimed warm-up on {s.warmup} examples",
        "",
        f"{'epoch':<7}{'reference':<22}MLPClassifier",
    ]
    for e in range(max(len(ref.seconds), len(mlp.seconds))):
        cells = []
        for run in (ref, mlp):
            cells.append(f"{run.seconds[e]:6.2f} s  {100 * run.accuracy[e]:6.2f}%" if e < len(run.seconds) else "")
        lines.append(f"{e + 1:<7}{cells[0]:<22}{cells[1]:<22}".rstrip())
    lines += [
        "",
        f"{'trainer':<15}{'s/epoch':>8}  {'(fastest-slowest)':<19}test accuracy after {E} epoch{'s' if E != 1 else ''}",
    ]
    for run in (ref, mlp):
        times = run.seconds[:E]
        lines.append(f"{run.name:<15}{run.seconds_per_epoch(E):8.2f}  {f'({min(times):.2f}-{max(times):.2f})':<19}"
                     f"{100 * run.accuracy[E - 1]:.2f}%")
    lines.append(f"(s/epoch is the median over the {E} timed epoch{'s' if E != 1 else ''})")
    reached = ref.time_to(s.target)
    if reached is None:
        n = len(ref.seconds)
        lines.append(f"reference: did not reach {100 * s.target:.2f}% test accuracy within "
                     f"{n} epoch{'s' if n != 1 else ''} ({sum(ref.seconds):.2f} s of training)")
    else:
        lines.append(f"reference: reached >= {100 * s.target:.2f}% test accuracy after {reached[0]} "
                     f"epoch{'s' if reached[0] != 1 else ''}, {reached[1]:.2f} s of training")
    ratio = ref.seconds_per_epoch(E) / mlp.seconds_per_epoch(E)
    if not s.quick:
        goal = ref.time_to(TARGET_ACCURACY)
        met_time = goal is not None and goal[1] <= TARGET_SECONDS
        lines.append(
            f"goals: ratio <= {TARGET_RATIO:.2f}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}; "
            f">= {100 * TARGET_ACCURACY:.0f}% test accuracy within {TARGET_SECONDS:.0f} s of training: "
            f"{'met' if met_time else 'NOT met'}"
        )
    if others is not None and others > BUSY_WARNING:
        lines.append(f"warning: other processes used {100 * others:.0f}% of the CPU time while the bench "
                     "ran; these timings are unreliable, rerun on an idle machine")
    noisy = [run for run in (ref, mlp) if run.spread(E) > SPREAD_WARNING]
    if noisy:
        worst = max(noisy, key=lambda run: run.spread(E))
        lines.append(f"warning: {worst.name}'s epochs took from {min(worst.seconds[:E]):.2f} to "
                     f"{max(worst.seconds[:E]):.2f} s; something else slowed some of them down, "
                     "rerun on an idle machine")
    lines.append(f"ratio (reference / MLPClassifier, s per epoch): {ratio:.2f}")
    return lines


def bench(s: Settings, data) -> tuple[TrainerRun, TrainerRun, float | None]:
    """Warm up both trainers, then time them; returns (reference, mlp, others' CPU share).

    The two trainers alternate epoch by epoch, so a change in the machine's
    load affects both alike. After s.epochs epochs the reference goes on
    alone, up to s.max_epochs, until it reaches s.target.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=s.threads, user_api="blas"):
        if s.warmup:
            X_train, y_train, X_test, y_test = data
            small = (X_train[:s.warmup], y_train[:s.warmup], X_test[:s.warmup], y_test[:s.warmup])
            for trainer in (ReferenceTrainer(s, small), MLPTrainer(s, small)):
                trainer.epoch()
        share = CpuShare().start()
        ref, mlp = ReferenceTrainer(s, data), MLPTrainer(s, data)
        for _ in range(s.epochs):
            ref.epoch()
            mlp.epoch()
        while ref.run.time_to(s.target) is None and len(ref.run.seconds) < s.max_epochs:
            ref.epoch()
        return ref.run, mlp.run, share.stop()


def main(argv=None) -> int:
    """Parse the options, run the bench, print the report; returns 0."""
    parser = build_parser()
    s = settings_from_args(parser.parse_args(argv), parser)
    data = load_data(s.quick)
    ref, mlp, others = bench(s, data)
    print("\n".join(format_report(s, data, ref, mlp, others)), flush=True)
    return 0
