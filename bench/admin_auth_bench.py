"""Admin authorization cost: signing, recovering one EIP-712 signature, verifying one signature or
a two-admin quorum (the work the API and then the guardian do for each admin action), rejecting a
foreign one (what a forged request costs), plus the webhook HMAC.

The baseline, measured in the same run on the same digests: eth-keys' pure-Python secp256k1
recovery, which is what verification cost without libsecp256k1 (coincurve). Target: one recovery
at most 1 ms.

Pure CPU, no servers. Keys are the public Hardhat development accounts 0 and 1 (demo only).

    python -m bench.admin_auth_bench [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime, timedelta

from eth_keys.backends.native.ecdsa import ecdsa_raw_recover

from bench._common import print_table, write_json
from govfleet.domain.admin_auth import verify_admin_action
from govfleet.domain.admin_signing import (
    SigningDomain,
    recover_digest_signer,
    sign_authorization,
    signing_digest,
    typed_data,
)
from govfleet.domain.webhook_signature import canonical_body, sign_body

KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0 (public, demo only)
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1 (public, demo only)
ADMINS = ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"]
GUARDIAN = "governance-guardian"
DOMAIN = SigningDomain(
    name="cogni-demo", chain_id=8453, verifying_contract="0x5fbdb2315678afecb367f032d93f642f64180aa3"
)


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
            key,
            domain=DOMAIN,
            action="resume",
            guardian_id=GUARDIAN,
            reason="",
            expires_at=exp,
            nonce=f"bench-{key[-4:]}-{i:06d}",
        )

    sign_ms = _timed(sign, n)
    one = [sign(i) for i in range(n)]
    pairs = [[sign(i), sign(i, KEY1)] for i in range(n)]
    digests = [
        signing_digest(
            typed_data(DOMAIN, action="resume", guardian_id=GUARDIAN, reason="", nonce=t.split(".")[0], expires_at=exp)
        )
        for t in one
    ]
    sigs = [bytes.fromhex(t.split(".")[2][2:]) for t in one]

    def recover(i: int) -> None:
        recover_digest_signer(digests[i], sigs[i])

    def recover_native(i: int) -> None:  # the baseline: eth-keys' pure-Python backend
        sig = sigs[i]
        ecdsa_raw_recover(
            digests[i], (sig[64] - 27, int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"))
        )

    def verify(tokens: list[str], quorum: int = 1, reason: str = "") -> None:
        verify_admin_action(
            tokens,
            domain=DOMAIN,
            action="resume",
            guardian_id=GUARDIAN,
            reason=reason,
            now=now,
            admins=ADMINS,
            quorum=quorum,
        )

    def verify_foreign(i: int) -> None:  # a token for another reason: a full recovery, then rejected
        try:
            verify([one[i]], reason="x")
        except ValueError:
            return
        raise AssertionError("a foreign token verified")

    recover_ms = _timed(recover, n)
    native_ms = _timed(recover_native, max(10, n // 10))
    one_ms = _timed(lambda i: verify([one[i]]), n)
    quorum_ms = _timed(lambda i: verify(pairs[i], quorum=2), n)
    foreign_ms = _timed(verify_foreign, n)
    body = canonical_body({"idempotency_key": "k", "body": "x" * 400, "data": {"holder_control": 50.8}})
    hmac_us = [v * 1000 for v in _timed(lambda i: sign_body("secret", body), n * 10)]
    recover_p50 = statistics.median(recover_ms)
    native_p50 = statistics.median(native_ms)
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "samples": n,
        "sign_ms_p50": round(statistics.median(sign_ms), 3),
        "recover_ms_p50": round(recover_p50, 3),
        "recover_ms_p99": round(_pct(recover_ms, 0.99), 3),
        "recover_pure_python_ms_p50": round(native_p50, 3),
        "recover_speedup_vs_pure_python": round(native_p50 / recover_p50, 1),
        "recover_within_1_ms": recover_p50 <= 1.0,
        "verify_1_sig_ms_p50": round(statistics.median(one_ms), 3),
        "verify_1_sig_ms_p99": round(_pct(one_ms, 0.99), 3),
        "verify_quorum_2_ms_p50": round(statistics.median(quorum_ms), 3),
        "verify_quorum_2_ms_p99": round(_pct(quorum_ms, 0.99), 3),
        "reject_foreign_ms_p50": round(statistics.median(foreign_ms), 3),
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
