"""Bounded text: whatever arrives from outside is quoted in a message, an audit row or the
guardian's state only as a short excerpt, so no input can grow what the guardian keeps
(docs/security.md, "Bounded state")."""

from __future__ import annotations

QUOTE_LIMIT = 40  # characters of a quoted value
DETAILS_LIMIT = 600  # characters of an audit event's details or a message kept in state


def clip(text: str, limit: int = DETAILS_LIMIT) -> str:
    """`text`, cut to at most `limit` characters with a note of how long it was."""
    if len(text) <= limit:
        return text
    note = f"… ({len(text)} characters)"
    return text[: max(0, limit - len(note))] + note


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A value for a message: its repr, cut to `limit` characters with a note of its length.
    Never formats more of the value than it shows (a 60 KB string or a 10,000-digit integer
    costs no more than a short one)."""
    if isinstance(value, str):
        head = value[: limit + 1]
        text = repr(head)
        if len(value) > limit:
            return repr(value[: max(1, limit - 2)]) + f"… ({len(value)} characters)"
        return text
    if isinstance(value, int) and not isinstance(value, bool):
        digits = value.bit_length() * 30103 // 100000 + 1  # about the number of decimal digits
        if digits > limit:
            return f"<an integer of about {digits} digits>"
    try:
        text = repr(value)
    except ValueError:  # e.g. an integer past the interpreter's digit limit
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: max(1, limit - 1)] + f"… ({len(text)} characters)"
