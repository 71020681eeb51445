"""Workflows orchestrate and never do I/O; every side effect is an activity."""
