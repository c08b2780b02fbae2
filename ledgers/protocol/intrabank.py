"""Payments within one bank: a debit entry on the sender's ledger, a credit on the recipient's.

Lock order (for the shell): lock the two ledger rows in :func:`lock_order` order, i.e. sorted by
ledger id as a string, with ``select_for_update``. Every service that locks more than one ledger
uses this order, so two payments in opposite directions can never wait on each other (no
deadlock). Then plan, check both entries, co-sign both, save both in the same transaction: both
land or neither does. The ``transfer`` id is the request's idempotency key; the shell records it
with the entries and answers a replay with the first result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ledgers.protocol.amounts import MinorUnits, amount_to_wire, check_amount
from ledgers.protocol.chain import Appended, ChainHead, LedgerView, check_entry, finish_append, next_entry
from ledgers.protocol.entries import EncodedEntry, Entry, Millis
from ledgers.protocol.errors import BadBody
from ledgers.protocol.identifiers import Asset, AssetId, LedgerId, ledger_namespace
from ledgers.protocol.kinds import DEFAULT_CATALOGUE
from settlement.protocol.signing import Signature, SigningKey


def lock_order(ledgers: Iterable[LedgerId]) -> tuple[LedgerId, ...]:
    """The order in which to lock ledger rows: sorted ids, each once."""
    return tuple(sorted(set(ledgers)))


@dataclass(frozen=True)
class IntrabankPlan:
    lock_order: tuple[LedgerId, ...]
    debit: Entry
    credit: Entry


def plan_intrabank_payment(
    *,
    transfer_id: str,
    sender_head: ChainHead,
    recipient_head: ChainHead,
    asset: AssetId,
    amount: MinorUnits,
    time: Millis,
) -> IntrabankPlan:
    """The two entries of a payment within a bank, built on the locked heads."""
    check_amount(amount)
    sender, recipient = sender_head.ledger, recipient_head.ledger
    if sender == recipient:
        raise BadBody("a payment needs two different ledgers")
    if ledger_namespace(sender) != ledger_namespace(recipient):
        raise BadBody("a payment within a bank is between two ledgers of that bank")
    common = {"transfer": transfer_id, "asset": asset, "amount": amount_to_wire(amount)}
    return IntrabankPlan(
        lock_order=lock_order((sender, recipient)),
        debit=next_entry(
            head=sender_head,
            kind="transfer",
            body={**common, "side": "debit", "counterparty": recipient},
            time=time,
        ),
        credit=next_entry(
            head=recipient_head,
            kind="transfer",
            body={**common, "side": "credit", "counterparty": sender},
            time=time,
        ),
    )


def check_intrabank_payment(
    *,
    plan: IntrabankPlan,
    sender: LedgerView,
    recipient: LedgerView,
    debit_signature: Signature | None,
    assets: Mapping[AssetId, Asset],
    now: Millis | None = None,
    encoded_debit: EncodedEntry | None = None,
    debit_signer: SigningKey | None = None,
    validator_signer: SigningKey | None = None,
) -> tuple[Appended, Appended]:
    """Check both entries; raise on the first problem, so that nothing is appended.
    ``encoded_debit``: the debit's encoding, when the caller made it. ``debit_signer``: the
    sender's key when the bank keeps it (custody), instead of ``debit_signature``.
    ``validator_signer``: the bank's key, to co-sign both entries here.

    Nothing is signed until **both** entries passed every check: the custodial debit (with
    ``debit_signer``) and the bank's co-signatures are made after the credit's checks too, so a
    payment refused on either side leaves no signature behind."""
    debit = check_entry(
        head=sender.head,
        entry=plan.debit,
        party_key=sender.party_key,
        party_signature=debit_signature,
        balances=sender.balances,
        holds=sender.holds,
        credit_lines=sender.credit_lines,
        outstanding=None,
        party_accepted=sender.party_accepted,
        validator_key=None,
        validator_signature=None,
        catalogue=DEFAULT_CATALOGUE,
        check_funds=True,
        assets=assets,
        now=now,
        encoded=encoded_debit,
        party_signer=debit_signer,
    )
    credit = check_entry(
        head=recipient.head,
        entry=plan.credit,
        party_key=recipient.party_key,
        party_signature=None,
        balances=recipient.balances,
        holds=recipient.holds,
        credit_lines=recipient.credit_lines,
        outstanding=None,
        party_accepted=recipient.party_accepted,
        validator_key=None,
        validator_signature=None,
        catalogue=DEFAULT_CATALOGUE,
        check_funds=True,
        assets=assets,
        now=now,
        encoded=None,
        party_signer=None,
    )
    return (
        finish_append(
            debit,
            party_signature=debit_signature,
            party_signer=debit_signer,
            validator_signer=validator_signer,
        ),
        finish_append(credit, party_signature=None, party_signer=None, validator_signer=validator_signer),
    )
