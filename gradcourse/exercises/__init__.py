"""Self-check homework (presentation layer), one module per notebook (``nb01`` ... ``nb10``) on one framework.

Use in a notebook::

    from gradcourse.exercises import nb02 as ex
    ex.q1.check(my_answer)   # says what is right or wrong, in words
    ex.q1.hint()             # ex.q1.hint(2) for a stronger one
    ex.q1.solution()
    ex.sheet.summary()       # what is left

The framework (exercise kinds, the not-attempted rule, the time limit) is in ``_core``; see its docstring.
"""
from ._core import (
    CHECKER_ERROR,
    CORRECT,
    INCORRECT,
    NOT_ATTEMPTED,
    TIME_LIMIT,
    ArrayExercise,
    Exercise,
    Feedback,
    FunctionExercise,
    NotAttempted,
    Sheet,
    ValueExercise,
    Wrong,
    all_sheets,
    compare_arrays,
    diagnose,
    relative_error,
    reset_all,
    set_time_limit,
)

__all__ = [
    "CHECKER_ERROR", "CORRECT", "INCORRECT", "NOT_ATTEMPTED", "TIME_LIMIT", "ArrayExercise", "Exercise", "Feedback",
    "FunctionExercise", "NotAttempted", "Sheet", "ValueExercise", "Wrong", "all_sheets", "compare_arrays", "diagnose",
    "relative_error", "reset_all", "set_time_limit",
]
