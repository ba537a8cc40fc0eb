"""The contract every exercise of every sheet keeps (one parametrised test instead of one copy per notebook).

Reference passes (also computed in float32, NumPy or JAX); placeholders read as not attempted; a wrong type and a
wrong value read as incorrect with words; each typical mistake of a value/function exercise gets its own message
(so the tolerance separates it from the right answer); hints and solution are non-empty; and the checker never
raises nor reports its own failure for 25 kinds of odd answer.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import threading

import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import fresh_exercises  # noqa: F401 - autouse fixture

from gradcourse import exercises
from gradcourse.exercises import (
    CHECKER_ERROR,
    CORRECT,
    INCORRECT,
    NOT_ATTEMPTED,
    ArrayExercise,
    FunctionExercise,
    ValueExercise,
    _core,
    set_time_limit,
)

SHEETS = [
    importlib.import_module(f"gradcourse.exercises.{m.name}")
    for m in pkgutil.iter_modules(exercises.__path__)
    if re.fullmatch(r"nb\d\d", m.name)
]
EXERCISES = [(m.__name__.rsplit(".", 1)[1], e) for m in SHEETS for e in m.sheet.exercises]
IDS = [f"{s}.{e.name}" for s, e in EXERCISES]
ALL = pytest.mark.parametrize("sheet_name, q", EXERCISES, ids=IDS)

_STOP = threading.Event()


def _raises(*args):
    raise ValueError("learner bug")


def _edited_without_return(*args):
    result = len(args)  # noqa: F841 - the learner computed something and forgot to return it


def _endless(*args):
    while not _STOP.wait(0.01):  # an endless loop that the test can end (no thread left spinning)
        pass


ODD_ANSWERS = {
    "str": "0.25", "list": [1.0, 2.0, 3.0], "ragged": [[1.0], [2.0, 3.0]], "dict": {"a": 1.0}, "set": {1.0},
    "nan": float("nan"), "inf": float("inf"), "-inf": -float("inf"), "zero": 0, "negative": -1.5, "complex": 1 + 2j,
    "huge": 1e300, "tiny": 1e-300, "bool": True, "object": object(), "np.int64": np.int64(3),
    "wrong-shape": np.zeros((2, 3, 4)), "empty": np.zeros(0), "np.float32": np.ones(3, np.float32),
    "np.float64": np.ones(3), "jax.float32": jnp.ones(3), "jax scalar": jnp.float32(0.7),
    "raises": _raises, "returns str": lambda *a: "x", "returns nan": lambda *a: float("nan"),
    "returns dict": lambda *a: {"a": 1}, "wrong arity": lambda: 1.0, "endless loop": _endless,
    "edited, no return": _edited_without_return,
}


def _template_pass(*args):
    pass


def _template_ellipsis(*args):
    """Docstring only."""
    ...


def _template_raise(*args):
    raise NotImplementedError


@ALL
def test_reference_passes(sheet_name, q):
    assert q.check(q.reference).status == CORRECT, q.check(q.reference)
    assert q.status == CORRECT


@ALL
def test_reference_in_float32_numpy_and_jax_passes(sheet_name, q):
    if isinstance(q, (ValueExercise, ArrayExercise)):
        variants = [np.float32(q.reference) if np.ndim(q.reference) == 0 else np.asarray(q.reference, np.float32),
                    jnp.asarray(q.reference, jnp.float32), np.asarray(q.reference, np.float64)]
        if np.ndim(q.reference) == 0:
            variants.append(float(q.reference))
    elif isinstance(q, FunctionExercise):
        variants = [
            lambda *a: np.asarray(q.reference(*a), np.float32),
            lambda *a: jnp.asarray(q.reference(*a), jnp.float32),
        ]
    else:
        pytest.skip("a several-part answer: its own test covers float32")
    for v in variants:
        fb = q.check(v)
        assert fb.status == CORRECT, fb


@ALL
def test_placeholders_read_as_not_attempted(sheet_name, q):
    templates = (_template_raise,) if callable(q.reference) else ()
    for answer in (None, Ellipsis, _template_pass, _template_ellipsis, lambda *a: None, *templates):
        fb = q.check(answer)
        assert fb.status == NOT_ATTEMPTED, (answer, fb)
        assert fb.body
    assert q.template, "every exercise carries the template its notebook cell starts from"
    if q.template:
        ns: dict = {}
        exec(q.template, ns)
        name = [k for k in ns if not k.startswith("__")][-1]
        assert q.check(ns[name]).status == NOT_ATTEMPTED, q.template
    assert q.status == NOT_ATTEMPTED


@ALL
def test_wrong_type_and_wrong_value_read_as_incorrect_in_words(sheet_name, q):
    wrong_type = (lambda *a: "not a number") if callable(q.reference) else "not a number"
    if callable(q.reference):
        wrong_value = lambda *a: np.asarray(7.31, np.float64)  # noqa: E731
    else:
        wrong_value = np.asarray(q.reference, np.float64) * 1.37 + 0.11
    for answer in (wrong_type, wrong_value, 1.0 if callable(q.reference) else (lambda x: x)):
        fb = q.check(answer)
        assert fb.status == INCORRECT, fb
        assert len(fb.body) > 20 and f"ex.{q.name}.hint()" in fb.body


@ALL
def test_forgotten_return_is_named(sheet_name, q):
    if not callable(q.reference):
        pytest.skip("the answer is a value")
    fb = q.check(_edited_without_return)
    assert fb.status == INCORRECT and "did you forget `return`" in fb.body, fb


@ALL
def test_each_typical_mistake_gets_its_own_message(sheet_name, q):
    mistakes = getattr(q, "mistakes", ())
    if not mistakes:
        pytest.skip("the mistakes are inside a several-part checker; its own test covers them")
    for wrong, message in mistakes:
        fb = q.check(wrong)
        assert fb.status == INCORRECT, (message, fb)
        assert message in fb.body or isinstance(q, FunctionExercise) and "None" in repr(wrong), (message, fb.body)


@ALL
def test_hints_and_solution(sheet_name, q):
    assert q.hints and all(h.strip() for h in q.hints)
    for level in range(1, len(q.hints) + 1):
        assert q.hint(level).body
    assert q.solution().body.strip() and q.prompt.strip()
    with pytest.raises(ValueError, match="level"):
        q.hint(len(q.hints) + 1)


@ALL
def test_checker_never_raises_for_odd_answers(sheet_name, q):
    set_time_limit(0.3)
    _STOP.clear()
    try:
        for kind, answer in ODD_ANSWERS.items():
            fb = q.check(answer)
            assert fb.status in (NOT_ATTEMPTED, INCORRECT), (kind, fb)
            assert fb.status != CHECKER_ERROR and fb.body, (kind, fb)
            if kind == "endless loop" and callable(q.reference):
                assert "longer than 0.3 s" in fb.body, fb
            if kind == "raises" and callable(q.reference):
                assert "ValueError: learner bug" in fb.body, fb  # the learner's error, named
    finally:
        _STOP.set()
        set_time_limit(10.0)


@ALL
def test_summary_says_what_is_left(sheet_name, q):
    sheet = importlib.import_module(f"gradcourse.exercises.{sheet_name}").sheet
    assert f"{q.name}" in sheet.summary().body.split("Still to do:")[1]
    q.check(q.reference)
    left = sheet.summary().body
    assert f"- {q.name}: correct" in left and (f" {q.name}," not in left.split("Still to do:")[-1])


def test_a_checker_bug_is_not_blamed_on_the_learner():
    def broken(answer):
        raise KeyError("internal")

    q = _core.Exercise(name="qx", prompt="p", hints=["h"], reference=1.0, checker=broken)
    fb = q.check(1.0)
    assert fb.status == CHECKER_ERROR and "bug in gradcourse" in fb.body and "Your code" not in fb.body


def test_constant_factor_message_never_says_one_times():
    want = np.array([1.0, 2.0, 3.0])
    assert "1 times" not in _core.compare_arrays(want * (1 + 3e-4), want)
    assert "2 times" in _core.compare_arrays(want * 2, want)


def test_set_time_limit_validates():
    with pytest.raises(ValueError, match="seconds"):
        set_time_limit(0)


def test_diagnose_names_the_mistake_the_factor_or_the_type():
    assert _core.diagnose([1.0, 2.0], [1.0, 2.0]) is None
    assert _core.diagnose([2.0, 1.0], [1.0, 2.0], [([2.0, 1.0], "reversed")]) == "reversed"
    assert "constant factor" in _core.diagnose([2.0, 4.0], [1.0, 2.0])
    assert "array of numbers" in _core.diagnose(object(), [1.0])
