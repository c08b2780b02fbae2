"""The live-page websockets: they refuse strangers and half-logged-in sessions, and push the
partial to a viewer on connect and whenever its group is told to look again, through the real
Redis channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django_otp import DEVICE_ID_SESSION_KEY

from settlement import health
from settlement.consumers import OverviewConsumer, PeersConsumer
from tests.support import confirmed_totp_device

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(consumer, path, user, session):
    async def scenario():
        communicator = WebsocketCommunicator(consumer.as_asgi(), path)
        communicator.scope["user"] = user
        communicator.scope["session"] = session
        return await communicator.connect()

    return async_to_sync(scenario)()


def test_an_anonymous_socket_is_closed_with_4403():
    assert _connect(OverviewConsumer, "/ws/overview/", AnonymousUser(), {}) == (False, 4403)


def test_a_user_without_a_role_is_closed_with_4403(make_user):
    user = make_user("nobody")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}

    assert _connect(OverviewConsumer, "/ws/overview/", user, session) == (False, 4403)


def test_a_session_without_the_second_factor_is_closed_with_4403(make_user):
    user = make_user("half", "operator")

    assert _connect(PeersConsumer, "/ws/peers/", user, {}) == (False, 4403)


def test_an_auditor_gets_the_health_partial_and_a_push_on_change(make_user, no_worker_heartbeats):
    user = make_user("auditor", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}

    async def scenario():
        communicator = WebsocketCommunicator(OverviewConsumer.as_asgi(), "/ws/overview/")
        communicator.scope["user"] = user
        communicator.scope["session"] = session
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
