"""The Overview websocket: refuses strangers, and pushes the health partial to a viewer when
it connects and whenever health changes, through the real Redis channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from settlement import health
from settlement.consumers import OverviewConsumer

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user):
    communicator = WebsocketCommunicator(OverviewConsumer.as_asgi(), "/ws/overview/")
    communicator.scope["user"] = user
    return communicator


def test_an_anonymous_socket_is_closed_with_4403():
    async def scenario():
        return await _communicator(AnonymousUser()).connect()

    assert async_to_sync(scenario)() == (False, 4403)


def test_a_user_without_a_role_is_closed_with_4403(make_user):
    user = make_user("nobody")

    async def scenario():
        return await _communicator(user).connect()

    assert async_to_sync(scenario)() == (False, 4403)


def test_an_auditor_gets_the_health_partial_and_a_push_on_change(make_user, no_worker_heartbeats):
    user = make_user("auditor", "auditor")

    async def scenario():
        communicator = _communicator(user)
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=10)
        await get_channel_layer().group_send(health.HEALTH_GROUP, {"type": "health.changed"})
        second = await communicator.receive_from(timeout=10)
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()

    assert 'id="node-health"' in first
    assert 'id="service-worker" class="service down"' in first
    assert 'id="node-health"' in second
