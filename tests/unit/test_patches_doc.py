"""Every `workflow.patched(...)` / `workflow.deprecate_patch(...)` id in the workflow code is
listed in docs/patches.md with its retirement plan."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PATCH_CALLS = {"patched", "deprecate_patch"}


def patch_ids(path: Path) -> set[str]:
    """The ids passed to patch calls in one module (string literals or module-level constants)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PATCH_CALLS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                found.add(constants[arg.id])
            else:
                raise AssertionError(f"{path.name}:{node.lineno}: patch id is not a literal or a module constant")
    return found


def test_every_patch_id_is_in_docs_patches():
    code = (REPO_ROOT / "workflows").rglob("*.py")
    ids = set().union(*(patch_ids(p) for p in code))
    assert ids, "no workflow.patched call found: the scan is broken or docs/patches.md is out of date"
    doc = (REPO_ROOT / "docs" / "patches.md").read_text(encoding="utf-8")
    missing = sorted(i for i in ids if f"`{i}`" not in doc)
    assert not missing, f"patch ids not in docs/patches.md: {missing}"
