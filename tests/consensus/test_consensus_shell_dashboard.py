"""The Consensus page and the Blocks explorer render for every role, show what the validator
knows, give a Merkle proof of any observation, and the blocks table updates live."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from consensus_shell_support import agree_with_peer, dispatched, two_validators
from django_otp import DEVICE_ID_SESSION_KEY

from consensus.consumers import BlocksConsumer
from consensus.models import Block
from settlement.models import Role
from tests.support import confirmed_totp_device

__all__ = ["dispatched", "two_validators"]


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_pages_render_for_every_role(two_validators, dispatched, client, make_user, role):
    agree_with_peer(two_validators, dispatched, [b"hello world", b"\x00\xffbinary"])
    client.force_login(make_user(f"user-{role}", role))
    block = Block.objects.order_by("height").last()

    consensus = client.get("/consensus/")
    assert consensus.status_code == 200
    assert b"bank-z" in consensus.content
    assert b'id="validator-bank-z"' in consensus.content
    assert b"Events in the graph" in consensus.content

    blocks = client.get("/blocks/")
    assert blocks.status_code == 200
    assert f'id="block-{block.height}"'.encode() in blocks.content

    page = client.get(f"/blocks/{block.height}/?proof=0")
    assert page.status_code == 200
    assert bytes(block.merkle_root).hex().encode() in page.content
    assert b'id="proof"' in page.content
    assert b"bank-z" in page.content  # a signer
    assert client.get("/blocks/9999/").status_code == 404
    assert b"whole number" in client.get(f"/blocks/{block.height}/?proof=x").content


def test_a_user_without_a_role_is_refused(two_validators, client, make_user):
    client.force_login(make_user("nobody"))
    assert client.get("/consensus/").status_code == 403
    assert client.get("/blocks/").status_code == 403
    assert client.get("/api/blocks/").status_code == 403


def test_the_blocks_table_updates_live_with_a_new_block(two_validators, dispatched, make_user):
    user = make_user("viewer", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}

    async def scenario():
        communicator = WebsocketCommunicator(BlocksConsumer.as_asgi(), "/ws/blocks/")
        communicator.scope["user"] = user
        communicator.scope["session"] = session
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=10)
        await sync_to_async(agree_with_peer)(two_validators, dispatched, [b"live"])
        second = await communicator.receive_from(timeout=10)
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    assert "No blocks yet" in first
    assert 'id="block-0"' in second
