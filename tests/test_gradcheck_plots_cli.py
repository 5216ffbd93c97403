"""Specification of the provided tools: scratchnet.gradcheck, scratchnet.plots and the training CLI."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

import scratchnet.train
from nnkit.course.config import ROOT, load_config
from scratchnet import cli, plots
from scratchnet.backward import backward
from scratchnet.forward import init_params
from scratchnet.gradcheck import format_report, gradient_report, numerical_gradients, relative_error
from scratchnet.train import accuracy, train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- gradcheck


def test_relative_error_formula():
    """Is relative_error(a, b) = max|a - b| / max(|a| + |b|), e.g. 0.1 / 4.1 for [1, 2] and [1, 2.1]?"""
    assert relative_error([1.0, 2.0], [1.0, 2.1]) == pytest.approx(0.1 / 4.1, rel=1e-12)


def test_relative_error_properties():
    """Is relative_error zero for equal arrays (even all zeros), symmetric, scale-free and at most 1?"""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, b) == relative_error(b, a)
    assert relative_error(1e-20 * a, 1e-20 * b) == pytest.approx(relative_error(a, b), rel=1e-12)
    assert relative_error(a, -a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        relative_error(np.zeros(3), np.zeros(4))


def test_numerical_gradients_of_known_function():
    """Does numerical_gradients recover d/dW sum(A * W**2) = 2 A W and d/db sum(exp(b)) = exp(b)?"""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 2))
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=4)}
    before = {k: v.copy() for k, v in params.items()}
    grads = numerical_gradients(lambda p: float(np.sum(A * p["W"] ** 2) + np.sum(np.exp(p["b"]))), params)
    assert relative_error(grads["W"], 2 * A * params["W"]) < 1e-9
    assert relative_error(grads["b"], np.exp(params["b"])) < 1e-9
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_gradient_report_rows_and_table():
    """Does gradient_report give one (name, shape, rel. error) row per parameter, and format_report a line each?"""
    rng = np.random.default_rng(2)
    params = init_params([3, 4, 2], rng)
    X, Y = rng.normal(size=(5, 3)), np.eye(2)[rng.integers(0, 2, size=5)]
    rows = gradient_report(params, X, Y, "tanh")
    assert [(r.name, r.shape) for r in rows] == [("W1", (3, 4)), ("b1", (4,)), ("W2", (4, 2)), ("b2", (2,))]
    assert all(r.passed() for r in rows)
    table = format_report(rows).splitlines()
    assert len(table) == 1 + len(rows) and "1e-07" in table[0]
    assert all(line.split()[0] == r.name and line.endswith("ok") for line, r in zip(table[1:], rows))


def test_gradient_report_flags_a_wrong_backward():
    """Does format_report flag the parameter whose gradient is wrong (here db2 doubled)?"""
    rng = np.random.default_rng(3)
    params = init_params([3, 4, 2], rng)
    X, Y = rng.normal(size=(5, 3)), np.eye(2)[rng.integers(0, 2, size=5)]

    def doubled_b2(params, cache, Y, activation):
        grads = backward(params, cache, Y, activation)
        return {**grads, "b2": 2 * grads["b2"]}

    table = format_report(gradient_report(params, X, Y, "relu", backward_fn=doubled_b2))
    flagged = [line.split()[0] for line in table.splitlines()[1:] if "CHECK" in line]
    assert flagged == ["b2"]


# ---------------------------------------------------------------- plots


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG file"


def test_each_plot_returns_a_figure_and_saves_png(tmp_path):
    """Does every plot function return a Figure and write a PNG when given a path?"""
    rng = np.random.default_rng(4)
    images, y = rng.random((12, 64)), rng.integers(0, 3, size=12)
    pred = np.where(np.arange(12) % 4 == 0, (y + 1) % 3, y)
    X2 = rng.normal(size=(30, 2))
    calls = {
        "activations.png": lambda p: plots.plot_activations(path=p),
        "curves.png": lambda p: plots.plot_training_curves({"loss": [1.0, 0.5], "val_accuracy": [0.8, 0.9]}, path=p),
        "loss.png": lambda p: plots.plot_training_curves({"loss": [1.0, 0.5, 0.4]}, path=p),
        "boundary.png": lambda p: plots.plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X2,
                                                               (X2[:, 0] > 0).astype(int), path=p),
        "predictions.png": lambda p: plots.plot_predictions(images, y, pred, n=9, path=p),
        "confusion.png": lambda p: plots.plot_confusion_matrix(y, pred, path=p),
    }
    for name, call in calls.items():
        fig = call(tmp_path / name)
        assert isinstance(fig, Figure), name
        assert_png(tmp_path / name)
        plots.close(fig)
    assert isinstance(plots.plot_confusion_matrix(y, pred), Figure)  # no path: nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(calls)


def test_prediction_grid_counts_and_highlights_mistakes():
    """Does the prediction grid title count the mistakes and colour exactly those panels' titles red?"""
    y = np.array([0, 1, 2, 3])
    pred = np.array([0, 2, 2, 0])
    fig = plots.plot_predictions(np.zeros((4, 4)), y, pred)
    assert "2 of 4 wrong" in fig._suptitle.get_text()
    red = [ax.title.get_color() == plots.WRONG_COLOR for ax in fig.axes[:4]]
    assert red == [False, True, False, True]
    plots.close(fig)


def test_confusion_matrix_counts_pairs():
    """Is confusion_matrix[i, j] the number of examples of class i predicted as j?"""
    rng = np.random.default_rng(5)
    y, pred = rng.integers(0, 4, size=200), rng.integers(0, 4, size=200)
    m = plots.confusion_matrix(y, pred, 4)
    expected = np.zeros((4, 4), dtype=int)
    for t, p in zip(y, pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(m, expected)
    with pytest.raises(ValueError, match=r"y_pred holds labels in 0\.\.3, expected 0\.\.2"):
        plots.confusion_matrix(np.minimum(y, 2), pred, 3)


def test_plots_need_no_display(tmp_path):
    """Without DISPLAY and MPLBACKEND, does importing scratchnet.plots select the Agg backend?"""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "solutions"), str(ROOT)])
    code = "import matplotlib, scratchnet.plots; print(matplotlib.get_backend())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().lower() == "agg"


# ---------------------------------------------------------------- CLI


def test_cli_fallback_equals_config():
    """Are the CLI's built-in MNIST settings the [mnist] numbers of config.toml?"""
    m = load_config().mnist
    assert cli.MNIST_FALLBACK == {"layer_sizes": list(m.layer_sizes), "activation": m.activation,
                                  "epochs": m.epochs, "batch_size": m.batch_size, "lr": m.lr, "seed": m.seed}
    assert cli.mnist_defaults() == cli.MNIST_FALLBACK


def test_cli_uses_fallback_without_nnkit(monkeypatch):
    """When nnkit cannot be imported (as in a student release without it), are the built-in settings used?"""
    monkeypatch.setitem(sys.modules, "nnkit.course.config", None)  # makes `import nnkit.course.config` fail
    assert cli.mnist_defaults() == cli.MNIST_FALLBACK


def test_cli_trains_toy_dataset_and_writes_outputs(tmp_path, capsys):
    """Does the CLI on xor print the test accuracy, write every output file, and match one train() call?"""
    out = tmp_path / "run"
    assert cli.main(["--dataset", "xor", "--epochs", "4", "--seed", "3", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(cli.OUTPUT_FILES)
    for name in ("curves.png", "predictions.png", "confusion.png"):
        assert_png(out / name)

    record = json.loads((out / "history.json").read_text())
    assert record["dataset"] == "xor" and record["epochs"] == 4 and record["layer_sizes"] == [2, 16, 2]
    assert len(record["loss"]) == len(record["val_accuracy"]) == 4
    printed = re.search(r"^test accuracy: (\d+\.\d\d)%$", stdout, re.M)
    assert printed and float(printed.group(1)) == pytest.approx(100 * record["test_accuracy"], abs=0.005)

    # Four one-epoch calls with one rng must equal a single four-epoch call.
    X_train, y_train, X_test, y_test = cli.load_dataset("xor")
    rng = np.random.default_rng(3)
    params = init_params([2, 16, 2], rng)
    history = train(params, X_train, y_train, epochs=4, batch_size=32, lr=0.2, rng=rng, activation="tanh")
    saved = np.load(out / "params.npz")
    assert sorted(saved.files) == sorted(params)
    for k in params:
        np.testing.assert_array_equal(saved[k], params[k])
    assert record["loss"] == history["loss"]
    assert record["test_accuracy"] == accuracy(params, X_test, y_test, "tanh")


def test_cli_rejects_layer_sizes_that_do_not_fit(tmp_path, capsys):
    """Does --layer-sizes with the wrong D or C exit with status 2 and name the expected D and C?"""
    with pytest.raises(SystemExit) as info:
        cli.main(["--dataset", "moons", "--layer-sizes", "3", "8", "2", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "D = 2 and the last C = 2" in capsys.readouterr().err


def test_cli_names_an_unfinished_function_in_process(tmp_path, monkeypatch, capsys):
    """If train raises NotImplementedError, does the CLI exit 1 with one line naming train()?"""
    def train(*args, **kwargs):
        raise NotImplementedError()

    monkeypatch.setattr(scratchnet.train, "train", train)
    with pytest.raises(SystemExit) as info:
        cli.main(["--dataset", "xor", "--epochs", "1", "--out", str(tmp_path)])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: train() in ") and "not implemented yet" in err[-1]


def test_cli_names_a_student_stub_without_traceback(tmp_path):
    """With relu still a stub in a student's package, does `python -m scratchnet.train` exit 1 with one line?"""
    package = tmp_path / "student" / "scratchnet"
    shutil.copytree(ROOT / "solutions" / "scratchnet", package, ignore=shutil.ignore_patterns("__pycache__"))
    source = (package / "activations.py").read_text()
    stubbed, count = re.subn(
        r"(def relu\(z\):.*?)# BEGIN SOLUTION\n.*?# END SOLUTION\n",
        lambda m: m.group(1) + "raise NotImplementedError()\n", source, count=1, flags=re.S)
    assert count == 1
    (package / "activations.py").write_text(stubbed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package.parent), str(ROOT)]), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "scratchnet.train", "--dataset", "xor", "--activation", "relu",
                           "--epochs", "1", "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("error: relu() in scratchnet/activations.py is not implemented yet (it raises "
                    "NotImplementedError). Complete it, then run this command again.")
