"""Benchmarks. Each module exposes `run(quick: bool) -> dict` and prints its own table when run
as `python -m bench.<name>`; `govfleet bench` runs them all and writes bench/results.json."""
