"""Temporal Schedules reconciled from `.cogni/repo-spec.yaml`."""
