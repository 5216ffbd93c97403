"""Specification of `python -m nnkit bench` (nnkit/benches/bench.py) and the nnkit command dispatcher.

The full benchmark takes about ten seconds of training and is not run here;
--quick exercises the same code on a few thousand examples.
"""
import re

import pytest

from nnkit.benches import bench
from nnkit.__main__ import COMMANDS
from nnkit.__main__ import main as nnkit_main
from nnkit.course.config import load_config

RATIO_LINE = re.compile(r"^ratio \(reference / MLPClassifier, s per epoch\): \d+\.\d\d$")


def settings(argv):
    parser = bench.build_parser()
    return bench.settings_from_args(parser.parse_args(argv), parser)


def test_defaults_come_from_the_graded_config():
    """Without options, does the bench use config.toml's [mnist] epochs, seed, sizes, batch size and lr?"""
    m = load_config().mnist
    s = settings([])
    assert (s.epochs, s.seed, s.layer_sizes, s.batch_size, s.lr, s.activation) == (
        m.epochs, m.seed, m.layer_sizes, m.batch_size, m.lr, m.activation)
    assert s.threads == bench.available_cpus() and s.target == bench.TARGET_ACCURACY and not s.quick


def test_quick_trains_one_epoch():
    """Does --quick limit the bench to one epoch and a short warm-up?"""
    s = settings(["--quick", "--threads", "1"])
    assert s.quick and s.epochs == s.max_epochs == 1 and s.threads == 1 and s.warmup <= 200


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--target", "97"], "--target is an accuracy in (0, 1], got 97.0"),
])
def test_bad_options_exit_with_a_message(argv, message, capsys):
    """Do impossible options exit with status 2 and say what was wrong?"""
    with pytest.raises(SystemExit) as info:
        settings(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_mlp_runs_the_same_algorithm():
    """Is MLPClassifier set to plain SGD with the graded sizes, batch and lr, and no early stop?"""
    s = settings([])
    p = bench.make_mlp(s).get_params()
    assert p["hidden_layer_sizes"] == tuple(s.layer_sizes[1:-1])
    assert (p["solver"], p["learning_rate"], p["momentum"], p["nesterovs_momentum"], p["alpha"]) == (
        "sgd", "constant", 0.0, False, 0.0)
    assert (p["batch_size"], p["learning_rate_init"], p["shuffle"], p["random_state"]) == (
        s.batch_size, s.lr, True, s.seed)
    assert p["early_stopping"] is False and p["n_iter_no_change"] > s.max_epochs


def test_time_to_target():
    """Does TrainerRun.time_to give the first epoch reaching the target and the training time until then?"""
    run = bench.TrainerRun("r", seconds=[1.0, 2.0, 4.0], accuracy=[0.95, 0.971, 0.975])
    assert run.time_to(0.97) == (2, 3.0)
    assert run.time_to(0.98) is None
    assert run.seconds_per_epoch(2) == 1.5


def test_seconds_per_epoch_is_the_median():
    """Is s/epoch the median of the timed epochs, so one disturbed epoch does not decide it?"""
    run = bench.TrainerRun("r", seconds=[0.9, 5.0, 0.8, 0.1], accuracy=[0.9] * 4)
    assert run.seconds_per_epoch(3) == 0.9
    assert run.spread(3) == 5.0 / 0.8


def test_report_format_and_ratio():
    """Does the report end with the exact ratio line, mean s/epoch of the timed epochs over each other?"""
    s = settings(["--epochs", "2"])
    ref = bench.TrainerRun("reference", seconds=[0.9, 0.7, 0.8], accuracy=[0.96, 0.968, 0.972])
    mlp = bench.TrainerRun("MLPClassifier", seconds=[1.0, 1.4], accuracy=[0.962, 0.97])
    data = (range(60000), None, range(10000), None)  # only the lengths are reported
    lines = bench.format_report(s, data, ref, mlp, others=0.5)
    assert lines[-1] == "ratio (reference / MLPClassifier, s per epoch): 0.67"
    assert RATIO_LINE.match(lines[-1])
    assert "reference: reached >= 97.00% test accuracy after 3 epochs, 2.40 s of training" in lines
    assert any(line.startswith("goals: ratio <= 0.80: met;") and line.endswith(": met") for line in lines)
    assert any(line.startswith("warning: other processes used 50%") for line in lines)
    assert "warning: MLPClassifier's epochs took from 1.00 to 1.40 s;" in "\n".join(lines)
    assert "60000 training / 10000 test examples" in lines[0]


def test_quick_bench_runs_end_to_end(capsys):
    """Does `bench --quick` train both trainers and print a report ending with the ratio line?"""
    assert bench.main(["--quick", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "--quick" in lines[0] and "3000 training / 1000 test examples" in lines[0]
    row = r"\s+\d+\.\d\d\s+\(\d+\.\d\d-\d+\.\d\d\)\s+\d+\.\d\d%$"
    assert re.match("^reference" + row, next(l for l in lines if l.startswith("reference ")))
    assert re.match("^MLPClassifier" + row, next(l for l in lines if l.startswith("MLPClassifier ")))
    assert RATIO_LINE.match(lines[-1])


def test_dispatcher_runs_bench_and_rejects_unknown_commands(capsys):
    """Does `python -m nnkit` route `bench` to nnkit.benches.bench.main and refuse an unknown command with status 2?"""
    assert COMMANDS["bench"][0] == "nnkit.benches.bench:main"
    with pytest.raises(SystemExit) as info:
        nnkit_main(["bench", "--help"])
    assert info.value.code == 0
    assert "python -m nnkit bench" in capsys.readouterr().out
    assert nnkit_main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err
    assert nnkit_main(["--help"]) == 0
    assert "bench" in capsys.readouterr().out
