"""The self-check homework system: ``check``, ``hint`` and ``solution`` for each exercise.

An exercise owns a *checker*: a function that takes the learner's answer and returns ``None``
when it is right, or a sentence saying what is wrong (wrong shape, off by a constant factor,
wrong sign, right for ReLU only, ...). ``check`` never raises, so a notebook with nothing
attempted still runs top to bottom; it reports "not attempted" instead.
"""
from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

NOT_ATTEMPTED = "not attempted"
CORRECT = "correct"
INCORRECT = "incorrect"


class NotAttempted(Exception):
    """Raised by a checker when the answer is still the template's placeholder."""


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
        colour = {CORRECT: "#2e7d32", INCORRECT: "#c62828", NOT_ATTEMPTED: "#6d6d6d"}.get(self.status, "#1565c0")
        body = self.body if self.body.lstrip().startswith("```") else self.body.replace("\n", "  \n")
        return f'<span style="color:{colour}"><b>{self.title}</b></span>\n\n{body}'


def _is_placeholder(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


@dataclass
class Exercise:
    """One exercise: its prompt, a checker, hints in order of strength, and a reference solution.

    ``checker(answer) -> str | None``: ``None`` when right, otherwise what is wrong, in words.
    ``reference``: the reference answer (a value or a function) that must pass its own check.
    """

    name: str
    prompt: str
    checker: Callable[[Any], str | None]
    hints: list[str]
    reference: Any
    explanation: str = ""
    _status: str = field(default=NOT_ATTEMPTED, repr=False)

    def check(self, answer: Any) -> Feedback:
        """Check the learner's ``answer`` (a value or a function, as the prompt asks)."""
        if _is_placeholder(answer):
            return self._not_attempted()
        try:
            problem = self.checker(answer)
        except NotAttempted:
            return self._not_attempted()
        except NotImplementedError:
            return self._not_attempted()
        except Exception as e:  # the learner's code raised: say so, never crash the notebook
            problem = f"Your code raised {type(e).__name__}: {e}"
        if problem is None:
            self._status = CORRECT
            return Feedback(f"✓ {self.name}: correct", self.explanation, CORRECT)
        self._status = INCORRECT
        return Feedback(f"✗ {self.name}: not yet", problem + f"\n(Call {self.name}.hint() for a hint.)", INCORRECT)

    def _not_attempted(self) -> Feedback:
        self._status = NOT_ATTEMPTED
        return Feedback(f"○ {self.name}: not attempted yet", self.prompt, NOT_ATTEMPTED)

    def hint(self, level: int = 1) -> Feedback:
        """Hint number ``level`` (1 = gentlest)."""
        if not isinstance(level, int) or not 1 <= level <= len(self.hints):
            raise ValueError(f"level: expected an int from 1 to {len(self.hints)}, got {level!r}")
        more = f"\n(More: {self.name}.hint({level + 1}))" if level < len(self.hints) else ""
        return Feedback(f"Hint {level}/{len(self.hints)} for {self.name}", self.hints[level - 1] + more)

    def solution(self) -> Feedback:
        """The reference solution: its source code if it is a function, else its value."""
        try:
            code = textwrap.dedent(inspect.getsource(self.reference)) if callable(self.reference) else None
        except (OSError, TypeError):
            code = None
        if code is not None:
            body = f"```python\n{code}```"
        else:
            body = f"```python\n{self.reference!r}\n```"
        if self.explanation:
            body += "\n\n" + self.explanation
        return Feedback(f"Solution to {self.name}", body)

    @property
    def status(self) -> str:
        return self._status


class Sheet:
    """The exercises of one notebook; ``summary()`` says what is done and what is left."""

    def __init__(self, title: str, *exercises: Exercise):
        self.title = title
        self.exercises = list(exercises)

    def summary(self) -> Feedback:
        lines = [f"- {e.name}: {e.status}" for e in self.exercises]
        left = [e.name for e in self.exercises if e.status != CORRECT]
        head = f"{self.title}: {len(self.exercises) - len(left)}/{len(self.exercises)} exercises correct"
        tail = "All done." if not left else "Still to do: " + ", ".join(left) + "."
        return Feedback(head, "\n".join(lines + [tail]), CORRECT if not left else NOT_ATTEMPTED)


# ---------------------------------------------------------------- small helpers for checkers


def relative_error(got: Any, want: Any) -> float:
    """max |got - want| / max |want| (both made NumPy float64)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-30)
    return float(np.max(np.abs(got - want))) / scale


def compare_arrays(got: Any, want: Any, name: str = "your answer", rtol: float = 1e-4) -> str | None:
    """``None`` if ``got`` ≈ ``want``; else what differs: shape, a constant factor, the sign, or values."""
    if _is_placeholder(got):
        raise NotAttempted
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{name} should be an array of numbers, got {type(got).__name__}."
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        if g.size == w.size:
            return f"{name} has shape {g.shape} but should have shape {w.shape}: right numbers, wrong layout (a transpose or reshape?)."
        return f"{name} has shape {g.shape} but should have shape {w.shape}."
    if not np.all(np.isfinite(g)):
        return f"{name} contains NaN or Inf."
    if relative_error(g, w) <= rtol:
        return None
    if relative_error(-g, w) <= rtol:
        return f"{name} has the wrong sign everywhere."
    denom = float(np.vdot(w, w))
    if denom > 0:
        factor = float(np.vdot(g, w)) / denom
        if abs(factor) > 1e-12 and relative_error(g / factor, w) <= rtol:
            return f"{name} is off by a constant factor: it is {factor:.4g} times the right answer."
    return f"{name} differs from the reference (relative error {relative_error(g, w):.2g})."


def _close(got: Any, want: Any, rtol: float) -> bool:
    want = np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and bool(np.all(np.isfinite(got))) and relative_error(got, want) <= rtol


def diagnose(
    got: Any, want: Any, mistakes: Sequence[tuple[Any, str]] = (), name: str = "your answer", rtol: float = 1e-4
) -> str | None:
    """``None`` if ``got`` ≈ ``want``; else the message of the first known mistake that ``got`` equals,
    else ``compare_arrays``' description (shape, constant factor, sign, values).

    ``mistakes``: pairs (what a typical wrong answer gives, what to tell the learner).
    """
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{name} should be an array of numbers, got {type(got).__name__}."
    if _close(g, want, rtol):
        return None
    for wrong, message in mistakes:
        if _close(g, wrong, rtol):
            return message
    return compare_arrays(got, want, name, rtol)
