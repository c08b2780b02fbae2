"""The node's signing key is opened once per process and kept, yet a receipt is always signed by
the key that is current in the database: a rotation made by another process is followed by the
very next receipt, with no restart and no extra query (a receipt reads which key is current in
the same query as its entry)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consensus.models import Block, BlockObservation
from consensus.protocol.block import BLOCK_KIND
from consensus.protocol.receipt import ReceiptCheckFailed
from ledgers import services
from ledgers.models import Asset, LedgerEntry
from ledgers.protocol.entries import encode_entry
from ledgers.protocol.receipt import Receipt, Trust, commitment_leaf, receipt_verify
from ledgers.receipts import entry_receipt
from settlement import keystore
from settlement.models import KeyPurpose, NodeKey, NodeKeyHandover
from settlement.protocol.encoding import object_hash, sha256
from settlement.protocol.merkle import MerkleTree
from settlement.protocol.signing import SigningKey, sign, sign_bytes
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


def _verified(document: dict[str, object], *, validator: bytes, issuer: bytes) -> Receipt:
    report = receipt_verify(document, trust=Trust(validators=frozenset({validator}), issuer=issuer))
    assert report.ok, [(check.name, check.detail) for check in report.checks if check.failed]
    assert report.receipt is not None
    return report.receipt


def test_an_entry_co_signed_before_a_rotation_gets_a_receipt_that_verifies_offline_after_it(
    funded: Callable[..., Party], tmp_path: Path
) -> None:
    """Receipt version 3: the entry names the retired key that co-signed it, and that key's
    hand-over (signed when the key was rotated) leads to the key that issues the receipt now."""
    alice = funded("10.00")
    before = keystore.node_signer()
    row = LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=0)
    _agreed_alone(row, before.key)

    _in_another_process(ROTATE)

    retired = NodeKey.objects.get(purpose=KeyPurpose.SIGNING, public=before.public_key.hex())
    assert retired.valid_until is not None
    assert len(retired.handover_signature) == 128  # signed at the rotation, by the retiring key
    after = keystore.node_signer()
    assert after.public_key != before.public_key

    document = entry_receipt(ledger=alice.ledger, height=0)

    assert document["version"] == 3
    receipt = _verified(document, validator=before.public_key, issuer=after.public_key)
    assert receipt.issuer.key == after.public_key
    assert [link.key for link in receipt.entry.bank_keys] == [before.public_key]
    # A relying party that pinned the bank's key before the rotation recognises it as well.
    _verified(document, validator=before.public_key, issuer=before.public_key)
    # ... and so does the command, offline, from the file alone.
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(path), "--issuer", before.public_key.hex()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "co-signed with the bank's earlier key" in done.stdout
    # A key that never belonged to this bank is still refused.
    report = receipt_verify(document, trust=Trust(issuer=SigningKey.generate().public_key))
    assert report.first_failure is not None
    assert report.first_failure.name == "issuer-signature"


def test_two_rotations_later_the_receipt_carries_one_direct_hand_over(funded: Callable[..., Party]) -> None:
    """At the second rotation the first key handed over straight to the third: the receipt takes
    that one hand-over, not the chain through the second key."""
    alice = funded("10.00")
    first = keystore.node_signer()
    _agreed_alone(LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=0), first.key)
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="first")
    second = keystore.node_signer()
    services.asset_issue(  # co-signed by the second key
        ledger=alice.ledger, asset=Asset.objects.get(), amount="1.00", reference="second", actor="test"
    )
    _agreed_alone(LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=1), second.key)
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="second")
    third = keystore.node_signer()

    receipt = _verified(
        entry_receipt(ledger=alice.ledger, height=0), validator=first.public_key, issuer=third.public_key
    )
    assert [link.key for link in receipt.entry.bank_keys] == [first.public_key]
    # The first key pinned still recognises the bank: it signed the hand-over to the third.
    _verified(
        entry_receipt(ledger=alice.ledger, height=0), validator=first.public_key, issuer=first.public_key
    )
    later = _verified(
        entry_receipt(ledger=alice.ledger, height=1), validator=second.public_key, issuer=third.public_key
    )
    assert [link.key for link in later.entry.bank_keys] == [second.public_key]


def test_rotations_made_before_direct_hand_overs_give_the_chain_until_the_next_rotation(
    funded: Callable[..., Party],
) -> None:
    """A node that rotated twice with code older than direct hand-overs has only the chain: its
    receipts carry it (two hand-overs). Its next rotation has every earlier key hand over straight
    to the new key, and from then on one hand-over does."""
    alice = funded("10.00")
    first = keystore.node_signer()
    _agreed_alone(LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=0), first.key)
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="first")
    second = keystore.node_signer()
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="second")
    third = keystore.node_signer()
    NodeKeyHandover.objects.all().delete()  # as rotated by the older code
    keystore.forget_opened_keys()

    chained_document = entry_receipt(ledger=alice.ledger, height=0)
    chained = _verified(chained_document, validator=first.public_key, issuer=third.public_key)
    assert [link.key for link in chained.entry.bank_keys] == [first.public_key, second.public_key]

    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="third")
    fourth = keystore.node_signer()
    direct_document = entry_receipt(ledger=alice.ledger, height=0)
    direct = _verified(direct_document, validator=first.public_key, issuer=fourth.public_key)
    assert [link.key for link in direct.entry.bank_keys] == [first.public_key]
    assert len(json.dumps(direct_document)) < len(json.dumps(chained_document))
    # Every earlier key made its hand-over to the fourth at that rotation, the second's included.
    assert sorted(
        NodeKeyHandover.objects.filter(successor__public=fourth.public_key.hex()).values_list(
            "key__public", flat=True
        )
    ) == sorted([first.public_key.hex(), second.public_key.hex()])


def test_a_rotation_made_before_hand_overs_were_signed_gets_its_hand_over_once(
    funded: Callable[..., Party],
) -> None:
    """A node rotated before this format kept its retired key sealed; the first receipt that needs
    the hand-over has that key sign it, and it is stored for every later receipt."""
    alice = funded("10.00")
    before = keystore.node_signer()
    _agreed_alone(LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=0), before.key)
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="before hand-overs")
    NodeKey.objects.filter(public=before.public_key.hex()).update(handover_signature="")
    after = keystore.node_signer()

    first = entry_receipt(ledger=alice.ledger, height=0)

    _verified(first, validator=before.public_key, issuer=after.public_key)
    stored = NodeKey.objects.get(public=before.public_key.hex()).handover_signature
    assert stored == base64.b64decode(first["entry"]["bank_keys"][0])[32:].hex()
    keystore.forget_opened_keys()  # as another process: it reads the stored hand-over
    with CaptureQueriesContext(connection) as queries:
        again = entry_receipt(ledger=alice.ledger, height=0)
    assert again["entry"]["bank_keys"] == first["entry"]["bank_keys"]
    assert not any(query["sql"].startswith("UPDATE") for query in queries.captured_queries)
    # Once read, the hand-overs are kept per process: the receipt's three queries, as any.
    with CaptureQueriesContext(connection) as queries:
        entry_receipt(ledger=alice.ledger, height=0)
    assert len(queries) == 3, [query["sql"] for query in queries.captured_queries]


def test_an_entry_co_signed_by_a_key_that_was_never_the_nodes_gets_no_receipt(
    funded: Callable[..., Party],
) -> None:
    """The self-check still refuses what no key of this node co-signed (a damaged row, say)."""
    alice = funded("10.00")
    row = LedgerEntry.objects.select_related("ledger").get(ledger=alice.ledger, height=0)
    _agreed_alone(row, keystore.node_signer().key)
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="rotated")
    stranger = SigningKey.generate()
    encoded = encode_entry(services.signed_entry_of(row, row.ledger.ubi).entry)
    LedgerEntry.objects.filter(pk=row.pk).update(
        validator_signature=sign_bytes(stranger, encoded.message).hex()
    )

    with pytest.raises(ReceiptCheckFailed) as refused:
        entry_receipt(ledger=alice.ledger, height=0)
    assert refused.value.check == "entry-bank-signature"
