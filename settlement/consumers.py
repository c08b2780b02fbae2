"""Websocket consumers. Thin: authenticate, check permission, join a group, send partials."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from settlement import health
from settlement.roles import can_view_dashboard

# A dead worker cannot announce its own death, so each Overview also re-reads health on a
# timer; events from the worker's start and stop make the common changes immediate.
RECHECK_SECONDS = 1.0


class OverviewConsumer(AsyncWebsocketConsumer):
    group_name = health.HEALTH_GROUP

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await sync_to_async(can_view_dashboard)(user):
            # 4403: the websocket close code range 4000-4999 is ours; 403 as in HTTP.
            await self.close(code=4403)
            return
        self.last_signature: tuple[tuple[str, bool], ...] | None = None
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.push_health(force=True)
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
            await asyncio.sleep(RECHECK_SECONDS)
            await self.push_health()

    async def health_changed(self, event: dict[str, Any]) -> None:
        await self.push_health(force=True)

    async def push_health(self, *, force: bool = False) -> None:
        state = await sync_to_async(health.node_health, thread_sensitive=False)()
        if not force and state.signature() == self.last_signature:
            return
        self.last_signature = state.signature()
        html = render_to_string(
            "settlement/partials/health.html", {"health": state, "node_name": settings.NODE_NAME}
        )
        await self.send(text_data=html)
