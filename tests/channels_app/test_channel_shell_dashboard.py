"""The dashboard: channel list with balance bars that move live with each payment, the channel
page, buttons that ask for confirmation and respect roles, the dispute view."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from conftest import (
    ONE_ETH,
    advance_chain_time,
    open_funded_channel,
    register_as_counterparty,
    run_chain_work,
)
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY

from channels_app import services, watcher
from channels_app.consumers import ChannelsConsumer
from channels_app.models import ChannelPhase, OnChainTransaction
from channels_app.protocol.types import ETH
from tests.support import confirmed_totp_device

pytestmark = pytest.mark.ethereum


def test_the_list_bars_move_live_with_a_payment(node_account, make_counterparty, make_user):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    user = make_user("viewer", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}

    async def scenario():
        communicator = WebsocketCommunicator(ChannelsConsumer.as_asgi(), "/ws/channels/")
        communicator.scope["user"] = user
        communicator.scope["session"] = session
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=10)
        await _pay()
        second = await communicator.receive_from(timeout=10)
        await communicator.disconnect()
        return first, second

    from asgiref.sync import sync_to_async

    @sync_to_async
    def _pay():
        with transaction.atomic():
            services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 4, actor="test")

    first, second = async_to_sync(scenario)()
    assert 'id="channels-table"' in first
    assert 'style="width: 50.0%"' in first
    assert 'style="width: 37.5%"' in second
    assert f'data-ours="{ONE_ETH * 3 // 4}"' in second


def test_buttons_need_confirmation_and_an_operator(node_account, make_counterparty, make_user, client):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    settle = f"/channels/{channel.channel_id}/actions/settle/"

    client.force_login(make_user("auditor-2", "auditor"))
    assert client.get("/channels/").status_code == 200
    assert client.get(f"/channels/{channel.channel_id}/").status_code == 200
    assert client.post(settle, {"confirm": "yes"}).status_code == 403

    client.force_login(make_user("operator-2", "operator"))
    page = client.get(f"/channels/{channel.channel_id}/").content.decode()
    assert 'onsubmit="return confirm(' in page
    client.post(settle, {})  # no confirmation: nothing happens
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.OPEN

    client.post(
        f"/channels/{channel.channel_id}/actions/pay/", {"confirm": "yes", "asset": "ETH", "amount": "1000"}
    )
    client.post(settle, {"confirm": "yes"})
    run_chain_work()
    channel.refresh_from_db()
    assert channel.version == 2
    assert channel.phase == ChannelPhase.CONCLUDED
    page = client.get(f"/channels/{channel.channel_id}/").content.decode()
    assert 'data-purpose="conclude"' in page
    assert "confirmations" in page


def test_the_dispute_view_shows_time_left_who_acts_and_what_the_watcher_did(
    node_account, make_counterparty, make_user, client
):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH, challenge=900)
    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 10, actor="test")
    services.channel_pay(
        channel=channel, asset=ETH, amount=ONE_ETH // 2, actor="test", from_counterparty=True
    )
    register_as_counterparty(channel, version=1)
    watcher.watcher_poll()
    run_chain_work()
    advance_chain_time(100)

    client.force_login(make_user("auditor-3", "auditor"))
    listing = client.get("/channels/").content.decode()
    assert 'class="error watcher-alert"' in listing  # the watcher's latest word on the channel
    page = client.get(f"/channels/{channel.channel_id}/dispute/").content.decode()
    assert 'id="registered-version">2<' in page
    assert 'id="our-version">2<' in page
    assert "blocks ·" in page
    assert "Refuted a stale state" in page
    assert "the counterparty, if it holds a later state" in page
    body = client.get(f"/api/channels/{channel.channel_id}/dispute/").json()
    assert 0 < body["seconds_left"] <= 800
    assert body["gas_spent"] > 0
    assert OnChainTransaction.objects.filter(channel=channel, purpose="refute").exists()


def test_the_channel_page_socket_pushes_the_new_version_and_refuses_strangers(
    node_account, make_counterparty, make_user
):
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import AnonymousUser

    from channels_app.consumers import ChannelConsumer

    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    user = make_user("viewer-2", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}
    path = f"/ws/channels/{channel.channel_id}/"

    def communicator(who, their_session):
        connection = WebsocketCommunicator(ChannelConsumer.as_asgi(), path)
        connection.scope["user"] = who
        connection.scope["session"] = their_session
        connection.scope["url_route"] = {"kwargs": {"channel_id": channel.channel_id}}
        return connection

    @sync_to_async
    def _pay():
        with transaction.atomic():
            services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 5, actor="test")

    async def scenario():
        stranger = communicator(AnonymousUser(), {})
        refused = await stranger.connect()
        viewer = communicator(user, session)
        connected, _ = await viewer.connect()
        assert connected
        first = await viewer.receive_from(timeout=10)
        await _pay()
        second = await viewer.receive_from(timeout=10)
        await viewer.disconnect()
        return refused, first, second

    refused, first, second = async_to_sync(scenario)()
    assert refused == (False, 4403)
    assert 'id="channel-live"' in first
    assert 'data-version="0"' in first
    assert 'data-version="1"' in second
    assert 'id="dispute-view"' in second


def test_an_operator_opens_a_channel_from_the_dashboard(node_account, make_counterparty, make_user, client):
    from channels_app.models import Channel

    counterparty = make_counterparty("custodial", funded=False)
    client.force_login(make_user("operator-o", "operator"))
    assert f'value="{counterparty.pk}"' in client.get("/channels/").content.decode()
    answer = client.post(
        "/channels/open/",
        {"counterparty": str(counterparty.pk), "asset": "ETH", "ours": "1000", "theirs": "500"},
    )
    channel = Channel.objects.get(counterparty=counterparty)
    assert answer.status_code == 302
    assert answer["Location"] == f"/channels/{channel.channel_id}/"
    assert channel.phase == ChannelPhase.FUNDING
    answer = client.post(
        "/channels/open/", {"counterparty": str(counterparty.pk), "asset": "ETH", "ours": "-1", "theirs": "0"}
    )
    assert Channel.objects.filter(counterparty=counterparty).count() == 1


def test_a_channel_page_looks_again_only_for_its_own_channel(node_account, make_counterparty, make_user):
    """Every channels page shares one group; an announcement names the channels that changed,
    and a channel's page ignores the others' changes."""
    from asgiref.sync import sync_to_async

    from channels_app.consumers import ChannelConsumer

    watched = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    other = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    user = make_user("viewer-3", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}
    viewer = WebsocketCommunicator(ChannelConsumer.as_asgi(), f"/ws/channels/{watched.channel_id}/")
    viewer.scope["user"] = user
    viewer.scope["session"] = session
    viewer.scope["url_route"] = {"kwargs": {"channel_id": watched.channel_id}}

    @sync_to_async
    def _pay(channel):
        with transaction.atomic():
            services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 5, actor="test")

    async def scenario():
        connected, _ = await viewer.connect()
        assert connected
        first = await viewer.receive_from(timeout=10)
        await _pay(other)
        # Longer than the announcer takes to pass a change on (the page rechecks every 2 s, but
        # sends nothing when its partial did not change).
        quiet = await viewer.receive_nothing(timeout=3)
        await _pay(watched)
        second = await viewer.receive_from(timeout=10)
        await viewer.disconnect()
        return first, quiet, second

    first, quiet, second = async_to_sync(scenario)()
    assert 'data-version="0"' in first
    assert quiet, "the page of one channel was pushed for another channel's payment"
    assert 'data-version="1"' in second
