"""Identifiers from outside: visible ASCII only, so no two different byte strings look alike."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from govfleet.domain.identifiers import IDENTIFIER_PATTERN, Identifier, check_identifier


class _Body(BaseModel):
    user_id: Identifier


@pytest.mark.parametrize("value", ["bob", "user:42", "alice@example.org", "pi_3Mtw-BLkdIwHu7ix", "~!{}", "x" * 200])
def test_visible_ascii_is_an_identifier(value):
    assert check_identifier(value) == value
    assert _Body(user_id=value).user_id == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("bo\u200bb", "holds U+200B at position 2"),  # zero-width space: looks like "bob"
        ("b\u043eb", "holds U+043E 'о' at position 1"),  # Cyrillic o
        ("bob\n", "holds U+000A at position 3"),
        ("a\x00b", "holds U+0000 at position 1"),
        (" bob", "holds U+0020 at position 0"),
        ("", "must not be empty"),
        ("x" * 201, "201 characters long, at most 200"),
        (42, "must be a string, got int"),
    ],
)
def test_anything_else_is_refused_with_the_reason(value, problem):
    with pytest.raises(ValueError, match="user_id") as info:
        check_identifier(value, "user_id")
    assert problem in str(info.value)


def test_the_model_type_refuses_and_documents_the_rule():
    with pytest.raises(ValidationError, match="U\\+200B"):
        _Body(user_id="bo\u200bb")
    schema = _Body.model_json_schema()["properties"]["user_id"]
    assert (schema["pattern"], schema["minLength"], schema["maxLength"]) == (IDENTIFIER_PATTERN, 1, 200)
