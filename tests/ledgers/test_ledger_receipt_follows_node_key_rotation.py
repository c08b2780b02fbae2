"""The node's signing key is opened once per process and kept, yet a receipt is always signed by
the key that is current in the database: a rotation made by another process is followed by the
very next receipt, with no restart and no extra query (a receipt reads which key is current in
the same query as its entry)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consensus.models import Block, BlockObservation
from consensus.protocol.block import BLOCK_KIND
from ledgers import services
from ledgers.models import Asset, LedgerEntry
from ledgers.protocol.entries import encode_entry
from ledgers.protocol.receipt import Trust, commitment_leaf, receipt_verify
from ledgers.receipts import entry_receipt
from settlement import keystore
from settlement.models import KeyPurpose, NodeKey
from settlement.protocol.encoding import object_hash, sha256
from settlement.protocol.merkle import MerkleTree
from settlement.protocol.signing import SigningKey, sign
from tests.ledgers.ledger_shell_support import Party
from tests.support import database_url_for_processes

# Another process rotates the key: it must see this test's rows, so they are committed.
pytestmark = pytest.mark.django_db(transaction=True)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _in_another_process(code: str) -> None:
    """Run ``code`` in a fresh Django process on this test's database (another web process, or
    the operator's dashboard there): nothing it does reaches this process's memory."""
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "manage.py"), "shell", "-c", code],
        env={**os.environ, "DATABASE_URL": database_url_for_processes()},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


ROTATE = (
    "from settlement.keystore import node_key_rotate; from settlement.models import KeyPurpose; "
    "node_key_rotate(purpose=KeyPurpose.SIGNING, actor='test', reason='scheduled')"
)


def _agreed_alone(row: LedgerEntry, validator: SigningKey) -> None:
    """A block holding the entry's commitment among two other leaves, signed by ``validator``
    alone, stored as the consensus shell stores blocks (consensus itself is not under test)."""
    encoded = encode_entry(services.signed_entry_of(row, row.ledger.ubi).entry)
    leaves = [b"p" + b"filler-1", commitment_leaf(encoded), b"p" + b"filler-2"]
    tree = MerkleTree.from_entries(leaves)
    height = Block.objects.count()
    previous = bytes(Block.objects.get(height=height - 1).block_hash) if height else bytes(32)
    header = {
        "height": height,
        "previous": previous.hex(),
        "epoch": 0,
        "round": height + 1,
        "root": tree.root.hex(),
        "count": len(leaves),
    }
    block = Block.objects.create(
        height=height,
        block_hash=object_hash(BLOCK_KIND, header),
        previous_hash=previous,
        epoch=0,
        round=height + 1,
        merkle_root=tree.root,
        tree_size=len(leaves),
        signatures=[
            {
                "validator": validator.public_key.hex(),
                "name": "us",
                "signature": sign(validator, BLOCK_KIND, header).hex(),
            }
        ],
        validators=[validator.public_key.hex()],
        log_root=bytes(32),
    )
    BlockObservation.objects.bulk_create(
        BlockObservation(block=block, index=index, kind="ledger-entry", data=leaf, digest=sha256(leaf))
        for index, leaf in enumerate(leaves)
    )


def _verified_issuer(document: dict[str, object], key: bytes) -> bytes:
    report = receipt_verify(document, trust=Trust(validators=frozenset({key}), issuer=key))
    assert report.ok, [(check.name, check.detail) for check in report.checks if check.failed]
    assert report.receipt is not None
    return report.receipt.issuer.key


def test_a_rotation_by_another_process_is_followed_by_the_next_receipt_without_a_restart(
    funded: Callable[..., Party],
) -> None:
    alice = funded("10.00")
    first = keystore.node_signer()
    assert keystore.node_signer() is first  # opened once, then kept
    _agreed_alone(LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=0), first.key)
    assert (
        _verified_issuer(entry_receipt(ledger=alice.ledger, height=0), first.public_key) == first.public_key
    )

    _in_another_process(ROTATE)

    current = NodeKey.objects.get(purpose=KeyPurpose.SIGNING, valid_until__isnull=True)
    assert current.public != first.public_key.hex()
    # The next co-signature already uses the new key (the bank's key is the issuer's key).
    services.asset_issue(
        ledger=alice.ledger, asset=Asset.objects.get(), amount="1.00", reference="second", actor="test"
    )
    second = keystore.node_signer()
    assert second.public_key.hex() == current.public
    assert second.key_id == current.key_id
    _agreed_alone(LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=1), second.key)

    assert _verified_issuer(entry_receipt(ledger=alice.ledger, height=1), second.public_key) == (
        second.public_key
    )
    with CaptureQueriesContext(connection) as queries:  # the block's tree is written: as any receipt
        document = entry_receipt(ledger=alice.ledger, height=1)
    assert _verified_issuer(document, second.public_key) == second.public_key
    # The entry with the current key; the observation with its block and covering anchor; the
    # audit path. The key itself is neither read nor opened again.
    assert len(queries) == 3, [query["sql"] for query in queries.captured_queries]
    assert keystore.node_signer() is second


def test_a_signer_is_kept_by_its_public_key_so_a_replaced_database_cannot_lend_it_another_key() -> None:
    keystore.node_identity_ensure()
    opened = keystore.node_signer()
    # The same key id, another secret: what a process sees when its database is replaced under it.
    NodeKey.objects.filter(purpose=KeyPurpose.SIGNING).delete()
    _in_another_process("from settlement.keystore import node_identity_ensure; node_identity_ensure()")
    replaced = NodeKey.objects.get(purpose=KeyPurpose.SIGNING)
    assert replaced.key_id == opened.key_id
    assert replaced.public != opened.public_key.hex()

    signer = keystore.node_signer()

    assert signer.public_key.hex() == replaced.public
    assert signer.key.seed != opened.key.seed
    assert keystore.node_signer_for(opened.public_key.hex()) is opened  # still in memory, by its own key


def test_a_node_without_a_signing_key_says_how_to_make_one() -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape("run `manage.py node_bootstrap`")):
        keystore.node_signer()
