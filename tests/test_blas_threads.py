"""gradcourse.blas_threads: import gradcourse limits the BLAS under jnp.linalg to one thread; the override works."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse  # noqa: F401  (the import is what is tested)
from gradcourse.blas_threads import ENV, blas_threads, limit_blas_threads

# What a fresh interpreter reports: SciPy's LAPACK loaded (the library jaxlib's CPU linear algebra calls), with
# or without gradcourse, and the thread count of every loaded BLAS library (read by threadpoolctl itself).
_PROBE = """
import json, sys
if sys.argv[1] == "gradcourse":
    import gradcourse
import scipy.linalg.cython_lapack, threadpoolctl
print(json.dumps({i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}))
"""


def _probe(*, with_gradcourse: bool, env_value: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {ENV, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}}
    if env_value is not None:
        env[ENV] = env_value
    return subprocess.Popen([sys.executable, "-c", _PROBE, "gradcourse" if with_gradcourse else "plain"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> tuple[dict[str, int], str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def test_import_leaves_one_thread_in_every_blas_library_including_scipys():
    threads = blas_threads()  # SciPy's LAPACK is loaded by then (limit_blas_threads imports it first)
    assert "scipy.linalg.cython_lapack" in sys.modules
    assert threads and set(threads.values()) == {1}, threads


def test_environment_override_default_and_n_and_a_bad_value():
    procs = {
        "plain": _probe(with_gradcourse=False, env_value=None),
        "default": _probe(with_gradcourse=True, env_value="default"),
        "2": _probe(with_gradcourse=True, env_value="2"),
        "junk": _probe(with_gradcourse=True, env_value="lots"),
    }
    results = {name: _result(p) for name, p in procs.items()}
    plain = results["plain"][0]
    assert results["default"][0] == plain  # "default" changes nothing
    assert set(results["2"][0].values()) == {2}
    assert set(results["junk"][0].values()) == {1}
    assert ENV in results["junk"][1] and "positive integer" in results["junk"][1]  # the warning names the variable


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError),
                                        ("1", TypeError)])
def test_limit_rejects_a_bad_thread_count(bad, error):
    with pytest.raises(error, match="n: expected a positive integer"):
        limit_blas_threads(bad)


def test_linear_algebra_on_one_thread_agrees_with_numpy_in_float64():
    """The limit changes who computes, not what: jnp.linalg's QR, SVD and eigh against NumPy in float64."""
    limit_blas_threads(1)
    a = np.random.default_rng(0).standard_normal((4, 64, 64)).astype(np.float32)
    q, r = jax.jit(jnp.linalg.qr)(a)
    np.testing.assert_allclose(np.asarray(q) @ np.asarray(r), a, atol=2e-5)
    np.testing.assert_allclose(np.asarray(jnp.swapaxes(q, -1, -2) @ q), np.broadcast_to(np.eye(64), q.shape), atol=2e-5)
    s = jax.jit(lambda x: jnp.linalg.svd(x, compute_uv=False))(a)
    np.testing.assert_allclose(s, np.linalg.svd(a.astype(np.float64), compute_uv=False), rtol=1e-4, atol=1e-4)
    sym = a + np.swapaxes(a, -1, -2)
    w = jax.jit(jnp.linalg.eigvalsh)(sym)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(sym.astype(np.float64)), rtol=1e-4, atol=1e-4)
