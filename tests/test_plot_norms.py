"""gc.plot.norms: measured norms as markers, theory as a line of the same colour, log y axis."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402


def test_depth_profile_points_and_theory_line():
    norms = 0.9 ** np.arange(11)[::-1]
    fig, ax = gc.plot.depth_profile(norms, 1.01 * norms, label="σ_w = 0.9")
    points, line = ax.get_lines()
    assert points.get_linestyle() == "None" and points.get_marker() == "o"
    assert line.get_linestyle() == "-" and line.get_color() == points.get_color()
    np.testing.assert_allclose(points.get_ydata(), norms)
    np.testing.assert_allclose(points.get_xdata(), np.arange(11))
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["σ_w = 0.9", "σ_w = 0.9 (theory)"]
    assert fig is ax.figure


def test_depth_profile_overlays_on_a_given_axes_and_hides_non_positive_values():
    fig, ax = plt.subplots()
    _, ax2 = gc.plot.depth_profile([1.0, 0.0, -1.0, np.inf, 2.0], ax=ax, layers=[1, 2, 3, 4, 5])
    gc.plot.depth_profile([3.0, 4.0], ax=ax, label="second")
    assert ax2 is ax and len(ax.get_lines()) == 2
    y = ax.get_lines()[0].get_ydata()
    assert np.isnan(y[1:4]).all() and y[0] == 1.0
    assert ax.get_lines()[0].get_color() != ax.get_lines()[1].get_color()


def test_depth_profile_several_series_share_colours_with_their_theory():
    theory = {"a": [1.0, 0.5, 0.25], "bound": [1, 1, 1]}
    fig, ax = gc.plot.depth_profile({"a": [1.0, 0.5, 0.25], "b": [2.0, 1.0, 0.5]}, theory, ylabel="r", start=1)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"a", "a (theory)", "b", "bound"}
    assert lines["a (theory)"].get_color() == lines["a"].get_color()
    assert len({lines[k].get_color() for k in ("a", "b", "bound")}) == 3
    assert list(lines["a"].get_xdata()) == [1, 2, 3] and lines["a"].get_marker() == "o"
    np.testing.assert_allclose(lines["b"].get_ydata(), [2.0, 1.0, 0.5])
    np.testing.assert_allclose(lines["bound"].get_ydata(), [1, 1, 1])
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "r"
    _, ax2 = gc.plot.depth_profile({"f": [0.0, 0.1]}, ylabel="f", log=False)
    assert ax2.get_yscale() == "linear"
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), [0.0, 0.1])  # zeros kept on a linear axis
    with pytest.raises(ValueError, match=r"norms\['a'\]: expected a non-empty 1-D"):
        gc.plot.depth_profile({"a": [[1.0]]})
    with pytest.raises(TypeError, match="theory: with a mapping"):
        gc.plot.depth_profile({"a": [1.0]}, [1.0])
    with pytest.raises(TypeError, match="start: expected an int"):
        gc.plot.depth_profile([1.0], start=1.5)


@pytest.mark.parametrize(
    "kwargs, error, phrase",
    [
        (dict(norms=[[1.0, 2.0]]), ValueError, "norms: expected a non-empty 1-D"),
        (dict(norms=[]), ValueError, "norms: expected a non-empty 1-D"),
        (dict(norms=["a"]), TypeError, "norms: expected a 1-D array of numbers"),
        (dict(norms=[1.0, 2.0], theory=[1.0]), ValueError, "theory: expected 2 values"),
        (dict(norms=[1.0, 2.0], layers=[0]), ValueError, "layers: expected 2 layer indices"),
        (dict(norms=[1.0], ax="axes"), TypeError, "ax: expected a matplotlib Axes"),
    ],
)
def test_depth_profile_validates(kwargs, error, phrase):
    with pytest.raises(error, match=phrase):
        gc.plot.depth_profile(**kwargs)


def test_weight_vs_signal_plot_puts_weights_at_layers_1_to_L():
    signal = np.geomspace(1e-4, 1, 6)
    fig, ax = gc.plot.weight_vs_signal_plot(signal, np.full(5, 0.1), signal_theory=signal)
    lines = ax.get_lines()
    assert len(lines) == 3
    np.testing.assert_allclose(lines[2].get_xdata(), np.arange(1, 6))
    assert lines[2].get_marker() == "s" and ax.get_yscale() == "log"
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.raises(ValueError, match="weight_grads: expected 5 values"):
        gc.plot.weight_vs_signal_plot(signal, np.ones(6))


def test_log_norm_walk_plot_draws_networks_and_variance_against_theory():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(30, 11)), axis=1)[:, ::-1]
    theory = np.arange(11)[::-1] * 1.0
    fig, (ax0, ax1) = gc.plot.log_norm_walk_plot({"n = 64": walk}, {"n = 64": theory}, n_show=5)
    assert len([ln for ln in ax0.get_lines() if ln.get_color() == "0.5"]) == 5
    np.testing.assert_allclose(ax0.get_lines()[0].get_ydata(), np.exp(walk[0] / 2))
    assert ax0.get_yscale() == "log"
    pts, line = ax1.get_lines()
    np.testing.assert_allclose(pts.get_ydata(), walk.var(axis=0))
    np.testing.assert_allclose(line.get_ydata(), theory)
    assert pts.get_marker() == "o" and line.get_color() == pts.get_color()
    with pytest.raises(ValueError, match="no measured series"):
        gc.plot.log_norm_walk_plot({"a": walk}, {"b": theory})
    with pytest.raises(ValueError, match="n_nets >= 2"):
        gc.plot.log_norm_walk_plot({"a": walk[0]})
