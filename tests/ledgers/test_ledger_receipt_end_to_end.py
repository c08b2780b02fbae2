"""A receipt end to end on real services: payments → their commitments voted → a real Celery
worker (this node the only validator) agrees them in several blocks → one anchor of the block log
mined on anvil → GET the receipt → `python -m settlement.verify` passes offline and with --rpc
against anvil; a tampered file fails; a reorganisation that drops the anchor makes --rpc fail
until the node has anchored again."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from consensus import anchoring
from consensus.models import Anchor, AnchorStatus, Block, ObservationStatus, PendingObservation
from consensus.protocol.receipt import b64
from consensus.services import consensus_vote_many
from ledgers import services
from ledgers.models import LedgerEntry
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.identifiers import LedgerId
from ledgers.protocol.receipt import RECEIPT_KIND, _unsigned
from settlement import ethereum
from settlement.keystore import node_signer
from settlement.protocol.signing import sign
from tests.consensus.consensus_shell_support import single_validator, wait_for
from tests.ledgers.ledger_shell_support import Party

pytestmark = [pytest.mark.worker, pytest.mark.ethereum]
__all__ = ["single_validator"]
ROOT = Path(__file__).resolve().parents[2]


def _chain(method: str, *params: object) -> Any:
    return ethereum.web3().provider.make_request(method, list(params))  # type: ignore[arg-type]


def _vote_entries_and_wait() -> int:
    """Wait until the worker has agreed every entry's commitment (the append voted each one in its
    own transaction: checked here, not redone); returns the newest block height."""
    rows = LedgerEntry.objects.select_related("ledger").order_by("pk")
    payloads = [
        entry_commitment(LedgerId(row.ledger.ubi), row.height, bytes.fromhex(row.hash)) for row in rows
    ]
    assert consensus_vote_many(payloads=payloads, kind=ENTRY_OBSERVATION_KIND) == 0, "an entry was not voted"
    wait_for(
        lambda: not PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists(),
        what="every commitment agreed",
        timeout=60,
    )
    return Block.objects.order_by("-height").values_list("height", flat=True).first()  # type: ignore[return-value]


def _pay(sender: Party, recipient: Party, key: str) -> None:
    services.payment_intrabank(
        request=services.PaymentRequest(
            idempotency_key=key,
            sender=sender.ubi,
            recipient=recipient.ubi,
            asset=sender_asset(),
            amount="1.25",
        ),
        actor="test",
    )


def sender_asset() -> str:
    from ledgers.models import Asset

    return Asset.objects.get().uai


def _verify(path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(path), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _resigned(document: dict[str, Any]) -> dict[str, Any]:
    """What a malicious issuer can do: change a field and sign again with the node's own key."""
    signature = sign(node_signer().key, RECEIPT_KIND, _unsigned(document))
    return {**document, "issuer": {**document["issuer"], "signature": b64(signature)}}


def _anchor_newest_block() -> Anchor:
    """One anchor of the whole block log (newest block), sent and mined on anvil."""
    anchoring.anchors_tick()  # due (by time) and sent
    anchoring.anchors_tick()  # anvil mined it at once: followed
    anchor = Anchor.objects.order_by("-height").first()
    assert anchor is not None
    assert anchor.status == AnchorStatus.MINED
    return anchor


@pytest.fixture
def anchoring_account(settings: Any) -> str:
    settings.ANCHOR_EVERY_BLOCKS = 1_000  # no anchor per block: one anchor must cover them all
    settings.ANCHOR_EVERY_SECONDS = 0.001
    settings.ANCHOR_CONFIRMATIONS = 3
    web3 = ethereum.web3()
    address = ethereum.address_of(ethereum.node_private_key())
    tx_hash = web3.eth.send_transaction(
        {"from": web3.eth.accounts[0], "to": Web3.to_checksum_address(address), "value": 10**18}
    )
    web3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    return address.lower()


def test_a_receipt_verifies_offline_and_against_anvil_and_tampering_or_a_reorg_fails_it(
    single_validator: Any,
    celery_worker: Any,
    funded: Callable[..., Party],
    make_party: Callable[..., Party],
    anchoring_account: str,
    client: Any,
    make_user: Callable[..., Any],
    tmp_path: Path,
    settings: Any,
) -> None:
    client.force_login(make_user("audrey-auditor", "auditor"))  # read-only role: receipts are reads
    alice, bob = funded("100.00"), make_party()
    _pay(alice, bob, "first")
    alice_first_debit = LedgerEntry.objects.get(ledger=alice.ledger, kind="transfer")
    url = f"/api/ledgers/{alice.ledger.pk}/entries/{alice_first_debit.height}/receipt"

    # Before its block the answer is 409 receipt_not_ready (test_ledger_receipt_api.py: with a
    # worker running, the append's own vote may be agreed before a request here could ask).
    first_block = _vote_entries_and_wait()
    for number in range(2):  # more blocks after it, so the anchor covers blocks it does not name
        _pay(alice, bob, f"later {number}")
        _vote_entries_and_wait()
    newest_block = Block.objects.order_by("-height").values_list("height", flat=True).first()
    assert newest_block is not None
    assert newest_block >= first_block + 2

    # Agreed, not anchored yet: verifies offline ("not yet"), fails with --rpc.
    early = client.get(url)
    assert early.status_code == 200
    assert early.json()["anchor"] is None
    assert early.json()["log"] is None
    early_path = tmp_path / "early.json"
    early_path.write_text(early.content.decode())
    done = _verify(early_path)
    assert done.returncode == 0, done.stdout
    assert "not yet" in done.stdout
    done = _verify(early_path, "--rpc", settings.ETH_RPC_URL)
    assert done.returncode == 1
    assert "check anchor-on-chain failed" in done.stdout

    anchor = _anchor_newest_block()
    assert anchor.height == newest_block
    assert Anchor.objects.count() == 1
    receipt = client.get(url).json()
    assert receipt["block"]["height"] <= first_block < anchor.height == receipt["anchor"]["height"]
    assert receipt["anchor"]["account"] == anchoring_account
    assert receipt["anchor"]["tx"] == anchor.tx_hash
    assert receipt["anchor"]["root"] == "0x" + bytes(anchor.log_root).hex()
    assert receipt["entry"]["entry"]["body"]["amount"] == "125"
    assert len(json.dumps(receipt)) < 4096
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))

    done = _verify(path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("VALID")
    done = _verify(
        path,
        "--rpc",
        settings.ETH_RPC_URL,
        "--issuer",
        node_signer().public_key.hex(),
        "--validator",
        node_signer().public_key.hex(),
    )
    assert done.returncode == 0, done.stdout
    assert "1 confirmations now" in done.stdout

    _chain("evm_mine")
    _chain("evm_mine")
    done = _verify(path, "--rpc", settings.ETH_RPC_URL)
    assert done.returncode == 0, done.stdout
    assert "3 confirmations now" in done.stdout

    # A tampered file fails, with the issuer's signature intact or signed again by the node.
    tampered = copy.deepcopy(receipt)
    tampered["entry"]["entry"]["body"]["amount"] = "999"
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    done = _verify(tmp_path / "tampered.json")
    assert done.returncode == 1
    assert "check issuer-signature failed" in done.stdout
    (tmp_path / "resigned.json").write_text(json.dumps(_resigned(tampered)))
    done = _verify(tmp_path / "resigned.json")
    assert done.returncode == 1
    assert "check entry-bank-signature failed" in done.stdout
    # The issuer's statements about the chain pass offline when re-signed, and --rpc refutes them.
    for field, value in [
        ("tx", "0x" + "11" * 32),
        ("log_index", receipt["anchor"]["log_index"] + 1),
        ("account", "0x" + "33" * 20),
        ("height", receipt["anchor"]["height"] + 1),
        ("confirmations", 50),
        ("chain_id", 1),
        ("contract", "0x" + "44" * 20),
        ("block_number", receipt["anchor"]["block_number"] + 1),
    ]:
        forged = copy.deepcopy(receipt)
        forged["anchor"][field] = value
        (tmp_path / "forged.json").write_text(json.dumps(_resigned(forged)))
        done = _verify(tmp_path / "forged.json", "--rpc", settings.ETH_RPC_URL)
        assert done.returncode == 1, (field, done.stdout)
        assert "failed" in done.stdout.strip().splitlines()[-1]

    # A reorganisation drops the anchor: the receipt no longer verifies on the chain ...
    _chain("anvil_reorg", 3, [])
    done = _verify(path, "--rpc", settings.ETH_RPC_URL)
    assert done.returncode == 1
    assert "check anchor-on-chain failed" in done.stdout
    # ... until the node notices, anchors again, and issues a new receipt.
    anchoring.anchors_tick()
    anchoring.anchors_tick()
    anchor.refresh_from_db()
    assert anchor.status == AnchorStatus.MINED
    assert anchor.previous_tx_hashes
    renewed = client.get(url).json()
    # Sent again, it lands in another Ethereum block. (Its hash may be the dropped one's: the same
    # signed transaction, same nonce and fees, is a legitimate way to send it again.)
    assert renewed["anchor"]["tx"] == anchor.tx_hash
    assert renewed["anchor"]["block_number"] == anchor.block_number
    assert "block_hash" not in renewed["anchor"]
    path.write_text(json.dumps(renewed))
    done = _verify(path, "--rpc", settings.ETH_RPC_URL)
    assert done.returncode == 0, done.stdout
