"""The README section "Use gradcourse on your own model": its python blocks run here, in order, in one namespace.

Each block asserts its own backward signal against the zero-perturbation trick done by hand; this
file adds checks of what the blocks print and independent references for points the blocks do
not check themselves.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Use gradcourse on your own model"


def readme_blocks() -> list[str]:
    text = README.read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def ran():
    """Run every block; returns the shared namespace and each block's printed output."""
    blocks = readme_blocks()
    assert len(blocks) == 4, "expected the Equinox, Flax NNX, Flax Linen and plain JAX examples"
    ns: dict = {"__name__": "readme_example"}
    outputs = []
    for block in blocks:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(block, str(README), "exec"), ns)
        outputs.append(buf.getvalue())
    return ns, outputs


def test_equinox_example(ran):
    ns, out = ran
    assert "['layers/0', 'layers/1', 'layers/2', 'layers/3', 'layers/4']" in out[0]
    assert "vanishing" in out[0] and "`layers/4` to `layers/0`" in out[0]  # σ_w² = 1/3 with ReLU, as the README says
    model, x, y = ns["model"], ns["x"], ns["y"]

    def by_hand(e):  # perturb the output of layers/2 (the third Linear), before its activation
        def one(xi, ei):
            h = xi
            for i, layer in enumerate(model.layers[:-1]):
                h = model.activation(layer(h) + (ei if i == 2 else 0.0))
            return model.layers[-1](h)

        return jnp.mean((jax.vmap(one)(x, e) - y) ** 2)

    c = ns["gc"].capture(ns["loss"], model, x, y, model=model)
    np.testing.assert_allclose(c.grads["layers/2"], jax.grad(by_hand)(jnp.zeros((16, 32))), rtol=1e-5, atol=1e-7)


def test_nnx_example(ran):
    _, out = ran
    assert "['blocks/0', 'blocks/1', 'blocks/2', 'blocks/3', 'blocks/4', 'blocks/5']" in out[1]


def test_linen_example(ran):
    ns, out = ran
    assert "['Dense_0', 'Dense_1', 'Dense_2'] ... ['Dense_11', 'Dense_12']" in out[2]
    assert "no problems found" in out[2]
    deep, variables, x = ns["deep"], ns["variables"], ns["x"]
    p = variables["params"]

    def by_hand(e):  # Dense_3's output perturbed, the network written out with the same weights
        h = x
        for i in range(12):
            h = jnp.tanh(h @ p[f"Dense_{i}"]["kernel"] + p[f"Dense_{i}"]["bias"] + (e if i == 3 else 0.0))
        out = h @ p["Dense_12"]["kernel"] + p["Dense_12"]["bias"]
        return jnp.mean(out**2)

    c = ns["gc"].capture(ns["linen_loss"], variables, x, model=deep)
    np.testing.assert_allclose(c.grads["Dense_3"], jax.grad(by_hand)(jnp.zeros((16, 8))), rtol=1e-5, atol=1e-7)


def test_plain_jax_example(ran):
    ns, out = ran
    assert "(10, 16, 8)" in out[3]
    m = ns["metrics"]
    assert [k for k in m if k.startswith("update_ratio")] == [f"update_ratio/blocks[{i}]" for i in range(10)]
    assert int(m["nonfinite"]) == 0
    # Adam's first step moves every entry by about lr, so ‖Δθ_l‖/‖θ_l‖ ≈ lr·√n / ‖θ_l‖
    params0 = {"blocks": jax.random.normal(jax.random.PRNGKey(2), (10, 8, 8)) / jnp.sqrt(8.0)}
    expected = 1e-3 * 8 / np.linalg.norm(np.asarray(params0["blocks"]).reshape(10, -1), axis=1)
    got = np.array([float(m[f"update_ratio/blocks[{i}]"]) for i in range(10)])
    np.testing.assert_allclose(got, expected, rtol=1e-2)
