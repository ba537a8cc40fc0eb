"""One thread for the BLAS library under JAX's CPU linear algebra (core).

On CPU, jaxlib computes ``jnp.linalg.qr``, ``svd``, ``eigh``, ``cholesky``, ``solve`` ... with SciPy's LAPACK
(``scipy.linalg.cython_lapack``), which runs on SciPy's OpenBLAS, and OpenBLAS starts one thread per core.
jaxlib calls LAPACK from inside XLA's own thread pool, so two thread pools then compete for the same
cores, and for the small matrices of this course each call spends its time synchronising threads rather
than computing. Measured on a 2-core machine (jax 0.10.2, SciPy 1.17.1; OpenBLAS starts 2 threads), a
batch of 8 matrices of 128 x 128 under ``jax.jit``, milliseconds per call, OpenBLAS's default -> 1 thread:

=========  ==================  ===================  ===================
operation  machine idle        one core busy        both cores busy
=========  ==================  ===================  ===================
QR         8.6-9.6 -> 2.6      18-31 -> 2.4-2.8     922 -> 5.2
SVD        9.9-10.5 -> 3.3     22-28 -> 4.3-4.6
eigh       7.0-10.1 -> 4.4     14-21 -> 5.5-5.6
=========  ==================  ===================  ===================

"Busy" is what a learner's second notebook, or the test suite's other worker, does to the kernel (a test
of the suite that draws Jacobian spectra took 9.0 s with both cores busy, 1.5 s with one BLAS thread).
Orthogonal initialisation (QR) and Jacobian spectra (SVD) run in many notebooks, so ``import gradcourse``
limits every loaded BLAS library to one thread, which is also what a single-core Binder session has.
JAX's own matrix products do not use OpenBLAS (XLA compiles them) and keep their threads.

Why not an environment variable: ``OPENBLAS_NUM_THREADS`` is read once, when a library is loaded, and
NumPy's OpenBLAS is loaded by ``import jax`` before this package can set it. threadpoolctl (maintained by
the scikit-learn developers) instead calls each loaded library's own ``set_num_threads``; SciPy's LAPACK
module is imported first so that its OpenBLAS is among them. Results are unchanged up to rounding: a BLAS
library may sum in another order with another thread count.

``GRADCOURSE_BLAS_THREADS=N`` asks for N threads instead of one; ``GRADCOURSE_BLAS_THREADS=default``
leaves the libraries as they are.

Example:
    >>> from gradcourse.blas_threads import blas_threads
    >>> all(n == 1 for n in blas_threads().values())  # after ``import gradcourse``
    True
"""

from __future__ import annotations

import os
import warnings

from .validate import positive_int

ENV = "GRADCOURSE_BLAS_THREADS"

__all__ = ["ENV", "blas_threads", "limit_blas_threads"]


def blas_threads() -> dict[str, int]:
    """The loaded BLAS libraries (file names) and the number of threads each will use."""
    import threadpoolctl

    return {os.path.basename(i["filepath"]): i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas"}


def limit_blas_threads(n: int | None = 1) -> dict[str, int]:
    """Load SciPy's LAPACK (the one jaxlib uses) and limit every loaded BLAS library to ``n`` threads.

    ``n=None`` changes nothing. Returns :func:`blas_threads` afterwards.
    """
    if n is not None:
        n = positive_int(n, "n")
    import scipy.linalg.cython_lapack  # noqa: F401  (loads SciPy's OpenBLAS, which jaxlib's LAPACK calls)
    import threadpoolctl

    if n is not None:
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    return blas_threads()


def _from_environment() -> int | None:
    """The thread count ``GRADCOURSE_BLAS_THREADS`` asks for: 1 when unset, None for "default"."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return 1
    if value.lower() == "default":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    warnings.warn(f"{ENV}={value!r} is neither a positive integer nor 'default'; using 1 BLAS thread",
                  stacklevel=3)
    return 1


def configure() -> None:
    """What ``import gradcourse`` runs: the limit from the environment (see the module docstring)."""
    limit_blas_threads(_from_environment())
