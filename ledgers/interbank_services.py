"""Payments between banks (seed 003 Pic. 4) over the signed node-to-node transport.

Bank A (origin), :func:`payment_interbank_send`:

1. one transaction: lock the sender's ledger, check and hold (``start_outgoing_payment``);
2. no transaction open: ask bank B to co-sign (``POST /node-api/ledgers/payments/cosign``);
3. one transaction: lock sender and B's account here (lock order), apply B's answer to the
   state machine (``payment_transition``); on the co-signature A signs last and appends its leg,
   on a refusal (or no answer) A voids and releases the hold;
4. after commit: send B the final proof (B appends its leg) or the signed void notice (B releases
   its hold); if B cannot be reached, a Celery task retries.

Bank B (co-signer), called by the node API: :func:`payment_cosign` (check recipient KYC and the
credit limit granted to A, hold on A's account here, sign), :func:`payment_apply_final` (verify
the three signatures, append B's leg), :func:`payment_apply_void` (release on A's signed notice).
A's signature on both a final proof and a void notice is kept as a fraud proof.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from ledgers.errors import IdempotencyKeyReused, PeerRefused, error_for_code
from ledgers.models import FraudProof, Hold, InterbankPayment, Ledger, LedgerOwner, PaymentRole
from ledgers.protocol import chain as chain_rules
from ledgers.protocol import fraud, interbank
from ledgers.protocol.errors import BadRoute, BadTransition, LedgerError, UnknownLedger
from ledgers.protocol.identifiers import AssetId, LedgerId, Namespace
from ledgers.services import (
    _apply,
    _assets,
    _load_state,
    _lock_ledgers,
    _save,
    bank_key,
    bank_namespace,
    ledger_open,
    now_millis,
)
from settlement import bulk
from settlement.models import Peer, PeerKey
from settlement.protocol.signing import PublicKey, Signature, SigningKey
from settlement.transport import PeerUnreachable, peer_request

logger = logging.getLogger("parsec.ledgers")

# No Idempotency-Key on these calls: every handler is idempotent by payment id already (the same
# signature again, a final payment stays final, a void releases nothing twice), and the stored
# answer would cost bank B two more writes on every payment.
COSIGN_PATH = "/node-api/ledgers/payments/cosign"
FINAL_PATH = "/node-api/ledgers/payments/final"
VOID_PATH = "/node-api/ledgers/payments/void"
STATUS_PATH = "/node-api/ledgers/payments/status"
# A co-signer asks the origin about a payment still held this long after its deadline.
STATUS_GRACE_MS = 5_000
# The origin sends a final proof again when the co-signer has not confirmed it this long after.
UNCONFIRMED_RESEND_MS = 10_000
COSIGN_BATCH_PATH = "/node-api/ledgers/payments/cosign-batch"
FINAL_BATCH_PATH = "/node-api/ledgers/payments/final-batch"
DEFAULT_EXPIRY_MS = 30_000


# The look-ups every payment call makes are written as SQL (Model.objects.raw): the ORM compiled
# each of them again on every call, which cost more than the query itself.


def peer_for(namespace: str) -> Peer:
    peer = next(iter(Peer.objects.raw("SELECT * FROM settlement_peer WHERE domain = %s", [namespace])), None)
    if peer is None:
        raise BadRoute(f"{namespace} is not a peer of this bank")
    return peer


def peer_public_key(peer: Peer) -> PublicKey:
    key = next(
        iter(
            PeerKey.objects.raw(
                "SELECT * FROM settlement_peerkey WHERE peer_id = %s AND valid_until IS NULL "
                "ORDER BY valid_from DESC LIMIT 1",
                [peer.pk],
            )
        ),
        None,
    )
    if key is None:
        raise BadRoute(f"{peer.domain} has no current signing key here")
    return PublicKey(bytes.fromhex(key.public))


def peer_account(peer: Peer) -> Ledger:
    """The ledger this bank keeps for ``peer`` (``ubi:<us>:bank.<peer>``), opened on first use."""
    ubi = f"ubi:{bank_namespace()}:bank.{peer.domain}"
    found = next(iter(Ledger.objects.raw("SELECT * FROM ledgers_ledger WHERE ubi = %s", [ubi])), None)
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return ledger_open(name=f"bank.{peer.domain}", peer=peer, actor="system")
    except (IntegrityError, LedgerError):
        return Ledger.objects.get(ubi=ubi)


def _sync_credit_line(state: Any, ledger: Ledger, peer: Peer, asset: AssetId) -> None:
    """The credit line of a peer's account here is the PeerCreditLimit the operator set."""
    with connection.cursor() as cursor:
        # Written SQL: asked on every co-sign and final batch, where compiling the ORM query
        # cost more than running it.
        cursor.execute(
            'SELECT "limit" FROM settlement_peercreditlimit WHERE peer_id = %s AND asset = %s',
            [peer.pk, asset],
        )
        found = cursor.fetchone()
    limit = found[0] if found else None
    if state.credit_lines[ledger.pk].get(asset, 0) == int(limit or 0):
        return  # the balance row already carries it (no row: no credit line, and none granted)
    state.credit_lines[ledger.pk] = {**state.credit_lines[ledger.pk], asset: int(limit or 0)}
    asset_id = next(pk for pk, row in state.assets_by_id.items() if row.uai == asset)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledgers_balance (ledger_id, asset_id, amount, credit_line) VALUES (%s, %s, 0, %s) "
            "ON CONFLICT (ledger_id, asset_id) DO UPDATE SET credit_line = EXCLUDED.credit_line",
            [ledger.pk, asset_id, int(limit or 0)],
        )


# --- bank A ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterbankRequest:
    """A payment to a party of another bank. ``asset`` is ours (the sender's), ``recipient_asset``
    the recipient bank's IOU of the same currency. A self-custody sender signs the instruction
    itself and sends ``sender_signature`` with the ``created_at``/``expires_at`` it signed."""

    reference: str
    sender: str
    recipient: str
    asset: str
    recipient_asset: str
    amount: object
    expires_in_ms: int = DEFAULT_EXPIRY_MS
    sender_signature: Signature | None = None
    created_at: int | None = None
    expires_at: int | None = None
    # Through a correspondent (Pic. 5/6): its IOU of the same currency; see correspondent_services.
    correspondent_asset: str | None = None


def _sender_key(ledger: Ledger) -> tuple[PublicKey, Any]:
    from ledgers.services import party_public_key, party_signer

    return party_public_key(ledger), party_signer(ledger)


def _hold(request: InterbankRequest) -> tuple[InterbankPayment, bool]:
    """Bank A's first phase for one payment; ``True`` when it was held now (not a replay)."""
    payment, created = _hold_many([request])[0]
    return payment, created


@transaction.atomic
def _hold_many(
    requests: list[InterbankRequest], states: dict[str, interbank.OutgoingPayment] | None = None
) -> list[tuple[InterbankPayment, bool]]:
    """Check and hold many payments in one transaction: every sender locked once in lock order
    (a concurrent finalisation locks them in the same order, so neither waits for the other in a
    cycle), the checks in memory (each hold counts for the next), holds and payments written in
    bulk. All or nothing: the first refusal raises. A replayed reference returns its payment.
    ``states`` receives the state machine of each payment held now, by payment id, so the
    caller carries on from it instead of parsing the stored proof again."""
    from ledgers.protocol.errors import UnknownAsset
    from ledgers.protocol.identifiers import asset_issuer, parse_asset_id
    from ledgers.services import minor_units

    senders = _ids_of_ledgers({request.sender for request in requests})
    accounts: dict[str, Ledger] = {}
    for request in requests:
        if request.sender not in senders:
            raise UnknownLedger(f"{request.sender} is not a ledger kept by this bank")
        try:
            namespace = asset_issuer(parse_asset_id(request.correspondent_asset or request.recipient_asset))
        except LedgerError as error:
            raise BadRoute(str(error)) from error
        if namespace not in accounts:
            accounts[namespace] = peer_account(peer_for(namespace))
    # Only the senders: a hold changes nothing on the peer bank's account here (its row is
    # referred to, which takes no lock that waits on a payment being finalised), so holds and
    # finalisations of other payments run side by side. Lock order stays: sorted UBIs.
    locked = _lock_ledgers(senders.values())
    existing: dict[tuple[int, str], InterbankPayment | int] = {
        (row.debit_ledger_id, row.reference): row
        for row in InterbankPayment.objects.raw(
            "SELECT * FROM ledgers_interbankpayment WHERE role = %s AND debit_ledger_id = ANY(%s) "
            "AND reference = ANY(%s)",
            [PaymentRole.ORIGIN.value, list(senders.values()), [request.reference for request in requests]],
        )
    }
    assets_by_id, assets = _assets()
    by_uai = {row.uai: row for row in assets_by_id.values()}
    state = _load_state(locked, assets_by_id)
    now = now_millis()
    expiry_base = timezone.now()
    holds: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
    # A payment held by an earlier call, or the place in ``payments`` of one held now (its row
    # is written below); the same reference twice in a batch is held once, as a replay.
    out: list[tuple[InterbankPayment | int, bool]] = []
    # What each reference held in this call asked for: a repeat must ask for the same thing.
    asked: dict[tuple[int, str], tuple[str, tuple[str, ...], int]] = {}
    for request in requests:
        sender_id = senders[request.sender]
        asset = by_uai.get(request.asset)
        if asset is None:
            raise UnknownAsset(f"{request.asset} is not an asset this node knows")
        minor = minor_units(request.amount, decimals=asset.decimals)
        key = (sender_id, request.reference)
        first = existing.get(key)
        if first is not None:
            _check_replay(request, minor, asked[key] if isinstance(first, int) else _asked_by(first))
            out.append((first, False))
            continue
        created = request.created_at if request.created_at is not None else now
        expires = request.expires_at if request.expires_at is not None else created + request.expires_in_ms
        instruction = interbank.plan_route(
            reference=request.reference,
            sender=LedgerId(request.sender),
            recipient=_ledger_id(request.recipient),
            amount=minor,
            assets=[
                AssetId(request.asset),
                *([AssetId(request.correspondent_asset)] if request.correspondent_asset else []),
                AssetId(request.recipient_asset),
            ],
            created_at=chain_rules.Millis(created),
            expires_at=chain_rules.Millis(expires),
        )
        sender = locked[sender_id]
        public, signer = _sender_key(sender)
        signature = request.sender_signature
        if signature is None and signer is None:
            raise BadRoute(
                f"{request.sender}'s owner holds its own key: send its signature on the instruction"
            )
        # A custodial sender's instruction is signed by the rules once it passed its checks,
        # and not verified again (start_outgoing_payment's sender_signer).
        result = interbank.start_outgoing_payment(
            instruction=instruction,
            sender_key=public,
            sender_signature=signature,
            sender=state.view(sender_id),
            assets=assets,
            now=now,
            sender_signer=signer if signature is None else None,
        )
        for event in result.events:
            if isinstance(event, interbank.HoldPlaced):
                state.holds[sender_id] = {**state.holds[sender_id], event.hold.key: event.hold}
                holds.append(
                    bulk.row_of(
                        Hold,
                        ledger_id=sender_id,
                        key=event.hold.key,
                        asset_id=asset.pk,
                        amount=event.hold.amount,
                        expires_at=expiry_base + timedelta(milliseconds=max(0, expires - now)),
                        created_at=expiry_base,
                    )
                )
        payment = bulk.row_of(
            InterbankPayment,
            payment_id=instruction.id,
            reference=request.reference,
            role=PaymentRole.ORIGIN.value,
            phase=interbank.PaymentPhase.HELD.value,
            proof=result.state.proof.to_json(),
            amount=minor,
            debit_ledger_id=sender_id,
            credit_ledger_id=accounts[instruction.banks[1]].pk,
            expires_at=expires,
            void_reason="",
            void_signature="",
            peer_confirmed=False,
            created_at=expiry_base,
            updated_at=expiry_base,
        )
        existing[key] = len(payments)
        asked[key] = _asked_by_instruction(instruction, minor)
        if states is not None:
            states[instruction.id] = result.state
        out.append((len(payments), True))
        payments.append(payment)
    # Rows, not model objects: building two of them per payment cost more than their COPY. The
    # holds' ids are never read (append_rows: one statement); the payments come back loaded.
    bulk.append_rows(Hold, holds)
    written = bulk.copy_in(InterbankPayment, payments)
    return [(written[item] if isinstance(item, int) else item, created) for item, created in out]


def _ids_of_ledgers(ubis: Iterable[str]) -> dict[str, int]:
    """UBI -> id of those of ``ubis`` kept here, in one query with one array parameter."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ubi, id FROM ledgers_ledger WHERE ubi = ANY(%s)", [list(ubis)])
        return dict(cursor.fetchall())


def _asked_by_instruction(
    instruction: interbank.PaymentInstruction, minor: int
) -> tuple[str, tuple[str, ...], int]:
    """What a payment asks for, as a replay of its reference is compared: recipient, the assets
    of its route, amount (not its times: a client retrying later sends new ones)."""
    return (str(instruction.legs[-1].credit), tuple(str(leg.asset) for leg in instruction.legs), minor)


def _asked_by(row: InterbankPayment) -> tuple[str, tuple[str, ...], int]:
    """:func:`_asked_by_instruction` of a stored payment, read from its proof's instruction."""
    legs = row.proof["instruction"]["legs"]
    return (legs[-1]["credit"], tuple(leg["asset"] for leg in legs), row.amount)


def _check_replay(request: InterbankRequest, minor: int, first: tuple[str, tuple[str, ...], int]) -> None:
    """A reference used again (by an earlier call, or earlier in this one) must ask for the
    payment it asked for the first time: a client that reused it for another payment is refused,
    not answered with the first one as if this one had been made."""
    route = [request.asset, *([request.correspondent_asset] if request.correspondent_asset else [])]
    if first != (str(_ledger_id(request.recipient)), (*route, request.recipient_asset), minor):
        raise IdempotencyKeyReused(
            f"reference {request.reference!r} was used for a different payment from {request.sender}"
        )


def _ledger_id(text: str) -> LedgerId:
    from ledgers.protocol.identifiers import parse_ledger_id

    return parse_ledger_id(text)


def _state_of(payment: InterbankPayment) -> interbank.OutgoingPayment:
    return interbank.OutgoingPayment(
        proof=interbank.PaymentProof.from_json(payment.proof),
        phase=interbank.PaymentPhase(payment.phase),
        void_reason=payment.void_reason or None,
    )


@transaction.atomic
def payment_origin_transition(*, payment_id: str, change: Any, deliver: bool = True) -> InterbankPayment:
    """Apply one change to bank A's state machine under the locks, and carry out what it decides:
    finalise and append A's leg, or void and release the hold. Safe to run twice."""
    row = InterbankPayment.objects.get(payment_id=payment_id, role=PaymentRole.ORIGIN)
    locked = _lock_ledgers([row.debit_ledger_id, row.credit_ledger_id])
    row = InterbankPayment.objects.select_for_update().get(pk=row.pk)
    key = bank_key()
    result = interbank.payment_transition(_state_of(row), change, origin_key=key)
    events = list(result.events)
    state_after = result.state
    if any(isinstance(event, interbank.ReadyToFinalise) for event in events):
        final = interbank.payment_transition(
            state_after, interbank.Finalise(origin_key=key, now=now_millis()), origin_key=key
        )
        events += final.events
        state_after = final.state
    assets_by_id, assets = _assets()
    for event in events:
        if isinstance(event, interbank.PaymentFinalised):
            _append_leg(_load_state(locked, assets_by_id), row, event.proof, assets, key)
        elif isinstance(event, interbank.HoldReleased):
            Hold.objects.filter(ledger_id=row.debit_ledger_id, key=event.key).delete()
        elif isinstance(event, interbank.PaymentVoided):
            row.void_reason = event.reason[:300]
            row.void_signature = event.void_signature.hex()
    row.phase = state_after.phase
    row.proof = state_after.proof.to_json()
    row.updated_at = timezone.now()
    row.save(update_fields=["phase", "proof", "void_reason", "void_signature", "updated_at"])
    if deliver and row.phase == interbank.PaymentPhase.FINAL:
        transaction.on_commit(functools.partial(_final_courier.send, [row.payment_id]))
    elif deliver and row.phase == interbank.PaymentPhase.VOIDED:
        transaction.on_commit(lambda: _deliver_later(row.payment_id))
    return row


def _append_leg(
    state: Any, row: InterbankPayment, proof: interbank.PaymentProof, assets: Any, key: SigningKey
) -> None:
    """Append this bank's leg of a final payment (both entries or neither) and save."""
    checked = _check_leg(state, row, proof, assets, key)
    for ledger_id, entry in checked:
        _apply(state, ledger_id, entry)
    _save(state, checked)


def _deliver_later(payment_id: str) -> None:
    """Tell the co-signer the outcome now; if it cannot be reached, a task keeps trying."""
    try:
        payment_deliver_outcome(payment_id=payment_id)
    except (PeerUnreachable, LedgerError) as error:
        logger.warning("payment %s: outcome not delivered yet (%s); a task retries", payment_id[:16], error)
        from ledgers.tasks import payment_deliver

        payment_deliver.apply_async(args=(payment_id,), countdown=2)


class _FinalCourier:
    """Bank A hands final proofs to the co-signers off the payer's path, many per request.

    A payment is final once A signed it (it then carries all three signatures); B appends its
    leg when the proof reaches it. So the payer does not wait for that third round trip: after
    commit the payment ids go here, and one thread per process sends whatever has gathered as
    one ``final-batch`` request per peer (while it does, the next payments gather). What cannot
    be delivered goes to the ``payment_deliver`` task, which retries; beat sends again anything
    left unconfirmed (``payments_void_expired``), and B asks A itself past the deadline."""

    idle_seconds = 30.0
    linger_seconds = 0.05

    def __init__(self) -> None:
        self.wanted = threading.Event()
        self.lock = threading.Lock()
        self.waiting: list[str] = []
        self.thread: threading.Thread | None = None

    def send(self, payment_ids: list[str]) -> None:
        with self.lock:
            self.waiting.extend(payment_ids)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="ledgers-final-courier", daemon=True)
                self.thread.start()
        self.wanted.set()

    def run(self) -> None:
        while self.wanted.wait(timeout=self.idle_seconds):
            try:
                # The connection is kept while finals keep coming (a busy bank sends tens a
                # second; a new PostgreSQL session each time cost more than the delivery) and
                # closed once none came for ``linger_seconds``: no session is held idle.
                while self.wanted.wait(timeout=self.linger_seconds):
                    self.wanted.clear()
                    with self.lock:
                        payment_ids, self.waiting = self.waiting, []
                    close_old_connections()  # broken or old: dropped, as around a request
                    try:
                        _deliver_finals(payment_ids)
                    except Exception:
                        logger.exception("final proofs not delivered yet; the payment_deliver task retries")
                        _deliver_by_task(payment_ids)
            finally:
                connection.close()
        with self.lock:
            self.thread = None
            leftover, self.waiting = self.waiting, []
        if leftover:
            self.send(leftover)


_final_courier = _FinalCourier()


def _deliver_by_task(payment_ids: list[str]) -> None:
    from ledgers.tasks import payment_deliver

    for payment_id in payment_ids:
        payment_deliver.apply_async(args=(payment_id,), countdown=2)


def _deliver_finals(payment_ids: list[str]) -> None:
    """Send the final proofs of these payments (ours, final, not yet confirmed) to their
    co-signers: one request per peer and up to 5,000 proofs; mark them confirmed on success."""
    with connection.cursor() as cursor:
        # Written SQL, and the co-signer read from the stored proof by PostgreSQL: parsing each
        # instruction (and hashing it again) only to find its second bank cost more than sending.
        cursor.execute(
            "SELECT id, payment_id, proof::text, proof #>> '{instruction,legs,1,bank}' "
            "FROM ledgers_interbankpayment WHERE payment_id = ANY(%s) AND role = %s AND phase = %s "
            "AND NOT peer_confirmed",
            [payment_ids, PaymentRole.ORIGIN.value, interbank.PaymentPhase.FINAL.value],
        )
        rows = cursor.fetchall()
    by_peer: dict[str, list[tuple[int, str, Any]]] = {}
    for pk, payment_id, proof_text, co_signer in rows:
        # Our own stored proof: its second leg's bank is the co-signer (the route was checked).
        by_peer.setdefault(co_signer, []).append((pk, payment_id, json.loads(proof_text)))
    for domain, items in by_peer.items():
        for start in range(0, len(items), 5000):
            chunk = items[start : start + 5000]
            try:
                answer = peer_request(
                    peer_for(domain),
                    "POST",
                    FINAL_BATCH_PATH,
                    json_body={"proofs": [proof for _, _, proof in chunk]},
                    timeout=30.0,
                )
                delivered = answer.ok
                if not delivered:
                    logger.warning(
                        "final proofs refused by %s (%s): %s", domain, answer.status, answer.body[:300]
                    )
            except (PeerUnreachable, LedgerError) as error:
                logger.warning("final proofs not delivered to %s: %s", domain, error)
                delivered = False
            if delivered:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE ledgers_interbankpayment SET peer_confirmed = true WHERE id = ANY(%s)",
                        [[pk for pk, _, _ in chunk]],
                    )
            else:
                _deliver_by_task([payment_id for _, payment_id, _ in chunk])


def payment_deliver_outcome(*, payment_id: str) -> None:
    """Send B the final proof, or A's signed void notice. Idempotent at both ends."""
    row = InterbankPayment.objects.get(payment_id=payment_id, role=PaymentRole.ORIGIN)
    if row.peer_confirmed or row.phase == interbank.PaymentPhase.HELD:
        return
    proof = interbank.PaymentProof.from_json(row.proof)
    peer = peer_for(proof.instruction.banks[1])
    if row.phase == interbank.PaymentPhase.FINAL:
        answer = peer_request(peer, "POST", FINAL_PATH, json_body={"proof": row.proof})
    else:
        answer = peer_request(
            peer,
            "POST",
            VOID_PATH,
            json_body={"instruction": proof.instruction.to_json(), "signature": row.void_signature},
        )
    if not answer.ok:
        raise PeerRefused(
            f"{peer.domain} answered {answer.status}: {answer.body[:200].decode(errors='replace')}"
        )
    InterbankPayment.objects.filter(pk=row.pk).update(peer_confirmed=True)


def payment_interbank_send(*, request: InterbankRequest, actor: Any = None) -> InterbankPayment:
    """The whole of bank A's side; returns the payment once final, raises if it was refused
    (the hold released, nothing appended). A replay of the reference returns the first payment."""
    if not isinstance(request.reference, str) or not 0 < len(request.reference) <= 200:
        raise BadRoute("the idempotency key must be a non-empty string of at most 200 characters")
    payment, _ = _hold(request)
    if payment.phase == interbank.PaymentPhase.HELD:
        proof = interbank.PaymentProof.from_json(payment.proof)
        peer = peer_for(proof.instruction.banks[1])
        change: Any
        try:
            answer = peer_request(
                peer,
                "POST",
                COSIGN_PATH,
                json_body={"proof": payment.proof},
            )
        except PeerUnreachable:
            change = interbank.CosignRefused(
                bank=Namespace(peer.domain), code="peer_unreachable", now=now_millis()
            )
        else:
            body = _json_or_empty(answer)
            if answer.ok and isinstance(body.get("signature"), str):
                change = interbank.CosignReceived(
                    bank=Namespace(peer.domain),
                    key=peer_public_key(peer),
                    signature=Signature(bytes.fromhex(body["signature"])),
                    now=now_millis(),
                )
            else:
                error = body.get("error")
                code = str(
                    (error.get("code") if isinstance(error, dict) else None) or f"http_{answer.status}"
                )
                change = interbank.CosignRefused(bank=Namespace(peer.domain), code=code, now=now_millis())
        try:
            payment = payment_origin_transition(payment_id=payment.payment_id, change=change)
        except LedgerError as error:
            # A co-signature that does not verify is a refusal too; void so the hold is released.
            payment = payment_origin_transition(
                payment_id=payment.payment_id,
                change=interbank.CosignRefused(
                    bank=Namespace(peer.domain), code=error.code, now=now_millis()
                ),
            )
    if payment.phase == interbank.PaymentPhase.VOIDED:
        reason = payment.void_reason or "voided"
        # The state machine words it "refused by <bank>: <code>" or "expired".
        code = reason.split(": ", 1)[1] if reason.startswith("refused by ") else "payment_expired"
        raise error_for_code(code, f"the payment was voided and its hold released: {reason}")
    return payment


def _change_for(peer: Peer, body: Any, status: int, key: PublicKey | None = None) -> Any:
    """Bank B's answer as a change of A's state machine: its co-signature or its refusal."""
    if isinstance(body, dict) and isinstance(body.get("signature"), str) and 200 <= status < 300:
        return interbank.CosignReceived(
            bank=Namespace(peer.domain),
            key=key or peer_public_key(peer),
            signature=Signature(bytes.fromhex(body["signature"])),
            now=now_millis(),
        )
    error = body.get("error") if isinstance(body, dict) else None
    code = str((error.get("code") if isinstance(error, dict) else None) or f"http_{status}")
    return interbank.CosignRefused(bank=Namespace(peer.domain), code=code, now=now_millis())


def payment_interbank_send_batch(
    *, requests: list[InterbankRequest], actor: Any = None
) -> list[InterbankPayment]:
    """Many payments to one peer bank with one round trip on the payer's path: hold them all
    (one transaction), one co-sign request, finalise all (one transaction); the final proofs go
    to B in bulk from the courier. Holding is all or nothing; after that each payment is final
    or voided on its own (a refused one is voided and its hold released). Replays return the
    first payments."""
    if not requests:
        return []
    states: dict[str, interbank.OutgoingPayment] = {}
    held = [payment for payment, _ in _hold_many(requests, states)]
    for row in held:
        if row.payment_id not in states:  # a replay: its state as stored
            states[row.payment_id] = _state_of(row)
    banks = {states[row.payment_id].instruction.banks[1] for row in held}
    if len(banks) != 1:
        raise BadRoute("a batch pays parties of one other bank")
    peer = peer_for(banks.pop())
    pending = [row for row in held if row.phase == interbank.PaymentPhase.HELD]
    changes: dict[str, Any] = {}
    if pending:
        try:
            answer = peer_request(
                peer,
                "POST",
                COSIGN_BATCH_PATH,
                json_body={"proofs": [row.proof for row in pending]},
                timeout=30.0,
            )
            body = _json_or_empty(answer)
            results = body.get("results") if answer.ok else None
        except PeerUnreachable:
            results = None
        if not isinstance(results, list) or len(results) != len(pending):
            results = [{"error": {"code": "peer_unreachable"}}] * len(pending)
        peer_key = peer_public_key(peer)
        for row, result in zip(pending, results, strict=True):
            changes[row.payment_id] = _change_for(
                peer, result, 200 if "signature" in result else 409, key=peer_key
            )
    finals, settled = _finalise_many(pending, changes, peer, states) if pending else ([], [])
    if finals:
        # B gets the final proofs from the courier, in bulk, once they are committed.
        transaction.on_commit(functools.partial(_final_courier.send, [row.payment_id for row in finals]))
    by_id = {row.pk: row for row in held} | {row.pk: row for row in settled}
    return [by_id[row.pk] for row in held]


def _save_payments(rows: list[InterbankPayment]) -> None:
    """Phase, proof and void notice of many payments in one UPDATE (bulk_update's CASE over
    large JSON values costs more than the rest of a batch)."""
    if not rows:
        return
    from django.db import connection

    # One JSON document for all rows: as arrays, psycopg would escape every quote of every proof.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledgers_interbankpayment AS p SET phase = v.phase, proof = v.proof, "
            "void_reason = v.void_reason, void_signature = v.void_signature, updated_at = now() "
            "FROM jsonb_to_recordset(%s::jsonb) "
            "AS v(id bigint, phase varchar, proof jsonb, void_reason varchar, void_signature varchar) "
            "WHERE p.id = v.id",
            [
                json.dumps(
                    [
                        {
                            "id": row.pk,
                            "phase": str(row.phase),
                            "proof": row.proof,
                            "void_reason": row.void_reason,
                            "void_signature": row.void_signature,
                        }
                        for row in rows
                    ]
                )
            ],
        )


@transaction.atomic
def _finalise_many(
    pending: list[InterbankPayment],
    changes: dict[str, Any],
    peer: Peer,
    states: dict[str, interbank.OutgoingPayment],
) -> tuple[list[InterbankPayment], list[InterbankPayment]]:
    """Bank A's transitions for a batch in one transaction and one write: every row locked once,
    each payment finalised (A signs, its leg appended) or voided (hold released) on its own.
    Returns the final ones, and every row as it is now.

    ``pending`` are the rows as this call held them, ``states`` their state machines: after the
    locks only each row's phase is read again (the expiry task may have voided one meanwhile,
    which then is loaded whole); the proofs are not parsed a second time."""
    locked = _lock_ledgers(
        {row.debit_ledger_id for row in pending} | {row.credit_ledger_id for row in pending}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, phase FROM ledgers_interbankpayment WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [[row.pk for row in pending]],
        )
        phases = dict(cursor.fetchall())
    moved = [row.pk for row in pending if phases.get(row.pk) != interbank.PaymentPhase.HELD]
    reloaded = {row.pk: row for row in InterbankPayment.objects.filter(pk__in=moved)} if moved else {}
    rows = sorted((reloaded.get(row.pk, row) for row in pending), key=lambda row: row.pk)
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    key = bank_key()
    appended: list[tuple[int, chain_rules.Appended]] = []
    released: list[tuple[int, str]] = []
    finals: list[InterbankPayment] = []
    others: list[InterbankPayment] = []
    changed: list[InterbankPayment] = []
    for row in rows:
        if row.phase != interbank.PaymentPhase.HELD:
            (finals if row.phase == interbank.PaymentPhase.FINAL else others).append(row)
            continue
        current = states.get(row.payment_id) or _state_of(row)
        try:
            result = interbank.payment_transition(current, changes[row.payment_id], origin_key=key)
            events = list(result.events)
            after = result.state
            if any(isinstance(event, interbank.ReadyToFinalise) for event in events):
                final = interbank.payment_transition(
                    after, interbank.Finalise(origin_key=key, now=now_millis()), origin_key=key
                )
                events += final.events
                after = final.state
            checked: list[tuple[int, chain_rules.Appended]] = []
            for event in events:
                if isinstance(event, interbank.PaymentFinalised):
                    checked = _check_leg(state, row, event.proof, assets, key)
        except LedgerError as error:
            refusal = interbank.CosignRefused(bank=Namespace(peer.domain), code=error.code, now=now_millis())
            result = interbank.payment_transition(current, refusal, origin_key=key)
            events, after, checked = list(result.events), result.state, []
        for ledger_id, entry in checked:
            _apply(state, ledger_id, entry)
        appended += checked
        for event in events:
            if isinstance(event, interbank.HoldReleased):
                released.append((row.debit_ledger_id, event.key))
                state.holds[row.debit_ledger_id] = {
                    k: v for k, v in state.holds[row.debit_ledger_id].items() if k != event.key
                }
            elif isinstance(event, interbank.PaymentVoided):
                row.void_reason, row.void_signature = event.reason[:300], event.void_signature.hex()
        row.phase, row.proof, row.updated_at = after.phase, after.proof.to_json(), timezone.now()
        changed.append(row)
        (finals if row.phase == interbank.PaymentPhase.FINAL else others).append(row)
    if appended:
        _save(state, appended)
    if released:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM ledgers_hold h USING unnest(%s::bigint[], %s::varchar[]) AS r(ledger_id, key) "
                "WHERE h.ledger_id = r.ledger_id AND h.key = r.key",
                [[ledger_id for ledger_id, _ in released], [hold_key for _, hold_key in released]],
            )
    _save_payments(changed)
    for row in others:
        if row.phase == interbank.PaymentPhase.VOIDED:
            transaction.on_commit(functools.partial(_deliver_later, row.payment_id))
    return finals, rows


def _json_or_empty(answer: Any) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --- bank B ----------------------------------------------------------------------------------


def _leg_for_us(instruction: interbank.PaymentInstruction) -> interbank.Leg:
    for leg in instruction.legs:
        if leg.bank == bank_namespace():
            return leg
    raise BadRoute(f"{bank_namespace()} is not on this payment's route")


@transaction.atomic
def payment_cosign(*, peer: Peer, proof_json: Any) -> Signature:
    """Bank B: check our leg (recipient KYC, the credit limit we grant ``peer``), hold on the
    peer's account here, co-sign. The same request again gets the same signature."""
    from ledgers.correspondent_services import check_cosign_caller

    proof = interbank.PaymentProof.from_json(proof_json)
    instruction = proof.instruction
    check_cosign_caller(instruction, peer)  # the origin, or the correspondent before us
    leg = _leg_for_us(instruction)
    account = peer_account(peer)
    if leg.debit != account.ubi:
        raise BadRoute(f"our leg must debit {account.ubi}")
    recipient = Ledger.objects.filter(ubi=leg.credit).first()
    if recipient is None:
        raise UnknownLedger(f"{leg.credit} is not a ledger kept by this bank")
    locked = _lock_ledgers([account.pk, recipient.pk])
    existing = InterbankPayment.objects.filter(payment_id=instruction.id).first()
    key = bank_key()
    if existing is not None and existing.phase != interbank.PaymentPhase.VOIDED:
        return interbank.cosign_payment(instruction, key=key)
    if existing is not None:
        raise BadTransition(f"payment {instruction.id} was voided; it cannot be co-signed again")
    assets_by_id, assets = _assets()
    _known_asset(assets, leg.asset)
    state = _load_state(locked, assets_by_id)
    _sync_credit_line(state, account, peer, leg.asset)
    now = now_millis()
    hold = interbank.check_cosign(
        instruction=instruction,
        sender_key=proof.sender_key,
        sender_signature=proof.sender_signature,
        bank=Namespace(bank_namespace()),
        debit=state.view(account.pk),
        credit_accepted=_accepted(locked[recipient.pk]),
        assets=assets,
        now=now,
    )
    asset = next(row for row in assets_by_id.values() if row.uai == hold.asset)
    Hold.objects.create(
        ledger=account,
        key=hold.key,
        asset=asset,
        amount=hold.amount,
        expires_at=timezone.now() + timedelta(milliseconds=max(0, instruction.expires_at - now)),
    )
    signature = interbank.cosign_payment(instruction, key=key)
    InterbankPayment.objects.create(
        payment_id=instruction.id,
        reference=instruction.reference,
        role=PaymentRole.COSIGNER,
        phase=interbank.PaymentPhase.HELD,
        proof=proof.with_bank_signature(
            bank=Namespace(bank_namespace()), key=key.public_key, signature=signature
        ).to_json(),
        amount=instruction.amount,
        debit_ledger=account,
        credit_ledger=recipient,
        expires_at=instruction.expires_at,
    )
    return signature


def _batch_of(proofs: Any) -> list[Any]:
    if not isinstance(proofs, list) or not 0 < len(proofs) <= 5000:
        raise BadRoute("proofs must be a list of 1 to 5000 payment proofs")
    return proofs


def _error(error: LedgerError) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": str(error)}}


def _known_asset(assets: Any, asset: AssetId) -> None:
    if asset not in assets:
        from ledgers.protocol.errors import UnknownAsset

        raise UnknownAsset(f"{asset} is not an asset this node knows")


@transaction.atomic
def payment_cosign_batch(*, peer: Peer, proofs: Any) -> list[dict[str, Any]]:
    """Bank B: co-sign many payments in one transaction with a fixed number of statements: every
    row locked once, the checks run in memory (each payment's hold counts for the next), holds
    and payments written in bulk. Each payment gets a signature or its own error."""
    items: list[tuple[interbank.PaymentProof, interbank.Leg] | LedgerError] = []
    for value in _batch_of(proofs):
        try:
            proof = interbank.PaymentProof.from_json(value)
            if proof.instruction.origin != peer.domain:
                raise BadRoute("only the origin bank may ask for a co-signature")
            items.append((proof, _leg_for_us(proof.instruction)))
        except LedgerError as error:
            items.append(error)
    account = peer_account(peer)
    wanted = {item[1].credit for item in items if not isinstance(item, LedgerError)}
    ids = _ids_of_ledgers(wanted)
    locked = _lock_ledgers([account.pk, *ids.values()])
    payment_ids = [item[0].instruction.id for item in items if not isinstance(item, LedgerError)]
    existing = {
        row.payment_id: row
        for row in InterbankPayment.objects.raw(
            "SELECT * FROM ledgers_interbankpayment WHERE payment_id = ANY(%s)", [payment_ids]
        )
    }
    assets_by_id, assets = _assets()
    by_uai = {asset.uai: asset for asset in assets_by_id.values()}
    state = _load_state(locked, assets_by_id)
    for asset in {item[1].asset for item in items if not isinstance(item, LedgerError)} & set(assets):
        _sync_credit_line(state, account, peer, asset)
    key, now = bank_key(), now_millis()
    expiry_base = timezone.now()
    holds: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
    results: list[dict[str, Any]] = []
    signed: dict[str, Signature] = {}
    for item in items:
        if isinstance(item, LedgerError):
            results.append(_error(item))
            continue
        proof, leg = item
        instruction = proof.instruction
        try:
            if instruction.id in signed or (
                instruction.id in existing and existing[instruction.id].phase != interbank.PaymentPhase.VOIDED
            ):
                results.append({"signature": interbank.cosign_payment(instruction, key=key).hex()})
                continue
            if instruction.id in existing:
                raise BadTransition(f"payment {instruction.id} was voided; it cannot be co-signed again")
            if leg.debit != account.ubi:
                raise BadRoute(f"our leg must debit {account.ubi}")
            if leg.credit not in ids:
                raise UnknownLedger(f"{leg.credit} is not a ledger kept by this bank")
            _known_asset(assets, leg.asset)
            hold = interbank.check_cosign(
                instruction=instruction,
                sender_key=proof.sender_key,
                sender_signature=proof.sender_signature,
                bank=Namespace(bank_namespace()),
                debit=state.view(account.pk),
                credit_accepted=_accepted(locked[ids[leg.credit]]),
                assets=assets,
                now=now,
            )
        except LedgerError as error:
            results.append(_error(error))
            continue
        state.holds[account.pk] = {**state.holds[account.pk], hold.key: hold}
        signature = interbank.cosign_payment(instruction, key=key)
        signed[instruction.id] = signature
        holds.append(
            bulk.row_of(
                Hold,
                ledger_id=account.pk,
                key=hold.key,
                asset_id=by_uai[hold.asset].pk,
                amount=hold.amount,
                expires_at=expiry_base + timedelta(milliseconds=max(0, instruction.expires_at - now)),
                created_at=expiry_base,
            )
        )
        payments.append(
            bulk.row_of(
                InterbankPayment,
                payment_id=instruction.id,
                reference=instruction.reference,
                role=PaymentRole.COSIGNER.value,
                phase=interbank.PaymentPhase.HELD.value,
                proof=proof.with_bank_signature(
                    bank=Namespace(bank_namespace()), key=key.public_key, signature=signature
                ).to_json(),
                amount=instruction.amount,
                debit_ledger_id=account.pk,
                credit_ledger_id=ids[leg.credit],
                expires_at=instruction.expires_at,
                void_reason="",
                void_signature="",
                peer_confirmed=False,
                created_at=expiry_base,
                updated_at=expiry_base,
            )
        )
        results.append({"signature": signature.hex()})
    # Rows, not model objects (two per payment cost more than their COPY), and nobody reads
    # their ids here: one COPY statement each.
    bulk.append_rows(Hold, holds)
    bulk.append_rows(InterbankPayment, payments)
    return results


def _check_leg(
    state: Any, row: InterbankPayment, proof: interbank.PaymentProof, assets: Any, key: SigningKey
) -> list[tuple[int, chain_rules.Appended]]:
    """Both entries of this bank's leg, checked and co-signed, not yet applied: both or neither."""
    debit, credit = interbank.plan_leg_entries(
        proof=proof,
        bank=Namespace(bank_namespace()),
        debit_head=state.heads[row.debit_ledger_id],
        credit_head=state.heads[row.credit_ledger_id],
        time=now_millis(),
    )
    checked = []
    for ledger_id, entry in ((row.debit_ledger_id, debit), (row.credit_ledger_id, credit)):
        view = state.view(ledger_id)
        appended = chain_rules.check_append(
            head=view.head,
            entry=entry,
            party_key=view.party_key,
            party_signature=None,
            balances=view.balances,
            holds=view.holds,
            credit_lines=view.credit_lines,
            party_accepted=True,  # authorised by the proof; KYC was checked when it was held
            assets=assets,
            now=now_millis(),
        )
        checked.append((ledger_id, chain_rules.cosign(appended, validator_key=key)))
    return checked


def _through_a_correspondent(value: Any) -> bool:
    """A proof whose route has more than two banks (only for sorting; each path verifies it)."""
    instruction = value.get("instruction") if isinstance(value, dict) else None
    legs = instruction.get("legs") if isinstance(instruction, dict) else None
    return isinstance(legs, list) and len(legs) > 2


@transaction.atomic
def payment_apply_final_batch(*, peer: Peer, proofs: Any) -> list[dict[str, Any]]:
    """Bank B: append our legs of many final payments in one transaction and one write.

    A correspondent's proofs (rare) take the one-by-one path, which trusts the banks further
    down the route and passes each proof on; the rest go through the batch."""
    values = _batch_of(proofs)
    relayed = {index for index, value in enumerate(values) if _through_a_correspondent(value)}
    direct = [value for index, value in enumerate(values) if index not in relayed]
    direct_results = iter(_apply_direct_finals(peer=peer, proofs=direct) if direct else [])
    results: list[dict[str, Any]] = []
    for index, value in enumerate(values):
        if index not in relayed:
            results.append(next(direct_results))
            continue
        try:
            row = payment_apply_final(peer=peer, proof_json=value)
        except LedgerError as error:
            results.append(_error(error))
        else:
            results.append({"payment": row.payment_id, "phase": row.phase})
    return results


def _apply_direct_finals(*, peer: Peer, proofs: list[Any]) -> list[dict[str, Any]]:
    key = bank_key()
    trusted = {Namespace(peer.domain): peer_public_key(peer), Namespace(bank_namespace()): key.public_key}
    parsed: list[interbank.PaymentProof | LedgerError] = []
    for value in _batch_of(proofs):
        try:
            parsed.append(interbank.PaymentProof.from_json(value))
        except LedgerError as error:
            parsed.append(error)
    ids = [item.instruction.id for item in parsed if not isinstance(item, LedgerError)]
    rows = {
        row.payment_id: row
        for row in InterbankPayment.objects.raw(
            "SELECT * FROM ledgers_interbankpayment WHERE payment_id = ANY(%s) AND role = %s",
            [ids, PaymentRole.COSIGNER.value],
        )
    }
    # Checked before any lock is taken: against our own copy of each payment, as we co-signed it
    # (the sender's signature was verified then and ours made then; a co-signer's row keeps
    # those two whatever happens to it), so only the origin's signature is new
    # (verify_payment_proof's verified_before): two Ed25519 verifications fewer per payment.
    kept = {payment_id: interbank.PaymentProof.from_json(row.proof) for payment_id, row in rows.items()}
    items: list[interbank.PaymentProof | LedgerError] = []
    for item in parsed:
        if not isinstance(item, LedgerError):
            try:
                interbank.verify_payment_proof(
                    item, trusted_bank_keys=trusted, verified_before=kept.get(item.instruction.id)
                )
            except LedgerError as error:
                item = error
        items.append(item)
    locked = _lock_ledgers(
        {row.debit_ledger_id for row in rows.values()} | {row.credit_ledger_id for row in rows.values()}
    )
    # Under the locks, each payment's phase as it is now (a void notice may have come meanwhile).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, phase, void_signature FROM ledgers_interbankpayment WHERE id = ANY(%s) "
            "ORDER BY id FOR UPDATE",
            [[row.pk for row in rows.values()]],
        )
        now_as = {pk: (phase, void_signature) for pk, phase, void_signature in cursor.fetchall()}
    for row in rows.values():
        row.phase, row.void_signature = now_as[row.pk]
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    for payment_id, held in rows.items():
        if held.debit_ledger_id in locked:
            asset = _leg_for_us(kept[payment_id].instruction).asset
            if asset in assets and asset not in state.credit_lines[held.debit_ledger_id]:
                _sync_credit_line(state, locked[held.debit_ledger_id], peer, asset)
    appended: list[tuple[int, chain_rules.Appended]] = []
    updated, results = [], []
    for item in items:
        if isinstance(item, LedgerError):
            results.append(_error(item))
            continue
        found_row = rows.get(item.instruction.id)
        try:
            if found_row is None:
                raise BadTransition("we never co-signed this payment")
            row = found_row
            if row.phase == interbank.PaymentPhase.VOIDED:
                _keep_fraud_proof(item, row.void_signature)
                raise BadTransition("the origin bank voided this payment before; both signatures are kept")
            if row.phase != interbank.PaymentPhase.FINAL:
                checked = _check_leg(state, row, item, assets, key)
                for ledger_id, entry in checked:
                    _apply(state, ledger_id, entry)
                appended += checked
                row.phase, row.proof, row.updated_at = (
                    interbank.PaymentPhase.FINAL,
                    item.to_json(),
                    timezone.now(),
                )
                updated.append(row)
        except LedgerError as error:
            results.append(_error(error))
            continue
        results.append({"payment": row.payment_id, "phase": row.phase})
    if appended:
        _save(state, appended)
    _save_payments(updated)
    return results


def _accepted(ledger: Ledger) -> bool:
    if ledger.owner != LedgerOwner.COUNTERPARTY:
        return True
    assert ledger.counterparty is not None
    return bool(ledger.counterparty.is_accepted)


@transaction.atomic
def payment_apply_final(*, peer: Peer, proof_json: Any) -> InterbankPayment:
    """Bank B: the payment is final (sender, A and B signed): append our leg, consuming the hold.
    A correspondent then passes the proof on to the next bank."""
    from ledgers import correspondent_services

    proof = interbank.PaymentProof.from_json(proof_json)
    instruction = proof.instruction
    interbank.verify_payment_proof(
        proof, trusted_bank_keys=correspondent_services.trusted_bank_keys(proof, peer)
    )
    row = InterbankPayment.objects.filter(payment_id=instruction.id, role=PaymentRole.COSIGNER).first()
    if row is None:
        raise BadTransition("we never co-signed this payment")
    locked = _lock_ledgers([row.debit_ledger_id, row.credit_ledger_id])
    row = InterbankPayment.objects.select_for_update().get(pk=row.pk)
    if row.phase == interbank.PaymentPhase.FINAL:
        return row
    if row.phase == interbank.PaymentPhase.VOIDED:
        _keep_fraud_proof(proof, row.void_signature)
        raise BadTransition(
            "the origin bank voided this payment before; both signatures are kept as a fraud proof"
        )
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    _sync_credit_line(state, locked[row.debit_ledger_id], peer, _leg_for_us(instruction).asset)
    _append_leg(state, row, proof, assets, bank_key())
    row.phase, row.proof, row.updated_at = interbank.PaymentPhase.FINAL, proof.to_json(), timezone.now()
    row.save(update_fields=["phase", "proof", "updated_at"])
    correspondent_services.forward_outcome_on_commit(instruction, row.payment_id)
    return row


@transaction.atomic
def payment_apply_void(
    *, peer: Peer, instruction_json: Any, signature_hex: str, origin_key_hex: object = None
) -> InterbankPayment | None:
    """Bank B: release our hold on A's signed void notice (and only on it: A may have finalised).
    Through a correspondent, it relays the notice and vouches for A's key (``origin_key_hex``)."""
    from ledgers import correspondent_services

    instruction = interbank.PaymentInstruction.from_json(instruction_json)
    try:
        signature = Signature(bytes.fromhex(signature_hex))
    except ValueError as error:
        raise BadRoute("the void signature must be hex") from error
    origin_key = correspondent_services.origin_key_for_void(instruction, peer, origin_key_hex)
    interbank.verify_void_notice(instruction, origin_key=origin_key, signature=signature)
    row = InterbankPayment.objects.filter(payment_id=instruction.id, role=PaymentRole.COSIGNER).first()
    if row is None:
        return None  # never held here: nothing to release
    _lock_ledgers([row.debit_ledger_id, row.credit_ledger_id])
    row = InterbankPayment.objects.select_for_update().get(pk=row.pk)
    if row.phase == interbank.PaymentPhase.FINAL:
        _keep_fraud_proof(interbank.PaymentProof.from_json(row.proof), signature.hex())
        raise BadTransition("this payment is final here; the void notice is kept as a fraud proof")
    Hold.objects.filter(ledger_id=row.debit_ledger_id, key=f"payment:{instruction.id}").delete()
    row.phase, row.void_signature, row.updated_at = (
        interbank.PaymentPhase.VOIDED,
        signature.hex(),
        timezone.now(),
    )
    row.void_reason = "voided by the origin bank"
    row.save(update_fields=["phase", "void_signature", "void_reason", "updated_at"])
    correspondent_services.forward_outcome_on_commit(instruction, row.payment_id)
    return row


def _keep_fraud_proof(proof: interbank.PaymentProof, void_signature_hex: str) -> None:
    if not void_signature_hex:
        return
    document = fraud.voided_and_final_proof(
        proof=proof, void_signature=Signature(bytes.fromhex(void_signature_hex))
    )
    verdict = fraud.verify_fraud_proof(document)
    if verdict.proven:
        FraudProof.objects.create(
            kind=verdict.kind,
            document=document,
            proven=True,
            accused_key=verdict.accused_key,
            reason=verdict.reason,
        )


# --- expiry (Celery beat) ----------------------------------------------------------------------


def payment_status_for_peer(*, peer: Peer, instruction_json: Any) -> dict[str, Any]:
    """Bank A answers a co-signer about a payment: final (with the proof), voided (with A's signed
    void notice), or still held. Past the deadline A voids what it still holds, and signs a void
    notice even for a payment it never held: it can never finalise it any more (it refuses to
    hold or sign at or after ``expires_at``), so the co-signer may release its hold."""
    instruction = interbank.PaymentInstruction.from_json(instruction_json)
    if instruction.origin != bank_namespace() and bank_namespace() in instruction.banks:
        from ledgers.correspondent_services import relay_status

        return relay_status(peer=peer, instruction=instruction)  # we are the correspondent
    if instruction.origin != bank_namespace() or peer.domain not in instruction.banks:
        raise BadRoute("ask the origin bank, about a payment you are on the route of")
    expired = now_millis() >= instruction.expires_at
    row = InterbankPayment.objects.filter(payment_id=instruction.id, role=PaymentRole.ORIGIN).first()
    if row is not None and row.phase == interbank.PaymentPhase.HELD and expired:
        row = payment_origin_transition(
            payment_id=row.payment_id, change=interbank.ClockTick(now=now_millis())
        )
    if row is not None and row.phase == interbank.PaymentPhase.FINAL:
        return {"phase": "final", "proof": row.proof}
    if row is not None and row.phase == interbank.PaymentPhase.VOIDED:
        return {"phase": "voided", "signature": row.void_signature}
    if row is None and expired:
        return {"phase": "voided", "signature": interbank.sign_void_notice(instruction, key=bank_key()).hex()}
    return {"phase": "held"}


def _ask_origin(row: InterbankPayment) -> None:
    """Bank B, for a payment still held after its deadline: ask A, and apply its answer. Through a
    correspondent, the bank before us on the route is asked (it asks A in turn)."""
    from ledgers.correspondent_services import previous_bank

    instruction = interbank.PaymentProof.from_json(row.proof).instruction
    peer = peer_for(previous_bank(instruction))
    answer = peer_request(peer, "POST", STATUS_PATH, json_body={"instruction": instruction.to_json()})
    body = _json_or_empty(answer)
    if not answer.ok:
        return
    if body.get("phase") == "final":
        payment_apply_final(peer=peer, proof_json=body.get("proof"))
    elif body.get("phase") == "voided":
        payment_apply_void(
            peer=peer,
            instruction_json=instruction.to_json(),
            signature_hex=str(body.get("signature")),
            origin_key_hex=body.get("origin_key"),
        )


def payments_void_expired() -> int:
    """Bank A voids every payment still held at its deadline (it never signs after it), which
    releases the hold and tells the co-signer. Returns how many it voided."""
    now = now_millis()
    voided = 0
    for payment_id in InterbankPayment.objects.filter(
        role=PaymentRole.ORIGIN, phase=interbank.PaymentPhase.HELD, expires_at__lte=now
    ).values_list("payment_id", flat=True):
        payment_origin_transition(payment_id=payment_id, change=interbank.ClockTick(now=now_millis()))
        voided += 1
    # Co-signed here but never finished by the origin: only its signed word releases our hold.
    for row in InterbankPayment.objects.filter(
        role=PaymentRole.COSIGNER, phase=interbank.PaymentPhase.HELD, expires_at__lte=now - STATUS_GRACE_MS
    ):
        try:
            _ask_origin(row)
        except (PeerUnreachable, LedgerError) as error:
            logger.warning("payment %s: origin not asked yet (%s)", row.payment_id[:16], error)
    # Final here, but the co-signer never confirmed (the courier's process stopped, say).
    unconfirmed = list(
        InterbankPayment.objects.filter(
            role=PaymentRole.ORIGIN,
            phase=interbank.PaymentPhase.FINAL,
            peer_confirmed=False,
            updated_at__lte=timezone.now() - timedelta(milliseconds=UNCONFIRMED_RESEND_MS),
        ).values_list("payment_id", flat=True)[:5000]
    )
    if unconfirmed:
        _final_courier.send(unconfirmed)
    return voided
