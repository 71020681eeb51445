"""One contract module per workflow: its type name as registered with Temporal, its id scheme,
its signal / update / query names, its input and result, the payloads of its handlers and of
the activities it calls (and their registered names, for workers and for tests that replace
an activity by name). Workflows, their clients (API, CLI, reconciler) and tests import them.

Pure: pydantic, the standard library and `govfleet.domain` only, so workflows may import them
in the sandbox. Payloads travel as JSON, so a model's fields are its contract: renaming or
retyping one changes what running workflows and saved histories carry.
"""
