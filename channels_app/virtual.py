"""Virtual channels across three nodes (Perun, length 2): Alice and Bob on two nodes open a
channel through a third node, Ingrid, with no on-chain transaction.

The rules are the ones in ``channels_app.protocol`` (the same ones the custodial path through
this node uses); this module is the shell that carries their messages between nodes over the
signed transport. Who does what:

- **The end that opens it** (Alice, :func:`virtual_channel_open_through`): signs the virtual
  channel's opening state and has the other end countersign it (``/node-api/virtual-channels/
  open``); proposes the lock in Alice-Ingrid to Ingrid with the opening state as evidence
  (Ingrid checks it and *holds* her countersignature); asks the other end to lock its side
  (``…/<id>/lock``); then fetches Ingrid's countersignature on its own lock, which Ingrid
  released when the mirror lock arrived (``/node-api/channels/<id>/countersignature``).
- **The other end** (Bob, :func:`virtual_channel_accept`, :func:`virtual_channel_lock_ours`):
  countersigns the opening after checking that its ledger channel with Ingrid can lock its part,
  and proposes the mirror lock to Ingrid, whose answer completes both locks at once.
- **Ingrid** (:func:`virtual_proposal_receive`): the intermediary's rules hold the first lock,
  release both on the mirror, and at closing accept each release only with the final virtual
  state as evidence and only if she loses nothing.

Alice and Bob then update the virtual channel between themselves like any channel between two
nodes (``services.channel_pay``, ``/node-api/channels/<id>/proposals``): Ingrid sees none of it.
Closing (:func:`virtual_channel_close`, from either end) signs a final virtual state with the
other end, releases our lock into our ledger channel with Ingrid, and asks the other end to
release its lock too (``…/<id>/release``).

No message ever calls back into a node that is waiting for an answer (Alice *fetches* her
countersignature instead of Ingrid pushing it), so a node's single request thread never waits
on itself. Every state is persisted before it is acknowledged: each step commits before the
request that depends on it is sent.
"""

from __future__ import annotations

import random
from typing import Any

from django.db import transaction

from channels_app import codec, services
from channels_app.models import (
    Channel,
    ChannelPhase,
    ChannelState,
    OnChainTransaction,
    SubAllocation,
    TransactionStatus,
    VirtualChannel,
    VirtualRole,
)
from channels_app.protocol import eip712, events, proposals, state_changes, sub_claims
from channels_app.protocol.channel_state import Allocation, ChannelParams, check_conserved
from channels_app.protocol.channel_state import ChannelState as ProtocolState
from channels_app.protocol.channel_state import SubAllocation as ProtocolSubAllocation
from channels_app.protocol.errors import (
    BadSignature,
    BadState,
    ChannelClosed,
    NoPendingUpdate,
    UnknownChannel,
    WrongPhase,
)
from channels_app.protocol.state import ChannelKind, SignedState
from channels_app.protocol.types import Address, ChannelId, Timestamp, Version, Wei, address
from settlement import ethereum, keystore
from settlement.audit import audit_record
from settlement.models import Peer

# A virtual-channel step waits on a chain of two requests (Alice → Bob → Ingrid).
CHAIN_TIMEOUT_SECONDS = 30.0


class PeerRefused(BadState):
    """A peer node refused a step; its code and sentence are passed on."""

    def __init__(self, peer: Peer, step: str, answer: Any) -> None:
        try:
            error = answer.json()["error"]
            code, message = str(error.get("code", "")), str(error.get("message", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            code, message = "", answer.body[:200].decode(errors="replace")
        super().__init__(f"{peer.name} refused {step}: {message} ({code or answer.status})")
        self.peer_code = code


# ---------------------------------------------------------------- documents on the wire


def signed_document(params: ChannelParams, signed: SignedState) -> dict[str, Any]:
    from channels_app.api import state_output

    return {
        "params": services.params_document(params),
        "state": state_output(signed.state),
        "signatures": ["0x" + bytes(s).hex() for s in signed.signatures],
    }


def signature_from_text(text: Any) -> eip712.Signature:
    value = str(text or "").lower().removeprefix("0x")
    if len(value) != 130:
        raise BadSignature("a channel signature is 65 bytes as 0x + 130 hex digits")
    try:
        return eip712.Signature(bytes.fromhex(value))
    except ValueError:
        raise BadSignature("the signature is not hex") from None


def state_from_document(channel_id: bytes, document: Any) -> ProtocolState:
    from channels_app.api import ChannelStateInput, state_from_input

    serializer = ChannelStateInput(data=document)
    if not serializer.is_valid():
        raise BadState(f"the state is malformed: {serializer.errors}")

    class _Channel:
        id_bytes = channel_id

    return state_from_input(_Channel(), serializer.validated_data)  # type: ignore[arg-type]


def evidence_from_document(document: Any) -> state_changes.SubChannelEvidence:
    if not isinstance(document, dict):
        raise BadState("the evidence is an object with params, state and signatures")
    params = services.params_from_document(document.get("params") or {})
    state = state_from_document(params.channel_id, document.get("state"))
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 2:
        raise BadSignature("the evidence carries both participants' signatures")
    pair = (signature_from_text(signatures[0]), signature_from_text(signatures[1]))
    return state_changes.SubChannelEvidence(params, SignedState(state, pair))


# Refusals that mean "not yet": the peer's watcher has not seen a deposit the chain already
# holds (each node follows the chain on its own beat). They store nothing, so asking again is safe.
NOT_YET = {"not_funded", "wrong_phase"}
NOT_YET_ATTEMPTS = 6
NOT_YET_PAUSE_SECONDS = 2.0


def _post(peer: Peer, path: str, body: dict[str, Any], step: str, key: str | None = None) -> Any:
    import time

    from settlement.transport import peer_request

    for attempt in range(NOT_YET_ATTEMPTS):
        # A refusal is kept under its idempotency key; each new attempt needs its own key.
        attempt_key = None if key is None else (key if attempt == 0 else f"{key}-{attempt}")
        answer = peer_request(
            peer, "POST", path, json_body=body, idempotency_key=attempt_key, timeout=CHAIN_TIMEOUT_SECONDS
        )
        if answer.ok:
            return answer.json()
        refused = PeerRefused(peer, step, answer)
        if refused.peer_code not in NOT_YET or attempt == NOT_YET_ATTEMPTS - 1:
            raise refused
        time.sleep(NOT_YET_PAUSE_SECONDS)
    raise AssertionError("unreachable")  # pragma: no cover


def peer_channel_phase(*, channel: Channel) -> str:
    """The phase the peer node sees for a channel with us (its watcher may lag the chain)."""
    if channel.peer is None:
        raise WrongPhase("this channel is not with a peer node")
    answer = _post(channel.peer, f"/node-api/channels/{channel.channel_id}/status", {}, "its channel status")
    return str(answer.get("phase", ""))


# ---------------------------------------------------------------- finding the ledger channels


def _peer_by_address(participant: Address) -> Peer:
    peer = Peer.objects.filter(ethereum_address__iexact=participant).first()
    if peer is None:
        raise UnknownChannel(f"no peer node with the Ethereum address {participant} is known here")
    return peer


def ledger_channel_with(peer: Peer) -> Channel:
    """Our newest open ledger channel with ``peer``: the one a virtual channel locks funds in."""
    found = (
        Channel.objects.filter(peer=peer, kind=ChannelKind.LEDGER.value, phase=ChannelPhase.OPEN)
        .order_by("-created_at", "-id")
        .first()
    )
    if found is None:
        raise WrongPhase(f"there is no open ledger channel with {peer.name} to lock funds in")
    return found


def _funding_ledger(virtual: Channel) -> Channel:
    """The ledger channel of ours whose latest both-signed state locks funds for ``virtual``."""
    lock = (
        SubAllocation.objects.filter(sub_channel_id=virtual.channel_id, released_in_version__isnull=True)
        .select_related("channel")
        .first()
    )
    if lock is None:
        raise WrongPhase("no ledger channel of ours holds a lock for this virtual channel")
    return lock.channel


def _virtual_row(channel_id: str) -> Channel:
    row = Channel.objects.filter(channel_id=channel_id.lower(), kind=ChannelKind.VIRTUAL.value).first()
    if row is None:
        raise UnknownChannel(f"no virtual channel {channel_id} is known here")
    return row


def _our_share(params: ChannelParams, opening: ProtocolState, our_index: int) -> tuple[Address, int, int]:
    if len(opening.allocations) != 1:
        raise BadState("a virtual channel holds exactly one asset")
    allocation = opening.allocations[0]
    return allocation.asset, allocation.balance(our_index), allocation.balance(1 - our_index)


# ---------------------------------------------------------------- the end that opens it (Alice)


def virtual_channel_open_through(
    *, intermediary: Peer, peer: Peer, asset: str, ours: int, theirs: int, actor: Any
) -> Channel:
    """Open a virtual channel with the node ``peer`` through the node ``intermediary``.

    We lock ``ours`` and Ingrid ``theirs`` in our ledger channel with her; Bob locks ``theirs``
    and Ingrid ``ours`` in his. No on-chain transaction. Returns our row of the virtual channel,
    OPEN once both locks are countersigned.
    """
    if intermediary.pk == peer.pk:
        raise BadState("the intermediary and the other end are two different nodes")
    if not intermediary.ethereum_address or not peer.ethereum_address:
        raise BadState("both nodes must publish an Ethereum address")
    if ours < 0 or theirs < 0 or ours + theirs == 0:
        raise BadState("a virtual channel locks a positive total; each side puts zero or more")
    ledger = ledger_channel_with(intermediary)
    asset = address(asset)
    # Refuse early, before any node signs anything, if our ledger channel cannot lock it.
    params = proposals.channel_params(
        ethereum.chain_id(),
        (services.node_address(), address(peer.ethereum_address)),
        ledger.protocol_params.challenge_duration,
        random.SystemRandom(),
    )
    proposals.lock(services._open_channel(ledger), params, asset, ours, theirs)
    opening = proposals.opening_state(params, {asset: (ours, theirs)})
    signature = eip712.sign_state(keystore.node_ethereum_private_key(), services.domain(), opening)
    from channels_app.api import state_output

    answer = _post(
        peer,
        "/node-api/virtual-channels/open",
        {
            "params": services.params_document(params),
            "state": state_output(opening),
            "signature": "0x" + signature.hex(),
            "intermediary": address(intermediary.ethereum_address),
        },
        "the virtual channel",
        key=f"virtual-open-{services._hex(params.channel_id)}",
    )
    signed = SignedState(opening, (signature, signature_from_text(answer.get("signature"))))
    virtual = _virtual_opened(peer=peer, params=params, signed=signed, our_index=0, actor=actor)
    audit_record(
        actor=actor,
        action="virtual_channel.open",
        target=virtual,
        after={
            "intermediary": intermediary.name,
            "peer": peer.name,
            "ours": str(ours),
            "theirs": str(theirs),
        },
    )
    held = _lock_ours(virtual, ledger, actor)
    if held:
        _post(
            peer,
            f"/node-api/virtual-channels/{virtual.channel_id}/lock",
            {"intermediary": address(intermediary.ethereum_address)},
            "to lock its side",
            key=f"virtual-lock-{virtual.channel_id}",
        )
        countersignature_fetch(channel=ledger, actor=actor)
    virtual.refresh_from_db()
    return virtual


@transaction.atomic
def _virtual_opened(
    *, peer: Peer, params: ChannelParams, signed: SignedState, our_index: int, actor: Any
) -> Channel:
    if Channel.objects.filter(channel_id=services._hex(params.channel_id)).exists():
        raise BadState("this channel is already open")
    row = Channel.objects.create(
        channel_id=services._hex(params.channel_id),
        kind=ChannelKind.VIRTUAL.value,
        peer=peer,
        our_address=params.participants[our_index],
        their_address=params.participants[1 - our_index],
        our_index=our_index,
        params=codec.encode(params),
        phase=ChannelPhase.PROPOSED,
        clock=services._chain_time(),
    )
    services._apply(
        row.channel_id,
        [state_changes.ChannelOpened(params, ChannelKind.VIRTUAL, signed)],
        actor=actor,
        create=row,
    )
    return row


def _lock_ours(virtual: Channel, ledger: Channel, actor: Any) -> bool:
    """Propose our lock to Ingrid with the virtual opening state as evidence. True if she holds
    it for the mirror (we are first), False if her answer completed it (we are second)."""
    with transaction.atomic():
        row = services._row_locked(ledger.channel_id)
        virtual_row = services._row_locked(virtual.channel_id)
        sub = virtual_row.protocol_channel
        asset, ours, theirs = _our_share(sub.params, sub.agreed_deposits, sub.our_index)
        lock = proposals.lock(services._open_channel(row), sub.params, asset, ours, theirs)
        result = services._propose(row, lock, actor)
    return _deliver_to_intermediary(
        result.channel, result.state, result.signature, sub.params, sub.latest, actor
    )


def _deliver_to_intermediary(
    ledger: Channel,
    state: ProtocolState,
    signature: bytes,
    sub_params: ChannelParams,
    evidence: SignedState,
    actor: Any,
) -> bool:
    """Send a committed lock or release to Ingrid; apply her countersignature if she gave it."""
    if ledger.peer is None:
        raise WrongPhase("the funding ledger channel is not with a peer node")
    from channels_app.api import state_output

    answer = _post(
        ledger.peer,
        f"/node-api/channels/{ledger.channel_id}/virtual-proposals",
        {
            "state": state_output(state),
            "signature": "0x" + bytes(signature).hex(),
            "evidence": [signed_document(sub_params, evidence)],
        },
        "the virtual-channel update of our ledger channel",
        key=f"virtual-proposal-{ledger.channel_id}-{state.version}",
    )
    if answer.get("held"):
        return True
    services.channel_countersignature_receive(
        channel=ledger,
        version=state.version,
        signature=signature_from_text(answer.get("countersignature")),
        actor=actor,
    )
    return False


def countersignature_fetch(*, channel: Channel, actor: Any) -> Channel:
    """Ask the peer for its countersignature on our pending update (Ingrid released it when the
    mirror lock arrived); apply it once she has it."""
    row = Channel.objects.select_related("peer").get(pk=channel.pk)
    if row.peer is None or row.machine is None:
        raise WrongPhase("this channel is not with a peer node")
    pending = row.protocol_channel.pending
    if pending is None:
        raise NoPendingUpdate("we have no update waiting for a countersignature")
    answer = _post(
        row.peer,
        f"/node-api/channels/{row.channel_id}/countersignature",
        {"version": pending.state.version},
        "its countersignature",
    )
    return services.channel_countersignature_receive(
        channel=row,
        version=pending.state.version,
        signature=signature_from_text(answer.get("countersignature")),
        actor=actor,
    )


# ---------------------------------------------------------------- the other end (Bob)


def virtual_channel_accept(
    *, peer: Peer, params: ChannelParams, opening: ProtocolState, signature: bytes, intermediary: str
) -> Channel:
    """A peer node opens a virtual channel with us through ``intermediary``: check that our
    ledger channel with it can lock our part, countersign, persist, then answer."""
    if not peer.ethereum_address or params.participants[0] != address(peer.ethereum_address):
        raise BadState("the virtual channel's participant A must be the requesting node")
    if params.participants[1] != services.node_address():
        raise BadState("the virtual channel's participant B must be this node")
    if params.chain_id != ethereum.chain_id():
        raise BadState("the virtual channel is for another chain")
    ingrid = _peer_by_address(address(intermediary))
    if ingrid.pk == peer.pk:
        raise BadState("the intermediary is a third node, not the other end")
    ledger = ledger_channel_with(ingrid)
    asset, ours, theirs = _our_share(params, opening, 1)
    proposals.lock(services._open_channel(ledger), params, asset, ours, theirs)
    countersignature = eip712.sign_state(keystore.node_ethereum_private_key(), services.domain(), opening)
    signed = SignedState(opening, (eip712.Signature(signature), countersignature))
    row = _virtual_opened(peer=peer, params=params, signed=signed, our_index=1, actor=f"peer:{peer.name}")
    audit_record(
        actor=f"peer:{peer.name}",
        action="virtual_channel.accept",
        target=row,
        after={"intermediary": ingrid.name},
    )
    return row


def virtual_channel_lock_ours(*, peer: Peer, channel_id: str, intermediary: str) -> Channel:
    """The other end asks us to lock our side in our ledger channel with Ingrid."""
    virtual = _virtual_row(channel_id)
    if virtual.peer_id != peer.pk:
        raise BadState("this virtual channel is not with the requesting node")
    if virtual.phase != ChannelPhase.FUNDING:
        raise WrongPhase("this virtual channel is not waiting for its locks")
    ledger = ledger_channel_with(_peer_by_address(address(intermediary)))
    # Normally the other end's lock is held at Ingrid and ours releases both. Should ours be
    # held instead (Ingrid lost track of the first), the virtual channel stays FUNDING here
    # and the other end's fetch of its countersignature fails: nothing is signed by one side only.
    _lock_ours(virtual, ledger, f"peer:{peer.name}")
    virtual.refresh_from_db()
    return virtual


# ---------------------------------------------------------------- Ingrid


def virtual_proposal_receive(
    *,
    peer: Peer,
    channel: Channel,
    state: ProtocolState,
    signature: bytes,
    evidence: list[state_changes.SubChannelEvidence],
) -> services.UpdateResult:
    """A lock or release of a virtual channel we mediate (or take part in), with the virtual
    channel's both-signed state as evidence. A first lock is held: no countersignature yet."""
    if channel.peer_id != peer.pk:
        raise BadState("this channel is not with the requesting node")
    if not evidence:
        raise BadState("a virtual-channel update carries the virtual channel's signed state")
    with transaction.atomic():
        row = services._row_locked(channel.channel_id)
        services._open_channel(row)
        # The mirror lock, if it is already held, is in our ledger channel with the other end.
        other_ends = {
            participant
            for item in evidence
            for participant in item.params.participants
            if participant != address(row.their_address)
        }
        mirrors = list(
            Channel.objects.filter(kind=ChannelKind.LEDGER.value, their_address__in=sorted(other_ends))
            .exclude(channel_id=row.channel_id)
            .values_list("channel_id", flat=True)
        )
        countersignature = eip712.sign_state(keystore.node_ethereum_private_key(), services.domain(), state)
        change = state_changes.ProposalReceived(
            row.id_bytes, state, eip712.Signature(signature), countersignature, evidence=tuple(evidence)
        )
        applied = services._apply(row.channel_id, [change], actor=f"peer:{peer.name}", also=mirrors)
        held = applied.first(events.VirtualLockHeld) is not None
    return services.UpdateResult(applied.channel, state, signature, None if held else countersignature)


def countersignature_get(*, peer: Peer, channel: Channel, version: int) -> bytes:
    """Our signature on a both-signed state of a channel with ``peer`` (persisted already)."""
    if channel.peer_id != peer.pk:
        raise BadState("this channel is not with the requesting node")
    stored = ChannelState.objects.filter(channel=channel, version=version).first()
    if stored is None:
        raise WrongPhase(f"version {version} is not both-signed here (yet)")
    return bytes(stored.protocol_signed.signatures[channel.our_index])


# ---------------------------------------------------------------- closing (either end)


def virtual_channel_close(*, channel: Channel, actor: Any) -> Channel:
    """Cooperative close from either end: a final virtual state signed with the other end, our
    lock released into our ledger channel with Ingrid, then the other end's released into its."""
    virtual = _virtual_row(channel.channel_id)
    if virtual.peer is None:
        raise WrongPhase("virtual channels through this node close with virtual_channel_settle")
    if virtual.phase == ChannelPhase.OPEN:
        services.channel_close(channel=virtual, actor=actor)
        virtual.refresh_from_db()
    if virtual.phase != ChannelPhase.FINAL:
        raise WrongPhase("the virtual channel is not open or final; nothing to close")
    virtual_channel_release(channel=virtual, actor=actor)
    _post(
        virtual.peer,
        f"/node-api/virtual-channels/{virtual.channel_id}/release",
        {},
        "to release its lock",
        key=f"virtual-release-{virtual.channel_id}",
    )
    virtual.refresh_from_db()
    return virtual


def virtual_channel_release(*, channel: Channel, actor: Any) -> Channel:
    """Release our lock for a final virtual channel into our ledger channel with Ingrid, with
    the final state as her evidence. Safe to call again once released."""
    virtual = _virtual_row(channel.channel_id)
    if virtual.phase == ChannelPhase.CONCLUDED:
        return virtual
    if virtual.phase != ChannelPhase.FINAL:
        raise WrongPhase("the virtual channel has no final state both signed yet")
    ledger = _funding_ledger(virtual)
    with transaction.atomic():
        row = services._row_locked(ledger.channel_id)
        virtual_row = services._row_locked(virtual.channel_id)
        sub = virtual_row.protocol_channel
        release = proposals.release(services._open_channel(row), sub.params, sub.latest.state)
        result = services._propose(row, release, actor)
    _deliver_to_intermediary(result.channel, result.state, result.signature, sub.params, sub.latest, actor)
    audit_record(actor=actor, action="virtual_channel.release", target=virtual)
    virtual.refresh_from_db()
    return virtual


def virtual_channel_release_asked(*, peer: Peer, channel_id: str) -> Channel:
    """The other end closed the virtual channel with us and asks us to release our lock."""
    virtual = _virtual_row(channel_id)
    if virtual.peer_id != peer.pk:
        raise BadState("this virtual channel is not with the requesting node")
    if virtual.phase not in (ChannelPhase.FINAL, ChannelPhase.CONCLUDED):
        raise ChannelClosed("the virtual channel has no final state both signed; close it first")
    return virtual_channel_release(channel=virtual, actor=f"peer:{peer.name}")


def channel_settle_cooperatively(*, channel: Channel, actor: Any) -> Channel:
    """The dashboard's and the API's cooperative settle: a virtual channel with a peer node
    closes into both ledger channels (no on-chain step); any other channel signs a final state
    and concludes on-chain."""
    if channel.kind == ChannelKind.VIRTUAL.value and channel.peer_id is not None:
        return virtual_channel_close(channel=channel, actor=actor)
    return services.channel_close(channel=channel, actor=actor).channel


def channel_settle_by_dispute(*, channel: Channel, actor: Any) -> Channel:
    """The dashboard's and the API's dispute: a virtual channel with a peer node registers
    itself and the ledger channel that funds it; any other channel registers its latest state."""
    if channel.kind == ChannelKind.VIRTUAL.value and channel.peer_id is not None:
        return virtual_channel_dispute(channel=channel, actor=actor)
    return services.channel_dispute(channel=channel, actor=actor)


# ---------------------------------------------------------------- when an end stops answering


def virtual_channel_dispute(*, channel: Channel, actor: Any) -> Channel:
    """Settle on-chain: register the virtual channel's latest both-signed state and our ledger
    channel with Ingrid (with its lock); after both challenge periods the watcher concludes the
    ledger channel and claims the lock per the virtual channel's registered state."""
    virtual = _virtual_row(channel.channel_id)
    ledger = _funding_ledger(virtual)
    if virtual.phase not in (ChannelPhase.DISPUTE, ChannelPhase.CONCLUDED):
        services.channel_dispute(channel=virtual, actor=actor)
    if ledger.phase not in (ChannelPhase.DISPUTE, ChannelPhase.CONCLUDED):
        services.channel_dispute(channel=ledger, actor=actor)
    virtual.refresh_from_db()
    return virtual


CLAIM_PURPOSES = ("register_sub_channel", "claim_sub_allocation")
MAX_REVERTED_CLAIMS = 3


def _known_sub_channel(channel_id: str) -> sub_claims.KnownSubChannel | None:
    """The sub-channel's states we hold: all of them as a participant, the latest as Ingrid."""
    row = Channel.objects.filter(channel_id=channel_id).exclude(kind=ChannelKind.LEDGER.value).first()
    if row is not None:
        states = tuple(stored.protocol_signed for stored in ChannelState.objects.filter(channel=row))
        return sub_claims.KnownSubChannel(row.protocol_params, states) if states else None
    record = VirtualChannel.objects.filter(channel_id=channel_id).first()
    if record is None:
        return None
    return sub_claims.KnownSubChannel(codec.decode(record.params), (codec.decode(record.latest),))


def _status_of(channel_id: bytes) -> eip712.OnChainStatus:
    word = ethereum.contract("Adjudicator").functions.statusOf(channel_id).call()
    return eip712.OnChainStatus.from_word(int(word))


def sub_allocations_claim_due(now: int) -> int:
    """The watcher's follow-up for concluded ledger channels that still lock funds on-chain:
    register the sub-channel if nobody did, then claim each lock per its final state. Returns
    how many transactions it decided."""
    decided = 0
    ids = (
        Channel.objects.filter(
            kind=ChannelKind.LEDGER.value,
            phase=ChannelPhase.CONCLUDED,
            sub_allocations__released_in_version__isnull=True,
        )
        .values_list("channel_id", flat=True)
        .distinct()
    )
    for channel_id in ids:
        with transaction.atomic():
            decided += _claim_step(services._row_locked(channel_id), Timestamp(now))
    return decided


def _claim_step(row: Channel, now: Timestamp) -> int:
    open_claims = OnChainTransaction.objects.filter(channel=row, purpose__in=CLAIM_PURPOSES)
    if open_claims.filter(status__in=[TransactionStatus.PENDING, TransactionStatus.SUBMITTED]).exists():
        # One step at a time: the next is decided from the chain once this one is mined (a
        # reorganisation that drops it makes the follower send it again).
        return 0
    if open_claims.filter(status=TransactionStatus.REVERTED).count() >= MAX_REVERTED_CLAIMS:
        return 0
    status = _status_of(row.id_bytes)
    stored = ChannelState.objects.filter(channel=row, version=status.version).first()
    if stored is None:
        return 0
    registered: ProtocolState = stored.protocol_state
    known: dict[ChannelId, sub_claims.KnownSubChannel] = {}
    statuses: dict[ChannelId, eip712.OnChainStatus] = {}
    for sub in registered.sub_allocations:
        held = _known_sub_channel(services._hex(sub.channel_id))
        if held is not None:
            known[sub.channel_id] = held
            statuses[sub.channel_id] = _status_of(sub.channel_id)
    step = sub_claims.next_claim_step(
        registered=registered, status=status, sub_statuses=statuses, known=known, now=now
    )
    adjudicator = ethereum.contract_address("Adjudicator")
    if isinstance(step, sub_claims.AllClaimed):
        SubAllocation.objects.filter(channel=row, released_in_version__isnull=True).update(
            released_in_version=status.version
        )
        return 0
    if isinstance(step, sub_claims.RegisterSubChannel):
        data = ethereum.encode_call(
            "Adjudicator",
            "register",
            eip712.params_as_abi_tuple(step.params),
            eip712.state_as_abi_tuple(step.signed.state),
            [eip712.signature_as_abi_tuple(s) for s in step.signed.signatures],
        )
        services._intent(row, "register_sub_channel", adjudicator, data)
        return 1
    if isinstance(step, sub_claims.ClaimSubAllocation):
        data = ethereum.encode_call(
            "Adjudicator",
            "claimSubAllocation",
            eip712.params_as_abi_tuple(row.protocol_params),
            eip712.state_as_abi_tuple(step.parent_state),
            step.index,
            eip712.params_as_abi_tuple(step.sub_params),
            eip712.state_as_abi_tuple(step.sub_state),
        )
        services._intent(row, "claim_sub_allocation", adjudicator, data)
        audit_record(
            actor="watcher",
            action="channel.claim_sub_allocation",
            target=row,
            after={
                "sub_channel": services._hex(step.sub_params.channel_id),
                "version": step.sub_state.version,
            },
        )
        return 1
    return 0


def _fields(value: Any, *names: str) -> tuple[Any, ...]:
    """A decoded ABI struct's fields, whether web3 gave it as a dict or as a tuple."""
    if isinstance(value, dict):
        return tuple(value[name] for name in names)
    return tuple(value)


def _state_from_abi(value: Any) -> ProtocolState:
    channel_id, version, allocations, subs, is_final = _fields(
        value, "channelId", "version", "allocations", "subAllocations", "isFinal"
    )
    return ProtocolState(
        channel_id=ChannelId(bytes(channel_id)),
        version=Version(int(version)),
        allocations=tuple(
            Allocation(address(a), Wei(int(x)), Wei(int(y)))
            for a, x, y in (_fields(item, "asset", "balanceA", "balanceB") for item in allocations)
        ),
        sub_allocations=tuple(
            ProtocolSubAllocation(ChannelId(bytes(i)), address(a), Wei(int(n)))
            for i, a, n in (_fields(item, "channelId", "asset", "amount") for item in subs)
        ),
        is_final=bool(is_final),
    )


def registered_state_learn(*, channel_id: str, transaction_hash: str) -> bool:
    """Ingrid learns a virtual channel's registered state from the transaction that registered
    it: the contract keeps only a fingerprint, and she needs the state itself to claim her
    share of the lock in her other ledger channel. Kept only if both signed it and it is later
    than what she holds. True if she learnt something."""
    record = (
        VirtualChannel.objects.select_for_update()
        .filter(channel_id=channel_id, role=VirtualRole.INTERMEDIARY)
        .first()
    )
    if record is None:
        return False
    sent = ethereum.web3().eth.get_transaction(transaction_hash)  # type: ignore[arg-type]
    try:
        function, arguments = ethereum.contract("Adjudicator").decode_function_input(sent["input"])
    except ValueError:
        return False  # sent through another contract: nothing we can read here
    if function.fn_name not in ("register", "checkpoint", "conclude"):
        return False
    params: ChannelParams = codec.decode(record.params)
    known: SignedState = codec.decode(record.latest)
    state = _state_from_abi(arguments["state"])
    signatures = tuple(
        eip712.Signature(bytes(r) + bytes(s) + bytes([int(v)]))
        for v, r, s in (_fields(item, "v", "r", "s") for item in arguments["sigs"])
    )
    if state.channel_id != params.channel_id or state.version <= known.state.version:
        return False
    for participant, signature in zip(params.participants, signatures, strict=True):
        eip712.verify_state_signature(services.domain(), state, participant, signature)
    check_conserved(known.state.totals(), state)
    record.latest = codec.encode(SignedState(state, (signatures[0], signatures[1])))
    record.version = state.version
    record.save(update_fields=["latest", "version"])
    return True
