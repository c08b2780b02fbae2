"""Fraud proofs: JSON documents anyone can check offline with :func:`verify_fraud_proof`.

* ``ledger-equivocation``: two entries of one ledger at one height, with different hashes, both
  signed by the same validator key. A validator promises never to do that (seed 003 §3.1.2,
  ARCHITECTURE.md §4), so the two signatures are the whole proof.
* ``ledger-unapplied-take``: an :class:`~ledgers.protocol.exchange.AcceptedTake` (the maker's
  bank's signed acceptance of a signed take of a signed offer) and a contiguous, validator-signed
  segment of the ledger that had to apply it (the maker's or the taker's), running from before the
  take was created to after ``settle_by``, with no ``take`` entry for it (seed 003 §5.8).

* ``ledger-payment-voided-and-final``: a final payment proof and a void notice for the same payment,
  both signed by its origin bank: the bank told the co-signers to release their holds after it
  had finalised (or the other way round).

The verdict names the key that is accused; whose key it is, is the federation's answer. Limits:
a bank that signs nothing at all on that ledger after ``settle_by`` cannot be shown up by (b);
and (b) assumes entry times are honest, since the accused bank sets them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ledgers.protocol.entries import SignedEntry, encode_entry, verify_encoded
from ledgers.protocol.errors import BadFraudProof, LedgerError
from ledgers.protocol.exchange import AcceptedTake
from ledgers.protocol.interbank import PaymentProof, verify_payment_proof, verify_void_notice
from ledgers.protocol.signed_objects import hex_bytes
from settlement.protocol.signing import PublicKey, Signature

EQUIVOCATION = "ledger-equivocation"
UNAPPLIED_TAKE = "ledger-unapplied-take"
VOIDED_AND_FINAL = "ledger-payment-voided-and-final"


@dataclass(frozen=True)
class FraudVerdict:
    proven: bool
    kind: str
    accused_key: str  # hex of the validator key that signed what it should not have (or failed to)
    reason: str  # why it is proven, or why not: a sentence for people
    code: str = "fraud_proven"

    def to_json(self) -> dict[str, Any]:
        return {
            "proven": self.proven,
            "kind": self.kind,
            "accused_key": self.accused_key,
            "code": self.code,
            "reason": self.reason,
        }


def equivocation_proof(
    *, validator_key: PublicKey, first: SignedEntry, second: SignedEntry
) -> dict[str, Any]:
    return {
        "type": EQUIVOCATION,
        "validator_key": validator_key.hex(),
        "first": first.to_json(),
        "second": second.to_json(),
    }


def unapplied_take_proof(
    *,
    accepted: AcceptedTake,
    side: Literal["maker", "taker"],
    validator_key: PublicKey,
    segment: Sequence[SignedEntry],
) -> dict[str, Any]:
    return {
        "type": UNAPPLIED_TAKE,
        "accepted": accepted.to_json(),
        "side": side,
        "validator_key": validator_key.hex(),
        "segment": [signed.to_json() for signed in segment],
    }


def voided_and_final_proof(*, proof: PaymentProof, void_signature: Signature) -> dict[str, Any]:
    origin = proof.instruction.origin
    return {
        "type": VOIDED_AND_FINAL,
        "validator_key": proof.bank_keys[origin].hex(),
        "payment": proof.to_json(),
        "void_signature": void_signature.hex(),
    }


def verify_fraud_proof(proof: object) -> FraudVerdict:
    """Check a fraud proof offline; never raises on bad input, it says why it is not proven."""
    kind = proof.get("type") if isinstance(proof, Mapping) else None
    key_hex = proof.get("validator_key") if isinstance(proof, Mapping) else None
    accused = key_hex if isinstance(key_hex, str) else ""
    try:
        assert isinstance(proof, Mapping)
        validator_key = PublicKey(hex_bytes(key_hex, length=32, what="validator_key", error=BadFraudProof))
        if kind == EQUIVOCATION:
            reason = _verify_equivocation(proof, validator_key)
        elif kind == UNAPPLIED_TAKE:
            reason = _verify_unapplied_take(proof, validator_key)
        elif kind == VOIDED_AND_FINAL:
            reason = _verify_voided_and_final(proof, validator_key)
        else:
            raise BadFraudProof(f"unknown proof type {kind!r}")
    except (LedgerError, AssertionError) as error:
        code = error.code if isinstance(error, LedgerError) else BadFraudProof.code
        return FraudVerdict(
            proven=False, kind=str(kind), accused_key=accused, reason=str(error) or "not a proof", code=code
        )
    return FraudVerdict(proven=True, kind=str(kind), accused_key=accused, reason=reason)


def _verify_equivocation(proof: Mapping[str, Any], validator_key: PublicKey) -> str:
    first = SignedEntry.from_json(proof.get("first"))
    second = SignedEntry.from_json(proof.get("second"))
    if first.entry.ledger != second.entry.ledger or first.entry.height != second.entry.height:
        raise BadFraudProof("the two entries are not of the same ledger and height")
    encoded_first, encoded_second = encode_entry(first.entry), encode_entry(second.entry)
    if encoded_first.hash == encoded_second.hash:
        raise BadFraudProof("the two entries are the same entry")
    for signed, encoded in ((first, encoded_first), (second, encoded_second)):
        if signed.validator_signature is None:
            raise BadFraudProof("both entries must carry the validator's signature")
        verify_encoded(validator_key, encoded, signed.validator_signature, role="validator")
    return (
        f"the validator signed two different entries at height {first.entry.height} of {first.entry.ledger}"
    )


def _verify_unapplied_take(proof: Mapping[str, Any], validator_key: PublicKey) -> str:
    accepted = AcceptedTake.from_json(proof.get("accepted"))
    accepted.verify()
    offer, take = accepted.signed_offer.offer, accepted.signed_take.take
    side = proof.get("side")
    if side == "maker":
        ledger, expected_key = offer.maker_ledger, accepted.signed_offer.bank_key
    elif side == "taker":
        ledger, expected_key = take.taker_ledger, accepted.signed_take.bank_key
    else:
        raise BadFraudProof("side must be maker or taker")
    if validator_key != expected_key:
        raise BadFraudProof(f"the accused key is not the {side}'s bank's key in the signed offer and take")
    raw_segment = proof.get("segment")
    if not isinstance(raw_segment, list) or not raw_segment:
        raise BadFraudProof("segment must be a non-empty list of signed entries")
    segment = [SignedEntry.from_json(item) for item in raw_segment]
    previous = None
    for signed in segment:
        entry = signed.entry
        if entry.ledger != ledger:
            raise BadFraudProof(f"the segment must be entries of {ledger}")
        encoded = encode_entry(entry)
        if previous is not None and (
            entry.height != previous.entry.height + 1 or entry.prev != previous.hash
        ):
            raise BadFraudProof(f"the segment is not contiguous at height {entry.height}")
        if signed.validator_signature is None:
            raise BadFraudProof(f"entry {entry.height} has no validator signature")
        verify_encoded(validator_key, encoded, signed.validator_signature, role="validator")
        if entry.kind == "take" and entry.body.get("take") == take.id:
            raise BadFraudProof(f"the take was applied at height {entry.height}")
        previous = encoded
    if segment[0].entry.time >= take.created_at:
        raise BadFraudProof("the segment must start before the take was created")
    if segment[-1].entry.time <= accepted.settle_by:
        raise BadFraudProof("the segment must reach past the settlement deadline")
    return (
        f"the {side}'s bank accepted take {take.id[:16]}… and signed {ledger} past "
        f"the deadline without applying it"
    )


def _verify_voided_and_final(proof: Mapping[str, Any], validator_key: PublicKey) -> str:
    payment = PaymentProof.from_json(proof.get("payment"))
    origin = payment.instruction.origin
    if payment.bank_keys.get(origin) != validator_key:
        raise BadFraudProof("the accused key is not the origin bank's key in the payment proof")
    verify_payment_proof(payment)
    void_signature = Signature(
        hex_bytes(proof.get("void_signature"), length=64, what="void_signature", error=BadFraudProof)
    )
    verify_void_notice(payment.instruction, origin_key=validator_key, signature=void_signature)
    return f"{origin} signed payment {payment.instruction.id[:16]}… final and also signed it void"
