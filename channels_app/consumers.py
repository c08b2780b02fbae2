"""Live partials of channels: the list (balance bars move with each payment) and one channel
(balances, on-chain progress, the dispute's countdown)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from channels_app.services import CHANNELS_GROUP
from settlement.consumers import LivePartialConsumer


class ChannelsConsumer(LivePartialConsumer):
    group_name = CHANNELS_GROUP

    def render(self) -> tuple[str, Any]:
        from channels_app.views import channel_rows

        html = render_to_string("channels_app/partials/table.html", {"rows": channel_rows()})
        return html, html

    async def channels_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)


class ChannelConsumer(LivePartialConsumer):
    group_name = CHANNELS_GROUP
    # The challenge period's countdown changes with the chain's clock, which nobody announces.
    recheck_seconds = 2.0

    async def connect(self) -> None:
        self.channel_id = str(self.scope["url_route"]["kwargs"]["channel_id"]).lower()
        await super().connect()

    async def channels_changed(self, event: dict[str, Any]) -> None:
        # The group is every channels page: look again only if this channel is named (an
        # announcement naming none is about everything).
        named = event.get("channel_ids")
        if named is None or self.channel_id in named:
            await self.push(event)

    def render(self) -> tuple[str, Any]:
        from channels_app.views import channel_context

        html = render_to_string("channels_app/partials/live.html", channel_context(self.channel_id))
        return html, html
