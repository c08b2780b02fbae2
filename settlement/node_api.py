"""Endpoints other nodes call, under /node-api/. Each is wrapped by ``node_to_node``."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from settlement.transport import node_to_node, on_node_api_threads


@on_node_api_threads
@node_to_node
@require_POST
def ping(request: HttpRequest) -> JsonResponse:
    """A signed pong: proves to the caller that we hold our key and see theirs."""
    return JsonResponse({"node": settings.NODE_NAME, "time": int(time.time())})
