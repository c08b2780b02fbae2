"""Live partials of consensus: the validator's status and the newest blocks."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from consensus.services import BLOCKS_GROUP, CONSENSUS_GROUP
from settlement.consumers import LivePartialConsumer


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
