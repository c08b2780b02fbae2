"""Live partials of consensus (the validator's status, the newest blocks) and the firehose."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from consensus import firehose
from consensus.protocol.firehose import BAD_ACK, HEIGHT_NOT_REACHED, FirehoseRequestError, FlowWindow
from consensus.services import BLOCKS_GROUP, CONSENSUS_GROUP
from settlement.authentication import token_roles
from settlement.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, LivePartialConsumer
from settlement.errors import error_body
from settlement.roles import user_roles
from settlement.second_factor import session_is_verified

logger = logging.getLogger("parsec.consensus.firehose")


class ConsensusConsumer(LivePartialConsumer):
    group_name = CONSENSUS_GROUP
    # "Silent for n s" changes with the clock, which nobody announces.
    recheck_seconds = 2.0

    def render(self) -> tuple[str, Any]:
        from consensus.views import consensus_context

        html = render_to_string("consensus/partials/status.html", consensus_context())
        return html, html

    async def consensus_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)


class BlocksConsumer(LivePartialConsumer):
    group_name = BLOCKS_GROUP

    def render(self) -> tuple[str, Any]:
        from consensus.views import blocks_context

        html = render_to_string("consensus/partials/blocks_table.html", blocks_context())
        return html, html

    async def blocks_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)


def _may_follow_firehose(scope: dict[str, Any]) -> bool:
    token = scope.get("api_token")
    if token is not None:  # an integration: the token's own role, no dashboard session needed
        return firehose.may_follow(token_roles(token))
    user, session = scope.get("user"), scope.get("session")
    return user is not None and firehose.may_follow(user_roles(user)) and session_is_verified(user, session)


class FirehoseConsumer(AsyncWebsocketConsumer):
    """``/ws/firehose/?from=<height>``: agreed blocks as JSON messages, with flow control.

    The client acknowledges with ``{"type": "ack", "next_height": n}`` (the ``next_height`` of
    the last message it processed); at most ``FIREHOSE_WINDOW_BYTES`` stay unacknowledged, then
    the stream waits. Who: a verified dashboard session, or an integration's API token in the
    handshake's ``Authorization: Bearer`` header (with an ``Origin`` of the node's host). Refusals:
    a bad token → close 4401; not allowed → the handshake is refused (close 4403); a bad
    ``from`` or a bad client message → an ``error`` message, then close 4400 (4404 for a height
    the chain has not reached). Format: docs/firehose.md.
    """

    async def connect(self) -> None:
        if "api_token_error" in self.scope:
            logger.warning("firehose: refused a websocket: %s", self.scope["api_token_error"])
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        allowed = await database_sync_to_async(_may_follow_firehose, thread_sensitive=False)(self.scope)
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        try:
            start = await database_sync_to_async(firehose.firehose_start, thread_sensitive=False)(
                query.get("from", [])
            )
        except FirehoseRequestError as error:
            await self.refuse(error)
            return
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.window = FlowWindow(limit=settings.FIREHOSE_WINDOW_BYTES)
        await self.channel_layer.group_add(BLOCKS_GROUP, self.channel_name)
        self.stream_task = asyncio.create_task(self.stream(start))

    async def refuse(self, error: FirehoseRequestError) -> None:
        await self.send(text_data=json.dumps({"type": "error", **error_body(error.code, error.message)}))
        code = firehose.CLOSE_NOT_REACHED if error.code == HEIGHT_NOT_REACHED else firehose.CLOSE_BAD_REQUEST
        await self.close(code=code)

    async def stream(self, start: int) -> None:
        try:
            async for message in firehose.firehose_messages(start, self.wake):
                while not self.window.has_room():
                    self.room.clear()
                    await self.room.wait()
                text = json.dumps(message, separators=(",", ":"))
                self.window.sent(message["next_height"], len(text))
                await self.send(text_data=text)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("firehose: the stream failed")
            await self.close(code=firehose.CLOSE_SERVER_ERROR)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "window"):
            return  # refused already; the close is on its way
        try:
            message = json.loads(text_data or "")
            if not isinstance(message, dict) or message.get("type") != "ack":
                raise FirehoseRequestError(BAD_ACK, 'the client sends {"type": "ack", "next_height": n} only')
            self.window.acknowledge(message.get("next_height"))
        except (ValueError, AttributeError) as error:
            failure = (
                error
                if isinstance(error, FirehoseRequestError)
                else FirehoseRequestError(BAD_ACK, "a client message is JSON")
            )
            await self.refuse(failure)
            return
        self.room.set()

    async def blocks_changed(self, event: dict[str, Any]) -> None:
        wake = getattr(self, "wake", None)
        if wake is not None:
            wake.set()

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "stream_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.channel_layer.group_discard(BLOCKS_GROUP, self.channel_name)
