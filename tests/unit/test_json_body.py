"""Strict JSON bodies: depth checked before decoding, duplicate keys, NUL and lone surrogates refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from govfleet.api.body import json_depth_exceeds, parse_json
from govfleet.api.errors import ApiError


def test_a_plain_object_parses():
    assert parse_json(b'{"a": [1, {"b": "\\u00e9"}], "c": null}') == {"a": [1, {"b": "é"}], "c": None}


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400, "body_too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, 400, "body_too_deep"),
        (b"\xff\xfe{}", 400, "invalid_json"),
        (b'{"a": 1', 400, "invalid_json"),
        (b'{"a": 1, "a": 2}', 422, "duplicate_key"),
        (b'{"a": "x\\u0000y"}', 422, "invalid_text"),
        (b'{"a": "\\ud800"}', 422, "invalid_text"),
        (b'{"\\udfff": 1}', 422, "invalid_text"),
    ],
)
def test_refused_bodies_name_the_problem(raw, status, code):
    with pytest.raises(ApiError) as err:
        parse_json(raw)
    assert (err.value.status, err.value.code) == (status, code)
    assert len(err.value.message) < 200


def test_brackets_inside_strings_do_not_count_as_depth():
    raw = b'{"a": "' + b"[" * 1000 + b'"}'
    assert not json_depth_exceeds(raw, 32)
    assert parse_json(raw) == {"a": "[" * 1000}
    assert json_depth_exceeds(b'["\\"", ' + b"[" * 40 + b"]" * 40 + b"]", 32)


def test_an_unterminated_string_costs_linear_time():
    # A quadratic string pattern takes seconds on this input; the possessive one is instant.
    raw = b'["' + b'\\"' * 200_000 + b"[" * 50
    assert json_depth_exceeds(raw, 32) is False


def test_importing_the_signature_code_keeps_deep_json_harmless():
    """eth-account raises the recursion limit to 100000, where the C decoder segfaults on deep input."""
    code = (
        "import sys, json, govfleet.domain.admin_auth\n"
        "assert sys.getrecursionlimit() < 10000, sys.getrecursionlimit()\n"
        "try:\n    json.loads('[' * 100000 + ']' * 100000)\nexcept RecursionError:\n    print('refused')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "refused"
