"""Live mailbox: one counterparty's inbox and outbox, re-rendered when a message moves (the
services broadcast "messages.changed" after commit)."""

from __future__ import annotations

from typing import Any

from messaging.services import MESSAGES_GROUP
from settlement.consumers import LivePartialConsumer


class MailboxConsumer(LivePartialConsumer):
    group_name = MESSAGES_GROUP

    def render(self) -> tuple[str, Any]:
        from messaging.views import mailbox_html

        html = mailbox_html(int(self.scope["url_route"]["kwargs"]["counterparty_id"]))
        return html, html

    async def messages_changed(self, event: dict[str, Any]) -> None:
        await self.push(event)
