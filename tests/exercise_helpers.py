"""Shared by the tests/test_exercises_nbNN.py files."""
from gradcourse.exercises import INCORRECT


def body(feedback) -> str:
    """The feedback text of an answer that must be judged incorrect."""
    assert feedback.status == INCORRECT, feedback
    return feedback.body
