"""What every benchmark prints and writes."""

from __future__ import annotations

import json
from pathlib import Path


def print_table(figures: dict) -> None:
    """Figures as a two-column table (nested dicts flattened with dots)."""
    rows: dict = {}

    def flatten(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            rows[prefix] = value

    flatten("", figures)
    width = max((len(k) for k in rows), default=6)
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")


def write_json(figures: dict, path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, default=str))


def fill_defaults(args, **defaults: tuple[object, object]) -> None:
    """Set each option the command line left at None to its (quick, full) default, by `args.quick`."""
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
