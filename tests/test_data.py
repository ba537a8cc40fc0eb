"""gradcourse.data: shapes, dtypes, determinism, targets, value ranges and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradcourse import data


@pytest.mark.parametrize("placement", ["halves", "early"])
def test_adding_shapes_targets_and_markers(placement):
    xs, y = data.adding_problem(0, 20, 64, placement=placement)
    assert xs.shape == (64, 20, 2) and xs.dtype == jnp.float32
    assert y.shape == (64,) and y.dtype == jnp.float32
    xs, y = np.asarray(xs), np.asarray(y)
    assert xs[..., 0].min() >= 0.0 and xs[..., 0].max() <= 1.0
    assert set(np.unique(xs[..., 1])) <= {0.0, 1.0}
    np.testing.assert_array_equal(xs[..., 1].sum(axis=1), 2.0)
    np.testing.assert_allclose(y, (xs[..., 0] * xs[..., 1]).sum(axis=1), rtol=1e-6)
    pos = np.stack([np.nonzero(row)[0] for row in xs[..., 1]])
    if placement == "halves":
        assert np.all(pos[:, 0] < 10) and np.all(pos[:, 1] >= 10)
    else:
        assert np.all(pos < 10)


def test_adding_baseline_is_one_sixth():
    _, y = data.adding_problem(1, 10, 20000)
    assert abs(float(jnp.mean((y - 1.0) ** 2)) - data.ADDING_BASELINE_MSE) < 0.01
    assert abs(data.ADDING_BASELINE_MSE - 1 / 6) < 1e-12


def test_adding_early_positions_cover_first_half():
    xs, _ = data.adding_problem(2, 8, 4000, placement="early")
    hits = np.asarray(xs[..., 1]).sum(axis=0)
    assert np.all(hits[:4] > 0) and np.all(hits[4:] == 0)


def test_determinism_and_seed_forms():
    a = data.adding_problem(3, 12, 8)
    b = data.adding_problem(3, 12, 8)
    c = data.adding_problem(4, 12, 8)
    d = data.adding_problem(jax.random.PRNGKey(3), 12, 8)
    e = data.adding_problem(jax.random.key(3), 12, 8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], d[0])
    np.testing.assert_array_equal(d[0], e[0])
    assert not np.array_equal(a[0], c[0])
    x1, l1 = data.copy_task(5, 4, 3)
    x2, l2 = data.copy_task(5, 4, 3)
    x3, _ = data.copy_task(6, 4, 3)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(l1, l2)
    assert not np.array_equal(x1, x3)


def test_copy_task_layout():
    T, length, k = 7, 3, 5
    xs, labels = data.copy_task(0, T, 16, n_symbols=k, length=length)
    assert xs.shape == (16, T + 2 * length, k + 2) and xs.dtype == jnp.float32
    assert labels.shape == (16, T + 2 * length) and labels.dtype == jnp.int32
    tokens = np.asarray(xs).argmax(-1)
    np.testing.assert_array_equal(np.asarray(xs).sum(-1), 1.0)
    symbols = tokens[:, :length]
    assert symbols.min() >= 1 and symbols.max() <= k
    np.testing.assert_array_equal(tokens[:, length : T + length - 1], 0)
    np.testing.assert_array_equal(tokens[:, T + length - 1], k + 1)
    np.testing.assert_array_equal(tokens[:, T + length :], 0)
    np.testing.assert_array_equal(labels[:, : T + length], 0)
    np.testing.assert_array_equal(labels[:, T + length :], symbols)
    assert abs(data.copy_baseline_xent(T, k, length) - length * np.log(k) / (T + 2 * length)) < 1e-12


def test_stream_is_reproducible_and_fresh():
    s = data.stream(data.adding_problem, 0, T=10, batch=4)
    np.testing.assert_array_equal(s(3)[0], s(3)[0])
    assert not np.array_equal(s(3)[0], s(4)[0])
    t = data.stream(data.copy_task, jax.random.PRNGKey(0), 5, 2)
    assert t(0)[0].shape == (2, 25, 10)


def test_load_digits():
    d = data.load_digits()
    assert d.x_train.shape[1:] == (8, 8, 1) and d.x_test.shape[1:] == (8, 8, 1)
    assert d.x_train.shape[0] + d.x_test.shape[0] == 1797
    assert d.x_test.shape[0] == 450
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert d.x_train.min() >= 0.0 and d.x_train.max() == 1.0
    assert set(np.unique(d.y_train)) == set(range(10))
    again = data.load_digits()
    np.testing.assert_array_equal(d.x_train, again.x_train)
    other = data.load_digits(seed=1)
    assert not np.array_equal(d.y_train, other.y_train)
    x_tr, y_tr, x_te, y_te = data.load_digits(test_fraction=0.5)
    assert abs(len(x_te) - 1797 / 2) <= 1


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: data.adding_problem(0, 1, 4), ValueError, "T"),
        (lambda: data.adding_problem(0, 10, 0), ValueError, "batch"),
        (lambda: data.adding_problem(0, 10, -3), ValueError, "batch"),
        (lambda: data.adding_problem(0, 10.0, 4), TypeError, "T"),
        (lambda: data.adding_problem(0, 3, 4, placement="early"), ValueError, "T"),
        (lambda: data.adding_problem(0, 10, 4, placement="late"), ValueError, "placement"),
        (lambda: data.adding_problem("seed", 10, 4), TypeError, "seed"),
        (lambda: data.adding_problem(True, 10, 4), TypeError, "seed"),
        (lambda: data.copy_task(0, 0, 4), ValueError, "T"),
        (lambda: data.copy_task(0, 5, 4, n_symbols=0), ValueError, "n_symbols"),
        (lambda: data.stream(3, 0), TypeError, "task"),
        (lambda: data.load_digits(test_fraction=1.5), ValueError, "test_fraction"),
        (lambda: data.load_digits(seed=-1), ValueError, "seed"),
    ],
)
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_sequence_task():
    x, y, w = data.sequence_task(0, 5, task="reverse", length=4, n_symbols=6)
    assert x.shape == y.shape == w.shape == (5, 8) and x.dtype == jnp.int32
    x, y, w = np.asarray(x), np.asarray(y), np.asarray(w)
    symbols = x[:, :4]
    assert symbols.min() >= 1 and symbols.max() <= 6 and np.all(x[:, 4] == 0)
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])  # next-token targets
    np.testing.assert_array_equal(y[:, 4:], symbols[:, ::-1])  # the answer, scored where w = 1
    np.testing.assert_array_equal(w, np.tile([0, 0, 0, 0, 1, 1, 1, 1], (5, 1)))
    xs, ys, _ = data.sequence_task(0, 5, task="sort", length=4, n_symbols=6)
    np.testing.assert_array_equal(np.asarray(ys)[:, 4:], np.sort(np.asarray(xs)[:, :4], axis=1))
    xc, yc, _ = data.sequence_task(jax.random.PRNGKey(0), 5, task="copy", length=4, n_symbols=6)
    np.testing.assert_array_equal(np.asarray(yc)[:, 4:], np.asarray(xc)[:, :4])
    np.testing.assert_array_equal(data.sequence_task(3, 5)[0], data.sequence_task(3, 5)[0])  # deterministic
    with pytest.raises(ValueError, match="^task: expected one of 'reverse', 'copy', 'sort'"):
        data.sequence_task(0, 5, task="shuffle")
    with pytest.raises(TypeError, match="seed: expected an int or a jax.random key"):
        data.sequence_task(0.5, 5)
    with pytest.raises(ValueError, match="^length: expected an integer >= 1"):
        data.sequence_task(0, 5, length=0)
