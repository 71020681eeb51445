"""Errors every part of the fleet raises for the operator, importable without importing
anything else (the command line checks for them without loading what could raise them)."""

from __future__ import annotations


class StartupError(RuntimeError):
    """A fail-fast condition: the process must not start (or a command cannot reach what it
    needs). The message is one line that says what is wrong and how to fix it."""
