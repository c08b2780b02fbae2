from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from settlement.roles import user_roles

NAVIGATION = (
    ("overview", "Overview"),
    ("counterparties", "Counterparties"),
    ("ledgers", "Ledgers"),
    ("channels", "Channels"),
    ("consensus", "Consensus"),
    ("blocks", "Blocks"),
    ("firehose", "Firehose"),
    ("messages", "Messages"),
    ("peers", "Peers"),
    ("node-identity", "Node"),
)


def node(request: HttpRequest) -> dict[str, Any]:
    return {
        "node_name": settings.NODE_NAME,
        "navigation": NAVIGATION,
        "user_roles": sorted(role.label for role in user_roles(request.user)),
    }
