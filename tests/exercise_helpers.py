"""Shared by the exercise tests: the state-resetting fixture and the feedback of an incorrect answer."""
import pytest

from gradcourse.exercises import INCORRECT, reset_all


def body(feedback) -> str:
    """The feedback text of an answer that must be judged incorrect."""
    assert feedback.status == INCORRECT, feedback
    return feedback.body


@pytest.fixture(autouse=True)
def fresh_exercises():
    """Every exercise starts (and ends) not attempted, so no test sees another's checks in a summary."""
    reset_all()
    yield
    reset_all()
