"""The firehose: every agreed block and its observations, in order, resumable from a height.

One reader serves both transports (``/ws/firehose/`` and ``GET /api/firehose``): it reads
from PostgreSQL at a cursor ``(height, index)``, hands out messages, and when it has caught up
waits for a wake-up, then reads again *from the cursor*. The wake-up is the Channels group
message the consensus shell already sends after every commit that stored blocks
(``BLOCKS_GROUP``, ``blocks.changed``; the Blocks page uses it too). It is only a hint: a lost,
late, duplicated or early message can delay a block but never skip or repeat one, because
what is sent is always what the database holds after the cursor; and every idle
``FIREHOSE_HEARTBEAT_SECONDS`` the reader reads again anyway (and sends a heartbeat), so a
stream survives a Redis outage at heartbeat latency. Why not PostgreSQL LISTEN/NOTIFY, which is
transactional too: each listener holds a dedicated database connection for its whole life,
while the channel layer is already where every live page waits, and the cursor read makes
delivery exactly-once whatever the wake-up does.

Blocks are stored one locked step at a time, each step committing its blocks together, so the
committed blocks are always a prefix of the chain; the reader still only hands out heights
that follow its cursor exactly, so a gap could at worst stall a stream, never skip a block.

Memory stays bounded: one read is at most ``OBSERVATIONS_PER_MESSAGE`` observations (a larger
block is sent in parts, the last one ``"complete": true``); the websocket stops reading when
the client's unacknowledged bytes fill ``FIREHOSE_WINDOW_BYTES``; an HTTP response ends with an
``end`` record after ``FIREHOSE_RESPONSE_BYTES`` (daphne writes whatever the application sends
into its socket buffer without pushing back, so a byte budget per response is what bounds it).

Who may follow it: ``FIREHOSE_ROLES``. Format and close codes: docs/firehose.md.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from consensus import selectors
from consensus.models import Anchor, Block, BlockObservation
from consensus.protocol.firehose import resume_height
from consensus.services import BLOCKS_GROUP, observation_parts
from settlement.models import Role
from settlement.protocol.merkle import leaf_hash

logger = logging.getLogger("parsec.consensus.firehose")

# Bulk read access to every agreed observation. Operators run the node, auditors read
# everything, admins administer. A KYC reviewer decides on counterparties and has no need for a
# bulk feed of settlement commitments, so it is left out (least privilege; the Blocks pages,
# one block at a time, stay open to every role). An API token has only its own role.
FIREHOSE_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR, Role.ADMIN})

# At most this many observations in one read and one message (a block with more is sent in parts).
OBSERVATIONS_PER_MESSAGE = 500
# At most this many blocks looked at in one read.
BLOCKS_PER_READ = 64

# Websocket close codes (4000-4999 are the application's; the HTTP status they mirror + 4000).
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_REACHED = 4404
CLOSE_SERVER_ERROR = 4500


def may_follow(roles: frozenset[Role]) -> bool:
    return bool(roles & FIREHOSE_ROLES)


def next_height() -> int:
    """The height the next agreed block will have (heights run from 0 without a gap)."""
    highest = Block.objects.aggregate(highest=Max("height"))["highest"]
    return 0 if highest is None else highest + 1


def firehose_start(values: list[str]) -> int:
    """The checked resume height of a stream request; raises ``FirehoseRequestError``."""
    return resume_height(values, next_height=next_height())


# ----------------------------------------------------------------- records


def _hex(value: Any) -> str:
    return bytes(value).hex()


def _anchor_record(anchor: Anchor | None) -> dict[str, Any] | None:
    if anchor is None:
        return None
    return {
        "height": anchor.height,
        "status": anchor.status,
        "tx_hash": anchor.tx_hash or None,
        "block_number": anchor.block_number,
        "log_index": anchor.log_index,
        "confirmations": anchor.confirmations,
        "confirmations_needed": anchor.confirmations_needed,
    }


def _header_record(block: Block, anchor: Anchor | None) -> dict[str, Any]:
    return {
        "type": "block",
        "height": block.height,
        "hash": _hex(block.block_hash),
        "previous": _hex(block.previous_hash),
        "epoch": block.epoch,
        "round": block.round,
        "root": _hex(block.merkle_root),
        "tree_size": block.tree_size,
        "log_root": _hex(block.log_root),
        "validators": list(block.validators),
        "signatures": list(block.signatures),
        "anchor": _anchor_record(anchor),
        "agreed_at": block.created_at.isoformat(),
    }


def _observation_record(index: int, data: bytes) -> dict[str, Any]:
    kind, payload = observation_parts(data)
    return {
        "index": index,
        "kind": kind,
        "payload": base64.b64encode(payload).decode(),
        "leaf_hash": leaf_hash(data).hex(),
    }


def _finish(message: dict[str, Any], height: int, observations: list[dict[str, Any]], total: int) -> None:
    message["observations"] = observations
    last = observations[-1]["index"] + 1 if observations else 0
    message["complete"] = last >= total
    # What a client has once it processed this message: everything before next_height.
    message["next_height"] = height + 1 if message["complete"] else height


def firehose_read(*, height: int, index: int) -> list[dict[str, Any]]:
    """The messages that follow the cursor: block ``height`` from observation ``index`` on.

    Whole blocks while they fit in ``OBSERVATIONS_PER_MESSAGE`` observations together, or one
    part of a larger block. Empty when the chain has no block ``height`` yet.
    """
    if index:
        block = Block.objects.filter(height=height).first()
        if block is None:  # a stored block never disappears; defensive
            return []
        rows = (
            BlockObservation.objects.filter(block=block, index__gte=index)
            .order_by("index")
            .values_list("index", "data")[:OBSERVATIONS_PER_MESSAGE]
        )
        message: dict[str, Any] = {"type": "observations", "height": height}
        _finish(message, height, [_observation_record(i, bytes(d)) for i, d in rows], block.tree_size)
        return [message]

    blocks = list(Block.objects.filter(height__gte=height).order_by("height")[:BLOCKS_PER_READ])
    chosen: list[Block] = []
    observations = 0
    for block in blocks:
        if block.height != height + len(chosen):
            # Committed blocks are a prefix of the chain; should one ever be missing, wait for
            # it rather than skip it.
            logger.warning("firehose: block %s is missing after %s", height + len(chosen), height)
            break
        if chosen and observations + block.tree_size > OBSERVATIONS_PER_MESSAGE:
            break
        chosen.append(block)
        observations += block.tree_size
    if not chosen:
        return []
    # An anchor holds the block log's root: the first one at or above a block covers it.
    anchors = selectors.covering_anchors([block.height for block in chosen])
    leaves = (
        BlockObservation.objects.filter(block__in=chosen)
        .order_by("block_id", "index")
        .values_list("block_id", "index", "data")
    )[:OBSERVATIONS_PER_MESSAGE]  # a large block's first part; smaller blocks fit whole
    by_block: dict[int, list[dict[str, Any]]] = {block.pk: [] for block in chosen}
    for block_id, position, data in leaves:
        by_block[block_id].append(_observation_record(position, bytes(data)))
    messages = []
    for block in chosen:
        message = _header_record(block, anchors.get(block.height))
        _finish(message, block.height, by_block[block.pk], block.tree_size)
        messages.append(message)
    return messages


def heartbeat(next_height: int) -> dict[str, Any]:
    return {"type": "heartbeat", "next_height": next_height, "time": timezone.now().isoformat()}


# ----------------------------------------------------------------- the reader


async def firehose_messages(start: int, wake: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
    """Every message from block ``start`` on, forever: catch-up, then live.

    ``wake`` is set by whoever hears that blocks were stored. It is cleared *before* each read,
    so a block committed while a read runs sets it again and is read at the next turn: a
    wake-up can arrive early or twice, never be lost between a read and the wait.
    """
    read = database_sync_to_async(firehose_read, thread_sensitive=False)
    height, index = start, 0
    while True:
        wake.clear()
        messages = await read(height=height, index=index)
        for message in messages:
            yield message
            if message["complete"]:
                height, index = message["height"] + 1, 0
            else:
                height, index = message["height"], message["observations"][-1]["index"] + 1
        if messages:
            continue
        try:
            await asyncio.wait_for(wake.wait(), timeout=settings.FIREHOSE_HEARTBEAT_SECONDS)
        except TimeoutError:
            yield heartbeat(height)


@contextlib.asynccontextmanager
async def block_wakeups() -> AsyncIterator[asyncio.Event]:
    """An event set whenever the shell announces stored blocks (for readers that are not consumers).

    Best effort, like every announcement: without a channel layer the reader polls at the
    heartbeat interval.
    """
    event = asyncio.Event()
    layer = get_channel_layer()
    channel = None
    listener = None
    if layer is not None:
        try:
            channel = await layer.new_channel("firehose.")
            await layer.group_add(BLOCKS_GROUP, channel)
        except Exception:
            logger.warning("firehose: no channel layer; following blocks by polling")
            channel = None
    if layer is not None and channel is not None:

        async def listen() -> None:
            while True:
                try:
                    await layer.receive(channel)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    await asyncio.sleep(1.0)  # Redis away: polling carries on meanwhile
                event.set()

        listener = asyncio.create_task(listen())
    try:
        yield event
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if layer is not None and channel is not None:
            with contextlib.suppress(Exception):
                await layer.group_discard(BLOCKS_GROUP, channel)


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


async def firehose_ndjson(start: int) -> AsyncIterator[bytes]:
    """The HTTP stream: one JSON message a line, ending after ``FIREHOSE_RESPONSE_BYTES``."""
    budget = settings.FIREHOSE_RESPONSE_BYTES
    written = 0
    async with block_wakeups() as wake:
        async for message in firehose_messages(start, wake):
            line = _line(message)
            yield line
            written += len(line)
            if written >= budget and message.get("complete", True):
                yield _line(
                    {"type": "end", "next_height": message["next_height"], "reason": "response_budget"}
                )
                return
