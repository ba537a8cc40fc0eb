"""gc.ln_placement.placement_summary and gc.plot.transformer.ln_placement_plot against hand-built profiles."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradcourse.ln_placement import placement_summary  # noqa: E402
from gradcourse.plot.transformer import ln_placement_plot  # noqa: E402


def _profile(K=3, L=8, depths=(2, 4, 8), v0=0.6, v=1.5, c=2.0, seed=0):
    rng = np.random.default_rng(seed)
    ms = v0 + v * np.arange(L + 1) + 0.01 * rng.normal(size=(K, L + 1))      # per init, nearly linear
    rms = np.stack([np.ones((K, L + 1)), np.sqrt(ms)])                       # (2, K, L+1)
    w2 = rng.uniform(0.5, 1.5, size=(2, K, len(depths), L))
    for j, D in enumerate(depths):
        w2[1, :, j, D - 1] = c / rms[1, :, D]                                # Pre-LN top block = c / sigma_D exactly
    blocks = rng.uniform(0.5, 1.5, size=(2, K, len(depths), L))
    return {"W2": w2, "blocks": blocks, "stream_rms": rms}, depths, (v0, v, c)


def test_summary_matches_an_independent_computation():
    prof, depths, (v0, v, c) = _profile()
    s = placement_summary(prof, depths)
    ms = np.mean(prof["stream_rms"] ** 2, axis=1)
    l = np.arange(ms.shape[1])
    A = np.stack([np.ones_like(l), l], axis=1).astype(float)
    (b0, b1), *_ = np.linalg.lstsq(A, ms[1], rcond=None)                     # least squares, not polyfit
    assert s.slope == pytest.approx(b1, rel=1e-9) and s.intercept == pytest.approx(b0, rel=1e-9)
    assert abs(s.slope - v) < 0.02 and abs(s.intercept - v0) < 0.05 and 0.999 < s.r2 <= 1
    for j, D in enumerate(depths):
        assert s.top[0, j] == pytest.approx(prof["W2"][0, :, j, D - 1].mean())
        assert s.sigma_L[1, j] == pytest.approx(np.sqrt(ms[1, D]))
    # Pre-LN tops are exactly c / sigma per init; c fitted on the means is close to c
    assert s.c_pre == pytest.approx(c, rel=1e-2)
    np.testing.assert_allclose(s.top_ratio[1], s.predicted_ratio, rtol=1e-12)   # exact 1/sigma per initialisation
    np.testing.assert_allclose(s.blocks, prof["blocks"][:, :, -1].mean(axis=1))


def test_shapes_are_checked():
    prof, depths, _ = _profile()
    with pytest.raises(ValueError, match="prof\\['W2'\\]"):
        placement_summary(prof, depths[:2])
    bad = dict(prof, stream_rms=prof["stream_rms"][:, :, :-1])
    with pytest.raises(ValueError, match="stream_rms"):
        placement_summary(bad, depths)


def test_plot_draws_the_summary():
    prof, depths, _ = _profile()
    s = placement_summary(prof, depths)
    fig, axes = ln_placement_plot(s)
    pts = [ln for ln in axes[0].lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(pts[1].get_ydata(), s.stream_ms[1])
    line = [ln for ln in axes[0].lines if ln.get_linestyle() == "-"][0]
    np.testing.assert_allclose(line.get_ydata(), s.intercept + s.slope * np.arange(s.stream_ms.shape[1]))
    theory = [ln for ln in axes[1].lines if ln.get_linestyle() == "-" and ln.get_marker() in ("None", "", None)]
    np.testing.assert_allclose(theory[0].get_ydata(), s.c_pre / s.sigma_L[1])
    assert axes[1].get_xscale() == "log" and axes[1].get_yscale() == "log"
    assert axes[2].get_xlabel() == "block $l$"
