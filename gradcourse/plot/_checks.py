"""Argument checks for data handed to a plot (presentation layer; NumPy only).

``gc.plot`` draws arrays it is given and imports nothing that computes; these checks turn what a
learner passes into float64 NumPy arrays, or raise an error that names the argument.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def numeric_array(values: Any, name: str, *, ndim: int = 1, what: str = "") -> np.ndarray:
    """``values`` as a non-empty float64 array with ``ndim`` axes; ``what`` extends the expected shape.

    >>> numeric_array([1, 2], "norms")
    array([1., 2.])
    >>> numeric_array([], "norms")
    Traceback (most recent call last):
    ...
    ValueError: norms: expected a non-empty 1-D array, got shape (0,)
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a {ndim}-D array of numbers, got {type(values).__name__}") from None
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty {ndim}-D array{what}, got shape {arr.shape}")
    return arr
