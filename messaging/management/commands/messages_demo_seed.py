"""`python manage.py messages_demo_seed --to bob*bank-c.test`: one demo message, end to end.

From this node's first ACCEPTED custodial counterparty (alice in the demo) to the address given,
encrypted to the recipient's key, through the same service as the API. The message id is derived
from the sender and the recipient, so a second run is a replay, not a second message.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging import services
from messaging.protocol.errors import MessageError
from settlement.counterparties.models import Counterparty, Custody, KycStatus

ACTOR = "demo-seed"


class Command(BaseCommand):
    help = "Send one demo message from a custodial counterparty of this node (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="the recipient's federation address")

    def handle(self, *args: Any, **options: Any) -> None:
        sender = (
            Counterparty.objects.filter(
                kyc_status=KycStatus.ACCEPTED,
                custody=Custody.CUSTODIAL,
                federation_domain=settings.NODE_DOMAIN,
            )
            .order_by("id")
            .first()
        )
        if sender is None:
            raise CommandError(
                "no accepted custodial counterparty to send from: run counterparties_demo_seed"
            )
        recipient = options["to"]
        message_id = hashlib.sha256(f"demo:{sender.federation_address}:{recipient}".encode()).hexdigest()[:32]
        try:
            result = services.message_send(
                request=services.ComposeRequest(
                    sender=sender.federation_address,
                    kind="otc-trade",
                    recipients=[recipient],
                    text="Demo: I deliver 10 MEGA to your custody account against 125.00 EUR by 16:00.",
                    encrypt=True,
                    message_id=message_id,
                ),
                actor=ACTOR,
            )
        except MessageError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        state = "already sent" if result.replayed else "sent"
        self.stdout.write(
            f"{settings.NODE_NAME}: demo message {message_id} {sender.federation_address} -> {recipient} {state}"
        )
