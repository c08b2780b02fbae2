"""Payments between banks (seed 003 Pic. 4-6): route, three (or more) signatures, two phases.

A payment is a :class:`PaymentInstruction`: an amount and a route of legs, one per bank. The leg
at each bank debits one of its ledgers and credits another, in that bank's own asset (its IOU):

* direct A -> B: at A, sender -> B's account at A; at B, A's account at B -> recipient;
* through a correspondent C (Pic. 5/6): at A, sender -> C's account at A; at C, A's account at C
  -> B's account at C; at C's correspondent B, C's account at B -> recipient.

So every bank's books stay balanced per asset (sum of balances = issued - redeemed), and what the
banks owe each other shows as balances of their accounts with each other, which may go below zero
only as far as the credit line a bank grants its peer (:func:`check_credit_limit`).

Flow and who signs (all sign the same instruction bytes, kind ``ledger-payment``):

1. the sender signs; bank A (origin) checks and holds the amount (:func:`start_outgoing_payment`);
2. every other bank on the route checks its leg (recipient KYC, credit limit), holds, co-signs
   (:func:`check_cosign`, :func:`cosign_payment`);
3. bank A signs last, only before ``expires_at``, and the payment is final: it carries the sender's
   and every route bank's signature (:func:`verify_payment_proof`, offline);
4. each bank appends its leg's two entries (:func:`plan_leg_entries`) on the final proof;
5. if ``expires_at`` passes first, bank A voids its hold and signs a void notice; a co-signer
   releases its hold only on that notice, since A may have finalised just before the deadline.
   A's signature on both a final proof and a void notice is itself evidence of fraud.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from ledgers.protocol.amounts import MinorUnits, amount_from_wire, amount_to_wire, check_amount
from ledgers.protocol.catalogue import Hold
from ledgers.protocol.chain import ChainHead, LedgerView, check_available, check_hold, next_entry
from ledgers.protocol.entries import Entry, Millis
from ledgers.protocol.errors import (
    BadAssetId,
    BadEntrySignature,
    BadLedgerId,
    BadRoute,
    BadTransition,
    CreditLimitExceeded,
    LedgerError,
    MissingSignature,
    NotAccepted,
    PaymentExpired,
    UnknownAsset,
)
from ledgers.protocol.identifiers import (
    Asset,
    AssetId,
    LedgerId,
    Namespace,
    asset_code,
    asset_issuer,
    correspondent_ledger_id,
    ledger_namespace,
    parse_asset_id,
    parse_ledger_id,
    parse_namespace,
)
from ledgers.protocol.kinds import payment_hold_key
from ledgers.protocol.signed_objects import Encoded, encode, hex_bytes, sign_message, verify_message
from settlement.protocol.signing import PublicKey, Signature, SigningKey

PAYMENT_KIND = "ledger-payment"
PAYMENT_VOID_KIND = "ledger-payment-void"
MAX_LEGS = 8


@dataclass(frozen=True)
class Leg:
    bank: Namespace
    asset: AssetId
    debit: LedgerId
    credit: LedgerId

    def to_json(self) -> dict[str, str]:
        return {"bank": self.bank, "asset": self.asset, "debit": self.debit, "credit": self.credit}

    @classmethod
    def from_json(cls, value: object) -> Leg:
        if not isinstance(value, Mapping) or set(value) != {"bank", "asset", "debit", "credit"}:
            raise BadRoute("a leg has exactly bank, asset, debit and credit")
        try:
            return cls(
                bank=parse_namespace(value["bank"]),
                asset=parse_asset_id(value["asset"]),
                debit=parse_ledger_id(value["debit"]),
                credit=parse_ledger_id(value["credit"]),
            )
        except (BadAssetId, BadLedgerId) as error:
            raise BadRoute(str(error)) from error


@dataclass(frozen=True)
class PaymentInstruction:
    """What the sender signs. ``reference`` is the sender's idempotency key: two payments of the
    same amount to the same recipient are different payments, with different ids."""

    reference: str
    amount: MinorUnits
    legs: tuple[Leg, ...]
    created_at: Millis
    expires_at: Millis

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "amount": amount_to_wire(self.amount),
            "legs": [leg.to_json() for leg in self.legs],
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, value: object) -> PaymentInstruction:
        fields = {"reference", "amount", "legs", "created_at", "expires_at"}
        if not isinstance(value, Mapping) or set(value) != fields:
            raise BadRoute(f"a payment instruction has exactly {', '.join(sorted(fields))}")
        legs, reference = value["legs"], value["reference"]
        if not isinstance(legs, list):
            raise BadRoute("legs must be a list")
        if not isinstance(reference, str) or not 0 < len(reference) <= 200:
            raise BadRoute("reference must be a non-empty string of at most 200 characters")
        for name in ("created_at", "expires_at"):
            if isinstance(value[name], bool) or not isinstance(value[name], int) or value[name] < 0:
                raise BadRoute(f"{name} must be milliseconds since the epoch")
        return cls(
            reference=reference,
            amount=amount_from_wire(value["amount"]),
            legs=tuple(Leg.from_json(leg) for leg in legs),
            created_at=Millis(value["created_at"]),
            expires_at=Millis(value["expires_at"]),
        )

    @cached_property
    def encoded(self) -> Encoded:
        return encode(PAYMENT_KIND, self.to_json())

    @property
    def id(self) -> str:
        return self.encoded.id

    @property
    def sender(self) -> LedgerId:
        return self.legs[0].debit

    @property
    def recipient(self) -> LedgerId:
        return self.legs[-1].credit

    @property
    def origin(self) -> Namespace:
        return self.legs[0].bank

    @property
    def banks(self) -> tuple[Namespace, ...]:
        return tuple(leg.bank for leg in self.legs)


def plan_route(
    *,
    reference: str,
    sender: LedgerId,
    recipient: LedgerId,
    amount: MinorUnits,
    assets: Sequence[AssetId],
    created_at: Millis,
    expires_at: Millis,
) -> PaymentInstruction:
    """The instruction for paying through the banks that issue ``assets``, in order: the
    sender's bank first, then any correspondents, the recipient's bank last."""
    banks = [asset_issuer(asset) for asset in assets]
    legs = []
    for index, (bank, asset) in enumerate(zip(banks, assets, strict=True)):
        debit = sender if index == 0 else correspondent_ledger_id(kept_by=bank, for_bank=banks[index - 1])
        last = index == len(banks) - 1
        credit = recipient if last else correspondent_ledger_id(kept_by=bank, for_bank=banks[index + 1])
        legs.append(Leg(bank=bank, asset=asset, debit=debit, credit=credit))
    instruction = PaymentInstruction(
        reference=reference, amount=amount, legs=tuple(legs), created_at=created_at, expires_at=expires_at
    )
    check_route(instruction)
    return instruction


def check_route(instruction: PaymentInstruction) -> None:
    """Raise :class:`BadRoute` unless the legs chain bank to bank through their mutual accounts."""
    check_amount(instruction.amount)
    legs = instruction.legs
    if not 2 <= len(legs) <= MAX_LEGS:
        raise BadRoute(f"a payment between banks has 2 to {MAX_LEGS} legs; within a bank, use a transfer")
    if len(set(instruction.banks)) != len(legs):
        raise BadRoute("a route passes each bank once")
    if instruction.expires_at <= instruction.created_at:
        raise BadRoute("a payment expires after it is created")
    codes = {asset_code(leg.asset) for leg in legs}
    if len(codes) != 1:
        raise BadRoute("every leg moves the same currency (each bank's own IOU of it)")
    for index, leg in enumerate(legs):
        if asset_issuer(leg.asset) != leg.bank:
            raise BadRoute(f"leg {index} at {leg.bank} must move {leg.bank}'s own asset")
        if ledger_namespace(leg.debit) != leg.bank or ledger_namespace(leg.credit) != leg.bank:
            raise BadRoute(f"both ledgers of leg {index} are kept by {leg.bank}")
        if leg.debit == leg.credit:
            raise BadRoute(f"leg {index} debits and credits the same ledger")
        if index > 0 and leg.debit != correspondent_ledger_id(
            kept_by=leg.bank, for_bank=legs[index - 1].bank
        ):
            raise BadRoute(f"leg {index} must debit the account {leg.bank} keeps for {legs[index - 1].bank}")
        if index < len(legs) - 1 and leg.credit != correspondent_ledger_id(
            kept_by=leg.bank, for_bank=legs[index + 1].bank
        ):
            raise BadRoute(f"leg {index} must credit the account {leg.bank} keeps for {legs[index + 1].bank}")


def check_credit_limit(
    *, peer_ledger: LedgerId, asset: AssetId, balance: int, held: int, amount: int, limit: int
) -> None:
    """A peer bank's account may go below zero only as far as the credit line granted to it."""
    try:
        check_available(
            ledger=peer_ledger, asset=asset, new_balance=balance - amount, held=held, credit_line=limit
        )
    except LedgerError as error:
        raise CreditLimitExceeded(
            f"the payment would take {peer_ledger} beyond its credit limit of {limit} in {asset}"
        ) from error


def _check_known_assets(
    instruction: PaymentInstruction, assets: Mapping[AssetId, Asset], bank: Namespace
) -> Leg:
    legs = [leg for leg in instruction.legs if leg.bank == bank]
    if not legs:
        raise BadRoute(f"{bank} is not on this payment's route")
    if legs[0].asset not in assets:
        raise UnknownAsset(f"{legs[0].asset} is not an asset this node knows")
    return legs[0]


# --- The final proof --------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentProof:
    """An instruction with signatures; final once the sender and every bank on the route signed.
    It carries the public keys so it verifies offline; whose keys they are is the federation's
    answer (a verifier passes ``trusted_bank_keys``)."""

    instruction: PaymentInstruction
    sender_key: PublicKey
    sender_signature: Signature
    bank_keys: Mapping[Namespace, PublicKey] = field(default_factory=dict)
    bank_signatures: Mapping[Namespace, Signature] = field(default_factory=dict)

    def with_bank_signature(self, *, bank: Namespace, key: PublicKey, signature: Signature) -> PaymentProof:
        return PaymentProof(
            instruction=self.instruction,
            sender_key=self.sender_key,
            sender_signature=self.sender_signature,
            bank_keys={**self.bank_keys, bank: key},
            bank_signatures={**self.bank_signatures, bank: signature},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "ledger-payment-proof",
            "instruction": self.instruction.to_json(),
            "sender_key": self.sender_key.hex(),
            "sender_signature": self.sender_signature.hex(),
            "banks": {
                bank: {"key": self.bank_keys[bank].hex(), "signature": self.bank_signatures[bank].hex()}
                for bank in sorted(self.bank_signatures)
            },
        }

    @classmethod
    def from_json(cls, value: object) -> PaymentProof:
        if not isinstance(value, Mapping) or value.get("type") != "ledger-payment-proof":
            raise BadRoute("not a ledger-payment-proof")
        banks = value.get("banks")
        if not isinstance(banks, Mapping):
            raise BadRoute("banks must be an object of bank -> {key, signature}")
        keys, signatures = {}, {}
        for bank, item in banks.items():
            if not isinstance(item, Mapping):
                raise BadRoute("each bank has a key and a signature")
            try:
                namespace = parse_namespace(bank)
            except BadAssetId as error:
                raise BadRoute(str(error)) from error
            keys[namespace] = PublicKey(
                hex_bytes(item.get("key"), length=32, what="bank key", error=BadRoute)
            )
            signatures[namespace] = Signature(
                hex_bytes(item.get("signature"), length=64, what="bank signature", error=BadRoute)
            )
        return cls(
            instruction=PaymentInstruction.from_json(value.get("instruction")),
            sender_key=PublicKey(
                hex_bytes(value.get("sender_key"), length=32, what="sender key", error=BadRoute)
            ),
            sender_signature=Signature(
                hex_bytes(value.get("sender_signature"), length=64, what="sender signature", error=BadRoute)
            ),
            bank_keys=keys,
            bank_signatures=signatures,
        )


def verify_payment_proof(
    proof: PaymentProof,
    *,
    trusted_bank_keys: Mapping[Namespace, PublicKey] | None = None,
    verified_before: PaymentProof | None = None,
) -> None:
    """Raise unless the payment is final: the route is sound, and the sender and every bank on
    the route signed the instruction (with the trusted key, when one is given).

    ``verified_before`` is a proof of the same payment whose signatures the caller already
    checked (a co-signer's own copy: the sender's signature verified when it co-signed, its own
    signature made then). A signature equal to one in it, byte for byte with the same key, is
    not verified again: the same payment id is the SHA-256 of the same signed bytes. Any other
    signature is verified, so the verdict is the one a full verification gives."""
    instruction = proof.instruction
    encoded = instruction.encoded
    known: set[tuple[bytes, bytes]] = set()
    if verified_before is not None and verified_before.instruction.id == instruction.id:
        known.add((verified_before.sender_key, verified_before.sender_signature))
        known.update(
            (verified_before.bank_keys[bank], signature)
            for bank, signature in verified_before.bank_signatures.items()
            if bank in verified_before.bank_keys
        )
    else:
        check_route(instruction)  # a payment checked before had its route checked then
    if (proof.sender_key, proof.sender_signature) not in known:
        verify_message(proof.sender_key, encoded, proof.sender_signature, who="the sender")
    for bank in instruction.banks:
        signature, key = proof.bank_signatures.get(bank), proof.bank_keys.get(bank)
        if signature is None or key is None:
            raise BadTransition(f"the payment is not final: {bank} has not signed it")
        if trusted_bank_keys is not None and trusted_bank_keys.get(bank) != key:
            raise BadRoute(f"the key given for {bank} is not the one we trust")
        if (key, signature) not in known:
            verify_message(key, encoded, signature, who=bank)


def sign_payment(instruction: PaymentInstruction, *, key: SigningKey) -> Signature:
    """The sender's, or a bank's, signature on an instruction."""
    return sign_message(key, instruction.encoded)


# --- Bank A: the origin's state machine --------------------------------------------------------


class PaymentPhase(StrEnum):
    HELD = "held"
    FINAL = "final"
    VOIDED = "voided"


@dataclass(frozen=True)
class OutgoingPayment:
    proof: PaymentProof
    phase: PaymentPhase
    void_reason: str | None = None

    @property
    def instruction(self) -> PaymentInstruction:
        return self.proof.instruction


@dataclass(frozen=True)
class CosignReceived:
    bank: Namespace
    key: PublicKey  # the peer's key from our peer directory, not from the message
    signature: Signature
    now: Millis


@dataclass(frozen=True)
class CosignRefused:
    bank: Namespace
    code: str
    now: Millis


@dataclass(frozen=True)
class ClockTick:
    now: Millis


@dataclass(frozen=True)
class Finalise:
    origin_key: SigningKey
    now: Millis


PaymentChange = CosignReceived | CosignRefused | ClockTick | Finalise


@dataclass(frozen=True)
class HoldPlaced:
    ledger: LedgerId
    hold: Hold


@dataclass(frozen=True)
class HoldReleased:
    ledger: LedgerId
    key: str


@dataclass(frozen=True)
class CosignRequested:
    bank: Namespace
    proof: PaymentProof


@dataclass(frozen=True)
class ReadyToFinalise:
    payment_id: str


@dataclass(frozen=True)
class PaymentFinalised:
    """Append this bank's leg (plan_leg_entries) and send the proof to every bank on the route."""

    proof: PaymentProof


@dataclass(frozen=True)
class PaymentVoided:
    payment_id: str
    reason: str
    void_signature: Signature  # send to the co-signers so that they release their holds


PaymentEvent = (
    HoldPlaced | HoldReleased | CosignRequested | ReadyToFinalise | PaymentFinalised | PaymentVoided
)


@dataclass(frozen=True)
class TransitionResult:
    state: OutgoingPayment
    events: tuple[PaymentEvent, ...] = ()


def start_outgoing_payment(
    *,
    instruction: PaymentInstruction,
    sender_key: PublicKey,
    sender_signature: Signature | None = None,
    sender: LedgerView,
    assets: Mapping[AssetId, Asset],
    now: Millis,
    sender_signer: SigningKey | None = None,
) -> TransitionResult:
    """Bank A's checks, then the hold; raise a :class:`LedgerError` and hold nothing on failure.

    ``sender_signer``: the sender's key when the bank keeps it (custody), instead of
    ``sender_signature``, as ``chain.check_append``'s ``party_signer``: it must be the sender's
    key (``bad_signature`` otherwise, where a bad signature is refused), and the instruction is
    signed with it only once every check passed, so the bank never signs for a customer a
    payment the rules refuse. That signature is not verified again: made with the key's own
    seed over these bytes, it verifies by construction (the tests prove it)."""
    check_route(instruction)
    leg = _check_known_assets(instruction, assets, instruction.origin)
    if sender.head.ledger != instruction.sender:
        raise BadRoute("the sender's ledger is not the one the instruction debits")
    if not sender.party_accepted:
        raise NotAccepted(f"the owner of {instruction.sender} has not been accepted (KYC)")
    if now >= instruction.expires_at:
        raise PaymentExpired("the payment expired before it could be held")
    if sender_signer is not None:
        if sender_signature is not None:
            raise TypeError("give the sender's signature or the sender's key, not both")
        if sender_signer.public_key != sender_key:
            raise BadEntrySignature(f"the key held for the owner of {instruction.sender} is not its key")
    elif sender_signature is not None:
        verify_message(sender_key, instruction.encoded, sender_signature, who="the sender")
    else:
        raise MissingSignature(f"the payment must be signed by the owner of {instruction.sender}")
    hold = Hold(key=payment_hold_key(instruction.id), asset=leg.asset, amount=instruction.amount)
    check_hold(view=sender, hold=hold)
    if sender_signer is not None:
        sender_signature = sign_payment(instruction, key=sender_signer)
    assert sender_signature is not None  # given, or made just above
    proof = PaymentProof(instruction=instruction, sender_key=sender_key, sender_signature=sender_signature)
    return TransitionResult(
        state=OutgoingPayment(proof=proof, phase=PaymentPhase.HELD),
        events=(
            HoldPlaced(ledger=instruction.sender, hold=hold),
            *(CosignRequested(bank=bank, proof=proof) for bank in instruction.banks[1:]),
        ),
    )


def payment_transition(
    state: OutgoingPayment, change: PaymentChange, *, origin_key: SigningKey
) -> TransitionResult:
    """Bank A's transitions. ``origin_key`` signs the void notice (and, on Finalise, the proof).

    Duplicate deliveries are no-ops; a co-signature after the deadline voids the payment rather
    than finalising it, because bank A must never sign after ``expires_at``.
    """
    instruction = state.instruction
    if state.phase is not PaymentPhase.HELD:
        if isinstance(change, CosignReceived) and state.phase is PaymentPhase.VOIDED:
            raise PaymentExpired(f"payment {instruction.id} was voided: {state.void_reason}")
        return TransitionResult(state=state)

    if change.now >= instruction.expires_at:
        return _voided(state, "expired", origin_key)
    if isinstance(change, ClockTick):
        return TransitionResult(state=state)
    if isinstance(change, CosignRefused):
        return _voided(state, f"refused by {change.bank}: {change.code}", origin_key)
    if isinstance(change, CosignReceived):
        if change.bank == instruction.origin or change.bank not in instruction.banks:
            raise BadRoute(f"{change.bank} is not a co-signer of payment {instruction.id}")
        if change.bank in state.proof.bank_signatures:
            return TransitionResult(state=state)
        verify_message(change.key, instruction.encoded, change.signature, who=change.bank)
        proof = state.proof.with_bank_signature(bank=change.bank, key=change.key, signature=change.signature)
        new_state = OutgoingPayment(proof=proof, phase=PaymentPhase.HELD)
        ready = set(proof.bank_signatures) == set(instruction.banks[1:])
        return TransitionResult(state=new_state, events=(ReadyToFinalise(instruction.id),) if ready else ())
    # Finalise
    missing = set(instruction.banks[1:]) - set(state.proof.bank_signatures)
    if missing:
        raise BadTransition(f"cannot finalise: waiting for {', '.join(sorted(missing))}")
    signature = sign_payment(instruction, key=change.origin_key)
    proof = state.proof.with_bank_signature(
        bank=instruction.origin, key=change.origin_key.public_key, signature=signature
    )
    # The hold is consumed by the debit entry (it releases payment:<id>), not released here.
    return TransitionResult(
        state=OutgoingPayment(proof=proof, phase=PaymentPhase.FINAL), events=(PaymentFinalised(proof),)
    )


def _voided(state: OutgoingPayment, reason: str, key: SigningKey) -> TransitionResult:
    instruction = state.instruction
    return TransitionResult(
        state=OutgoingPayment(proof=state.proof, phase=PaymentPhase.VOIDED, void_reason=reason),
        events=(
            HoldReleased(ledger=instruction.sender, key=payment_hold_key(instruction.id)),
            PaymentVoided(
                payment_id=instruction.id,
                reason=reason,
                void_signature=sign_void_notice(instruction, key=key),
            ),
        ),
    )


def void_notice(instruction: PaymentInstruction) -> Encoded:
    return encode(PAYMENT_VOID_KIND, {"payment": instruction.id})


def sign_void_notice(instruction: PaymentInstruction, *, key: SigningKey) -> Signature:
    return sign_message(key, void_notice(instruction))


def verify_void_notice(
    instruction: PaymentInstruction, *, origin_key: PublicKey, signature: Signature
) -> None:
    verify_message(origin_key, void_notice(instruction), signature, who=instruction.origin)


# --- Banks B (and correspondents): check, hold, co-sign ---------------------------------------


def check_cosign(
    *,
    instruction: PaymentInstruction,
    sender_key: PublicKey,
    sender_signature: Signature,
    bank: Namespace,
    debit: LedgerView,
    credit_accepted: bool,
    assets: Mapping[AssetId, Asset],
    now: Millis,
) -> Hold:
    """A co-signing bank's checks on its own leg; returns the hold to place on the leg's debit
    ledger (the previous bank's account here) before co-signing. ``credit_accepted`` is the KYC
    status of the leg's credit side (the recipient, or the next bank)."""
    check_route(instruction)
    if bank == instruction.origin:
        raise BadRoute("the origin bank does not co-sign; it finalises")
    leg = _check_known_assets(instruction, assets, bank)
    if now >= instruction.expires_at:
        raise PaymentExpired("the payment expired before it could be co-signed")
    if debit.head.ledger != leg.debit:
        raise BadRoute(f"the leg at {bank} debits {leg.debit}")
    if not credit_accepted:
        raise NotAccepted(f"{leg.credit} has not been accepted (KYC); it cannot receive payments")
    verify_message(sender_key, instruction.encoded, sender_signature, who="the sender")
    hold = Hold(key=payment_hold_key(instruction.id), asset=leg.asset, amount=instruction.amount)
    if hold.key in debit.holds:
        raise BadTransition(f"payment {instruction.id} is already held here")
    # The leg's debit side is the previous bank's account here: its floor is our credit line to it.
    check_credit_limit(
        peer_ledger=leg.debit,
        asset=leg.asset,
        balance=debit.balances.get(leg.asset, 0),
        held=sum(h.amount for h in debit.holds.values() if h.asset == leg.asset),
        amount=instruction.amount,
        limit=debit.credit_lines.get(leg.asset, 0),
    )
    return hold


def cosign_payment(instruction: PaymentInstruction, *, key: SigningKey) -> Signature:
    return sign_payment(instruction, key=key)


# --- Appending a leg on the final proof --------------------------------------------------------


def plan_leg_entries(
    *, proof: PaymentProof, bank: Namespace, debit_head: ChainHead, credit_head: ChainHead, time: Millis
) -> tuple[Entry, Entry]:
    """The debit and credit entries of ``bank``'s leg; lock the two rows in sorted-id order.
    Call :func:`verify_payment_proof` first: the entries are authorised by the proof."""
    instruction = proof.instruction
    index = instruction.banks.index(bank) if bank in instruction.banks else -1
    if index < 0:
        raise BadRoute(f"{bank} is not on this payment's route")
    leg = instruction.legs[index]
    if (debit_head.ledger, credit_head.ledger) != (leg.debit, leg.credit):
        raise BadRoute(f"the leg at {bank} moves {leg.debit} -> {leg.credit}")
    common = {
        "payment": instruction.id,
        "leg": index,
        "asset": leg.asset,
        "amount": amount_to_wire(instruction.amount),
    }
    return (
        next_entry(
            head=debit_head,
            kind="payment",
            body={**common, "side": "debit", "counterparty": leg.credit},
            time=time,
        ),
        next_entry(
            head=credit_head,
            kind="payment",
            body={**common, "side": "credit", "counterparty": leg.debit},
            time=time,
        ),
    )
