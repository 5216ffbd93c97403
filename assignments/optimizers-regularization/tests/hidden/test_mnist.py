"""Hidden end-to-end test: the student's own code trains a network on MNIST.

The grader supplies the initial parameters (the reference's init_params with
a seed drawn from the course secret) and the seed of the training rng. The
student's train_advanced() runs with the graded configuration ([mnist] of
config.toml: its optimizer, L2 strength, dropout and schedule too), using all
four of their files, in the sandbox; it sees the training split only. The
grader then measures test accuracy with the reference's predict (no
dropout), and checks that the trained weights are the ones the specified
algorithm produces from that start, so a loop that does not train through
the student's own functions cannot earn the points.
"""
import numpy as np
import pytest

from nnkit.course.config import load_config
from nnkit.grading.end_to_end import load_test_split, load_training_split
from nnkit.testing.checks import check_keys, fail, trajectory_distance

pytestmark = pytest.mark.part("trainer")


@pytest.mark.end_to_end
@pytest.mark.points(10)
def test_mnist_accuracy_above_threshold(submission, reference, grading_spec):
    """Does train_advanced() reach the required test accuracy on MNIST, along the specified trajectory?"""
    cfg = load_config().mnist
    mnist = grading_spec.get("mnist")
    if not mnist:
        pytest.fail("grader error: the MNIST reference is not configured")
    X_train, y_train = load_training_split(mnist["shared"])
    X_test, y_test = load_test_split(mnist["data"])
    seed = int(mnist["seed"])
    start = reference.forward.init_params(list(cfg.layer_sizes), np.random.default_rng(seed))
    options = dict(cfg.options or {})
    shown = "".join(f", {k}={v!r}" for k, v in options.items())
    what = (f"train_advanced(params, X_train, y_train, epochs={cfg.epochs}, batch_size={cfg.batch_size}, "
            f"lr={cfg.lr}, activation={cfg.activation!r}{shown}) on MNIST, X_train of shape {X_train.shape}")
    result = submission.call(
        "train_advanced", start, X_train, y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
        rng=seed + 1, activation=cfg.activation, **options, timeout=cfg.time_limit, keep_args=(0,))
    params = check_keys(result.args[0], start.keys(), what=what + " (params after training)",
                        hint="train_advanced must update the params dict it was given, in place")
    for key, value in start.items():
        got = params[key]
        if not isinstance(got, np.ndarray) or got.shape != value.shape or got.dtype != np.float64:
            fail(what, f"params[{key!r}] a float64 array of shape {value.shape}",
                 f"{getattr(got, 'dtype', type(got).__name__)} of shape {getattr(got, 'shape', '?')}")
    if not all(np.all(np.isfinite(params[k])) for k in start):
        fail(what, "finite weights after training", "nan or inf in the weights",
             "a step blows up: check the optimizer's denominators (sqrt(v_hat) + eps) and the gradients")
    accuracy = reference.train.accuracy(params, X_test, y_test, cfg.activation)
    if accuracy <= cfg.threshold:
        fail(what, f"test accuracy above {cfg.threshold:.1%}", f"{accuracy:.2%}",
             "if your other tests pass, check that train_advanced runs every batch of every epoch and takes one "
             "optimizer step with the gradients of that batch")
    with np.load(mnist["trajectory"]) as z:
        reference_final = {k[len("final_"):]: z[k] for k in z.files if k.startswith("final_")}
    distance = trajectory_distance(params, reference_final, start)
    if distance > cfg.trajectory_rtol:
        fail(what, f"the weights the specified training loop produces from the given start "
                   f"(relative distance at most {cfg.trajectory_rtol:g})",
             f"weights at relative distance {distance:.3g} (test accuracy {accuracy:.2%})",
             "train_advanced must use the given params and rng: one rng.permutation per epoch via "
             "iterate_minibatches, then for each batch forward_dropout, backward_dropout, l2_grads and the "
             "optimizer's step, in order, with your own functions")
