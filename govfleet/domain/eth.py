"""eth-account, imported once, with the interpreter's recursion limit put back.

eth-account imports py_ecc, which raises ``sys.setrecursionlimit`` to 100000. With that limit
CPython's C JSON decoder overflows the C stack on a deeply nested document before Python's own
recursion check fires, and the whole process dies. Every module of ours imports eth-account
through this one, so the limit stays what the interpreter chose.
"""

from __future__ import annotations

import sys

_limit = sys.getrecursionlimit()

from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct, encode_typed_data  # noqa: E402

sys.setrecursionlimit(_limit)

__all__ = ["Account", "encode_defunct", "encode_typed_data"]
