"""Payments between banks through a correspondent bank (seed 003 Pic. 5 and 6).

The route is A (the sender's bank) -> B (the correspondent) -> C (the recipient's bank); the
instruction has one leg per bank (``ledgers.protocol.interbank.plan_route``):

* at A: sender -> B's account at A (A now owes B);
* at B: A's account at B -> C's account at B (A owes B, B owes C);
* at C: B's account at C -> recipient (B owes C).

A talks only to B and C only to B: A needs no relation with C. The hops:

1. A checks the sender and holds the amount (``interbank_services._hold_many``, one transaction);
2. A asks B to relay (``POST /node-api/ledgers/payments/relay``). B checks that C is its peer and
   the credit limit it grants A (``PeerCreditLimit``), holds on A's account at B, and asks C to
   co-sign (the ordinary ``/cosign``: C checks the recipient's KYC and the limit it grants B,
   holds on B's account at C, signs);
3. B signs only after C's signature arrived (so a refusal or silence from C lets B release its
   hold at once: without B's signature the payment can never be final) and answers A with both
   signatures, C's key vouched for by B's peer directory;
4. A signs last, before the deadline, and appends its leg (``payment_origin_transition``); the
   final proof goes to B, which verifies it, appends its leg and forwards the proof to C, which
   appends the recipient's credit. A void notice (A's signature) travels the same way.

Every leg is appended through ``interbank_services._append_leg`` -> ``services._save``, the same
path as every other entry. A co-signer that still holds past the deadline asks the bank before it
on the route (C asks B, B asks A), and releases only on the origin's signed void notice; the
correspondent vouches for the origin's key to C, which need not know A.

Route choice (:func:`route_assets`): an explicit ``via`` bank is used as given; otherwise a
recipient bank that is our peer is paid directly; otherwise every peer is asked
(``POST /node-api/ledgers/payments/route``) whether it is a peer of the recipient's bank and how
much more it lets us owe it, and the one with the most headroom that can carry the amount is
chosen (ties: the lower domain name). The shell builds routes with one correspondent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ledgers import interbank_services as direct
from ledgers.errors import NoRoute, PeerRefused, error_for_code
from ledgers.models import Asset, Balance, Hold, InterbankPayment, Ledger, PaymentRole
from ledgers.protocol import interbank
from ledgers.protocol.errors import BadRoute, BadTransition, LedgerError, PaymentExpired, UnknownAsset
from ledgers.protocol.identifiers import Namespace, ledger_namespace, parse_ledger_id
from ledgers.protocol.signed_objects import hex_bytes, verify_message
from ledgers.services import _assets, _load_state, _lock_ledgers, bank_key, bank_namespace, now_millis
from settlement.models import Peer, PeerCreditLimit
from settlement.protocol.signing import PublicKey, Signature
from settlement.transport import PeerUnreachable, peer_request

logger = logging.getLogger("parsec.ledgers")

RELAY_PATH = "/node-api/ledgers/payments/relay"
ROUTE_PATH = "/node-api/ledgers/payments/route"
# Route probes are answered from a few indexed rows; a peer slower than this is not a route.
ROUTE_PROBE_TIMEOUT_S = 3.0
# The correspondent waits for the next bank at most this long (and never past the deadline).
RELAY_TIMEOUT_S = 10.0


# --- where we stand on a route ---------------------------------------------------------------


def _our_index(instruction: interbank.PaymentInstruction) -> int:
    banks = instruction.banks
    if bank_namespace() not in banks:
        raise BadRoute(f"{bank_namespace()} is not on this payment's route")
    return banks.index(Namespace(bank_namespace()))


def previous_bank(instruction: interbank.PaymentInstruction) -> Namespace:
    """The bank that passed us this payment: the one we ask about it, the one we answer to."""
    index = _our_index(instruction)
    if index == 0:
        raise BadRoute("the origin bank has no bank before it on the route")
    return instruction.banks[index - 1]


def is_correspondent(instruction: interbank.PaymentInstruction) -> bool:
    """True when we are a bank in the middle of the route (neither origin nor last)."""
    index = _our_index(instruction)
    return 0 < index < len(instruction.banks) - 1


def check_cosign_caller(instruction: interbank.PaymentInstruction, peer: Peer) -> None:
    """``/cosign`` is for the last bank on the route, asked by the bank just before it (the
    origin on a direct route, the correspondent otherwise). A correspondent relays instead."""
    if is_correspondent(instruction):
        raise BadRoute(f"{bank_namespace()} is a correspondent on this route: ask it to relay")
    if previous_bank(instruction) != peer.domain:
        raise BadRoute("only the bank before us on the route may ask for a co-signature")


def _known_key(bank: str) -> PublicKey | None:
    if bank == bank_namespace():
        return bank_key().public_key
    peer = Peer.objects.filter(domain=bank).first()
    if peer is None:
        return None
    try:
        return direct.peer_public_key(peer)
    except BadRoute:
        return None


def trusted_bank_keys(proof: interbank.PaymentProof, peer: Peer) -> dict[Namespace, PublicKey]:
    """The keys a final proof must carry: ours, and every route bank's we know from our peer
    directory. A bank we have no relation with (the origin, seen from the recipient's bank) is
    taken as the proof names it: the peer handing us the proof verified that signature against
    its own directory before signing and appending, and it is the bank we are exposed to."""
    keys: dict[Namespace, PublicKey] = dict(proof.bank_keys)
    for bank in proof.instruction.banks:
        known = _known_key(bank)
        if known is not None:
            keys[bank] = known
    keys[Namespace(peer.domain)] = direct.peer_public_key(peer)
    return keys


def origin_key_for_void(
    instruction: interbank.PaymentInstruction, peer: Peer, origin_key_hex: object
) -> PublicKey:
    """The key that must have signed a void notice: the origin's, from our directory when it is
    our peer, else as vouched for by the bank before us on the route (which relays the notice)."""
    if instruction.origin == peer.domain:
        return direct.peer_public_key(peer)
    if previous_bank(instruction) != peer.domain:
        raise BadRoute("only the origin bank, or the bank before us on its route, may void a payment")
    known = _known_key(instruction.origin)
    if known is not None:
        return known
    return PublicKey(hex_bytes(origin_key_hex, length=32, what="origin_key", error=BadRoute))


# --- route choice (bank A) -------------------------------------------------------------------


def route_assets(
    *, asset: Asset, recipient: str, recipient_asset: str, amount: int, via: str | None
) -> list[str]:
    """The assets of the route's banks in order, ours first and ``recipient_asset`` last: two for a
    direct payment, three through a correspondent. The rule is in the module docstring."""
    try:
        recipient_bank = ledger_namespace(parse_ledger_id(recipient))
    except LedgerError as error:
        raise BadRoute(str(error)) from error
    if recipient_bank == bank_namespace():
        raise BadRoute("the recipient is kept by this bank: pay within the bank")
    code = asset.code
    if via:
        if via in (bank_namespace(), recipient_bank):
            raise BadRoute("the correspondent must be a third bank, neither ours nor the recipient's")
        direct.peer_for(via)
        return [asset.uai, f"{via}/{code}", recipient_asset]
    if Peer.objects.filter(domain=recipient_bank).exists():
        return [asset.uai, recipient_asset]
    best: tuple[int, str] | None = None
    for peer in Peer.objects.exclude(domain=recipient_bank).order_by("domain"):
        try:
            answer = peer_request(
                peer,
                "POST",
                ROUTE_PATH,
                json_body={"bank": recipient_bank, "code": code},
                timeout=ROUTE_PROBE_TIMEOUT_S,
            )
        except PeerUnreachable:
            continue
        body = direct._json_or_empty(answer)
        available = body.get("available")
        if not (
            answer.ok and body.get("reaches") is True and isinstance(available, str) and available.isdigit()
        ):
            continue
        if int(available) >= amount and (best is None or int(available) > best[0]):
            best = (int(available), peer.domain)
    if best is None:
        raise NoRoute(
            f"{recipient_bank} is not a peer of {bank_namespace()} and no peer reaches it with credit "
            f"for {amount} to spare; name a correspondent (via) or add {recipient_bank} as a peer"
        )
    return [asset.uai, f"{best[1]}/{code}", recipient_asset]


def route_answer(*, peer: Peer, bank: object, code: object) -> dict[str, Any]:
    """Bank B answers a route probe from ``peer``: do we relate to ``bank``, and how much more of
    our ``code`` IOU may ``peer`` owe us (credit limit + balance of its account here - holds)."""
    if not isinstance(bank, str) or not isinstance(code, str):
        raise BadRoute("a route probe names a bank and a currency code")
    uai = f"{bank_namespace()}/{code}"
    reaches = bank not in (peer.domain, bank_namespace()) and _known_key(bank) is not None
    asset = Asset.objects.filter(uai=uai).first()
    if asset is None:
        return {"reaches": False, "available": "0"}
    limit = PeerCreditLimit.objects.filter(peer=peer, asset=uai).values_list("limit", flat=True).first()
    account = Ledger.objects.filter(ubi=f"ubi:{bank_namespace()}:bank.{peer.domain}").first()
    balance = held = 0
    if account is not None:
        balance = (
            Balance.objects.filter(ledger=account, asset=asset).values_list("amount", flat=True).first() or 0
        )
        held = Hold.objects.filter(ledger=account, asset=asset).aggregate(total=Sum("amount"))["total"] or 0
    available = max(0, int(limit or 0) + balance - held)
    return {"reaches": reaches, "available": str(available)}


# --- bank A ----------------------------------------------------------------------------------


def payment_send(
    *, request: direct.InterbankRequest, via: str | None = None, actor: Any = None
) -> InterbankPayment:
    """Pay a party of another bank, directly or through a correspondent (the route rule is in the
    module docstring). Returns the final payment or raises the refusal; a replay of the reference
    returns the first payment."""
    if not isinstance(request.reference, str) or not 0 < len(request.reference) <= 200:
        raise BadRoute("the idempotency key must be a non-empty string of at most 200 characters")
    first = InterbankPayment.objects.filter(
        role=PaymentRole.ORIGIN, debit_ledger__ubi=request.sender, reference=request.reference
    ).first()
    if first is not None:
        return _outcome(first)
    asset = Asset.objects.filter(uai=request.asset).first()
    if asset is None:
        raise UnknownAsset(f"{request.asset} is not an asset this node knows")
    from ledgers.services import minor_units

    amount = minor_units(request.amount, decimals=asset.decimals)
    assets = route_assets(
        asset=asset,
        recipient=request.recipient,
        recipient_asset=request.recipient_asset,
        amount=amount,
        via=via,
    )
    if len(assets) == 2:
        return direct.payment_interbank_send(
            request=replace(request, recipient_asset=assets[1], correspondent_asset=None), actor=actor
        )
    request = replace(request, correspondent_asset=assets[1], recipient_asset=assets[2])
    payment, _ = direct._hold(request)
    said = ""
    if payment.phase == interbank.PaymentPhase.HELD:
        changes, said = _relay_changes(payment)
        for change in changes:
            try:
                payment = direct.payment_origin_transition(payment_id=payment.payment_id, change=change)
            except LedgerError as error:
                # A signature that does not verify is a refusal: void, so the hold is released.
                payment = direct.payment_origin_transition(
                    payment_id=payment.payment_id,
                    change=interbank.CosignRefused(bank=change.bank, code=error.code, now=now_millis()),
                )
            if payment.phase != interbank.PaymentPhase.HELD:
                break
    return _outcome(payment, said)


def _outcome(payment: InterbankPayment, said: str = "") -> InterbankPayment:
    """The final payment, or its refusal with the code and, when there is one, the sentence of
    the bank that refused (the correspondent passes on the next bank's)."""
    if payment.phase == interbank.PaymentPhase.VOIDED:
        reason = payment.void_reason or "voided"
        code = reason.split(": ", 1)[1] if reason.startswith("refused by ") else "payment_expired"
        detail = f" ({said})" if said else ""
        raise error_for_code(code, f"the payment was voided and its hold released: {reason}{detail}")
    return payment


def _relay_changes(payment: InterbankPayment) -> tuple[list[Any], str]:
    """Ask the correspondent (no transaction open); its answer as changes of A's state machine:
    every co-signature (the correspondent's last, so that A finalises on it), or one refusal
    with the correspondent's sentence."""
    proof = interbank.PaymentProof.from_json(payment.proof)
    instruction = proof.instruction
    correspondent = direct.peer_for(instruction.banks[1])
    name = Namespace(correspondent.domain)
    timeout = max(0.5, min(RELAY_TIMEOUT_S * 2, (instruction.expires_at - now_millis()) / 1000))
    try:
        answer = peer_request(
            correspondent, "POST", RELAY_PATH, json_body={"proof": payment.proof}, timeout=timeout
        )
    except PeerUnreachable as error:
        return [interbank.CosignRefused(bank=name, code="peer_unreachable", now=now_millis())], str(error)
    body = direct._json_or_empty(answer)
    signatures = body.get("signatures")
    if not answer.ok or not isinstance(signatures, dict):
        found = body.get("error")
        said = str(found.get("message", ""))[:300] if isinstance(found, dict) else ""
        return [direct._change_for(correspondent, body, answer.status)], said
    try:
        collected = _signatures_from(signatures, instruction, vouched_by=correspondent)
    except LedgerError as error:
        return [interbank.CosignRefused(bank=name, code=error.code, now=now_millis())], str(error)
    now = now_millis()
    order = [bank for bank in instruction.banks[1:] if bank != name] + [name]
    return [
        interbank.CosignReceived(bank=bank, key=collected[bank][0], signature=collected[bank][1], now=now)
        for bank in order
    ], ""


def _signatures_from(
    value: dict[str, Any], instruction: interbank.PaymentInstruction, *, vouched_by: Peer
) -> dict[Namespace, tuple[PublicKey, Signature]]:
    """The co-signatures a correspondent sends back, each checked. A bank we know signs with the
    key in our directory; one we do not know, with the key the correspondent vouches for."""
    out: dict[Namespace, tuple[PublicKey, Signature]] = {}
    for bank in instruction.banks:
        if bank == bank_namespace():
            continue
        item = value.get(bank)
        if not isinstance(item, dict):
            raise BadTransition(f"{bank} has not signed the payment")
        stated = PublicKey(hex_bytes(item.get("key"), length=32, what=f"{bank}'s key", error=BadRoute))
        known = direct.peer_public_key(vouched_by) if bank == vouched_by.domain else _known_key(bank)
        if known is not None and known != stated:
            raise BadRoute(f"the key given for {bank} is not the one we trust")
        signature = Signature(
            hex_bytes(item.get("signature"), length=64, what=f"{bank}'s signature", error=BadRoute)
        )
        verify_message(stated, instruction.encoded, signature, who=bank)
        out[bank] = (stated, signature)
    return out


# --- bank B, the correspondent ---------------------------------------------------------------


def relay_cosign(*, peer: Peer, proof_json: Any) -> dict[str, Any]:
    """Bank B: check and hold our leg, have the next bank co-sign, then sign ourselves; answer
    with every co-signature. A refusal (or silence) of the next bank releases our hold, since we
    never signed, and is answered with the next bank's code."""
    proof = interbank.PaymentProof.from_json(proof_json)
    instruction = proof.instruction
    if not is_correspondent(instruction):
        raise BadRoute(f"{bank_namespace()} is not a correspondent on this route")
    if previous_bank(instruction) != peer.domain:
        raise BadRoute("only the bank before us on the route may ask us to relay")
    after = instruction.banks[_our_index(instruction) + 1]
    following = Peer.objects.filter(domain=after).first()
    if following is None:
        raise BadRoute(f"{bank_namespace()} has no relation with {after}: it cannot be the correspondent")
    row, answer = _relay_hold(previous=peer, following=following, proof=proof)
    if answer is not None:
        return answer
    timeout = max(0.5, min(RELAY_TIMEOUT_S, (instruction.expires_at - now_millis()) / 1000))
    name = following.domain
    try:
        response = peer_request(
            following, "POST", direct.COSIGN_PATH, json_body={"proof": proof.to_json()}, timeout=timeout
        )
    except PeerUnreachable as error:
        _relay_release(row, f"{name} could not be reached")
        raise PeerRefused(f"{name} could not be reached ({error}); nothing is held") from error
    body = direct._json_or_empty(response)
    if not response.ok or not isinstance(body.get("signature"), str):
        found = body.get("error")
        error_value: dict[str, Any] = found if isinstance(found, dict) else {}
        code = str(error_value.get("code") or f"http_{response.status}")
        message = str(error_value.get("message") or "no reason given")
        _relay_release(row, f"refused by {name}: {code}")
        raise error_for_code(code, f"{name} refused: {message}")
    try:
        signature = Signature(
            hex_bytes(body["signature"], length=64, what=f"{name}'s signature", error=BadRoute)
        )
        key = direct.peer_public_key(following)
        verify_message(key, instruction.encoded, signature, who=name)
    except LedgerError as error:
        _relay_release(row, f"{name}'s co-signature did not verify")
        raise PeerRefused(f"{name}'s co-signature did not verify: {error}") from error
    return _relay_sign(row.pk, following=Namespace(name), key=key, signature=signature)


def _signatures_answer(proof: interbank.PaymentProof) -> dict[str, Any]:
    return {
        "signatures": {
            bank: {"key": proof.bank_keys[bank].hex(), "signature": proof.bank_signatures[bank].hex()}
            for bank in sorted(proof.bank_signatures)
        }
    }


@transaction.atomic
def _relay_hold(
    *, previous: Peer, following: Peer, proof: interbank.PaymentProof
) -> tuple[InterbankPayment, dict[str, Any] | None]:
    """One transaction: lock the previous and the next bank's accounts here, check our leg (the
    credit limit we grant the previous bank), hold on its account. A payment we already signed
    gets the same signatures back."""
    instruction = proof.instruction
    leg = direct._leg_for_us(instruction)
    debit, credit = direct.peer_account(previous), direct.peer_account(following)
    if (leg.debit, leg.credit) != (debit.ubi, credit.ubi):
        raise BadRoute(f"our leg must move {debit.ubi} -> {credit.ubi}")
    locked = _lock_ledgers([debit.pk, credit.pk])
    existing = InterbankPayment.objects.select_for_update().filter(payment_id=instruction.id).first()
    if existing is not None:
        stored = interbank.PaymentProof.from_json(existing.proof)
        if existing.phase != interbank.PaymentPhase.VOIDED and bank_namespace() in stored.bank_signatures:
            return existing, _signatures_answer(stored)
        raise BadTransition(f"payment {instruction.id} is already being relayed, or was voided")
    assets_by_id, assets = _assets()
    direct._known_asset(assets, leg.asset)
    state = _load_state(locked, assets_by_id)
    direct._sync_credit_line(state, debit, previous, leg.asset)
    now = now_millis()
    hold = interbank.check_cosign(
        instruction=instruction,
        sender_key=proof.sender_key,
        sender_signature=proof.sender_signature,
        bank=Namespace(bank_namespace()),
        debit=state.view(debit.pk),
        credit_accepted=True,  # the next bank's account: that bank checks its own recipient
        assets=assets,
        now=now,
    )
    Hold.objects.create(
        ledger=debit,
        key=hold.key,
        asset=next(row for row in assets_by_id.values() if row.uai == hold.asset),
        amount=hold.amount,
        expires_at=timezone.now() + timedelta(milliseconds=max(0, instruction.expires_at - now)),
    )
    row = InterbankPayment.objects.create(
        payment_id=instruction.id,
        reference=instruction.reference,
        role=PaymentRole.COSIGNER,
        phase=interbank.PaymentPhase.HELD,
        proof=proof.to_json(),
        amount=instruction.amount,
        debit_ledger=debit,
        credit_ledger=credit,
        expires_at=instruction.expires_at,
    )
    return row, None


@transaction.atomic
def _relay_release(row: InterbankPayment, reason: str) -> None:
    """We never signed: the payment cannot become final, so our hold goes now."""
    _lock_ledgers([row.debit_ledger_id, row.credit_ledger_id])
    locked_row = InterbankPayment.objects.select_for_update().get(pk=row.pk)
    if locked_row.phase != interbank.PaymentPhase.HELD:
        return
    Hold.objects.filter(ledger_id=row.debit_ledger_id, key=f"payment:{row.payment_id}").delete()
    locked_row.phase, locked_row.void_reason, locked_row.updated_at = (
        interbank.PaymentPhase.VOIDED,
        reason[:300],
        timezone.now(),
    )
    locked_row.save(update_fields=["phase", "void_reason", "updated_at"])


@transaction.atomic
def _relay_sign(row_id: int, *, following: Namespace, key: PublicKey, signature: Signature) -> dict[str, Any]:
    """The next bank signed: we sign (never at or after the deadline) and keep both signatures."""
    row = InterbankPayment.objects.select_for_update().get(pk=row_id)
    proof = interbank.PaymentProof.from_json(row.proof)
    if row.phase != interbank.PaymentPhase.HELD:
        raise BadTransition(f"payment {row.payment_id} was voided while the next bank was asked")
    if now_millis() >= proof.instruction.expires_at:
        raise PaymentExpired("the payment expired while the next bank was asked")
    ours = bank_key()
    proof = proof.with_bank_signature(bank=following, key=key, signature=signature).with_bank_signature(
        bank=Namespace(bank_namespace()),
        key=ours.public_key,
        signature=interbank.cosign_payment(proof.instruction, key=ours),
    )
    row.proof, row.updated_at = proof.to_json(), timezone.now()
    row.save(update_fields=["proof", "updated_at"])
    return _signatures_answer(proof)


def forward_outcome_on_commit(instruction: interbank.PaymentInstruction, payment_id: str) -> None:
    """After a correspondent took the origin's outcome (final proof or void notice), pass it on to
    the next bank once the transaction commits; a task retries while that bank cannot be reached."""
    if is_correspondent(instruction):
        transaction.on_commit(lambda: _forward_later(payment_id))


def _forward_later(payment_id: str) -> None:
    try:
        forward_outcome(payment_id=payment_id)
    except (PeerUnreachable, LedgerError) as error:
        logger.warning("payment %s: not forwarded yet (%s); a task retries", payment_id[:16], error)
        from ledgers.tasks import payment_forward

        payment_forward.apply_async(args=(payment_id,), countdown=2)


def forward_outcome(*, payment_id: str) -> None:
    """Bank B: send the next bank the final proof, or the origin's void notice with the origin's
    key (the next bank may not know the origin). Idempotent at both ends."""
    row = InterbankPayment.objects.get(payment_id=payment_id, role=PaymentRole.COSIGNER)
    if row.peer_confirmed or row.phase == interbank.PaymentPhase.HELD:
        return
    instruction = interbank.PaymentProof.from_json(row.proof).instruction
    following = direct.peer_for(instruction.banks[_our_index(instruction) + 1])
    if row.phase == interbank.PaymentPhase.FINAL:
        answer = peer_request(following, "POST", direct.FINAL_PATH, json_body={"proof": row.proof})
    elif row.void_signature:
        answer = peer_request(following, "POST", direct.VOID_PATH, json_body=_void_body(row, instruction))
    else:
        return  # voided here before we signed; the origin's notice, when it comes, is passed on
    if not answer.ok:
        raise PeerRefused(
            f"{following.domain} answered {answer.status}: {answer.body[:200].decode(errors='replace')}"
        )
    InterbankPayment.objects.filter(pk=row.pk).update(peer_confirmed=True)


def _void_body(row: InterbankPayment, instruction: interbank.PaymentInstruction) -> dict[str, Any]:
    origin_key = _known_key(instruction.origin)
    return {
        "instruction": instruction.to_json(),
        "signature": row.void_signature,
        "origin_key": origin_key.hex() if origin_key is not None else "",
    }


def relay_status(*, peer: Peer, instruction: interbank.PaymentInstruction) -> dict[str, Any]:
    """Bank B answers the next bank about a payment it still holds: final (the proof), voided
    (the origin's signed notice and key), or held. Past the deadline we first ask the origin."""
    index = _our_index(instruction)
    if index == len(instruction.banks) - 1 or instruction.banks[index + 1] != peer.domain:
        raise BadRoute("ask the bank before you on the route, about a payment it passed you")
    row = InterbankPayment.objects.filter(payment_id=instruction.id, role=PaymentRole.COSIGNER).first()
    if row is None:
        return {"phase": "held"}
    unsettled = row.phase == interbank.PaymentPhase.HELD or (
        row.phase == interbank.PaymentPhase.VOIDED and not row.void_signature
    )
    if unsettled and now_millis() >= instruction.expires_at:
        try:
            direct._ask_origin(row)
        except (PeerUnreachable, LedgerError) as error:
            logger.warning("payment %s: origin not asked yet (%s)", row.payment_id[:16], error)
        row.refresh_from_db()
    if row.phase == interbank.PaymentPhase.FINAL:
        return {"phase": "final", "proof": row.proof}
    if row.phase == interbank.PaymentPhase.VOIDED and row.void_signature:
        return {"phase": "voided", **_void_body(row, instruction)}
    return {"phase": "held"}
