"""gc.plot.backprop: the finite-difference V and the cost plot draw exactly the arrays given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402


def test_finite_difference_plot_draws_measured_points_rounding_and_truncation_lines():
    eps = np.logspace(-8, 0, 9)
    truncation = eps**2 / 6
    rounding = {"float32": 6e-8 / eps, "float64": 1e-16 / eps}
    errors = {"float32": truncation + rounding["float32"],
              "float64": np.r_[0.0, (truncation + rounding["float64"])[1:]]}
    fig, ax = gc.plot.finite_difference_plot(eps, errors, rounding, truncation)
    lines = ax.lines
    np.testing.assert_allclose(lines[0].get_ydata(), errors["float32"])
    np.testing.assert_allclose(lines[1].get_ydata(), rounding["float32"])
    assert np.isnan(lines[2].get_ydata()[0])            # an exact zero cannot sit on a log axis: left out
    np.testing.assert_allclose(lines[-1].get_ydata(), truncation)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="rounding"):
        gc.plot.finite_difference_plot(eps, errors, {"float32": rounding["float32"]}, truncation)
    with pytest.raises(ValueError, match=r"errors\['float32'\]"):
        gc.plot.finite_difference_plot(eps, {"float32": eps[:-1]}, {"float32": eps[:-1]}, truncation)


def test_cost_plot_draws_measured_markers_and_theory_lines_per_series():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    measured = {"weights": 3 - 1 / x + 0.01, "input": np.full(4, 2.01)}
    theory = {"weights": 3 - 1 / x, "input": np.full(4, 2.0)}
    fig, ax = gc.plot.cost_plot(x, measured, theory, xlabel="L", logy=False, theory_labels={"input": "theory: 2"})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), measured["weights"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), theory["weights"])
    assert ax.lines[0].get_marker() == "o" and ax.lines[1].get_linestyle() == "-"
    assert ax.lines[0].get_color() == ax.lines[1].get_color()
    assert "theory: 2" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    with pytest.raises(ValueError, match="theory"):
        gc.plot.cost_plot(x, measured, {"weights": theory["weights"]}, xlabel="L")
