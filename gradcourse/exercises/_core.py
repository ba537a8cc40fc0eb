"""The self-check homework framework (presentation layer): exercise kinds, feedback, sheets.

In the spirit of Kaggle's learntools, an exercise is *data*: a prompt, hints, a reference answer, the test
cases, and the typical mistakes with the message each deserves. The checking logic lives here, in three
kinds plus one escape hatch:

- :class:`ValueExercise`: "compute this number" — right within a relative tolerance;
- :class:`ArrayExercise`: "compute this array" — right shape, right values within a tolerance;
- :class:`FunctionExercise`: "write this function" — right on every test case;
- :class:`Exercise` with a ``checker``: for answers with several parts (a tuple of gradients, a pytree),
  where the checker compares the parts with :func:`diagnose`.

Rules every kind follows (``check`` never raises, so a notebook runs top to bottom with nothing attempted):

- **Not attempted** (one rule, :func:`is_placeholder`): the answer is ``None`` or ``...``, or a function whose
  body is still empty (``pass``, ``...``, a docstring, ``return None``), or a function that raises
  ``NotImplementedError``.
- An *edited* function that returns ``None`` gets "your function returned None: did you forget `return`?".
- An exception raised by the learner's code is reported as "Your code raised ...". An exception raised by a
  *checker* is a bug in gradcourse, and the feedback says so (status :data:`CHECKER_ERROR`).
- **Time limit.** The learner's function runs in a daemon thread joined with a timeout of
  :data:`TIME_LIMIT` seconds per call (change it with :func:`set_time_limit`, or per exercise with
  ``time_limit=``). Python cannot kill a thread, so a function that loops forever keeps running in the
  background until the kernel restarts; the notebook itself gets its feedback ("took longer than 10 s")
  and stays usable. Threads work in Jupyter on every platform, unlike ``signal.alarm`` (main thread,
  Unix only) or a subprocess (which cannot receive the learner's closures and JAX arrays).
- **Tolerances** accept the right answer computed in float32 or float64, NumPy, JAX or Python floats
  (default ``rtol=1e-4``, about 800 float32 roundoffs), and each exercise's typical mistakes must lie
  outside them (``tests/test_exercises.py`` checks both directions for every exercise).
"""
from __future__ import annotations

import dis
import inspect
import math
import textwrap
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "CHECKER_ERROR", "CORRECT", "INCORRECT", "NOT_ATTEMPTED", "TIME_LIMIT", "ArrayExercise", "Exercise", "Feedback",
    "FunctionExercise", "LearnerError", "NotAttempted", "Sheet", "ValueExercise", "Wrong", "all_sheets", "as_array",
    "as_number", "compare_arrays", "diagnose", "expect_function", "is_placeholder", "relative_error", "reset_all",
    "set_time_limit",
]

Status = Literal["not attempted", "correct", "incorrect", "checker error"]
NOT_ATTEMPTED: Status = "not attempted"
CORRECT: Status = "correct"
INCORRECT: Status = "incorrect"
CHECKER_ERROR: Status = "checker error"

TIME_LIMIT = 10.0
"""Seconds one call of the learner's function may take before the check gives up (see :func:`set_time_limit`)."""


def set_time_limit(seconds: float) -> None:
    """Set :data:`TIME_LIMIT`, the seconds each call of a learner's function may run (default 10)."""
    global TIME_LIMIT
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise ValueError(f"seconds: expected a positive finite number, got {seconds!r}")
    TIME_LIMIT = float(seconds)


class NotAttempted(Exception):
    """Raised inside a check when the answer is still the template's placeholder."""


class Wrong(Exception):
    """Raised by a checker (or the helpers below) to stop and tell the learner ``message``."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LearnerError(Exception):
    """The learner's function raised, returned ``None`` after being edited, or ran out of time."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- not attempted: one rule


def _empty_template(*args, **kwargs):  # the bytecode of a function whose body is pass / ... / a docstring
    pass


def _is_template_function(fn: Any) -> bool:
    """True for a function whose body does nothing yet (``pass``, ``...``, a docstring, ``return None``)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    return not code.co_names and _instructions(code) == _instructions(_empty_template.__code__)


def _instructions(code: Any) -> list[tuple[str, Any]]:
    """The function's instructions by name and value (a docstring shifts constant indices, not values)."""
    return [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")]


def is_placeholder(answer: Any) -> bool:
    """The single not-attempted rule for answers: ``None``, ``...``, or a function with an empty body.

    (A function that raises ``NotImplementedError`` when called is the rule's fourth case, seen at call time.)
    """
    return answer is None or answer is Ellipsis or (callable(answer) and _is_template_function(answer))


class _Guarded:
    """The learner's function, called with a time limit; its failures become :class:`LearnerError`."""

    def __init__(self, fn: Callable, time_limit: float):
        self.fn, self.time_limit = fn, time_limit
        self.name = getattr(fn, "__name__", "your function")

    def __call__(self, *args: Any) -> Any:
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = self.fn(*args)
            except BaseException as e:  # noqa: B036 - hand every failure of the learner's code to the main thread
                box["error"] = e

        worker = threading.Thread(target=run, name="gradcourse-exercise", daemon=True)
        worker.start()
        worker.join(self.time_limit)
        if worker.is_alive():
            raise LearnerError(
                f"Your function took longer than {self.time_limit:g} s on one test case (an endless loop?), so the "
                "check gave up. It may still be running in the background: restart the kernel if the notebook gets "
                "slow. "
                "(The limit is gradcourse.exercises.TIME_LIMIT; change it with gc.exercises.set_time_limit(seconds).)"
            )
        if "error" in box:
            e = box["error"]
            if isinstance(e, NotImplementedError):
                raise NotAttempted from None
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise e
            raise LearnerError(f"Your code raised {type(e).__name__}: {e}") from None
        value = box.get("value")
        if value is None:
            if _is_template_function(self.fn):
                raise NotAttempted
            raise LearnerError("Your function returned None: did you forget `return`?")
        return value


# ---------------------------------------------------------------- answers as numbers


def as_array(value: Any, what: str = "your answer", finite: bool = True) -> np.ndarray:
    """``value`` as a float64 array (finite unless ``finite=False``), or :class:`Wrong` saying why it is not one."""
    if is_placeholder(value):
        raise NotAttempted
    if isinstance(value, (str, bytes, dict, set)) or callable(value):
        raise Wrong(f"{what} should be a number or an array of numbers, got {type(value).__name__}.")
    try:
        raw = np.asarray(value)
    except Exception:  # ragged lists and objects NumPy cannot read
        raise Wrong(f"{what} should be a number or an array of numbers, got {type(value).__name__}.") from None
    if np.iscomplexobj(raw):
        raise Wrong(f"{what} should be real, got a complex value.")
    if raw.dtype == object or raw.dtype.kind not in "biuf":
        raise Wrong(f"{what} should be a number or an array of numbers, got {type(value).__name__}.")
    a = raw.astype(np.float64)
    if finite and not np.all(np.isfinite(a)):
        raise Wrong(f"{what} contains NaN or Inf.")
    return a


def as_number(value: Any, what: str = "your answer") -> float:
    """``value`` as one finite Python float (a 0-d or size-1 array is fine), or :class:`Wrong` saying why not."""
    a = as_array(value, what)
    if a.size != 1:
        raise Wrong(f"{what} should be a single number, got an array of shape {a.shape}.")
    return float(a.reshape(()))


def expect_function(answer: Any, name: str) -> None:
    """:class:`Wrong` unless ``answer`` is a function (the learner passed its result, or a number, instead)."""
    if not callable(answer):
        raise Wrong(f"Pass your function {name} itself, not {type(answer).__name__}.")


def relative_error(got: Any, want: Any) -> float:
    """max |got - want| / max |want| (both made NumPy float64)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-30)
    return float(np.max(np.abs(got - want))) / scale if got.size else 0.0


def _close(g: np.ndarray, want: Any, rtol: float, atol: float = 0.0) -> bool:
    """Same shape; infinite entries equal; finite ones within ``rtol`` · max|finite want| + ``atol``; no NaN."""
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape or np.any(np.isnan(g)) or np.any(np.isnan(w)):
        return False
    inf = ~np.isfinite(w)
    if np.any(g[inf] != w[inf]) or not np.all(np.isfinite(g[~inf])):
        return False
    fw, fg = w[~inf], g[~inf]
    scale = float(np.max(np.abs(fw))) if fw.size else 0.0
    return bool(np.all(np.abs(fg - fw) <= rtol * scale + atol))


def compare_arrays(got: Any, want: Any, name: str = "your answer", rtol: float = 1e-4, atol: float = 0.0) -> str | None:
    """``None`` if ``got`` ≈ ``want``; else what differs: shape, a constant factor, the sign, or values."""
    try:
        g = as_array(got, name)
    except Wrong as w:
        return w.message
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        if g.size == w.size:
            return (
                f"{name} has shape {g.shape} but should have shape {w.shape}: right numbers, wrong layout (a transpose "
                f"or reshape?)."
            )
        return f"{name} has shape {g.shape} but should have shape {w.shape}."
    if _close(g, w, rtol, atol):
        return None
    if _close(-g, w, rtol, atol):
        return f"{name} has the wrong sign everywhere."
    denom = float(np.vdot(w, w))
    if denom > 0:
        factor = float(np.vdot(g, w)) / denom
        # a factor that rounds to 1 is no "constant factor": then the values differ in another way
        if abs(factor) > 1e-12 and f"{factor:.3g}" not in ("1", "-1") and _close(g / factor, w, rtol, atol):
            return f"{name} is off by a constant factor: it is {factor:.3g} times the right answer."
    return f"{name} differs from the reference (relative error {relative_error(g, w):.2g})."


def diagnose(
    got: Any, want: Any, mistakes: Sequence[tuple[Any, str]] = (), name: str = "your answer", rtol: float = 1e-4,
    atol: float = 0.0,
) -> str | None:
    """``None`` if ``got`` ≈ ``want``; else the message of the first known mistake that ``got`` equals,
    else :func:`compare_arrays`' description (shape, constant factor, sign, values).

    ``mistakes``: pairs (what a typical wrong answer gives, what to tell the learner).
    """
    try:
        g = as_array(got, name)
    except Wrong as w:
        return w.message
    if _close(g, want, rtol, atol):
        return None
    for wrong, message in mistakes:
        if _close(g, wrong, rtol, atol):
            return message
    return compare_arrays(g, want, name, rtol, atol)


# ---------------------------------------------------------------- feedback


@dataclass(frozen=True)
class Feedback:
    """What ``check``, ``hint`` and ``solution`` return; shows itself as text or Markdown."""

    title: str
    body: str
    status: str = ""

    @property
    def passed(self) -> bool:
        return self.status == CORRECT

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{self.title}\n{self.body}" if self.body else self.title

    def _repr_markdown_(self) -> str:
        colour = {CORRECT: "#2e7d32", INCORRECT: "#c62828", NOT_ATTEMPTED: "#6d6d6d", CHECKER_ERROR: "#ef6c00"}.get(
            self.status, "#1565c0"
        )
        body = self.body if self.body.lstrip().startswith("```") else self.body.replace("\n", "  \n")
        return f'<span style="color:{colour}"><b>{self.title}</b></span>\n\n{body}'


# ---------------------------------------------------------------- exercise kinds


@dataclass(eq=False, kw_only=True)
class Exercise:
    """One exercise: prompt, hints (gentlest first), reference answer, and how to check an answer.

    The base class is the escape hatch for answers with several parts: ``checker(answer) -> str | None`` returns
    ``None`` when right, else what is wrong in words (or raises :class:`Wrong`). When the answer is a function,
    the checker receives it already wrapped: calling it applies the time limit and the not-attempted rule.
    ``template``: the code the notebook cell starts from (it must read as not attempted).
    """

    name: str
    prompt: str
    hints: Sequence[str]
    reference: Any
    explanation: str = ""
    template: str = ""
    checker: Callable[[Any], str | None] | None = None
    time_limit: float | None = None
    _status: str = field(default=NOT_ATTEMPTED, repr=False)

    # -- what each kind overrides
    def judge(self, answer: Any) -> str | None:
        """``None`` if ``answer`` is right, else a message; may raise :class:`Wrong`, :class:`NotAttempted` or
        :class:`LearnerError`. Any other exception is a bug in the checker."""
        if self.checker is None:
            raise TypeError(f"exercise {self.name} has neither a checker nor a kind")
        return self.checker(answer)

    # -- the learner's side
    @property
    def label(self) -> str:
        """How the learner reaches this exercise in the notebook (``ex.q1``)."""
        return f"ex.{self.name}"

    def check(self, answer: Any) -> Feedback:
        """Check the learner's ``answer`` (a value or a function, as the prompt asks). Never raises."""
        if is_placeholder(answer):
            return self._not_attempted()
        if callable(answer) and callable(self.reference) and not isinstance(answer, _Guarded):
            answer = _Guarded(answer, self.time_limit if self.time_limit is not None else TIME_LIMIT)
        try:
            problem = self.judge(answer)
        except NotAttempted:
            return self._not_attempted()
        except Wrong as w:
            problem = w.message
        except LearnerError as e:
            problem = e.message
        except Exception as e:  # the checker's own failure: never blame the learner
            self._status = CHECKER_ERROR
            return Feedback(
                f"⚠ {self.name}: the checker failed",
                f"This is a bug in gradcourse, not a verdict on your answer ({type(e).__name__}: {e}). "
                "Please report it; meanwhile compare with the solution.",
                CHECKER_ERROR,
            )
        if problem is None:
            self._status = CORRECT
            return Feedback(f"✓ {self.name}: correct", self.explanation, CORRECT)
        self._status = INCORRECT
        return Feedback(f"✗ {self.name}: not yet", f"{problem}\n(Call {self.label}.hint() for a hint.)", INCORRECT)

    def _not_attempted(self) -> Feedback:
        self._status = NOT_ATTEMPTED
        return Feedback(f"○ {self.name}: not attempted yet", self.prompt, NOT_ATTEMPTED)

    def hint(self, level: int = 1) -> Feedback:
        """Hint number ``level`` (1 = gentlest)."""
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= level <= len(self.hints):
            raise ValueError(f"level: expected an int from 1 to {len(self.hints)}, got {level!r}")
        level = int(level)
        more = f"\n(More: {self.label}.hint({level + 1}))" if level < len(self.hints) else ""
        return Feedback(f"Hint {level}/{len(self.hints)} for {self.name}", self.hints[level - 1] + more)

    def solution(self) -> Feedback:
        """The reference solution: its source code if it is a function, else its value."""
        code = None
        if callable(self.reference):
            try:
                code = textwrap.dedent(inspect.getsource(self.reference))
            except (OSError, TypeError):
                code = None
        body = f"```python\n{code}```" if code is not None else f"```python\n{self.reference!r}\n```"
        if self.explanation:
            body += "\n\n" + self.explanation
        return Feedback(f"Solution to {self.name}", body)

    @property
    def status(self) -> str:
        return self._status

    def cell(self) -> str:
        """The notebook's exercise cell: the template, the check, and the commented hint/solution lines."""
        import ast

        tree = ast.parse(self.template)
        last = tree.body[-1]
        answer = last.name if isinstance(last, ast.FunctionDef) else last.targets[0].id  # type: ignore[attr-defined]
        return (
            f"# NBVAL_CHECK_OUTPUT\n{self.template}\n\n{self.label}.check({answer})\n"
            f"# {self.label}.hint()\n# {self.label}.solution()"
        )

    def reset(self) -> None:
        """Forget the last check (back to not attempted)."""
        self._status = NOT_ATTEMPTED


@dataclass(eq=False, kw_only=True)
class ValueExercise(Exercise):
    """"Compute this number": ``reference`` ± ``rtol`` (relative), or the message of the matching mistake.

    ``mistakes``: ``(wrong value, message)`` pairs; ``what``: the variable's name in the notebook.
    """

    mistakes: Sequence[tuple[float, str]] = ()
    what: str = "your answer"
    rtol: float = 1e-4

    def judge(self, answer: Any) -> str | None:
        if callable(answer):
            raise Wrong(f"{self.what} should be a number, got a function: call it, or assign its result.")
        got = as_number(answer, self.what)
        g = np.asarray(got)
        if _close(g, self.reference, self.rtol):
            return None
        for wrong, message in self.mistakes:
            if _close(g, wrong, self.rtol):
                return message
        return f"{self.what} = {got:.4g} is not right."


@dataclass(eq=False, kw_only=True)
class ArrayExercise(Exercise):
    """"Compute this array": right shape and values within ``rtol`` of the largest entry, or the matching mistake."""

    mistakes: Sequence[tuple[Any, str]] = ()
    what: str = "your answer"
    rtol: float = 1e-4

    def judge(self, answer: Any) -> str | None:
        if callable(answer):
            raise Wrong(f"{self.what} should be an array, got a function: call it, or assign its result.")
        return diagnose(answer, self.reference, self.mistakes, name=self.what, rtol=self.rtol)


@dataclass(eq=False, kw_only=True)
class FunctionExercise(Exercise):
    """"Write the function ``signature``": its value on every case in ``cases`` (argument tuples) is within
    ``rtol`` of the reference's (relative to the largest reference value of that case), or the message of the
    first matching mistake.

    ``mistakes``: ``(wrong function, message)`` pairs. A wrong function may return ``None`` on cases it does not
    care about; it matches when the answer agrees with it on all the others.
    """

    cases: Sequence[tuple] = ()
    mistakes: Sequence[tuple[Callable[..., Any], str]] = ()
    signature: str = "f(...)"
    rtol: float = 1e-4
    atol: float = 0.0
    _cache: dict = field(default_factory=dict, repr=False)

    def _at(self, args: tuple) -> str:
        name = self.signature.split("(")[0]
        return f"{name}{args}" if len(args) != 1 else f"{name}({args[0]!r})"

    def judge(self, answer: Any) -> str | None:
        if not callable(answer):
            raise Wrong(f"Expected a function {self.signature}, got {type(answer).__name__}.")
        got: list[np.ndarray | None] = []
        errors: dict[int, str] = {}
        for i, args in enumerate(self.cases):
            try:
                got.append(as_array(answer(*args), f"Your {self.signature.split('(')[0]} at {args}", finite=False))
            except LearnerError as e:  # an error at one case (1/0 at a boundary) may still match a known mistake
                if e.message.startswith("Your function took"):
                    raise
                got.append(None)
                errors[i] = e.message
        want = self._reference_values()
        ok = [g is not None and _close(g, w, self.rtol, self.atol) for g, w in zip(got, want, strict=True)]
        if all(ok):
            return None
        for (_, message), values in zip(self.mistakes, self._mistake_values(), strict=True):
            pairs = [(g, v) for g, v in zip(got, values, strict=True) if v is not None]
            if pairs and all(g is not None and _close(g, v, self.rtol, self.atol) for g, v in pairs):
                return message
        factor = self._constant_factor(got, want)
        if factor is not None:
            return (
                f"Your function is off by a constant factor: it returns {factor:.3g} times the right value on every "
                f"case."
            )
        i = ok.index(False)
        if i in errors:
            return f"At {self._at(self.cases[i])}: {errors[i]}"
        g, w = got[i], want[i]
        if g.shape != w.shape:
            return f"At {self._at(self.cases[i])} your function returns shape {g.shape}, the right shape is {w.shape}."
        if w.size == 1:
            return (
                f"At {self._at(self.cases[i])} your function returns {float(g.reshape(())):.6g}, but the right value "
                f"is {float(w.reshape(())):.6g}."
            )
        return f"At {self._at(self.cases[i])}: " + compare_arrays(g, w, "your result", self.rtol, self.atol)


    def _reference_values(self) -> list[np.ndarray]:
        """The reference on every case, computed once (references and mistakes are pure functions of the case)."""
        if self._cache.get("want") is None:
            self._cache["want"] = [np.asarray(self.reference(*args), dtype=np.float64) for args in self.cases]
        return self._cache["want"]

    def _mistake_values(self) -> list[list[Any]]:
        if self._cache.get("mistakes") is None:
            self._cache["mistakes"] = [[wrong(*args) for args in self.cases] for wrong, _ in self.mistakes]
        return self._cache["mistakes"]

    def _constant_factor(self, got: list, want: list) -> float | None:
        """The common ratio got/want over all cases, if there is one and it does not round to ±1."""
        if any(g is None or g.shape != w.shape or not np.all(np.isfinite(g)) for g, w in zip(got, want, strict=True)):
            return None
        g = np.concatenate([x.ravel() for x in got])
        w = np.concatenate([x.ravel() for x in want])
        if g.size < 2 or not np.all(np.isfinite(w)) or float(np.vdot(w, w)) == 0:
            return None
        factor = float(np.vdot(g, w)) / float(np.vdot(w, w))
        if factor == 0 or f"{factor:.3g}" in ("1", "-1") or not _close(g / factor, w, self.rtol, self.atol):
            return None
        return factor


# ---------------------------------------------------------------- sheets

_SHEETS: list[Sheet] = []


class Sheet:
    """The exercises of one notebook; ``summary()`` says what is done and what is left."""

    def __init__(self, title: str, *exercises: Exercise):
        self.title = title
        self.exercises = list(exercises)
        _SHEETS.append(self)

    def summary(self) -> Feedback:
        lines = [f"- {e.name}: {e.status}" for e in self.exercises]
        left = [e.name for e in self.exercises if e.status != CORRECT]
        head = f"{self.title}: {len(self.exercises) - len(left)}/{len(self.exercises)} exercises correct"
        tail = "All done." if not left else "Still to do: " + ", ".join(left) + "."
        return Feedback(head, "\n".join(lines + [tail]), CORRECT if not left else NOT_ATTEMPTED)

    def reset(self) -> None:
        """Every exercise back to not attempted."""
        for e in self.exercises:
            e.reset()


def all_sheets() -> list[Sheet]:
    """Every sheet imported so far."""
    return list(_SHEETS)


def reset_all() -> None:
    """Every exercise of every imported sheet back to not attempted (the tests' fixture)."""
    for s in _SHEETS:
        s.reset()
