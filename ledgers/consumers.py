"""Live ledgers page: the table of ledgers and balances, re-rendered when an entry lands (the
services broadcast "ledgers.changed" after commit)."""

from __future__ import annotations

from typing import Any

from ledgers.services import LEDGERS_GROUP
from settlement.consumers import LivePartialConsumer


class LedgersConsumer(LivePartialConsumer):
    group_name = LEDGERS_GROUP

    def render(self) -> tuple[str, Any]:
        from ledgers.views import ledgers_table_html

        html = ledgers_table_html()
        return html, html

    async def ledgers_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)
