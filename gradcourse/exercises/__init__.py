"""Self-check homework, one module per notebook (``nb01`` ... ``nb10``).

Use in a notebook::

    from gradcourse.exercises import nb02 as ex
    ex.q1.check(my_answer)   # says what is right or wrong, in words
    ex.q1.hint()             # ex.q1.hint(2) for a stronger one
    ex.q1.solution()
    ex.sheet.summary()       # what is left
"""
from ._core import CORRECT, INCORRECT, NOT_ATTEMPTED, Exercise, Feedback, NotAttempted, Sheet, compare_arrays, diagnose, relative_error

__all__ = ["CORRECT", "INCORRECT", "NOT_ATTEMPTED", "Exercise", "Feedback", "NotAttempted", "Sheet", "compare_arrays", "diagnose", "relative_error"]
