"""Receipts (docs/receipt.md): generation against PostgreSQL, size at 10^6 entries, offline
verification, against the Ed25519 ceiling of the same run.

Run: ``python -m devstack exec -- .venv/bin/python -m bench.receipts`` (in ``make bench``).

- **Generation**: a fresh database (``<DATABASE_URL's name>_bench_receipts``), real ledger
  entries (intra-bank payments through the service), then ``--blocks`` blocks of
  ``--leaves`` observations each (the entries' commitments spread among other ledger-entry
  commitments), signed by 3 of 4 validators, with the block log and one mined anchor of it, all
  written as the consensus shell writes them. ``ledgers.receipts.entry_receipt`` is then timed
  (wall clock): first the first receipt of each block (which writes the block's tree once),
  then receipts of random entries.
- **Size**: the pure world of the tests at 100 blocks of 10,000 observations (10^6 leaves, every
  tree built for real), 4 and 7 validators; compact JSON as the API sends it.
- **Verification**: ``receipt_verify`` of that receipt, CPU time, next to the Ed25519 verify rate
  (six verifications per receipt: issuer, bank, party and three validators), each run from no
  remembered block-signature verdict, as a relying party checking one receipt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent


def _urls() -> tuple[str, str]:
    source = os.environ.get("DATABASE_URL")
    if not source:
        raise SystemExit("DATABASE_URL is not set: run under `make bench` (python -m devstack exec -- ...)")
    parts = urlsplit(source)
    name = f"{parts.path.lstrip('/') or 'parsec'}_bench_receipts"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{name}"))


def _database(admin: str, url: str, *, create: bool) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3,
        "count": len(ordered),
    }


def _entries(payments: int) -> list[Any]:
    """Real entries: two custodial parties paying each other through the service."""
    from ledgers import services
    from ledgers.models import LedgerEntry
    from settlement.counterparties.models import Counterparty, CustodialKeySet
    from settlement.keystore import seal_for_custody
    from settlement.protocol.signing import SigningKey

    eur = services.asset_create(code="EUR", decimals=2, actor="bench")
    ubis = []
    for name in ("alice", "bob"):
        key = SigningKey.generate()
        counterparty = Counterparty.objects.create(
            kind="person",
            legal_name=name.capitalize(),
            country="DE",
            federation_name=name,
            ed25519_public_key=key.public_key.hex(),
            x25519_public_key="00" * 32,
            ethereum_address="0x" + "00" * 20,
            custody="custodial",
            kyc_status="ACCEPTED",
        )
        sealed = seal_for_custody(key.seed)
        CustodialKeySet.objects.create(
            counterparty=counterparty, sealed_ed25519=sealed, sealed_x25519=sealed, sealed_ethereum=sealed
        )
        ledger = services.ledger_open(name=name, counterparty=counterparty, actor="bench")
        services.asset_issue(
            ledger=ledger, asset=eur, amount="1000000.00", reference="deposit", actor="bench"
        )
        ubis.append(ledger.ubi)
    for start in range(0, payments, 500):
        services.payment_intrabank_batch(
            requests=[
                services.PaymentRequest(
                    idempotency_key=f"bench-{number}",
                    sender=ubis[number % 2],
                    recipient=ubis[1 - number % 2],
                    asset=eur.uai,
                    amount="0.01",
                )
                for number in range(start, min(payments, start + 500))
            ],
            actor="bench",
        )
    return list(LedgerEntry.objects.select_related("ledger").order_by("pk"))


def _blocks(entries: list[Any], *, blocks: int, leaves: int, rng: random.Random) -> None:
    """Blocks as the consensus shell stores them, the entries' commitments among other leaves."""
    from consensus.models import Anchor, AnchorStatus, Block, BlockObservation
    from consensus.protocol.block import BLOCK_KIND
    from consensus.protocol.types import Payload, observation_bytes
    from ledgers.protocol.commitments import entry_commitment
    from ledgers.protocol.identifiers import LedgerId
    from settlement.keystore import node_signer
    from settlement.protocol.encoding import object_hash, sha256
    from settlement.protocol.merkle import MerkleLog, MerkleTree, leaf_hash
    from settlement.protocol.signing import SigningKey, sign

    validators = [node_signer().key, *(SigningKey.generate() for _ in range(3))]
    commitments = [
        observation_bytes(
            Payload(
                b"ledger-entry\n"
                + entry_commitment(LedgerId(row.ledger.ubi), row.height, bytes.fromhex(row.hash))
            )
        )
        for row in entries
    ]
    rng.shuffle(commitments)
    per_block = -(-len(commitments) // blocks)
    log = MerkleLog()
    previous = bytes(32)
    for height in range(blocks):
        ours = commitments[height * per_block : (height + 1) * per_block]
        filler = [
            observation_bytes(
                Payload(
                    b"ledger-entry\n"
                    + json.dumps(
                        {
                            "hash": hashlib.sha256(f"{height}/{i}".encode()).hexdigest(),
                            "height": i,
                            "ledger": "ubi:b:x",
                        },
                        separators=(",", ":"),
                        sort_keys=True,
                    ).encode()
                )
            )
            for i in range(leaves - len(ours))
        ]
        data = filler + ours
        rng.shuffle(data)
        tree = MerkleTree.from_entries(data)
        header = {
            "height": height,
            "previous": previous.hex(),
            "epoch": 0,
            "round": height + 1,
            "root": tree.root.hex(),
            "count": len(data),
        }
        block_hash = object_hash(BLOCK_KIND, header)
        log.append(leaf_hash(block_hash))
        row = Block.objects.create(
            height=height,
            block_hash=block_hash,
            previous_hash=previous,
            epoch=0,
            round=height + 1,
            merkle_root=tree.root,
            tree_size=len(data),
            signatures=[
                {
                    "validator": key.public_key.hex(),
                    "name": f"v{number}",
                    "signature": sign(key, BLOCK_KIND, header).hex(),
                }
                for number, key in enumerate(validators[:3])
            ],
            validators=[key.public_key.hex() for key in validators],
            log_root=log.root,
        )
        BlockObservation.objects.bulk_create(
            [
                BlockObservation(block=row, index=index, kind="ledger-entry", data=leaf, digest=sha256(leaf))
                for index, leaf in enumerate(data)
            ],
            batch_size=5_000,
        )
        previous = block_hash
    Anchor.objects.create(
        height=blocks - 1,
        log_root=log.root,
        account="0x" + "ab" * 20,
        status=AnchorStatus.FINAL,
        tx_hash="0x" + "cd" * 32,
        block_number=1_000,
        block_hash="0x" + "ef" * 32,
        log_index=0,
        confirmations=12,
    )


def _generation(entries: list[Any], *, blocks: int, samples: int, rng: random.Random) -> dict[str, Any]:
    from consensus.models import BlockObservation
    from ledgers.protocol.entries import encode_entry
    from ledgers.protocol.receipt import commitment_leaf
    from ledgers.receipts import entry_receipt
    from ledgers.services import signed_entry_of
    from settlement.protocol.encoding import sha256

    # The first receipt of each block writes the block's tree (once, ever).
    first_of_block: dict[int, Any] = {}
    for row in entries:
        leaf = commitment_leaf(encode_entry(signed_entry_of(row, row.ledger.ubi).entry))
        block_id = (
            BlockObservation.objects.filter(digest=sha256(leaf)).values_list("block_id", flat=True).first()
        )
        if block_id is not None:
            first_of_block.setdefault(block_id, row)
        if len(first_of_block) == blocks:
            break
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    round_trips = []
    for _ in range(300):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        round_trips.append(time.perf_counter() - start)
    cold = []
    for row in first_of_block.values():
        start = time.perf_counter()
        entry_receipt(ledger=row.ledger, height=row.height)
        cold.append(time.perf_counter() - start)
    warm, cpu = [], []
    sizes = []
    for row in rng.sample(entries, min(samples, len(entries))):
        start, start_cpu = time.perf_counter(), time.process_time()
        document = entry_receipt(ledger=row.ledger, height=row.height)
        warm.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        sizes.append(_encoded_size(document))
    with CaptureQueriesContext(connection) as queries:
        entry_receipt(ledger=entries[0].ledger, height=entries[0].height)
    # Then the node rotates its signing key: every entry was co-signed by the retired key, so each
    # receipt now takes the version 3 path (the self-check refuses the current key, the
    # hand-overs are read, the receipt is built again with them).
    from settlement.keystore import node_key_rotate
    from settlement.models import KeyPurpose

    node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="bench")
    rotated, rotated_cpu = [], []
    for row in rng.sample(entries, min(max(samples // 5, 1), len(entries))):
        start, start_cpu = time.perf_counter(), time.process_time()
        document = entry_receipt(ledger=row.ledger, height=row.height)
        rotated.append(time.perf_counter() - start)
        rotated_cpu.append(time.process_time() - start_cpu)
        assert "bank_keys" in document["entry"]
    with CaptureQueriesContext(connection) as rotated_queries:
        entry_receipt(ledger=entries[0].ledger, height=entries[0].height)
    # A second rotation: the first key hands over straight to the third ("Direct hand-overs"),
    # so the receipts of the same entries still carry one hand-over. Then, as the peer in the
    # same run, the same receipts with only the chain (what a node rotated by older code has):
    # the direct hand-overs removed and the kept ones forgotten.
    from settlement import keystore
    from settlement.models import NodeKeyHandover

    node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="bench, second")
    sample = rng.sample(entries, min(max(samples // 5, 1), len(entries)))

    def timed(expected_links: int) -> tuple[list[float], list[float], list[int]]:
        entry_receipt(ledger=sample[0].ledger, height=sample[0].height)  # reads the hand-overs once
        wall, cpu, sizes = [], [], []
        for row in sample:
            start, start_cpu = time.perf_counter(), time.process_time()
            document = entry_receipt(ledger=row.ledger, height=row.height)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert len(document["entry"]["bank_keys"]) == expected_links
            sizes.append(_encoded_size(document))
        return wall, cpu, sizes

    direct, direct_cpu, direct_sizes = timed(1)
    NodeKeyHandover.objects.all().delete()
    keystore.forget_opened_keys()
    chained, chained_cpu, chained_sizes = timed(2)
    return {
        "cold": _percentiles(cold),
        "warm": _percentiles(warm),
        "warm_cpu": _percentiles(cpu),
        "max_size": max(sizes),
        "round_trip": _percentiles(round_trips),
        "queries_per_receipt": len(queries),
        "rotated": _percentiles(rotated),
        "rotated_cpu": _percentiles(rotated_cpu),
        "queries_per_rotated_receipt": len(rotated_queries),
        "rotated_twice_direct": _percentiles(direct),
        "rotated_twice_direct_cpu": _percentiles(direct_cpu),
        "rotated_twice_direct_max_size": max(direct_sizes),
        "rotated_twice_chain": _percentiles(chained),
        "rotated_twice_chain_cpu": _percentiles(chained_cpu),
        "rotated_twice_chain_max_size": max(chained_sizes),
    }


def _profile(entries: list[Any], rng: random.Random) -> None:
    """Where receipts spend their time: each query's total, and the observation look-up's plan."""
    from collections import defaultdict

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ledgers.receipts import entry_receipt

    rows = rng.sample(entries, 200)
    for row in rows[:100]:  # every block's tree written
        entry_receipt(ledger=row.ledger, height=row.height)
    totals: dict[str, float] = defaultdict(float)
    with CaptureQueriesContext(connection) as queries:
        for row in rows[100:]:
            entry_receipt(ledger=row.ledger, height=row.height)
    for query in queries.captured_queries:
        totals[query["sql"][:90]] += float(query["time"])
    for sql, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{seconds * 10:8.2f} ms per receipt  {sql}")
    observation = next(
        query["sql"] for query in queries.captured_queries if "blockobservation" in query["sql"]
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + observation)
        print("\n".join(line for (line,) in cursor.fetchall()))


def _encoded_size(document: Any) -> int:
    """A receipt's size as the API serves it: compact JSON."""
    return len(json.dumps(document, separators=(",", ":")))


def _size_and_verification() -> dict[str, Any]:
    from bench.common import CPU_CLOCK, measure
    from consensus.protocol.receipt import forget_block_signature_verdicts
    from ledgers.protocol.receipt import receipt_verify
    from tests.ledgers.protocol.receipt_world import SECTIONS, build_world

    started = time.process_time()
    world = build_world(
        blocks=100, leaves_per_block=10_000, block_height=57, leaf_index=4_321, anchor_height=99
    )
    build_seconds = time.process_time() - started
    seven = build_world(
        blocks=100,
        leaves_per_block=10_000,
        block_height=57,
        leaf_index=4_321,
        anchor_height=99,
        validators=7,
        signers=5,
    )
    # A message signed as one of a batch of 1,000 (the batch path adds 10 hashes): its receipt
    # with the message section, at 10^6 ledger entries (10^9 messages in such batches) and at
    # 10^6 messages (1,000 batch entries: one block of 1,000 observations, no other blocks).
    batched = build_world(
        blocks=100,
        leaves_per_block=10_000,
        block_height=57,
        leaf_index=4_321,
        anchor_height=99,
        message=True,
        batch_size=1_000,
        batch_index=617,
        party_signs=False,
    )
    batched_million_messages = build_world(
        blocks=1,
        leaves_per_block=1_000,
        block_height=0,
        leaf_index=321,
        anchor_height=0,
        message=True,
        batch_size=1_000,
        batch_index=617,
        party_signs=False,
    )
    # Receipt version 3: the entry co-signed with a key the bank has since rotated (once, twice):
    # the receipt carries each retired key and its hand-over (96 bytes) to the next.
    at_a_million: dict[str, Any] = {
        "blocks": 100,
        "leaves_per_block": 10_000,
        "block_height": 57,
        "leaf_index": 4_321,
        "anchor_height": 99,
    }
    batch: dict[str, Any] = {"message": True, "batch_size": 1_000, "batch_index": 617, "party_signs": False}
    rotated = build_world(**at_a_million, rotations=1)
    batched_rotated = build_world(**at_a_million, **batch, rotations=1)
    batched_rotated_twice = build_world(**at_a_million, **batch, rotations=2)
    # ... or, since direct hand-overs, the co-signing key's one hand-over straight to the issuer's.
    rotated_twice = build_world(**at_a_million, rotations=2)
    rotated_twice_direct = build_world(**at_a_million, rotations=2, direct_handover=True)
    batched_rotated_twice_direct = build_world(**at_a_million, **batch, rotations=2, direct_handover=True)
    assert receipt_verify(batched_rotated_twice_direct.document, sections=SECTIONS).ok
    assert receipt_verify(world.document).ok
    assert receipt_verify(batched.document, sections=SECTIONS).ok
    assert receipt_verify(batched_rotated.document, sections=SECTIONS).ok

    # A relying party verifies one receipt: the block signatures' verdicts a node remembers
    # across receipts of a block (consensus.protocol.receipt) are forgotten before each run.
    def cold(document: dict[str, Any], sections: tuple[Any, ...] = ()) -> Callable[[], object]:
        def verify() -> object:
            forget_block_signature_verdicts()
            return receipt_verify(document, sections=sections)

        return verify

    verification = measure("receipt_verify", cold(world.document), seconds=2.0, clock=CPU_CLOCK)
    batched_verification = measure(
        "receipt_verify message of a batch",
        cold(batched.document, SECTIONS),
        seconds=2.0,
        clock=CPU_CLOCK,
    )
    return {
        "size_4_validators": _encoded_size(world.document),
        "size_7_validators": _encoded_size(seven.document),
        "size_batched_message": _encoded_size(batched.document),
        "size_batched_message_10_6_messages": _encoded_size(batched_million_messages.document),
        "size_rotated": _encoded_size(rotated.document),
        "size_batched_message_rotated": _encoded_size(batched_rotated.document),
        "size_batched_message_rotated_twice": _encoded_size(batched_rotated_twice.document),
        "size_rotated_twice": _encoded_size(rotated_twice.document),
        "size_rotated_twice_direct": _encoded_size(rotated_twice_direct.document),
        "size_batched_message_rotated_twice_direct": _encoded_size(batched_rotated_twice_direct.document),
        "build_seconds": build_seconds,
        "verify": verification,
        "verify_rotated": measure(
            "receipt_verify co-signed before a rotation", cold(rotated.document), seconds=2.0, clock=CPU_CLOCK
        ),
        "verify_batched_message": batched_verification,
        "verify_rotated_twice": measure(
            "receipt_verify co-signed two rotations ago, chain",
            cold(rotated_twice.document),
            seconds=2.0,
            clock=CPU_CLOCK,
        ),
        "verify_rotated_twice_direct": measure(
            "receipt_verify co-signed two rotations ago, direct",
            cold(rotated_twice_direct.document),
            seconds=2.0,
            clock=CPU_CLOCK,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=1_000, help="payments (two entries each)")
    parser.add_argument("--blocks", type=int, default=20, help="blocks the entries are spread over")
    parser.add_argument("--leaves", type=int, default=10_000, help="observations per block")
    parser.add_argument("--samples", type=int, default=1_000, help="receipts to time")
    parser.add_argument("--profile", action="store_true", help="print where 200 receipts spend their time")
    arguments = parser.parse_args(argv)
    os.environ.setdefault("NODE_KEY_PASSPHRASE", "bench-only-passphrase")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    admin, url = _urls()
    os.environ.update(
        {"DATABASE_URL": url, "NODE_NAME": "bench-a", "NODE_DOMAIN": "bench-a.test", "LOG_LEVEL": "WARNING"}
    )
    _database(admin, url, create=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench.ceilings import measure_ceilings
    from bench.common import print_table, write_results
    from settlement.keystore import node_identity_ensure

    rng = random.Random(7)
    try:
        call_command("migrate", verbosity=0)
        node_identity_ensure()
        entries = _entries(arguments.payments)
        _blocks(entries, blocks=arguments.blocks, leaves=arguments.leaves, rng=rng)
        with connections["default"].cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk load
        if arguments.profile:
            _profile(entries, rng)
        generation = _generation(entries, blocks=arguments.blocks, samples=arguments.samples, rng=rng)
    finally:
        connections.close_all()
        _database(admin, url, create=False)
    pure = _size_and_verification()
    ceilings = measure_ceilings(0.5)
    verify_floor_ms = 6 / ceilings["ed25519_verify"] * 1e3
    verify = pure["verify"]
    observations = arguments.blocks * arguments.leaves
    rows = [
        {
            "measure": f"generation, first receipt of a block ({arguments.leaves:,} leaves)",
            "p50": f"{generation['cold']['p50_ms']:.2f} ms",
            "p99": f"{generation['cold']['p99_ms']:.2f} ms",
            "goal": "-",
            "note": "writes the block's tree once",
        },
        {
            "measure": f"generation, {generation['warm']['count']} random entries ({observations:,} observations)",
            "p50": f"{generation['warm']['p50_ms']:.2f} ms",
            "p99": f"{generation['warm']['p99_ms']:.2f} ms",
            "goal": "p50 < 5 ms",
            "note": f"largest {generation['max_size']:,} B; {generation['queries_per_receipt']} queries each",
        },
        {
            "measure": "generation, CPU time of this process for the same receipts",
            "p50": f"{generation['warm_cpu']['p50_ms']:.2f} ms",
            "p99": f"{generation['warm_cpu']['p99_ms']:.2f} ms",
            "goal": "-",
            "note": "the rest is waiting for PostgreSQL",
        },
        {
            "measure": f"generation after a key rotation, {generation['rotated']['count']} entries co-signed before it",
            "p50": f"{generation['rotated']['p50_ms']:.2f} ms",
            "p99": f"{generation['rotated']['p99_ms']:.2f} ms",
            "goal": "p50 < 5 ms",
            "note": f"CPU p50 {generation['rotated_cpu']['p50_ms']:.2f} ms; "
            f"{generation['queries_per_rotated_receipt']} queries each",
        },
        {
            "measure": f"generation two rotations later, direct hand-over ({generation['rotated_twice_direct']['count']} entries)",
            "p50": f"{generation['rotated_twice_direct']['p50_ms']:.2f} ms",
            "p99": f"{generation['rotated_twice_direct']['p99_ms']:.2f} ms",
            "goal": "p50 < 5 ms",
            "note": f"CPU p50 {generation['rotated_twice_direct_cpu']['p50_ms']:.2f} ms; "
            f"largest {generation['rotated_twice_direct_max_size']:,} B",
        },
        {
            "measure": "peer: the same receipts with the two-link chain (no direct hand-overs)",
            "p50": f"{generation['rotated_twice_chain']['p50_ms']:.2f} ms",
            "p99": f"{generation['rotated_twice_chain']['p99_ms']:.2f} ms",
            "goal": "-",
            "note": f"CPU p50 {generation['rotated_twice_chain_cpu']['p50_ms']:.2f} ms; "
            f"largest {generation['rotated_twice_chain_max_size']:,} B",
        },
        {
            "measure": "peer: one PostgreSQL round trip (SELECT 1), same run",
            "p50": f"{generation['round_trip']['p50_ms']:.2f} ms",
            "p99": f"{generation['round_trip']['p99_ms']:.2f} ms",
            "goal": "-",
            "note": "what each query of a receipt costs at least",
        },
        {
            "measure": "size at 10^6 entries (100 blocks x 10,000), 4 validators",
            "p50": f"{pure['size_4_validators']:,} B",
            "p99": "",
            "goal": "< 4,096 B",
            "note": f"7 validators: {pure['size_7_validators']:,} B",
        },
        {
            "measure": "size, co-signed before a key rotation, at 10^6 entries",
            "p50": f"{pure['size_rotated']:,} B",
            "p99": "",
            "goal": "< 4,096 B",
            "note": "receipt version 3: the retired key and its hand-over",
        },
        {
            "measure": "size, a message of a batch of 1,000, at 10^6 entries",
            "p50": f"{pure['size_batched_message']:,} B",
            "p99": "",
            "goal": "< 4,096 B",
            "note": f"at 10^6 messages (1,000 batch entries): {pure['size_batched_message_10_6_messages']:,} B",
        },
        {
            "measure": "size, that message co-signed before a key rotation",
            "p50": f"{pure['size_batched_message_rotated']:,} B",
            "p99": "",
            "goal": "< 4,096 B",
            "note": "one hand-over",
        },
        {
            "measure": "size, co-signed two rotations before, at 10^6 entries: direct hand-over",
            "p50": f"{pure['size_rotated_twice_direct']:,} B",
            "p99": "",
            "goal": "< 4,096 B",
            "note": f"the chain of two: {pure['size_rotated_twice']:,} B",
        },
        {
            "measure": "size, that message co-signed two rotations before: direct hand-over",
            "p50": f"{pure['size_batched_message_rotated_twice_direct']:,} B",
            "p99": "",
            "goal": "< 4,096 B",
            "note": f"the chain of two: {pure['size_batched_message_rotated_twice']:,} B",
        },
        {
            "measure": "offline verification of that message receipt (CPU)",
            "p50": f"{pure['verify_batched_message'].p50_us / 1e3:.2f} ms",
            "p99": f"{pure['verify_batched_message'].p99_us / 1e3:.2f} ms",
            "goal": "< 10 ms",
            "note": "6 Ed25519 verifies: issuer, bank, batch signature, 3 validators",
        },
        {
            "measure": "offline verification (receipt_verify, CPU)",
            "p50": f"{verify.p50_us / 1e3:.2f} ms",
            "p99": f"{verify.p99_us / 1e3:.2f} ms",
            "goal": "< 10 ms",
            "note": f"6 Ed25519 verifies at this run's ceiling: {verify_floor_ms:.2f} ms",
        },
        {
            "measure": "offline verification, co-signed before a rotation (CPU)",
            "p50": f"{pure['verify_rotated'].p50_us / 1e3:.2f} ms",
            "p99": f"{pure['verify_rotated'].p99_us / 1e3:.2f} ms",
            "goal": "< 10 ms",
            "note": "7 Ed25519 verifies: the hand-over too",
        },
        {
            "measure": "offline verification, two rotations before, direct hand-over (CPU)",
            "p50": f"{pure['verify_rotated_twice_direct'].p50_us / 1e3:.2f} ms",
            "p99": f"{pure['verify_rotated_twice_direct'].p99_us / 1e3:.2f} ms",
            "goal": "< 10 ms",
            "note": f"7 Ed25519 verifies; the chain of two (8): "
            f"{pure['verify_rotated_twice'].p50_us / 1e3:.2f} ms",
        },
    ]
    print_table(
        f"Receipts (load average {os.getloadavg()[0]:.1f}; Ed25519 verify ceiling "
        f"{ceilings['ed25519_verify']:,.0f}/s in this run)",
        rows,
        ["measure", "p50", "p99", "goal", "note"],
    )
    write_results(
        "receipts",
        {
            "generation": generation,
            "size": {key: value for key, value in pure.items() if not key.startswith("verify")},
            "verify_batched_message": pure["verify_batched_message"],
            "verify_rotated": pure["verify_rotated"],
            "verify_rotated_twice": pure["verify_rotated_twice"],
            "verify_rotated_twice_direct": pure["verify_rotated_twice_direct"],
            "verify": verify,
            "ceilings": ceilings,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
