"""Public tests of train.py: exact small cases of one_hot, the batch order
the docstring specifies, the in-place SGD step, accuracy, and properties of
train: its history, determinism, its use of the rng, and a full-batch step.

In the grader, forward, cross_entropy, predict and backward come from the
reference solution when train.py is tested.
"""
import numpy as np
import pytest

from nnkit.testing.inputs import random_params
from nnkit.course.causes import cause
from nnkit.testing.checks import (
    check_array, check_close, check_keys, check_scalar, check_tuple, check_unmodified, describe_call, fail,
    first_match,
)

pytestmark = pytest.mark.part("training")


def blobs(rng, N, D, C, spread=0.5):
    """N points around C well-separated centres in D dimensions, with labels."""
    centres = 3.0 * rng.normal(size=(C, D))
    y = rng.integers(0, C, size=N)
    return centres[y] + spread * rng.normal(size=(N, D)), y


def forward(submission, params, X, activation):
    """forward(params, X, activation), checked enough to test train with."""
    what = describe_call(f"forward(params, X, {activation!r}), needed to test train,", params=params, X=X)
    return check_tuple(submission.forward(params, X, activation), ("probs", "cache"), what=what)


def indexed_data(N, D=2, C=3):
    """X whose first column is the row index and Y the one-hot of index % C, so a batch shows its rows."""
    X = np.column_stack([np.arange(N, dtype=np.float64)] + [np.full(N, 0.5)] * (D - 1))
    Y = np.zeros((N, C))
    Y[np.arange(N), np.arange(N) % C] = 1.0
    return X, Y


def check_batches(got, X, Y, batch_size, seed, what):
    """The batches must be the rows order[k*B:(k+1)*B] of X and Y, order = default_rng(seed).permutation(N)."""
    N = X.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    expected = [order[k:k + batch_size] for k in range(0, N, batch_size)]
    batches = got.value
    covered = sorted(int(i) for b in batches if isinstance(b, tuple) and len(b) == 2
                     and isinstance(b[0], np.ndarray) and b[0].ndim == 2 for i in b[0][:, 0])
    if len(batches) != len(expected):
        hint = None
        if len(batches) == len(expected) - 1 and N % batch_size:
            hint = cause("minibatches_drop_last")
        fail(what, f"{len(expected)} batches (N={N}, batch_size={batch_size})", f"{len(batches)} batches", hint)
    for k, (batch, idx) in enumerate(zip(batches, expected)):
        if not (isinstance(batch, tuple) and len(batch) == 2):
            fail(what, f"batch {k} to be a tuple (X_batch, Y_batch)", type(batch).__name__,
                 "yield X_batch, Y_batch")
        X_batch, Y_batch = batch
        check_array(X_batch, what=f"{what}: X_batch {k}", shape=(len(idx), X.shape[1]))
        check_array(Y_batch, what=f"{what}: Y_batch {k}", shape=(len(idx), Y.shape[1]))
        if not np.array_equal(X_batch, X[idx]):
            got_rows = f"rows {X_batch[:, 0].tolist()}" + (" (some rows missing or repeated over the batches)"
                                                           if covered != list(range(N)) else "")
            fail(what, f"X_batch {k} to hold rows {idx.tolist()}", got_rows, cause("minibatches_not_one_permutation"))
        if not np.array_equal(Y_batch, Y[idx]):
            fail(what, f"Y_batch {k} to hold the labels of the rows in X_batch {k}", "labels of other rows",
                 cause("minibatches_not_one_permutation"))
    if got.rng_state != rng.bit_generator.state:
        fail(what, "the rng to be called exactly once, for rng.permutation(N)", "a different rng state",
             cause("minibatches_not_one_permutation"))
    check_unmodified(X, got.args[0], what=what, name="X")
    check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
def test_one_hot_small_case(submission):
    """Is one_hot float64 of shape (N, C), with C columns even when a class is absent from y?"""
    y = np.array([2, 0, 1, 2, 0])
    got = submission.call("one_hot", y, 4)
    what = describe_call("one_hot(y, num_classes=4)", y=y)
    columns = got.value.shape[1] if isinstance(got.value, np.ndarray) and got.value.ndim == 2 else None
    check_array(got.value, what=what, shape=(5, 4),
                hint=cause("one_hot_classes_from_labels") if columns == y.max() + 1 else
                "C = num_classes columns, even if the largest class does not occur in y")
    expected = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=float)
    check_close(got.value, expected, what=what, rtol=0, atol=0, hint="Y[i, y[i]] = 1.0 and 0.0 elsewhere")
    check_unmodified(y, got.args[0], what=what, name="y")


@pytest.mark.points(1)
def test_iterate_minibatches_order(submission):
    """Are the batches the slices of default_rng(seed).permutation(N), the last one smaller, the rng used once?"""
    X, Y = indexed_data(10)
    got = submission.call("iterate_minibatches", X, Y, 4, 123)
    what = describe_call("iterate_minibatches(X, Y, batch_size=4, rng=np.random.default_rng(123))", X=X, Y=Y)
    check_batches(got, X, Y, 4, 123, what)


@pytest.mark.points(1)
def test_iterate_minibatches_edge_sizes(submission):
    """Does a batch size above N give one batch of all N rows, and batch size 1 give N batches?"""
    X, Y = indexed_data(7)
    got = submission.call("iterate_minibatches", X, Y, 50, 5)
    check_batches(got, X, Y, 50, 5, describe_call("iterate_minibatches(X, Y, batch_size=50, rng)", X=X, Y=Y))
    got = submission.call("iterate_minibatches", X, Y, 1, 6)
    check_batches(got, X, Y, 1, 6, describe_call("iterate_minibatches(X, Y, batch_size=1, rng)", X=X, Y=Y))


@pytest.mark.points(1)
def test_sgd_step_in_place(submission, rng):
    """Does sgd_step set params[k] to params[k] - lr * grads[k] for every key, in place, returning None?"""
    params = random_params(rng, [4, 5, 3], scale=1.0, bias_scale=0.1)
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    lr = 0.3
    got = submission.call("sgd_step", params, grads, lr)
    what = describe_call("sgd_step(params, grads, lr=0.3)", params=params, grads=grads)
    if got.value is not None:
        fail(what, "None (the update happens in place)", type(got.value).__name__,
             "update the params dict itself; the caller keeps using it")
    check_unmodified(grads, got.args[1], what=what, name="grads")
    updated = check_keys(got.args[0], list(params), what=what + ": params after the call")
    unchanged = [k for k in params if isinstance(updated[k], np.ndarray)
                 and updated[k].shape == params[k].shape and np.array_equal(updated[k], params[k])]
    for key in params:
        if key in unchanged and len(unchanged) < len(params):
            hint = cause("sgd_skips_keys")
        elif key in unchanged:
            hint = cause("sgd_not_in_place")
        else:
            hint = first_match(updated[key], {cause("sgd_ascent"): params[key] + lr * grads[key]},
                               "params[k] - lr * grads[k] for every key, weights and biases alike")
        check_close(updated[key], params[key] - lr * grads[key], what=f"{what}: params[{key!r}] after the call",
                    hint=hint)


@pytest.mark.points(1)
def test_accuracy_small_case(submission):
    """Is accuracy the fraction of rows whose predicted class (with the given activation) equals y?"""
    # W1 = W2 = identity and zero biases: a tanh network predicts argmax(x) (4 of 5 right); a relu
    # network predicts class 0 for rows without a positive entry (2 of 5 right). Each mistake below
    # gives its own value.
    params = {"W1": np.eye(3), "b1": np.zeros(3), "W2": np.eye(3), "b2": np.zeros(3)}
    X = np.array([[-3.0, -1.0, -2.0], [1.0, 2.0, 0.5], [-2.0, -3.0, -0.5], [0.5, -1.0, 2.0], [2.0, 1.0, -1.0]])
    y = np.array([1, 1, 2, 0, 0])
    got = submission.call("accuracy", params, X, y, "tanh")
    what = describe_call("accuracy(params, X, y, 'tanh')", params=params, X=X, y=y)
    hint = None
    if isinstance(got.value, (int, float)) and not isinstance(got.value, bool):
        hint = {4: cause("accuracy_count"), 0.4: cause("activation_not_passed_on"),
                0.2: cause("accuracy_error_rate"), 80: cause("accuracy_percentage")}.get(got.value)
    if not isinstance(got.value, float):
        fail(what, "a Python float", type(got.value).__name__, hint or "return float(...)")
    check_scalar(got.value, 0.8, what=what, hint=hint)
    check_unmodified(params, got.args[0], what=what, name="params")


def broken_helper(submission):
    """The first of train's helpers that gets a small case wrong (its name), or None.

    train runs on the student's own one_hot, iterate_minibatches, sgd_step and
    accuracy, so a mistake in one of them also shows in train's results; a
    train test then names no cause of its own but points to the helper.
    """
    X, Y = indexed_data(5)
    W = np.array([[1.0, -2.0], [0.5, 3.0]])
    probes = {
        "one_hot": lambda: np.array_equal(submission.one_hot(np.array([2, 0]), 4),
                                          np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])),
        "iterate_minibatches": lambda: _batches_ok(submission.call("iterate_minibatches", X, Y, 2, 1), X, Y, 2, 1),
        "sgd_step": lambda: (lambda got: got.value is None and np.array_equal(got.args[0]["W1"], W - 0.5)
                             and np.array_equal(got.args[0]["b1"], np.full(2, -0.5)))(
            submission.call("sgd_step", {"W1": W, "b1": np.zeros(2)}, {"W1": np.ones((2, 2)), "b1": np.ones(2)}, 0.5)),
        "accuracy": lambda: submission.accuracy({"W1": np.eye(2), "b1": np.zeros(2)}, np.eye(2), np.array([0, 0]),
                                                "tanh") == 0.5,
    }
    for name, probe in probes.items():
        try:
            if not probe():
                return name
        except Exception:  # an error in the helper, or a result of another kind
            return name
    return None


def _batches_ok(got, X, Y, batch_size, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(X.shape[0])
    expected = [order[k:k + batch_size] for k in range(0, X.shape[0], batch_size)]
    return (len(got.value) == len(expected) and got.rng_state == rng.bit_generator.state
            and all(np.array_equal(b[0], X[i]) and np.array_equal(b[1], Y[i]) for b, i in zip(got.value, expected))
            and np.array_equal(got.args[0], X) and np.array_equal(got.args[1], Y))


def train_cause(broken, found):
    """The cause a train test recognised, unless a helper of train is wrong (then: which one)."""
    if broken:
        return f"train uses your {broken}, which gets a small case wrong (see its own test): fix it first"
    return found


def _train(submission, params, X, y, seed, **options):
    got = submission.call("train", params, X, y, rng=seed, **options)
    return got, describe_call("train(params, X, y, " + ", ".join(f"{k}={v!r}" for k, v in options.items()
                                                                 if not isinstance(v, np.ndarray)) + ", rng)",
                              params=params, X=X)


def _check_history(history, what, epochs, with_val):
    keys = ["loss", "val_accuracy"] if with_val else ["loss"]
    check_keys(history, keys, what=what, hint='return a dict {"loss": [...]} (plus "val_accuracy" with X_val)')
    for key in keys:
        values = history[key]
        if not isinstance(values, list) or len(values) != epochs:
            fail(f"{what}: history[{key!r}]", f"a list of {epochs} floats (one per epoch)",
                 f"{type(values).__name__} of length {len(values) if hasattr(values, '__len__') else '?'}",
                 "append one value per epoch, after the epoch's last batch")
        for value in values:
            if not isinstance(value, float):
                fail(f"{what}: history[{key!r}]", "Python floats", repr(value), "append float(...)")
            if not np.isfinite(value):
                fail(f"{what}: history[{key!r}]", "finite floats", repr(value),
                     "nan is the mean of an empty list: did an epoch see no batch? Every epoch covers all N "
                     "examples, including a last batch smaller than batch_size (or one batch if batch_size > N)")
    for value in history.get("val_accuracy", []) if with_val else []:
        if not 0.0 <= value <= 1.0:
            fail(f"{what}: history['val_accuracy']", "fractions in [0, 1]", repr(value))


@pytest.mark.points(1)
def test_train_history_determinism_and_rng(submission, rng):
    """Does train return one loss (and val accuracy) per epoch, repeat itself for the same seed,
    and draw from the rng only one permutation(N) per epoch?"""
    X, y = blobs(rng, 30, 4, 3)
    X_val, y_val = blobs(rng, 12, 4, 3)
    params = random_params(rng, [4, 6, 3], scale=1.0, bias_scale=0.1)
    options = dict(epochs=3, batch_size=8, lr=0.1, activation="tanh", X_val=X_val, y_val=y_val)
    first, what = _train(submission, params, X, y, 11, **options)  # first: the test counts for train (report)
    broken = broken_helper(submission)
    _check_history(first.value, what, 3, with_val=True)
    check_unmodified(X, first.args[1], what=what, name="X")
    check_unmodified(y, first.args[2], what=what, name="y")
    expected_rng = np.random.default_rng(11)
    for _ in range(3):
        expected_rng.permutation(30)
    if first.rng_state != expected_rng.bit_generator.state:
        fail(what, "the rng to be used only by iterate_minibatches: one permutation(N) per epoch",
             "a different rng state", train_cause(broken, cause("train_rng_misused")))
    second, _ = _train(submission, params, X, y, 11, **options)
    if first.value != second.value or any(not np.array_equal(first.args[0][k], second.args[0][k]) for k in params):
        fail(what, "identical results for identical params and seed", "different results",
             train_cause(broken, cause("train_rng_misused")))

    got, what = _train(submission, params, X, y, 11, epochs=2, batch_size=8, lr=0.1)
    _check_history(got.value, what, 2, with_val=False)


@pytest.mark.points(1)
def test_train_steps_and_losses(submission, rng):
    """With batch_size >= N, is every epoch one gradient step on all of X, loss[e] the loss before it and
    val_accuracy[e] the accuracy after it? With lr = 0, is every loss the loss of the untouched params?"""
    X, y = blobs(rng, 12, 3, 3)
    X_val, y_val = blobs(rng, 9, 3, 3)
    params = random_params(rng, [3, 4, 3], scale=2.0, bias_scale=0.1)
    Y = np.eye(3)[y]

    # batch_size >= N: every epoch is one gradient step on all of X, taken by hand below too.
    lr = 0.5
    got, what = _train(submission, params, X, y, 3, epochs=2, batch_size=64, lr=lr, activation="sigmoid",
                       X_val=X_val, y_val=y_val)  # first: the test counts for train (report)
    broken = broken_helper(submission)
    _check_history(got.value, what, 2, with_val=True)
    expected = by_hand(submission, params, X, Y, X_val, y_val, lr, "sigmoid")
    # The same steps with a known mistake, to name it when the result matches.
    wrong_lr = by_hand(submission, params, X, Y, X_val, y_val, 0.1, "sigmoid")
    relu_backward = by_hand(submission, params, X, Y, X_val, y_val, lr, "sigmoid", backward_activation="relu")
    updated = check_keys(got.args[0], list(params), what=what + ": params after training")
    for key in params:
        hint = first_match(updated[key], {train_cause(broken, cause("train_wrong_lr")): wrong_lr["params"][key],
                                          train_cause(broken, cause("activation_not_passed_on")):
                                          relu_backward["params"][key]},
                           "for each batch: forward, cross_entropy, backward, then sgd_step(params, grads, lr) on "
                           "the params passed in (in place), always with the given activation")
        check_close(updated[key], expected["params"][key], what=f"{what}: params[{key!r}] after training",
                    rtol=1e-9, atol=1e-12, hint=hint)
    for e, (value, want) in enumerate(zip(got.value["loss"], expected["loss"])):
        after = np.isclose(value, expected["loss_after"][e], rtol=1e-9)
        check_scalar(value, want, what=f"{what}: history['loss'][{e}]", rtol=1e-9,
                     hint=train_cause(broken, cause("train_loss_after_update")) if after else
                     "the loss of each batch is computed before that batch's update")
    for e, (value, want) in enumerate(zip(got.value["val_accuracy"], expected["val_accuracy"])):
        on_training_data = value == expected["train_accuracy"][e] != want
        check_scalar(value, want, what=f"{what}: history['val_accuracy'][{e}]", rtol=1e-12,
                     hint=train_cause(broken, cause("train_val_on_training_data")) if on_training_data else
                     "val_accuracy[e] is accuracy(params, X_val, y_val, activation) after epoch e")

    # lr = 0 and batches of equal size: the mean of the batch losses is the loss on all of X.
    got, what = _train(submission, params, X, y, 2, epochs=2, batch_size=4, lr=0.0, activation="sigmoid")
    _check_history(got.value, what, 2, with_val=False)
    loss = submission.cross_entropy(forward(submission, params, X, "sigmoid")[0], Y)
    for e, value in enumerate(got.value["loss"]):
        check_scalar(value, loss, what=f"{what}: history['loss'][{e}]", rtol=1e-9,
                     hint=train_cause(broken, cause("train_loss_sum")) if np.isclose(value, 3 * loss) else  # 3 batches
                     "history['loss'][e] is the mean over epoch e's batches of the batch loss (each a mean "
                     "over its rows)")


def by_hand(submission, params, X, Y, X_val, y_val, lr, activation, epochs=2, backward_activation=None):
    """Full-batch training taken step by step with the (reference) forward, backward and predict:
    the params after ``epochs`` steps, the loss before and after each step, and the accuracy on
    (X_val, y_val) and on the training data after each. ``backward_activation``: the activation
    given to backward, when it is not ``activation``."""
    current = {k: v.copy() for k, v in params.items()}
    out = {"loss": [], "loss_after": [], "val_accuracy": [], "train_accuracy": []}
    y = np.argmax(Y, axis=1)
    for _ in range(epochs):
        probs, cache = forward(submission, current, X, activation)
        out["loss"].append(submission.cross_entropy(probs, Y))
        grads = check_keys(submission.backward(current, cache, Y, backward_activation or activation), list(params),
                           what="backward(params, cache, Y, activation), needed to test train,")
        current = {k: v - lr * grads[k] for k, v in current.items()}
        out["loss_after"].append(submission.cross_entropy(forward(submission, current, X, activation)[0], Y))
        for key, (inputs, labels) in (("val_accuracy", (X_val, y_val)), ("train_accuracy", (X, y))):
            pred = check_array(submission.predict(current, inputs, activation), dtype=None, shape=labels.shape,
                               what="predict(params, X, activation), needed to test train,")
            out[key].append(float(np.mean(pred == labels)))
    out["params"] = current
    return out


@pytest.mark.points(1)
def test_train_reduces_loss(submission, rng):
    """Does training a 2-layer relu network on separable blobs bring the loss well down?"""
    X, y = blobs(rng, 60, 2, 3, spread=0.3)
    params = random_params(rng, [2, 8, 3], scale=1.0, bias_scale=0.1)
    got, what = _train(submission, params, X, y, 0, epochs=15, batch_size=10, lr=0.3)
    _check_history(got.value, what, 15, with_val=False)
    loss = got.value["loss"]
    if not loss[-1] < 0.5 * loss[0]:
        fail(what, "the last epoch's loss to be below half of the first's",
             f"{loss[0]:.4g} in the first epoch and {loss[-1]:.4g} in the last",
             "the updates must go against the gradient (params - lr * grads), on every batch, in place")
