"""gc.experiments: measured profiles, spectra and phase grids against mean-field and random-matrix theory."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc


@pytest.mark.parametrize(
    "activation, sigma_w2, sigma_b2",
    [("tanh", 3.0, 0.05), ("tanh", 1.0, 0.05), ("relu", 1.0, 0.0), ("linear", 1.2, 0.0), ("erf", 2.0, 0.1)],
)
def test_backward_profile_follows_chi1_at_large_width(activation, sigma_w2, sigma_b2):
    p = gc.experiments.backward_profile(20, sigma_w2, sigma_b2, activation, width=1024, key=jax.random.PRNGKey(1))
    chi = float(gc.theory.chi1(activation, sigma_w2, sigma_b2))
    assert p.chi1 == pytest.approx(chi)
    np.testing.assert_allclose(p.theory, chi ** ((20 - np.arange(21)) / 2), rtol=1e-6)
    assert p.measured[-1] == 1.0 and p.measured.shape == (21,)
    slope = np.polyfit(p.layers, np.log(p.measured), 1)[0]  # per-layer log gain, going up
    assert slope == pytest.approx(-0.5 * np.log(chi), abs=0.01)
    assert abs(np.log(p.measured[0] / p.theory[0])) < 0.15


def test_backward_profile_starts_inputs_at_qstar():
    p = gc.experiments.backward_profile(3, 1.76, 0.05, "tanh", width=64)
    assert p.q_in == pytest.approx(float(gc.theory.qstar("tanh", 1.76, 0.05)))
    assert gc.experiments.backward_profile(3, 2.0, 0.0, "linear", width=64).q_in == 1.0  # q* infinite: unit variance


def test_backward_profile_is_reproducible_and_validates():
    a = gc.experiments.backward_profile(5, 1.5, 0.0, "tanh", width=32, key=jax.random.PRNGKey(3))
    b = gc.experiments.backward_profile(5, 1.5, 0.0, "tanh", width=32, key=jax.random.PRNGKey(3))
    np.testing.assert_array_equal(a.measured, b.measured)
    with pytest.raises(ValueError, match="depth"):
        gc.experiments.backward_profile(0, 1.0)
    with pytest.raises(ValueError, match="sigma_w2"):
        gc.experiments.backward_profile(5, -1.0)
    with pytest.raises(TypeError, match="width"):
        gc.experiments.backward_profile(5, 1.0, width=2.5)
    with pytest.raises(ValueError, match="activation"):
        gc.experiments.backward_profile(5, 1.0, activation="nope")


def test_backward_profile_of_several_networks_is_the_geometric_mean_of_single_ones():
    key = jax.random.PRNGKey(7)
    many = gc.experiments.backward_profile(6, 1.5, 0.05, "tanh", width=32, key=key, n_nets=3)
    singles = [gc.experiments.backward_profile(6, 1.5, 0.05, "tanh", width=32, key=k).measured
               for k in jax.random.split(key, 3)]
    assert not np.allclose(singles[0], singles[1])  # independent networks
    np.testing.assert_allclose(many.measured, np.prod(singles, axis=0) ** (1 / 3), rtol=1e-12)
    one = gc.experiments.backward_profile(6, 1.5, 0.05, "tanh", width=32, key=key, n_nets=1)
    default = gc.experiments.backward_profile(6, 1.5, 0.05, "tanh", width=32, key=key)  # n_nets=1 uses key itself
    np.testing.assert_array_equal(one.measured, default.measured)
    with pytest.raises(ValueError, match="n_nets"):
        gc.experiments.backward_profile(6, 1.5, n_nets=0)


def test_backward_profile_measures_norms_whose_squares_underflow_float32():
    p = gc.experiments.backward_profile(50, 1.0, 0.0, "sigmoid", width=128, key=jax.random.PRNGKey(2))
    assert np.all(p.measured > 0) and p.measured[0] < 1e-30  # ‖c‖² < 1e-60 is not representable in float32
    slope = np.polyfit(p.layers, np.log(p.measured), 1)[0]
    assert slope == pytest.approx(-0.5 * np.log(p.chi1), abs=0.03)


def spread(s):
    x = np.asarray(s, np.float64) ** 2
    return (x**2).mean(axis=-1) / x.mean(axis=-1) ** 2 - 1


def test_jacobian_spectra_shapes_and_seeds():
    s = gc.experiments.jacobian_spectra("tanh", 1.5, 0.1, depth=4, width=32, n_nets=3)
    assert s.shape == (3, 32) and np.all(np.diff(s, axis=1) <= 0)  # descending
    assert not np.allclose(s[0], s[1])  # independent networks
    np.testing.assert_array_equal(s, gc.experiments.jacobian_spectra("tanh", 1.5, 0.1, depth=4, width=32, n_nets=3))


def test_jacobian_spectra_match_a_direct_computation():
    """Same network as gc.mlp_params with the first key, same input: equal to gc.jacobian_spectrum."""
    s = gc.experiments.jacobian_spectra("relu", 2.0, 0.0, depth=3, width=16, n_nets=1, seed=5)[0]
    k_params, k_x = jax.random.split(jax.random.PRNGKey(5), 2)
    model = gc.Stacked(gc.dense_layer("relu"), gc.mlp_params(k_params, 3, 16, 2.0, 0.0))
    q = float(gc.theory.qstar("relu", 2.0, 0.0))
    x = jax.nn.relu(jnp.sqrt(q) * jax.random.normal(k_x, (16,)))
    np.testing.assert_allclose(s, gc.jacobian_spectrum(model, x), rtol=1e-4, atol=1e-6)


def test_orthogonal_linear_network_is_an_exact_isometry():
    s = gc.experiments.jacobian_spectra("linear", 2.0, 0.0, "orthogonal", depth=5, width=24)
    np.testing.assert_allclose(s, np.sqrt(2.0) ** 5, rtol=1e-4)  # every singular value σ_w^L


def test_spectrum_spread_matches_free_probability():
    """Width 128, depth 8, 4 nets: within 30% of Pennington et al. (2017) for Gaussian and orthogonal tanh."""
    sw = gc.theory.critical_sigma_w2("tanh", 0.05)
    for init in ("gaussian", "orthogonal"):
        s = gc.experiments.jacobian_spectra("tanh", sw, 0.05, init, depth=8, width=128, n_nets=4)
        theory = gc.rmt.jacobian_moments("tanh", sw, 0.05, 8, init)
        assert spread(s).mean() == pytest.approx(theory.spread, rel=0.3)


def test_backward_ratio_grid_matches_half_log_chi1():
    sw = np.array([[0.8, 1.2], [2.5, 3.5]])
    sb = np.array([[0.0, 0.3], [0.05, 0.2]])
    got = gc.experiments.backward_ratio_grid("tanh", sw, sb, depth=12, width=256, batch=8)
    assert got.shape == sw.shape
    chi = np.vectorize(lambda a, b: float(gc.theory.chi1("tanh", a, b)))(sw, sb)
    np.testing.assert_allclose(got, 0.5 * np.log(chi), atol=0.03)


def test_backward_ratio_grid_validates():
    with pytest.raises(ValueError, match="equal shapes"):
        gc.experiments.backward_ratio_grid("tanh", [1.0, 2.0], [0.1])
    with pytest.raises(ValueError, match="sigma_w2: expected a finite real number > 0"):
        gc.experiments.backward_ratio_grid("tanh", [0.0], [0.1])
    with pytest.raises(ValueError, match="activation"):
        gc.experiments.backward_ratio_grid("swish", [1.0], [0.1])


def test_phase_point_carries_theory():
    p = gc.experiments.phase_point("tanh", 1.76, 0.05, "orthogonal", depth=6, width=32)
    assert p.chi1 == pytest.approx(1.0, abs=2e-3)
    assert p.theory.spread == pytest.approx(gc.rmt.jacobian_moments("tanh", 1.76, 0.05, 6, "orthogonal").spread)
    assert p.singular_values.shape == (32,) and p.spread >= 0
    far = gc.experiments.phase_point("relu", 3.0, 0.1, depth=4, width=16)  # q* infinite: no moments
    assert far.qstar == np.inf and far.theory is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "swish"}, "activation"),
        ({"init": "uniform"}, "init"),
        ({"sigma_w2": -1.0}, "sigma_w2"),
        ({"depth": 2.0}, "depth"),
    ],
)
def test_phase_point_validates(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        gc.experiments.phase_point(**{"width": 16, **kwargs})


def test_activation_curves_derivative_matches_finite_differences():
    x = np.linspace(-3.0, 3.0, 61)
    curves = gc.experiments.activation_curves(["tanh", "sigmoid"], x)
    assert list(curves) == ["tanh", "sigmoid"]
    for name, f in (("tanh", np.tanh), ("sigmoid", lambda t: 1 / (1 + np.exp(-t)))):
        grid, phi, dphi = curves[name]
        np.testing.assert_array_equal(grid, x)
        np.testing.assert_allclose(phi, f(x), atol=1e-6)
        np.testing.assert_allclose(dphi, (f(x + 1e-4) - f(x - 1e-4)) / 2e-4, atol=1e-5)
    with pytest.raises(TypeError, match="activations"):
        gc.experiments.activation_curves("tanh")
    with pytest.raises(ValueError, match="x"):
        gc.experiments.activation_curves(["tanh"], [[0.0, 1.0]])


def test_mean_pairwise_cosine_matches_a_loop_over_pairs():
    rng = np.random.default_rng(0)
    hs = rng.standard_normal((3, 5, 4))
    hs[2] = np.outer(rng.uniform(0.5, 2.0, 5), rng.standard_normal(4))   # every example the same direction
    ref = [np.mean([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for i, a in enumerate(h) for b in h[i + 1:]])
           for h in hs]
    got = gc.experiments.mean_pairwise_cosine(jnp.asarray(hs))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert got[2] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(gc.experiments.mean_pairwise_cosine(list(hs)), got)
    with pytest.raises(ValueError, match=r"hs\[0\]"):
        gc.experiments.mean_pairwise_cosine([np.ones((1, 4))])


def test_log_norm_walk_matches_jax_grad_on_the_same_weights():
    """One network rebuilt from the documented key use: forward norms from a loop, backward from jax.grad."""
    depth, width, key = 5, 8, jax.random.PRNGKey(3)
    walk = gc.experiments.log_norm_walk(depth, width, 2, activation="tanh", sigma_w2=1.5, key=key)
    k_x, k_u, k_w = jax.random.split(jax.random.split(key, 2)[1], 3)
    x, u = jax.random.normal(k_x, (width,)), jax.random.normal(k_u, (width,))
    Ws = np.sqrt(1.5 / width) * jax.random.normal(k_w, (depth, width, width))

    def top(h, start):
        for W in Ws[start:]:
            h = jnp.tanh(h @ W)
        return jnp.vdot(h, u)

    hs = [x]
    for W in Ws:
        hs.append(jnp.tanh(hs[-1] @ W))
    fwd = [np.log(np.sum(np.square(h)) / np.sum(np.square(x))) for h in hs]
    bwd = [np.log(np.sum(np.square(jax.grad(top)(hs[l], l))) / np.sum(np.square(u))) for l in range(depth + 1)]
    np.testing.assert_allclose(walk.forward[1], fwd, atol=1e-4)
    np.testing.assert_allclose(walk.backward[1], bwd, atol=1e-4)
    assert walk.forward.shape == walk.backward.shape == (2, depth + 1) and walk.backward[0, -1] == 0


def test_log_norm_walk_variance_grows_like_depth_over_width():
    """He ReLU, width 32: Var[ln‖h_l‖²] and Var[ln‖g_l‖²] across 512 networks ≈ 5 l / n (sampling error ~6%)."""
    walk = gc.experiments.log_norm_walk(64, 32, 512, key=jax.random.PRNGKey(0))
    _, var = gc.theory.relu_log_norm_moments(64, 32)
    assert np.isfinite(walk.forward).all() and np.isfinite(walk.backward).all()
    assert walk.forward[:, -1].var() == pytest.approx(var, rel=0.3)  # 1/n corrections at n = 32 add ~ +10%
    assert walk.backward[:, 0].var() == pytest.approx(var, rel=0.3)
    assert walk.backward[:, 0].mean() < -2.5  # mean field says 0; the drift is about -5 l/(2n) = -5


def test_log_norm_walk_validates():
    with pytest.raises(ValueError, match="n_nets"):
        gc.experiments.log_norm_walk(3, 4, 1)
    with pytest.raises(ValueError, match="activation"):
        gc.experiments.log_norm_walk(3, 4, 2, activation="swish!")


def test_lsuv_gives_unit_preactivation_variance_where_he_does_not():
    """SiLU with He init: Var[z_l] drifts with depth (E[silu²] ≠ Var/2); after LSUV every layer is 1 on the batch."""
    key_p, key_x = jax.random.split(jax.random.PRNGKey(0))
    params = gc.mlp_params(key_p, 12, 64, 2.0, 0.0)
    x = jax.random.normal(key_x, (128, 64))
    before = gc.experiments.preactivation_variances(params, "silu", x)
    new, iters = gc.experiments.lsuv(params, "silu", x)
    after = gc.experiments.preactivation_variances(new, "silu", x)
    # independent reference: a plain loop over the layers
    h, ref = x, []
    for W, b in zip(new["W"], new["b"], strict=True):
        z = h @ W + b
        ref.append(float(jnp.var(z)))
        h = jax.nn.silu(z)
    np.testing.assert_allclose(after, ref, rtol=1e-5)
    assert np.all(np.abs(after - 1) < 0.01) and abs(before[-1] - 1) > 0.2
    assert iters.shape == (12,) and np.all(iters >= 1)  # He is off for SiLU in every layer
    ratio = np.asarray(new["W"]) / np.asarray(params["W"])  # each layer only rescaled
    np.testing.assert_allclose(ratio, ratio[:, :1, :1] * np.ones_like(ratio), rtol=1e-5)
