"""Admin authorization cost: signing, and verifying one signature or a two-admin quorum
(the work a guardian does inside its workflow for each admin action), plus the webhook HMAC.

Pure CPU, no servers. Keys are the public Hardhat development accounts 0 and 1 (demo only).

    python -m bench.admin_auth_bench [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench._common import print_table, write_json
from govfleet.domain.admin_auth import sign_authorization, verify_admin_action
from govfleet.domain.webhook_signature import canonical_body, sign_body

KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0 (public, demo only)
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1 (public, demo only)
ADMINS = ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"]
GUARDIAN = "governance-guardian"


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def run(quick: bool) -> dict:
    n = 30 if quick else 300
    now = datetime.now(UTC)
    exp = now + timedelta(seconds=600)

    def sign(i: int, key: str = KEY0) -> str:
        return sign_authorization(
            key, action="resume", guardian_id=GUARDIAN, reason="", expires_at=exp, nonce=f"bench-{key[-4:]}-{i:06d}"
        )

    sign_ms = _timed(sign, n)
    one = [sign(i) for i in range(n)]
    pairs = [[sign(i), sign(i, KEY1)] for i in range(n)]

    def verify_one(i: int) -> None:
        verify_admin_action(
            [one[i]], action="resume", guardian_id=GUARDIAN, reason="", now=now, admins=ADMINS, used_nonces=frozenset()
        )

    def verify_quorum(i: int) -> None:
        verify_admin_action(
            pairs[i],
            action="resume",
            guardian_id=GUARDIAN,
            reason="",
            now=now,
            admins=ADMINS,
            used_nonces=frozenset(),
            quorum=2,
        )

    def verify_foreign(i: int) -> None:  # a token for another reason: a full recovery, then rejected
        try:
            verify_admin_action(
                [one[i]],
                action="resume",
                guardian_id=GUARDIAN,
                reason="x",
                now=now,
                admins=ADMINS,
                used_nonces=frozenset(),
            )
        except ValueError:
            return
        raise AssertionError("a foreign token verified")

    one_ms = _timed(verify_one, n)
    quorum_ms = _timed(verify_quorum, n)
    foreign_ms = _timed(verify_foreign, n)
    body = canonical_body({"idempotency_key": "k", "body": "x" * 400, "data": {"holder_control": 50.8}})
    hmac_us = [v * 1000 for v in _timed(lambda i: sign_body("secret", body), n * 10)]
    return {
        "samples": n,
        "sign_ms_p50": round(statistics.median(sign_ms), 2),
        "verify_1_sig_ms_p50": round(statistics.median(one_ms), 2),
        "verify_1_sig_ms_p99": round(_pct(one_ms, 0.99), 2),
        "verify_quorum_2_ms_p50": round(statistics.median(quorum_ms), 2),
        "verify_quorum_2_ms_p99": round(_pct(quorum_ms, 0.99), 2),
        "reject_foreign_ms_p50": round(statistics.median(foreign_ms), 2),
        "webhook_hmac_us_p50": round(statistics.median(hmac_us), 2),
        "verifications_per_second": round(1000 / statistics.median(one_ms), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="30 samples instead of 300")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    figures = run(args.quick)
    print_table(figures)
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
