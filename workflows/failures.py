"""What a workflow says when an activity failed: the innermost cause's message."""

from __future__ import annotations


def cause_message(err: BaseException) -> str:
    """The message of the innermost cause of `err` (for an `ActivityError`, the activity's own
    error), or its type name when it has none."""
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err) or type(err).__name__
