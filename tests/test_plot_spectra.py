"""gc.plot.spectra: the spectrum histogram draws measured points and theory lines."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import gradcourse as gc


def test_spectrum_histogram_points_and_theory():
    rng = np.random.default_rng(0)
    x_fc, rho_fc = gc.rmt.fuss_catalan_density(2)
    fig, ax = gc.plot.spectrum_histogram({"a": rng.uniform(0.1, 6, 500)}, theory={"a": (x_fc, rho_fc)}, bins=20)
    points, line = ax.get_lines()
    assert points.get_linestyle() == "None" and points.get_marker() == "o" and line.get_linestyle() == "-"
    assert points.get_color() == line.get_color() and ax.get_yscale() == "log"
    assert line.get_xdata().min() >= points.get_xdata().min()  # theory clipped to the binned range

def test_spectrum_histogram_log_x_is_per_decade_and_drops_below_floor():
    s = np.r_[np.geomspace(1e-3, 1e1, 400), np.zeros(3)]
    fig, ax = gc.plot.spectrum_histogram(s, log_x=True, rel_floor=1e-6, bins=8)
    (points,) = ax.get_lines()
    # log-uniform over 4 decades: density per decade 1/4 everywhere
    np.testing.assert_allclose(points.get_ydata(), 0.25, rtol=0.05)
    assert "3 < 1e-06·max hidden" in points.get_label() and ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="rel_floor"):
        gc.plot.spectrum_histogram(s, log_x=True)
    with pytest.raises(ValueError, match="finite"):
        gc.plot.spectrum_histogram([np.nan])
