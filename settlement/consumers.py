"""Websocket consumers. Thin: authenticate, check permission, join a group, send partials.

Each live page is one group. Services broadcast "look again" to the group after commit
(settlement.health.broadcast); the consumer re-renders its partial and sends it when it
changed. htmx's websocket extension swaps the partial in by its stable id.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from settlement import health
from settlement.roles import can_view_dashboard
from settlement.second_factor import session_is_verified

# Websocket close codes 4000-4999 are the application's: 4401 and 4403 as 401 and 403 in HTTP.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


def _may_view(user: Any, session: Any) -> bool:
    return user is not None and can_view_dashboard(user) and session_is_verified(user, session)


class LivePartialConsumer(AsyncWebsocketConsumer):
    """Sends one rendered partial on connect and whenever its group is told to look again."""

    group_name = ""
    # Seconds between re-reads for changes nobody can announce (a killed process); 0: none.
    recheck_seconds = 0.0

    async def connect(self) -> None:
        # database_sync_to_async closes stale connections around the call, as a request would.
        if not await database_sync_to_async(_may_view)(self.scope.get("user"), self.scope.get("session")):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.last_html: str | None = None
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.push()
        if self.recheck_seconds:
            self.recheck_task = asyncio.create_task(self.recheck_forever())

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "recheck_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            await self.push()

    def render(self) -> tuple[str, Any]:
        """The partial's HTML and what decides whether it changed."""
        raise NotImplementedError

    async def push(self, event: dict[str, Any] | None = None) -> None:
        # Off the shared thread: a health probe may wait seconds for an RPC that is down.
        html, fingerprint = await database_sync_to_async(self.render, thread_sensitive=False)()
        if event is None and fingerprint == getattr(self, "last_fingerprint", None):
            return
        self.last_fingerprint = fingerprint
        await self.send(text_data=html)


class OverviewConsumer(LivePartialConsumer):
    group_name = health.HEALTH_GROUP
    # A dead worker cannot announce its own death: re-read health every second too.
    recheck_seconds = 1.0

    def render(self) -> tuple[str, Any]:
        state = health.node_health()
        html = render_to_string(
            "settlement/partials/health.html", {"health": state, "node_name": settings.NODE_NAME}
        )
        return html, state.signature()

    async def health_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)


class PeersConsumer(LivePartialConsumer):
    group_name = "peers"

    def render(self) -> tuple[str, Any]:
        from settlement.views import peer_rows

        rows = peer_rows()
        html = render_to_string("settlement/partials/peers_table.html", {"peers": rows})
        return html, html

    async def peers_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)
