"""This machine's ceilings: what one core does per second with the primitives Parsec is built on.

Later benchmarks import :func:`measure_ceilings` and report their figures as ratios to these
(a gossip round cannot beat the Ed25519 verify rate it needs, a channel update cannot beat
secp256k1 signing). Run: ``python -m bench.ceilings [--seconds 0.5]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os

import coincurve
import nacl.signing
from eth_hash.auto import keccak

from bench.common import CPU_CLOCK, Measurement, measure, print_table, write_results

# The operations measured, in the order of the table. Names are stable: other benchmarks
# and the README refer to them.
CEILING_NAMES = (
    "ed25519_sign",
    "ed25519_verify",
    "secp256k1_sign_recoverable",
    "secp256k1_recover",
    "sha256_32B",
    "sha256_1KiB",
    "keccak256_32B",
)


def _keccak_backend() -> str:
    # eth_hash prefers pysha3 ("sha3") when it is installed, else pycryptodome.
    return "pysha3 backend" if importlib.util.find_spec("sha3") else "pycryptodome backend"


def ceiling_measurements(seconds_per_item: float = 0.5) -> list[Measurement]:
    """Measure each primitive on one core (this thread) for about ``seconds_per_item``."""
    # A typical signed object is a few hundred bytes of canonical JSON.
    message = os.urandom(256)
    ed_key = nacl.signing.SigningKey.generate()
    ed_signature = ed_key.sign(message).signature
    ed_verify_key = ed_key.verify_key

    digest = hashlib.sha256(message).digest()
    secp_key = coincurve.PrivateKey()
    secp_signature = secp_key.sign_recoverable(digest, hasher=None)

    small = os.urandom(32)
    kibibyte = os.urandom(1024)
    sha256 = hashlib.sha256

    operations = {
        "ed25519_sign": lambda: ed_key.sign(message),
        "ed25519_verify": lambda: ed_verify_key.verify(message, ed_signature),
        "secp256k1_sign_recoverable": lambda: secp_key.sign_recoverable(digest, hasher=None),
        "secp256k1_recover": lambda: coincurve.PublicKey.from_signature_and_message(
            secp_signature, digest, hasher=None
        ),
        "sha256_32B": lambda: sha256(small).digest(),
        "sha256_1KiB": lambda: sha256(kibibyte).digest(),
        "keccak256_32B": lambda: keccak(small),
    }
    details = {
        "ed25519_sign": "PyNaCl, 256-byte message",
        "ed25519_verify": "PyNaCl, 256-byte message",
        "secp256k1_sign_recoverable": "coincurve, 32-byte digest",
        "secp256k1_recover": "coincurve, 32-byte digest",
        "sha256_32B": "hashlib (OpenSSL)",
        "sha256_1KiB": "hashlib (OpenSSL)",
        "keccak256_32B": f"eth_hash ({_keccak_backend()})",
    }
    return [
        measure(
            name, operations[name], seconds=seconds_per_item, clock=CPU_CLOCK, extra={"what": details[name]}
        )
        for name in CEILING_NAMES
    ]


def ceiling_rate(item: Measurement) -> float:
    """Operations per second at the median per-call CPU time: what one core sustains."""
    return 1e6 / item.p50_us


def measure_ceilings(seconds_per_item: float = 0.5) -> dict[str, float]:
    """Operations per second for each name in :data:`CEILING_NAMES` (CPU time, one core)."""
    return {item.name: ceiling_rate(item) for item in ceiling_measurements(seconds_per_item)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per primitive (default 0.5)")
    arguments = parser.parse_args(argv)
    measurements = ceiling_measurements(arguments.seconds)
    print_table(
        "Ceilings (one core; CPU time of this process, median per call)",
        [
            {
                "operation": item.name,
                "ops/s": ceiling_rate(item),
                "p50 us": item.p50_us,
                "p99 us": item.p99_us,
                "with": item.extra["what"],
            }
            for item in measurements
        ],
        ["operation", "ops/s", "p50 us", "p99 us", "with"],
    )
    path = write_results(
        "ceilings",
        {
            item.name: {**item.as_dict(), "ceiling_ops_per_second": ceiling_rate(item)}
            for item in measurements
        },
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
