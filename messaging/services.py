"""Writes of the messaging app: accept, record, route, receive, reject, time out (seed 002).

Accepting a message (``message_send_batch``), in this order:

1. outside any transaction: who the recipients are (this node's counterparties, or one signed
   question per other node), and the signed envelope: verified as sent (a client that signs and
   encrypts itself; a batch's signature once and its messages' paths with one tree), or built,
   encrypted and signed here with a custodial sender's sealed keys;
2. one transaction: refuse a reused id, check agreement links, append one ``message`` entry per
   message signed alone and one ``message-batch`` entry per batch a sender signed once, to the
   sender's ledger (``ledgers.services.ledger_records_append``: locked, checked, co-signed by this
   bank, each entry's head commitment voted to consensus), store the messages and one delivery
   per recipient with COPY; recipients here are delivered at once;
3. after commit: one Celery task per recipient node carries the messages over the signed
   transport (``messaging.tasks.messages_deliver``), with retries and exponential backoff.

A batch is all or nothing; a refusal names the message (``message 3: ...``) and stores nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from _json import encode_basestring
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import psycopg.errors
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from consensus.models import Anchor, AnchorStatus, ObservationStatus, PendingObservation
from consensus.protocol.types import observation_bytes
from consensus.services import consensus_vote_many, observation_for
from ledgers import services as ledger_services
from ledgers.models import Ledger, LedgerEntry, LedgerOwner
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.entries import SignedEntry, encode_entry, verify_encoded
from ledgers.protocol.errors import LedgerError
from ledgers.protocol.identifiers import LedgerId, ledger_namespace
from messaging.errors import (
    AlreadyFinished,
    BadAttachment,
    CustodyMismatch,
    MessageIdReused,
    NotYourRecipient,
    RecipientNotAccepted,
    RecipientsUnreachable,
    SenderKeyMismatch,
    SenderNotAccepted,
    UnknownAttachment,
    UnknownMessage,
    UnknownRecipient,
    UnknownSender,
    indexed,
)
from messaging.models import Delivery, DeliveryStatus, Message, MessageAttachment, MessageBatchTree
from messaging.protocol import boxes
from messaging.protocol.envelope import (
    ATTACHMENT_MEDIA_TYPES,
    MAX_ATTACHMENT_BYTES,
    MESSAGE_OBJECT_KIND,
    BatchHeads,
    BatchProof,
    EncodedMessage,
    Envelope,
    SignedMessage,
    UnverifiedMessage,
    VerifiedBatches,
    batch_paths_proven,
    check_acceptance,
    compact_batch_verify,
    encode_message,
    make_envelope,
    parse_batch_head,
    parse_compact_envelope,
    parse_envelope,
    parse_signed_message,
    parse_unverified,
    sign_message,
    verify_unverified,
)
from messaging.protocol.errors import (
    BadAddress,
    BadEnvelope,
    BadLink,
    BadMessageSignature,
    CiphertextDoesNotOpen,
    MessageError,
)
from messaging.protocol.record import (
    MESSAGE_BATCH_ENTRY_KIND,
    MESSAGE_ENTRY_KIND,
    message_batch_entry_body,
    message_entry_body,
)
from settlement import bulk, health, keystore
from settlement.audit import audit_record
from settlement.collector import cyclic_gc_paused
from settlement.counterparties import storage
from settlement.counterparties.models import Counterparty, Custody, KycStatus
from settlement.models import Peer, PeerKey
from settlement.protocol.encoding import domain_bytes, sha256
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address
from settlement.protocol.keys import X25519KeyPair
from settlement.protocol.merkle import MerkleTree
from settlement.protocol.signing import SigningKey
from settlement.transport import PeerUnreachable, peer_request

logger = logging.getLogger("parsec.messaging")

MESSAGES_GROUP = "messages"
DELIVER_PATH = "/node-api/messaging/deliver"
RECIPIENTS_PATH = "/node-api/messaging/recipients"
REJECTIONS_PATH = "/node-api/messaging/rejections"
# One delivery request carries at most this many messages (a long backlog goes in several).
DELIVERY_BATCH = 500


# --- live pages -------------------------------------------------------------------------------


_broadcaster = health.ThrottledBroadcast(MESSAGES_GROUP, "messages.changed")


def _broadcast_after_commit() -> None:
    transaction.on_commit(_broadcaster.request)


# --- keys of custodial counterparties ---------------------------------------------------------

_keys_lock = threading.Lock()
_signing_keys: dict[tuple[int, str], SigningKey] = {}
_box_keys: dict[tuple[int, str], X25519KeyPair] = {}


def custodial_signing_key(counterparty: Counterparty) -> SigningKey:
    # Opened keys stay in this process's memory like the node's own (settlement.keystore); keyed
    # by the public key too, so a re-used id never maps to another counterparty's key.
    cache_key = (counterparty.pk, counterparty.ed25519_public_key)
    with _keys_lock:
        key = _signing_keys.get(cache_key)
        if key is None:
            key = SigningKey(keystore.open_custodial(counterparty.custodial_keys.sealed_ed25519))
            _signing_keys[cache_key] = key
    return key


def custodial_box_key(counterparty: Counterparty) -> X25519KeyPair:
    cache_key = (counterparty.pk, counterparty.x25519_public_key)
    with _keys_lock:
        key = _box_keys.get(cache_key)
        if key is None:
            key = X25519KeyPair(keystore.open_custodial(counterparty.custodial_keys.sealed_x25519))
            _box_keys[cache_key] = key
    return key


def forget_opened_keys() -> None:
    with _keys_lock:
        _signing_keys.clear()
        _box_keys.clear()


# --- recipients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    address: str
    box_key: bytes
    counterparty: Counterparty | None = None  # a counterparty of this node
    peer: Peer | None = None  # the node that keeps it


def _domain(address: str) -> str:
    return address.rsplit("*", 1)[-1]


def _one_array(values: Iterable[str]) -> RawSQL:
    """``IN (SELECT unnest(%s))`` with the values as one array parameter: a query with a
    placeholder per value (a thousand message ids) costs psycopg more to parse than PostgreSQL
    to run, and is never the same query twice."""
    return RawSQL("SELECT unnest(%s::text[])", (list(values),))


def _local_counterparties(addresses: Iterable[str]) -> dict[str, Counterparty]:
    names = {address.rsplit("*", 1)[0] for address in addresses}
    # Only the fields sending and delivering read: a request of a thousand messages loads its
    # recipients twice, and a whole Counterparty (with its sealed keys) costs several times more.
    # Anything else (the sealed keys of a custodial party) is loaded when it is used.
    rows = Counterparty.objects.filter(
        federation_domain=settings.NODE_DOMAIN, federation_name__in=_one_array(names)
    ).only(*_COUNTERPARTY_FIELDS)
    return {row.federation_address: row for row in rows}


_COUNTERPARTY_FIELDS = (
    "id",
    "federation_name",
    "federation_domain",
    "kyc_status",
    "custody",
    "ed25519_public_key",
    "x25519_public_key",
)


def recipients_describe(addresses: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What this node tells another about addresses of its domain: accepted (with the X25519
    key to encrypt to), not accepted, or unknown. Keys of counterparties not accepted are not
    given out."""
    ours = [
        address
        for address in addresses
        if isinstance(address, str) and _domain(address) == settings.NODE_DOMAIN
    ]
    found = _local_counterparties(ours)
    answer: dict[str, dict[str, Any]] = {}
    for address in addresses:
        counterparty = found.get(address) if isinstance(address, str) else None
        if counterparty is None:
            answer[str(address)] = {"status": "unknown"}
        elif counterparty.kyc_status != KycStatus.ACCEPTED:
            answer[address] = {"status": "not_accepted"}
        else:
            answer[address] = {"status": "accepted", "x25519": counterparty.x25519_public_key}
    return answer


def recipients_resolve(
    addresses: Iterable[str], *, keys_needed: Collection[str] = ()
) -> dict[str, Recipient]:
    """Every address as a :class:`Recipient`, or the refusal for the first that cannot receive:
    unknown here or at its node, a node that is not our peer, or a recipient not ACCEPTED.

    A node that does not answer now is the router's business (it retries until the timeout),
    unless this node must encrypt to one of its recipients (``keys_needed``): then nothing can
    be built and the send is refused (``peer_unreachable``)."""
    wanted = sorted(set(addresses))
    for address in wanted:
        try:
            parse_federation_address(address)
        except InvalidFederationAddress as error:
            raise BadAddress(f"recipient {address!r}: {error}", field="recipients") from error
    by_domain: dict[str, list[str]] = defaultdict(list)
    for address in wanted:
        by_domain[_domain(address)].append(address)
    resolved: dict[str, Recipient] = {}
    for domain, group in by_domain.items():
        if domain == settings.NODE_DOMAIN:
            found = _local_counterparties(group)
            for address in group:
                counterparty = found.get(address)
                if counterparty is None:
                    raise UnknownRecipient(
                        f"{address} is not a counterparty of this node", field="recipients"
                    )
                if counterparty.kyc_status != KycStatus.ACCEPTED:
                    raise RecipientNotAccepted(
                        f"{address} has not been accepted (KYC) and cannot receive messages",
                        field="recipients",
                    )
                resolved[address] = Recipient(
                    address, bytes.fromhex(counterparty.x25519_public_key), counterparty=counterparty
                )
            continue
        peer = Peer.objects.filter(domain=domain).first()
        if peer is None:
            raise UnknownRecipient(
                f"{group[0]} is at {domain}, which is not a peer of this node", field="recipients"
            )
        try:
            answer = peer_request(peer, "POST", RECIPIENTS_PATH, json_body={"addresses": group})
            problem = (
                "" if answer.ok else f"{peer.name} refused to say who its recipients are ({answer.status})"
            )
        except PeerUnreachable:
            problem = f"{peer.name} did not answer who its recipients are"
        if problem:
            if set(group) & set(keys_needed):
                raise RecipientsUnreachable(
                    f"{problem}; this node cannot encrypt to them", field="recipients"
                )
            logger.warning("%s; accepting for the router to deliver (or time out)", problem)
            resolved.update((address, Recipient(address, b"", peer=peer)) for address in group)
            continue
        described = answer.json().get("recipients", {})
        for address in group:
            item = described.get(address) or {}
            if item.get("status") == "not_accepted":
                raise RecipientNotAccepted(
                    f"{address} has not been accepted (KYC) at {peer.name} and cannot receive messages",
                    field="recipients",
                )
            if item.get("status") != "accepted":
                raise UnknownRecipient(f"{address} is not a counterparty of {peer.name}", field="recipients")
            try:
                box_key = bytes.fromhex(str(item.get("x25519", "")))
            except ValueError:
                box_key = b""
            if len(box_key) != 32:
                raise RecipientsUnreachable(f"{peer.name} gave no usable X25519 key for {address}")
            resolved[address] = Recipient(address, box_key, peer=peer)
    return resolved


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComposeRequest:
    """A message the node builds, encrypts (``encrypt``) and signs for a custodial sender."""

    sender: str
    kind: str
    recipients: Sequence[str]
    text: str
    encrypt: bool = True
    reply_to: str | None = None
    agreement: str | None = None
    attachments: Sequence[str] = ()  # SHA-256 hex of files uploaded to this node
    message_id: str | None = None


@dataclass(frozen=True)
class SignedRequest:
    """A message the client built and signed (and encrypted, if it wished) itself."""

    message: Mapping[str, Any]  # {"envelope": {...}, "signature": "<hex>"}


SendRequest = ComposeRequest | SignedRequest


@dataclass
class SendResult:
    message: Message
    replayed: bool = False
    deliveries: list[Delivery] = field(default_factory=list)


def _senders(addresses: Iterable[str]) -> dict[str, Counterparty]:
    wanted = set(addresses)
    found = _local_counterparties(wanted)
    for address in sorted(wanted):
        if _domain(address) != settings.NODE_DOMAIN or address not in found:
            raise UnknownSender(f"{address} is not a counterparty of this node", field="sender")
        if found[address].kyc_status != KycStatus.ACCEPTED:
            raise SenderNotAccepted(f"{address} has not been accepted (KYC) and cannot send", field="sender")
    return found


def _attachment_rows(hashes: Iterable[str]) -> dict[str, MessageAttachment]:
    wanted = set(hashes)
    return {row.sha256: row for row in MessageAttachment.objects.filter(sha256__in=wanted)} if wanted else {}


def _compose(
    request: ComposeRequest, sender: Counterparty, recipients: Mapping[str, Recipient], now_ms: int
) -> SignedMessage:
    if sender.custody != Custody.CUSTODIAL:
        raise CustodyMismatch(
            f"{sender.federation_address} holds its own keys: send an envelope it signed itself",
            field="sender",
        )
    attachments = _attachment_rows(request.attachments)
    for sha in request.attachments:
        if sha not in attachments:
            raise UnknownAttachment(f"attachment {sha} was not uploaded to this node", field="attachments")
    if request.encrypt:
        body = boxes.seal_body(
            text=request.text,
            sender_box=custodial_box_key(sender),
            recipient_keys={address: recipients[address].box_key for address in request.recipients},
        )
    else:
        body = boxes.plain_body(request.text)
    envelope = make_envelope(
        message_id=request.message_id or uuid.uuid4().hex,
        kind=request.kind,
        sender=sender.federation_address,
        sender_key=bytes.fromhex(sender.ed25519_public_key),
        recipients=list(request.recipients),
        time=now_ms,
        body=body,
        reply_to=request.reply_to or None,
        agreement=request.agreement or None,
        attachments=[
            {"sha256": row.sha256, "size": row.size, "media_type": row.media_type}
            for row in (attachments[sha] for sha in request.attachments)
        ],
    )
    return sign_message(encode_message(envelope), key=custodial_signing_key(sender))


def _replayed_compose(request: ComposeRequest) -> SignedMessage | None:
    """A composed message whose id was sent before: the first envelope again (a new one would
    have a new time and new boxes), so a resent form or API call is a replay, not a conflict."""
    if not request.message_id:
        return None
    stored = Message.objects.filter(message_id=request.message_id).first()
    if stored is None:
        return None
    if (stored.sender_address, stored.kind, list(stored.recipients)) != (
        request.sender,
        request.kind,
        list(request.recipients),
    ):
        raise MessageIdReused(
            f"message id {request.message_id} was used before for another message", field="id"
        )
    return parse_signed_message({"envelope": stored.envelope, "signature": stored.signature})


def _check_signed_attachments(signed: SignedMessage) -> None:
    items = signed.envelope.attachments
    if not items:
        return
    rows = _attachment_rows(item.sha256 for item in items)
    for item in items:
        row = rows.get(item.sha256)
        if row is None:
            raise UnknownAttachment(
                f"attachment {item.sha256} was not uploaded to this node", field="attachments"
            )
        if row.size != item.size or row.media_type != item.media_type:
            raise BadAttachment(
                f"attachment {item.sha256} is {row.size} bytes of {row.media_type}, not as the envelope says",
                field="attachments",
            )


def _prepare(requests: Sequence[SendRequest]) -> tuple[list[SignedMessage], dict[str, Recipient]]:
    """Parse, resolve and sign (no transaction open: it may ask other nodes); the signed
    messages and every recipient, resolved."""
    unverified: list[UnverifiedMessage | None] = []
    heads: BatchHeads = {}  # a batch's head (root, size, signature) is parsed once per request
    for index, request in enumerate(requests):
        try:
            unverified.append(
                parse_unverified(request.message, heads=heads) if isinstance(request, SignedRequest) else None
            )
        except MessageError as error:
            raise indexed(error, index) if len(requests) > 1 else error from error
    # A batch whose messages are all in the request is checked with one tree, and its signature
    # once for all of them.
    proven = batch_paths_proven(
        [
            (item.encoded, item.batch) if item is not None and item.batch is not None else None
            for item in unverified
        ]
    )
    verified: VerifiedBatches = set()
    parsed: list[SignedMessage | None] = []
    sender_addresses: list[str] = []
    recipient_addresses: set[str] = set()
    for index, (request, item) in enumerate(zip(requests, unverified, strict=True)):
        try:
            if item is not None:
                signed = verify_unverified(item, verified=verified, path_proven=index in proven)
                parsed.append(signed)
                sender_addresses.append(signed.envelope.sender)
                recipient_addresses.update(signed.envelope.recipients)
            else:
                assert isinstance(request, ComposeRequest)
                parsed.append(None)
                sender_addresses.append(request.sender)
                recipient_addresses.update(request.recipients)
        except MessageError as error:
            raise indexed(error, index) if len(requests) > 1 else error from error
    return _checked_against_counterparties(
        [request if isinstance(request, ComposeRequest) else None for request in requests],
        parsed,
        sender_addresses,
        recipient_addresses,
    )


def _checked_against_counterparties(
    composed: Sequence[ComposeRequest | None],
    parsed: Sequence[SignedMessage | None],
    sender_addresses: Sequence[str],
    recipient_addresses: set[str],
) -> tuple[list[SignedMessage], dict[str, Recipient]]:
    """Senders here and ACCEPTED, each signed envelope naming its sender's key, attachments
    uploaded, recipients resolved; the ``composed`` requests (``None`` where ``parsed`` holds the
    message signed by its client) built and signed."""
    senders = _senders(sender_addresses)
    keys_needed = {
        address
        for request in composed
        if request is not None and request.encrypt
        for address in request.recipients
    }
    recipients = recipients_resolve(recipient_addresses, keys_needed=keys_needed)
    now_ms = int(time.time() * 1000)
    result: list[SignedMessage] = []
    for index, (request, given) in enumerate(zip(composed, parsed, strict=True)):
        try:
            if given is None:
                assert request is not None
                signed = _replayed_compose(request) or _compose(
                    request, senders[request.sender], recipients, now_ms
                )
            else:
                signed = given
                sender = senders[signed.envelope.sender]
                if signed.envelope.sender_key.hex() != sender.ed25519_public_key:
                    raise SenderKeyMismatch(
                        f"the envelope names another key than {sender.federation_address}'s",
                        field="sender_key",
                    )
                _check_signed_attachments(signed)
        except MessageError as error:
            raise indexed(error, index) if len(parsed) > 1 else error from error
        result.append(signed)
    return result, recipients


def _sender_ledgers(senders: Iterable[Counterparty], actor: Any) -> dict[int, Ledger]:
    """The ledger each sender's messages are recorded on (opened on first use)."""
    wanted = {sender.pk: sender for sender in senders}
    ledgers = _ledgers_of(wanted)
    missing = sorted(set(wanted) - set(ledgers))
    if missing:
        # Two first messages of one sender at once must open one ledger: lock the senders (in id
        # order), then look again; the second finds the ledger the first opened.
        list(Counterparty.objects.select_for_update().filter(pk__in=missing).order_by("pk").values_list("pk"))
        ledgers = _ledgers_of(wanted)
    for pk, sender in wanted.items():
        if pk not in ledgers:
            try:
                ledgers[pk] = ledger_services.ledger_open(
                    name=sender.federation_name, counterparty=sender, actor=actor
                )
            except LedgerError as error:
                raise UnknownSender(
                    f"{sender.federation_address} has no ledger to record messages on: {error}",
                    field="sender",
                ) from error
    return ledgers


def _ledgers_of(counterparties: Collection[int]) -> dict[int, Ledger]:
    ledgers: dict[int, Ledger] = {}
    for ledger in Ledger.objects.filter(
        owner=LedgerOwner.COUNTERPARTY, counterparty_id__in=counterparties
    ).order_by("id"):
        assert ledger.counterparty_id is not None
        ledgers.setdefault(ledger.counterparty_id, ledger)
    return ledgers


def observation_digest(payload: bytes) -> bytes:
    """The PendingObservation digest of a ``ledger-entry`` commitment (consensus.services)."""
    return bytes(sha256(observation_bytes(observation_for(kind=ENTRY_OBSERVATION_KIND, payload=payload))))


def _open_or_refuse(envelope: Envelope, counterparty: Counterparty) -> tuple[str, str]:
    """(status, rejection code) for a custodial recipient here: its node opens the box for it."""
    if not envelope.encrypted or counterparty.custody != Custody.CUSTODIAL:
        return DeliveryStatus.DELIVERED, ""
    try:
        boxes.open_body(
            envelope, recipient=counterparty.federation_address, recipient_box=custodial_box_key(counterparty)
        )
    except CiphertextDoesNotOpen as error:
        return DeliveryStatus.REJECTED, error.code
    return DeliveryStatus.DELIVERED, ""


def message_send(*, request: SendRequest, actor: Any = None) -> SendResult:
    return message_send_batch(requests=[request], actor=actor)[0]


@cyclic_gc_paused()
def message_send_batch(*, requests: Sequence[SendRequest], actor: Any = None) -> list[SendResult]:
    """Accept messages: all are recorded, voted and queued for delivery, or none (an error).
    Python's cyclic collector is paused meanwhile, as for intra-bank batches (a batch's objects
    form no cycles; ``settlement.collector`` says what its walks cost)."""
    if not requests:
        return []
    signed, recipients = _prepare(requests)
    try:
        return _accept(signed, recipients, actor=actor)
    except (IntegrityError, psycopg.errors.UniqueViolation):
        # A concurrent request stored one of these ids between our look and our write (the unique
        # index caught it; our transaction left nothing behind): look again, which now sees it as
        # a replay or a reused id.
        return _accept(signed, recipients, actor=actor)


@cyclic_gc_paused()
def message_send_compact(*, batch: Any, actor: Any = None) -> list[SendResult]:
    """Accept a batch its sender signed once and sent whole in the compact form
    ``{"batch": {sender, sender_key, root, size, signature}, "envelopes": [...]}``
    (docs/messaging.md, "The compact batch request"): all or none, like :func:`message_send_batch`.

    What the messages share is read once: the head's form, its signature, the sender and its key;
    the batch's tree is built once from the envelopes' digests and must have the signed root, so
    no message carries or proves a path. The tree's leaves are stored once (``MessageBatchTree``)
    and each message row keeps only its index; a path is read from the tree when needed."""
    signed, recipients, tree = _prepare_compact(batch)
    trees = {bytes(tree.root): b"".join([item.digest for item in signed])}
    try:
        return _accept(signed, recipients, actor=actor, trees=trees)
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return _accept(signed, recipients, actor=actor, trees=trees)


def _prepare_compact(value: Any) -> tuple[list[SignedMessage], dict[str, Recipient], MerkleTree]:
    if not isinstance(value, Mapping) or value.keys() != {"batch", "envelopes"}:
        raise BadEnvelope('a compact batch is {"batch": {...}, "envelopes": [...]}')
    head = parse_batch_head(value["batch"])
    envelopes = value["envelopes"]
    if not isinstance(envelopes, list) or not envelopes:
        raise BadEnvelope("envelopes is a non-empty list", field="envelopes")
    encoded: list[EncodedMessage] = []
    recipient_addresses: set[str] = set()
    for index, item in enumerate(envelopes):
        try:
            one = parse_compact_envelope(item, head)
        except MessageError as error:
            raise indexed(error, index) from error
        encoded.append(one)
        recipient_addresses.update(one.envelope.recipients)
    tree = compact_batch_verify(head, encoded)
    root, size, signature = head.root, head.size, head.signature
    # The path is left out of each message's proof: it is the tree's, stored once (docs above).
    parsed: list[SignedMessage | None] = [
        SignedMessage(encoded=item, signature=signature, batch=BatchProof(root, size, index, ()))
        for index, item in enumerate(encoded)
    ]
    signed, recipients = _checked_against_counterparties(
        [None] * len(parsed), parsed, [head.sender], recipient_addresses
    )
    return signed, recipients, tree


@transaction.atomic
def _accept(
    signed: Sequence[SignedMessage],
    resolved: Mapping[str, Recipient],
    *,
    actor: Any,
    trees: Mapping[bytes, bytes] | None = None,
) -> list[SendResult]:
    """``trees``: batches sent whole in a compact request, their root to their leaves (the
    messages' digests joined, in batch order); their messages' proofs carry no path (it is the
    tree's, stored once here)."""
    ids = [item.encoded.envelope.id for item in signed]
    # Only the digests of ids seen before (a replay is answered with the stored row, loaded below).
    seen = dict(Message.objects.filter(message_id__in=_one_array(ids)).values_list("message_id", "digest"))
    first: dict[str, SignedMessage] = {}
    fresh: list[SignedMessage] = []
    for index, (message_id, item) in enumerate(zip(ids, signed, strict=True)):
        known = seen.get(message_id)
        earlier = first.get(message_id)
        if known is not None or earlier is not None:
            digest = known if known is not None else earlier.digest.hex()  # type: ignore[union-attr]
            if digest != item.digest.hex():
                error = MessageIdReused(
                    f"message id {message_id} was used before for another message", field="id"
                )
                raise indexed(error, index) if len(signed) > 1 else error
            continue
        first[message_id] = item
        fresh.append(item)
    existing = (
        {row.message_id: row for row in Message.objects.filter(message_id__in=_one_array(seen))}
        if seen
        else {}
    )
    _check_links(fresh)
    senders = _senders(item.envelope.sender for item in fresh) if fresh else {}
    ledgers = _sender_ledgers(senders.values(), actor)
    # One record per message signed alone; one per batch head for messages signed as a batch
    # (the same root, size and signature from the same sender): a thousand messages of one batch
    # are one co-signed entry and one consensus observation, not a thousand.
    records: list[ledger_services.RecordRequest] = []
    record_of: list[int] = []
    heads: dict[tuple[str, bytes, int, bytes], int] = {}
    ledger_of = {address: ledgers[sender.pk].pk for address, sender in senders.items()}
    for item in fresh:
        batch, sender = item.batch, item.encoded.envelope.sender
        if batch is None:
            record_of.append(len(records))
            records.append(
                ledger_services.RecordRequest(
                    ledger_id=ledger_of[sender],
                    kind=MESSAGE_ENTRY_KIND,
                    body=message_entry_body(item.encoded),
                )
            )
            continue
        head = (sender, batch.root, batch.size, item.signature)
        position = heads.get(head)
        if position is None:
            position = heads[head] = len(records)
            records.append(
                ledger_services.RecordRequest(
                    ledger_id=ledger_of[sender],
                    kind=MESSAGE_BATCH_ENTRY_KIND,
                    body=message_batch_entry_body(item),
                )
            )
        record_of.append(position)
    try:
        entries = ledger_services.ledger_records_append(records=records)
    except LedgerError as error:
        raise (
            SenderNotAccepted(str(error)) if error.code == "not_accepted" else BadEnvelope(str(error))
        ) from error
    # The ledger's append voted each entry's commitment in this same transaction (ledgers.services._save).
    ubis = {ledger.pk: ledger.ubi for ledger in ledgers.values()}
    recorded = [_Recorded.of(entry, ubis[entry.ledger_id]) for entry in entries]
    trees = trees or {}
    if trees:
        # Each compact batch's leaves once, with the entry that records it (the rows keep their index).
        MessageBatchTree.objects.bulk_create(
            [
                MessageBatchTree(
                    ledger_entry=entries[position],
                    root=root.hex(),
                    size=size,
                    leaves=trees[root],
                )
                for (_, root, size, _), position in heads.items()
                if root in trees
            ]
        )
    recipients = _recipients_for_storage(fresh, resolved)
    stamp = timezone.now()
    messages = _store_messages(fresh, [recorded[index] for index in record_of], senders, stamp, trees)
    waiting = _store_deliveries(fresh, messages, recipients, stamp)
    if fresh:
        audit_record(
            actor=actor,
            action="message.send",
            target=(
                "messaging.message",
                fresh[0].envelope.id if len(fresh) == 1 else f"batch of {len(fresh)}",
            ),
            after={
                "messages": len(fresh),
                "records": len(records),
                "ids": [item.envelope.id for item in fresh[:100]],
                "kinds": sorted({item.envelope.kind for item in fresh}),
            },
        )
        _dispatch_after_commit(waiting)
        _broadcast_after_commit()
    by_id = {message.message_id: message for message in messages}
    results = []
    for message_id, item in zip(ids, signed, strict=True):
        created = by_id.get(message_id)
        if created is not None and item is first.get(message_id):
            results.append(SendResult(message=created, replayed=False))
        else:
            results.append(SendResult(message=created or existing[message_id], replayed=True))
    return results


def _batch_json(signed: SignedMessage) -> dict[str, Any] | None:
    """``Message.batch``: the message's place in the batch its sender signed (hex)."""
    batch = signed.batch
    if batch is None:
        return None
    return batch.to_json()


def _batch_json_text(batch: BatchProof, root_hex: str, *, with_path: bool = True) -> bulk.JsonText:
    """:func:`_batch_json` already encoded, as COPY writes it: hex needs no escaping, so the text
    is put together directly (``json.dumps`` per row cost more than the row's COPY).
    ``with_path=False``: a batch sent whole in a compact request, whose tree is stored once."""
    if not with_path:
        return bulk.JsonText(f'{{"root": "{root_hex}", "size": {batch.size}, "index": {batch.index}}}')
    return bulk.JsonText(
        f'{{"root": "{root_hex}", "size": {batch.size}, "index": {batch.index}, "path": ['
        + ", ".join([f'"{item}"' for item in batch.path_hex])
        + "]}"
    )


def message_batch_json(message: Message) -> dict[str, Any] | None:
    """``Message.batch`` with the message's audit path: as stored, or, for a batch sent whole in a
    compact request, read from the batch's stored tree (``MessageBatchTree``)."""
    batch = message.batch
    if batch is None or "path" in batch:
        return batch
    if message.ledger_entry_id is None:
        raise RuntimeError(f"message {message.message_id} has no path and no record to find its batch by")
    tree = _stored_batch_tree(message.ledger_entry_id, batch["root"])
    path = tree.inclusion_proof(batch["index"]).audit_path
    return {**batch, "path": [item.hex() for item in path]}


@lru_cache(maxsize=16)
def _stored_batch_tree(ledger_entry_id: int, root_hex: str) -> MerkleTree:
    """A stored batch's tree (immutable once written: the root commits to its leaves). A router
    task or a page of messages reads many paths of one batch; it is built once (~1 ms for 1,000)."""
    stored = MessageBatchTree.objects.get(ledger_entry_id=ledger_entry_id, root=root_hex)
    leaves = bytes(stored.leaves)
    tree = MerkleTree.from_entries(leaves[offset : offset + 32] for offset in range(0, len(leaves), 32))
    if tree.root.hex() != root_hex or tree.size != stored.size:
        raise RuntimeError(f"the stored tree of batch {root_hex} does not have its root")
    return tree


@dataclass(frozen=True)
class _Recorded:
    """A record entry as the message rows refer to it (computed once per entry, not per message)."""

    entry: LedgerEntry
    record: dict[str, Any]
    record_json: bulk.JsonText  # encoded once for the thousand rows of a batch
    observation_digest: bytes

    @classmethod
    def of(cls, entry: LedgerEntry, ubi: str) -> _Recorded:
        commitment = entry_commitment(LedgerId(ubi), entry.height, bytes.fromhex(entry.hash))
        record = {"ledger": ubi, "height": entry.height, "hash": entry.hash}
        return cls(
            entry=entry,
            record=record,
            record_json=bulk.JsonText(json.dumps(record)),
            observation_digest=observation_digest(commitment),
        )


_ENVELOPE_PREFIX = len(domain_bytes(MESSAGE_OBJECT_KIND, {})) - len(b"{}")
"""Bytes of ``b"parsec/v1/message\0"``: what follows in the signed bytes is the canonical envelope."""
_MESSAGE_COLUMNS = (
    "message_id",
    "digest",
    "envelope",
    "signature",
    "batch",
    "kind",
    "sender_address",
    "sender_id",
    "recipients",
    "reply_to",
    "encrypted",
    "size",
    "sent_at_ms",
    "accepted_at",
    "received_from_id",
    "ledger_entry_id",
    "record",
    "observation_digest",
    "block_height",
    "anchored_at",
)
_DELIVERY_COLUMNS = (
    "message_id",
    "recipient_address",
    "recipient_id",
    "peer_id",
    "status",
    "attempts",
    "last_attempt_at",
    "last_error",
    "rejection_code",
    "rejection_reason",
    "created_at",
    "delivered_at",
    "finished_at",
)


def _store_messages(
    fresh: Sequence[SignedMessage],
    recorded: Sequence[_Recorded],
    senders: Mapping[str, Counterparty],
    stamp: Any,
    trees: Mapping[bytes, bytes],
) -> list[Message]:
    """One COPY for every message row; the envelope column is the canonical envelope the sender
    signed (sliced from the signed bytes, not encoded again)."""
    if tuple(bulk.model_columns(Message)) != _MESSAGE_COLUMNS:
        raise RuntimeError("messaging.Message's columns changed: update _MESSAGE_COLUMNS")
    values = []
    hex_of: dict[bytes, str] = {}  # a batch's root and signature are the same for its thousand rows
    # Ids looked up once, not through each model's pk property per row.
    sender_pks = {address: sender.pk for address, sender in senders.items()}
    entry_pks = {id(record): record.entry.pk for record in recorded}
    for item, record in zip(fresh, recorded, strict=True):
        encoded = item.encoded
        envelope, batch, signature = encoded.envelope, item.batch, item.signature
        signature_hex = hex_of.get(signature)
        if signature_hex is None:
            signature_hex = hex_of[signature] = signature.hex()
        if batch is None:
            batch_text = None
        else:
            root_hex = hex_of.get(batch.root)
            if root_hex is None:
                root_hex = hex_of[batch.root] = batch.root.hex()
            batch_text = _batch_json_text(batch, root_hex, with_path=batch.root not in trees)
        signed_bytes = encoded.signed_bytes
        values.append(
            (
                envelope.id,
                encoded.digest.hex(),
                bulk.JsonText(signed_bytes[_ENVELOPE_PREFIX:].decode()),
                signature_hex,
                batch_text,
                envelope.kind,
                envelope.sender,
                sender_pks[envelope.sender],
                # As text (json.dumps per row costs more than its COPY): addresses are JSON strings
                # as the C encoder json uses writes them; PostgreSQL parses the list into jsonb.
                bulk.JsonText(
                    "[" + ", ".join([encode_basestring(item) for item in envelope.recipients]) + "]"
                ),
                envelope.reply_to or "",
                envelope.encrypted,
                len(signed_bytes),
                envelope.time,
                stamp,
                None,
                entry_pks[id(record)],
                record.record_json,
                record.observation_digest,
                None,
                None,
            )
        )
    messages = bulk.copy_in(Message, values)
    for message, item, record in zip(messages, fresh, recorded, strict=True):
        # The JSON fields as a query would load them (dicts, not the text written).
        message.envelope, message.record = dict(item.encoded.wire), record.record
        message.recipients = list(item.encoded.envelope.recipients)
        batch = item.batch
        message.batch = None if batch is None else batch.to_json()
        if batch is not None and batch.root in trees:
            del message.batch["path"]
    return messages


def _store_deliveries(
    fresh: Sequence[SignedMessage],
    messages: Sequence[Message],
    recipients: Mapping[str, Recipient],
    stamp: Any,
) -> list[tuple[int, str]]:
    """One COPY for every delivery: recipients of this node are delivered (or refused) at once,
    the others wait for the router (returned: their node and message id)."""
    if tuple(bulk.model_columns(Delivery)) != _DELIVERY_COLUMNS:
        raise RuntimeError("messaging.Delivery's columns changed: update _DELIVERY_COLUMNS")
    values = []
    accepted, delivered = str(DeliveryStatus.ACCEPTED), str(DeliveryStatus.DELIVERED)
    for item, message in zip(fresh, messages, strict=True):
        envelope = item.encoded.envelope
        for address in envelope.recipients:
            recipient = recipients[address]
            counterparty = recipient.counterparty
            status, code, reason, delivered_at, finished_at = accepted, "", "", None, None
            if counterparty is not None:
                status, code = _open_or_refuse(envelope, counterparty)
                if status == delivered:
                    delivered_at = stamp
                else:
                    finished_at = stamp
                    reason = "the recipient's node could not open the box with its key"
            values.append(
                (
                    message.id,  # the column, not the pk property: thousands of rows a request
                    address,
                    counterparty.id if counterparty is not None else None,
                    recipient.peer.id if recipient.peer is not None else None,
                    str(status),
                    0,
                    None,
                    "",
                    code,
                    reason,
                    stamp,
                    delivered_at,
                    finished_at,
                )
            )
    bulk.copy_rows(Delivery, values)
    # What the router needs: (peer, message id) of each delivery waiting for another node.
    ids = {message.id: message.message_id for message in messages}
    return [
        (peer_id, ids[message_pk])
        for message_pk, _, _, peer_id, status, *_ in values
        if peer_id is not None and status == DeliveryStatus.ACCEPTED
    ]


def _recipients_for_storage(
    fresh: Sequence[SignedMessage], resolved: Mapping[str, Recipient]
) -> dict[str, Recipient]:
    """Recipients again, inside the transaction: whether the local ones (resolved in _prepare,
    before it) are still counterparties here and still ACCEPTED, as their rows say now (one
    query of two columns, not the counterparties again); other nodes' are still peers (their
    node checks its recipients again on delivery)."""
    addresses = {address for item in fresh for address in item.envelope.recipients}
    local = {address for address in addresses if _domain(address) == settings.NODE_DOMAIN}
    statuses = dict(
        Counterparty.objects.filter(
            pk__in=[
                recipient.counterparty.pk
                for address in local
                if (recipient := resolved[address]).counterparty
            ]
        ).values_list("pk", "kyc_status")
    )
    peers = {
        peer.domain: peer for peer in Peer.objects.filter(domain__in={_domain(a) for a in addresses - local})
    }
    result: dict[str, Recipient] = {}
    for address in addresses:
        if address in local:
            counterparty = resolved[address].counterparty
            status = statuses.get(counterparty.pk) if counterparty is not None else None
            if status is None:
                raise UnknownRecipient(f"{address} is not a counterparty of this node", field="recipients")
            if status != KycStatus.ACCEPTED:
                raise RecipientNotAccepted(f"{address} has not been accepted (KYC)", field="recipients")
            result[address] = Recipient(address, b"", counterparty=counterparty)
        else:
            peer = peers.get(_domain(address))
            if peer is None:
                raise UnknownRecipient(f"{address}'s node is not a peer of this node", field="recipients")
            result[address] = Recipient(address, b"", peer=peer)
    return result


def _check_links(fresh: Sequence[SignedMessage]) -> None:
    """An acceptance answers an offer this node has seen (sent by or to its sender)."""
    acceptances = [item for item in fresh if item.envelope.agreement == "acceptance"]
    if not acceptances:
        return
    wanted = {item.envelope.reply_to for item in acceptances}
    offers = {
        row.message_id: parse_envelope(row.envelope) for row in Message.objects.filter(message_id__in=wanted)
    }
    offers.update({item.envelope.id: item.envelope for item in fresh if item.envelope.id in wanted})
    for index, item in enumerate(fresh):
        if item.envelope.agreement != "acceptance":
            continue
        offer = offers.get(item.envelope.reply_to or "")
        try:
            if offer is None:
                raise BadLink(f"offer {item.envelope.reply_to} is not known to this node", field="reply_to")
            check_acceptance(item.envelope, offer)
        except MessageError as error:
            raise indexed(error, index) if len(fresh) > 1 else error from error


def _dispatch_after_commit(waiting: Sequence[tuple[int, str]]) -> None:
    """After commit, one router task per recipient node for the (peer, message id) waiting."""
    by_peer: dict[int, list[str]] = defaultdict(list)
    for peer_id, message_id in waiting:
        by_peer[peer_id].append(message_id)

    def send() -> None:
        from messaging import tasks

        for peer_id, message_ids in by_peer.items():
            ids = sorted(set(message_ids))
            for start in range(0, len(ids), DELIVERY_BATCH):
                tasks.messages_deliver.delay(peer_id, ids[start : start + DELIVERY_BATCH])

    if by_peer:
        transaction.on_commit(send)


# --- the router: this node's side ---------------------------------------------------------------


class DeliveryRetry(Exception):  # noqa: N818 - the name says what the task should do
    """The peer could not take the messages now; try again later."""


def message_wire(message: Message) -> dict[str, Any]:
    """A stored message in its signed wire form: ``{"envelope", "signature"}`` when signed
    alone, ``{"envelope", "batch": {root, size, index, path, signature}}`` as one of a batch."""
    batch = message_batch_json(message)
    if batch is None:
        return {"envelope": message.envelope, "signature": message.signature}
    return {"envelope": message.envelope, "batch": {**batch, "signature": message.signature}}


def _entry_json(message: Message) -> dict[str, Any]:
    entry = message.ledger_entry
    assert entry is not None
    return ledger_services.signed_entry_of(entry, message.record["ledger"]).to_json()


def deliveries_send(*, peer_id: int, message_ids: Sequence[str]) -> int:
    """Carry the still-undelivered messages to ``peer_id``'s node in one signed request and
    record its answer; returns how many are still waiting. Raises :class:`DeliveryRetry` if
    the peer did not answer (or failed), so the task retries with backoff."""
    pending = list(
        Delivery.objects.select_related("message__ledger_entry", "peer")
        .filter(peer_id=peer_id, status=DeliveryStatus.ACCEPTED, message__message_id__in=list(message_ids))
        .order_by("id")
    )
    if not pending:
        return 0
    peer = pending[0].peer
    assert peer is not None
    Delivery.objects.filter(pk__in=[row.pk for row in pending]).update(
        attempts=F("attempts") + 1, last_attempt_at=timezone.now()
    )
    messages = {row.message.message_id: row.message for row in pending}
    for chunk in _chunks_by_size(list(messages.values())):
        rows = [row for row in pending if row.message.message_id in {message.message_id for message in chunk}]
        body = {
            "messages": [
                {"message": message_wire(message), "entry": _entry_json(message)} for message in chunk
            ]
        }
        try:
            answer = peer_request(peer, "POST", DELIVER_PATH, json_body=body, timeout=30)
        except PeerUnreachable as error:
            _note_error(rows, str(error))
            raise DeliveryRetry(str(error)) from error
        if not answer.ok:
            _note_error(rows, f"{peer.name} answered {answer.status}: {answer.body[:200]!r}")
            raise DeliveryRetry(f"{peer.name} answered {answer.status}")
        deliveries_apply_answer(peer=peer, results=answer.json().get("results", []))
    return Delivery.objects.filter(pk__in=[row.pk for row in pending], status=DeliveryStatus.ACCEPTED).count()


# A delivery request stays under Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB) at the receiver;
# an envelope is at most 256 KiB, so every message fits in some request.
DELIVERY_MAX_BYTES = 2_000_000
_ENTRY_ALLOWANCE_BYTES = 1_500  # the signed ledger entry and the JSON around each message


def _chunks_by_size(messages: Sequence[Message]) -> Iterator[list[Message]]:
    chunk: list[Message] = []
    size = 0
    for message in messages:
        cost = message.size + _ENTRY_ALLOWANCE_BYTES
        if chunk and size + cost > DELIVERY_MAX_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(message)
        size += cost
    if chunk:
        yield chunk


def _note_error(rows: Sequence[Delivery], text: str) -> None:
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(last_error=text[:300])


@transaction.atomic
def deliveries_apply_answer(*, peer: Peer, results: Sequence[Mapping[str, Any]]) -> None:
    """Record what the recipients' node said, message by message and recipient by recipient.
    Only deliveries still accepted change (a late answer never revives a timed-out one)."""
    now = timezone.now()
    changed = False
    for result in results:
        if not isinstance(result, Mapping):
            continue
        rows = Delivery.objects.select_for_update().filter(
            peer=peer, message__message_id=str(result.get("id", "")), status=DeliveryStatus.ACCEPTED
        )
        error = result.get("error")
        per_recipient = result.get("recipients") or {}
        for row in rows:
            outcome = (
                {"status": "rejected", **error}
                if isinstance(error, Mapping)
                else per_recipient.get(row.recipient_address)
            )
            if not isinstance(outcome, Mapping):
                continue
            if outcome.get("status") == "delivered":
                row.status, row.delivered_at = DeliveryStatus.DELIVERED, now
            elif outcome.get("status") == "rejected":
                row.status, row.finished_at = DeliveryStatus.REJECTED, now
                row.rejection_code = str(outcome.get("code", "rejected"))[:60]
                row.rejection_reason = str(outcome.get("message", ""))[:500]
            else:
                continue
            row.last_error = ""
            row.save(
                update_fields=[
                    "status",
                    "delivered_at",
                    "finished_at",
                    "rejection_code",
                    "rejection_reason",
                    "last_error",
                ]
            )
            changed = True
    if changed:
        _broadcast_after_commit()


def retry_countdown(retries: int) -> float:
    """Exponential backoff: base · 2^retries, capped, with ±25 % jitter so many messages that
    failed together do not all come back together."""
    import random

    base = settings.MESSAGE_RETRY_BASE_SECONDS * (2 ** min(retries, 20))
    capped = min(base, settings.MESSAGE_RETRY_MAX_SECONDS)
    return float(capped * random.uniform(0.75, 1.25))  # noqa: S311 - jitter, not a secret


def deliveries_waiting(*, peer_id: int, message_ids: Sequence[str]) -> bool:
    """Whether any of these deliveries still waits and has time left (else stop retrying)."""
    deadline = timezone.now() - timedelta(seconds=settings.MESSAGE_DELIVERY_TIMEOUT_SECONDS)
    return Delivery.objects.filter(
        peer_id=peer_id,
        status=DeliveryStatus.ACCEPTED,
        message__message_id__in=list(message_ids),
        created_at__gt=deadline,
    ).exists()


# --- the router: the recipients' node ----------------------------------------------------------


@dataclass
class _ReceiveChecks:
    """What one delivery request has verified already: a batch's signature, and the signed
    record of a batch, are checked once for all of its messages."""

    batches: VerifiedBatches = field(default_factory=set)
    records: dict[tuple[bytes, bytes], SignedEntry] = field(default_factory=dict)
    voted: set[bytes] = field(default_factory=set)


def _check_record(
    peer: Peer, signed: SignedMessage, entry_json: object, checks: _ReceiveChecks | None = None
) -> SignedEntry:
    """The sender's bank recorded this message (or its batch) on the sender's ledger and signed
    the record."""
    try:
        entry = SignedEntry.from_json(entry_json)
    except LedgerError as error:
        raise BadEnvelope(f"the ledger record is malformed: {error}", field="entry") from error
    if signed.batch is None:
        expected_kind, expected_body = MESSAGE_ENTRY_KIND, message_entry_body(signed.encoded)
    else:
        expected_kind, expected_body = MESSAGE_BATCH_ENTRY_KIND, message_batch_entry_body(signed)
    if entry.entry.kind != expected_kind or dict(entry.entry.body) != expected_body:
        raise BadEnvelope("the ledger record is not this message's entry", field="entry")
    if ledger_namespace(entry.entry.ledger) != peer.domain:
        raise BadEnvelope("the ledger record is not on a ledger kept by the sending node", field="entry")
    if entry.validator_signature is None:
        raise BadMessageSignature("the ledger record is not signed by the sending node", field="entry")
    encoded = encode_entry(entry.entry)
    seen = (bytes(encoded.hash), bytes(entry.validator_signature))
    if checks is not None and seen in checks.records:
        return entry
    for key in PeerKey.objects.filter(peer=peer).values_list("public", flat=True):
        try:
            verify_encoded(bytes.fromhex(key), encoded, entry.validator_signature, role="validator")
        except LedgerError:
            continue
        if checks is not None:
            checks.records[seen] = entry
        return entry
    raise BadMessageSignature("the ledger record is not signed by a key of the sending node", field="entry")


def messages_receive(*, peer: Peer, items: Sequence[Any]) -> list[dict[str, Any]]:
    """Take messages another node delivers; one result per message (see docs/messaging.md).

    Idempotent on the message id: a retry gets the same answer and stores nothing twice.
    Per recipient of this node: delivered into its inbox, or rejected (unknown, not accepted,
    a box that does not open for a custodial recipient). A message none of whose recipients
    here takes it is not stored."""
    results = []
    checks = _ReceiveChecks()
    for item in items[:DELIVERY_BATCH]:
        message_json = item.get("message") if isinstance(item, Mapping) else None
        envelope = message_json.get("envelope") if isinstance(message_json, Mapping) else None
        message_id = envelope.get("id") if isinstance(envelope, Mapping) else None
        try:
            try:
                results.append(_receive_one(peer, message_json, item.get("entry"), checks))
            except (IntegrityError, psycopg.errors.UniqueViolation):
                # The same message delivered twice at once (a retry overlapping the first try).
                results.append(_receive_one(peer, message_json, item.get("entry"), checks))
        except MessageError as error:
            results.append({"id": message_id, "error": {"code": error.code, "message": error.message}})
    return results


@transaction.atomic
def _receive_one(peer: Peer, message_json: Any, entry_json: Any, checks: _ReceiveChecks) -> dict[str, Any]:
    signed = parse_signed_message(message_json, verified=checks.batches)
    envelope = signed.envelope
    if _domain(envelope.sender) != peer.domain:
        raise BadEnvelope(f"{peer.name} cannot deliver a message from {envelope.sender}", field="sender")
    entry = _check_record(peer, signed, entry_json, checks)
    ours = [address for address in envelope.recipients if _domain(address) == settings.NODE_DOMAIN]
    if not ours:
        raise NotYourRecipient("none of the message's recipients is a counterparty of this node")
    existing = Message.objects.select_for_update().filter(message_id=envelope.id).first()
    if existing is not None and existing.digest != signed.digest.hex():
        raise MessageIdReused(
            f"message id {envelope.id} was delivered before with another digest", field="id"
        )
    stored = {row.recipient_address: row for row in existing.deliveries.all()} if existing is not None else {}
    counterparties = _local_counterparties(ours)
    outcomes: dict[str, dict[str, Any]] = {}
    to_store: list[tuple[str, Counterparty]] = []
    for address in ours:
        row = stored.get(address)
        if row is not None:
            outcomes[address] = (
                {"status": "rejected", "code": row.rejection_code, "message": row.rejection_reason}
                if row.status == DeliveryStatus.REJECTED
                else {"status": "delivered"}
            )
            continue
        counterparty = counterparties.get(address)
        if counterparty is None:
            outcomes[address] = {
                "status": "rejected",
                "code": UnknownRecipient.code,
                "message": f"{address} is not a counterparty here",
            }
        elif counterparty.kyc_status != KycStatus.ACCEPTED:
            outcomes[address] = {
                "status": "rejected",
                "code": RecipientNotAccepted.code,
                "message": f"{address} has not been accepted (KYC)",
            }
        else:
            status, code = _open_or_refuse(envelope, counterparty)
            if status == DeliveryStatus.REJECTED:
                outcomes[address] = {
                    "status": "rejected",
                    "code": code,
                    "message": f"the box for {address} does not open with its key",
                }
            else:
                outcomes[address] = {"status": "delivered"}
                to_store.append((address, counterparty))
    if to_store:
        now = timezone.now()
        if existing is None:
            commitment = entry_commitment(
                entry.entry.ledger, entry.entry.height, encode_entry(entry.entry).hash
            )
            existing = Message.objects.create(
                message_id=envelope.id,
                digest=signed.digest.hex(),
                envelope=envelope.to_json(),
                signature=signed.signature.hex(),
                batch=None if signed.batch is None else _batch_json(signed),
                kind=envelope.kind,
                sender_address=envelope.sender,
                recipients=list(envelope.recipients),
                reply_to=envelope.reply_to or "",
                encrypted=envelope.encrypted,
                size=len(signed.encoded.signed_bytes),
                sent_at_ms=envelope.time,
                received_from=peer,
                record={
                    "ledger": entry.entry.ledger,
                    "height": entry.entry.height,
                    "hash": encode_entry(entry.entry).hash.hex(),
                },
                observation_digest=observation_digest(commitment),
            )
            # This node attests the record too: its vote for the same commitment is agreed once,
            # and lets this node follow the message into a block like its own.
            # Once per record in a request: a batch's messages share one.
            if commitment not in checks.voted:
                consensus_vote_many(payloads=[commitment], kind=ENTRY_OBSERVATION_KIND)
                # Remembered once it is committed: a message whose transaction rolls back leaves
                # the vote to the next message of the batch.
                transaction.on_commit(lambda: checks.voted.add(commitment))
        Delivery.objects.bulk_create(
            [
                Delivery(
                    message=existing,
                    recipient_address=address,
                    recipient=counterparty,
                    status=DeliveryStatus.DELIVERED,
                    delivered_at=now,
                )
                for address, counterparty in to_store
            ]
        )
        audit_record(
            actor=f"peer:{peer.name}",
            action="message.receive",
            target=existing,
            after={"id": envelope.id, "recipients": [address for address, _ in to_store]},
        )
        _broadcast_after_commit()
    return {"id": envelope.id, "recipients": outcomes}


# --- rejection by a recipient --------------------------------------------------------------------


@transaction.atomic
def delivery_reject(*, message_id: str, recipient: str, reason: str, actor: Any) -> Delivery:
    """A recipient of this node refuses a message delivered to it (say, a self-custody recipient
    whose box did not open on its own device); its sender's node is told."""
    row = (
        Delivery.objects.select_for_update()
        .select_related("message")
        .filter(message__message_id=message_id, recipient_address=recipient, recipient__isnull=False)
        .first()
    )
    if row is None:
        raise UnknownMessage(f"message {message_id} was not delivered to {recipient} at this node")
    if row.status != DeliveryStatus.DELIVERED:
        raise AlreadyFinished(
            f"the delivery to {recipient} is {row.get_status_display().lower()}, not delivered"
        )
    code = (
        "ciphertext_does_not_open"
        if reason.strip().lower() == "ciphertext_does_not_open"
        else "rejected_by_recipient"
    )
    row.status, row.finished_at = DeliveryStatus.REJECTED, timezone.now()
    row.rejection_code, row.rejection_reason = code, reason[:500]
    row.save(update_fields=["status", "finished_at", "rejection_code", "rejection_reason"])
    audit_record(
        actor=actor,
        action="message.reject",
        target=row.message,
        after={"recipient": recipient, "code": code},
        reason=reason,
    )
    if row.message.received_from_id is not None:
        transaction.on_commit(lambda: _notify_rejection(row.pk))
    _broadcast_after_commit()
    return row


def _notify_rejection(delivery_id: int) -> None:
    from messaging import tasks

    tasks.rejection_notify.delay(delivery_id)


def rejection_send(*, delivery_id: int) -> None:
    row = Delivery.objects.select_related("message__received_from").get(pk=delivery_id)
    peer = row.message.received_from
    assert peer is not None
    body = {
        "id": row.message.message_id,
        "recipient": row.recipient_address,
        "code": row.rejection_code,
        "reason": row.rejection_reason,
    }
    try:
        answer = peer_request(
            peer,
            "POST",
            REJECTIONS_PATH,
            json_body=body,
            idempotency_key=f"reject-{row.message.message_id}-{row.recipient_address}"[:100],
        )
    except PeerUnreachable as error:
        raise DeliveryRetry(str(error)) from error
    if answer.status >= 500:
        raise DeliveryRetry(f"{peer.name} answered {answer.status}")


@transaction.atomic
def rejection_receive(*, peer: Peer, body: Mapping[str, Any]) -> Delivery:
    """A recipient at ``peer`` rejected a message we sent it."""
    recipient = str(body.get("recipient", ""))
    if _domain(recipient) != peer.domain:
        raise NotYourRecipient(f"{peer.name} cannot reject for {recipient}")
    row = (
        Delivery.objects.select_for_update()
        .filter(message__message_id=str(body.get("id", "")), recipient_address=recipient, peer=peer)
        .first()
    )
    if row is None:
        raise UnknownMessage(f"no message {body.get('id')} was sent to {recipient} from here")
    if row.status in (DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED):
        row.status, row.finished_at = DeliveryStatus.REJECTED, timezone.now()
        row.rejection_code = str(body.get("code") or "rejected_by_recipient")[:60]
        row.rejection_reason = str(body.get("reason", ""))[:500]
        row.save(update_fields=["status", "finished_at", "rejection_code", "rejection_reason"])
        _broadcast_after_commit()
    return row


# --- following messages into blocks and anchors; timeouts ------------------------------------------


def messages_follow() -> dict[str, int]:
    """Beat: time out what waited too long, and move messages to "in block" and "anchored".

    Idempotent, a handful of statements whatever the backlog."""
    now = timezone.now()
    deadline = now - timedelta(seconds=settings.MESSAGE_DELIVERY_TIMEOUT_SECONDS)
    timed_out = Delivery.objects.filter(status=DeliveryStatus.ACCEPTED, created_at__lte=deadline).update(
        status=DeliveryStatus.TIMED_OUT, finished_at=now
    )
    message = Message._meta.db_table
    pending = PendingObservation._meta.db_table
    anchor = Anchor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {message} AS m SET block_height = p.block_height FROM {pending} AS p "  # noqa: S608 - table names from models
            "WHERE m.block_height IS NULL AND m.observation_digest = p.digest AND p.status = %s",
            [ObservationStatus.AGREED],
        )
        in_block = cursor.rowcount
        cursor.execute(
            f"UPDATE {message} AS m SET anchored_at = %s WHERE m.block_height IS NOT NULL "  # noqa: S608
            f"AND m.anchored_at IS NULL AND EXISTS (SELECT 1 FROM {anchor} AS a "
            "WHERE a.status = %s AND a.height >= m.block_height)",
            [now, AnchorStatus.FINAL],
        )
        anchored = cursor.rowcount
    redispatched = _redispatch_stale(now)
    if timed_out or in_block or anchored:
        _broadcaster.request()
    return {"timed_out": timed_out, "in_block": in_block, "anchored": anchored, "redispatched": redispatched}


def _redispatch_stale(now: Any) -> int:
    """Deliveries still waiting whose router task is gone (a broker that lost it, a worker that
    was down): no attempt for longer than the longest backoff allows. Hand them to the router
    again; a task that was only late finds nothing left to send."""
    stale = now - timedelta(seconds=2 * settings.MESSAGE_RETRY_MAX_SECONDS + 5)
    rows = list(
        Delivery.objects.filter(status=DeliveryStatus.ACCEPTED, peer__isnull=False)
        .filter(Q(last_attempt_at__lt=stale) | Q(last_attempt_at__isnull=True, created_at__lt=stale))
        .values_list("pk", "peer_id", "message__message_id")[: DELIVERY_BATCH * 10]
    )
    if not rows:
        return 0
    # Counted as an attempt now, so the next tick does not hand them out again before the task runs.
    Delivery.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(last_attempt_at=now)
    by_peer: dict[int, set[str]] = defaultdict(set)
    for _, peer_id, message_id in rows:
        by_peer[peer_id].add(message_id)
    from messaging import tasks

    for peer_id, message_ids in by_peer.items():
        ordered = sorted(message_ids)
        for start in range(0, len(ordered), DELIVERY_BATCH):
            tasks.messages_deliver.delay(peer_id, ordered[start : start + DELIVERY_BATCH])
    return len(rows)


# --- attachments --------------------------------------------------------------------------------


@transaction.atomic
def attachment_upload(*, content: bytes, declared_type: str | None, actor: Any) -> MessageAttachment:
    """Store a file a message will name, content-addressed in the counterparty document store
    (same 10 MiB limit and the same type check by magic number); the same bytes are one row."""
    if not content:
        raise BadAttachment("the file is empty", field="file")
    if len(content) > MAX_ATTACHMENT_BYTES:
        from messaging.protocol.errors import MessageTooLarge

        raise MessageTooLarge(f"a file is at most {MAX_ATTACHMENT_BYTES} bytes (10 MiB)", field="file")
    sniffed = storage.sniff_content_type(content[:16])
    if sniffed is None or sniffed not in ATTACHMENT_MEDIA_TYPES:
        raise BadAttachment("a file is a PDF, PNG or JPEG (recognised by its first bytes)", field="file")
    if declared_type and declared_type not in (sniffed, "application/octet-stream"):
        raise BadAttachment(f"the file is {sniffed}, not {declared_type}", field="file")
    sha = storage.document_store(content)
    row, created = MessageAttachment.objects.get_or_create(
        sha256=sha, defaults={"size": len(content), "media_type": sniffed, "uploaded_by": str(actor)[:150]}
    )
    if created:
        audit_record(
            actor=actor, action="message.attachment", target=row, after={"sha256": sha, "size": len(content)}
        )
    return row
