"""/ws/firehose/: every stored block from the resume height, then live ones; resuming from the
last next_height gives no gap and no duplicate; a client that does not acknowledge is sent no
more than the window; bad heights, bad messages and roles without access are refused."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from consensus_shell_support import dispatched, two_validators
from django_otp import DEVICE_ID_SESSION_KEY
from firehose_support import check_block_record, store_blocks

from consensus.consumers import FirehoseConsumer
from consensus.firehose import OBSERVATIONS_PER_MESSAGE
from consensus.models import Anchor, Block
from tests.support import confirmed_totp_device

__all__ = ["dispatched", "two_validators"]


def _session(user):
    return {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}


async def _connect(user, query, session=None):
    communicator = WebsocketCommunicator(FirehoseConsumer.as_asgi(), f"/ws/firehose/?{query}")
    communicator.scope["user"] = user
    communicator.scope["session"] = session if session is not None else await sync_to_async(_session)(user)
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def _receive_blocks(communicator, count, *, ack=True):
    """The next ``count`` complete block records (acknowledged as they come)."""
    records = []
    while len(records) < count:
        message = json.loads(await communicator.receive_from(timeout=15))
        if ack and "next_height" in message:
            await communicator.send_to(
                text_data=json.dumps({"type": "ack", "next_height": message["next_height"]})
            )
        if message["type"] == "block":
            records.append(message)
    return records


def test_catch_up_then_live_then_resume_without_gap_or_duplicate(
    two_validators, dispatched, make_user, settings
):
    # No re-read by the clock during the test: a live block must come from the shell's wake-up.
    settings.FIREHOSE_HEARTBEAT_SECONDS = 120
    user = make_user("auditor-1", "auditor")
    stored = store_blocks(two_validators, dispatched, 3)
    # An anchor of the block log up to block 1 covers blocks 0 and 1.
    second_block = Block.objects.get(height=1)
    Anchor.objects.create(
        height=1,
        log_root=second_block.log_root,
        status="mined",
        tx_hash="0x" + "ab" * 32,
        block_number=7,
    )

    async def scenario():
        communicator, connected, _ = await _connect(user, "from=0")
        assert connected
        first = await _receive_blocks(communicator, len(stored))
        new = await sync_to_async(store_blocks)(two_validators, dispatched, 1)
        live = await _receive_blocks(communicator, len(new))
        await communicator.disconnect()
        resume_from = live[-1]["next_height"]
        meanwhile = await sync_to_async(store_blocks)(two_validators, dispatched, 2)
        communicator, connected, _ = await _connect(user, f"from={resume_from}")
        assert connected
        resumed = await _receive_blocks(communicator, len(meanwhile))
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return first + live + resumed

    records = async_to_sync(scenario)()
    assert [record["height"] for record in records] == list(range(Block.objects.count()))
    for record in records:
        check_block_record(record)
    assert [record["anchor"]["height"] for record in records[:2]] == [1, 1]
    assert records[0]["anchor"]["status"] == "mined"
    assert records[0]["anchor"]["block_number"] == 7
    assert all(record["anchor"] is None for record in records[2:])


def test_an_idle_stream_sends_heartbeats_with_its_next_height(
    two_validators, dispatched, make_user, settings
):
    settings.FIREHOSE_HEARTBEAT_SECONDS = 0.3
    user = make_user("operator-1", "operator")
    chain = len(store_blocks(two_validators, dispatched, 1))

    async def scenario():
        communicator, _, _ = await _connect(user, f"from={chain}")
        message = json.loads(await communicator.receive_from(timeout=5))
        await communicator.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["type"] == "heartbeat"
    assert message["next_height"] == chain


def test_a_client_that_does_not_acknowledge_gets_no_more_than_the_window(
    two_validators, dispatched, make_user, settings
):
    user = make_user("admin-1", "admin")
    stored = len(store_blocks(two_validators, dispatched, 6))
    one_block = len(json.dumps(_first_record(user), separators=(",", ":")))
    settings.FIREHOSE_WINDOW_BYTES = 2 * one_block  # about two blocks

    async def scenario():
        communicator, _, _ = await _connect(user, "from=0")
        unacknowledged = [json.loads(await communicator.receive_from(timeout=5)) for _ in range(2)]
        # The window is full: nothing more comes until the client acknowledges.
        assert await communicator.receive_nothing(timeout=1.0)
        await communicator.send_to(
            text_data=json.dumps({"type": "ack", "next_height": unacknowledged[-1]["next_height"]})
        )
        rest = await _receive_blocks(communicator, stored - 2)
        await communicator.disconnect()
        return unacknowledged + rest

    records = async_to_sync(scenario)()
    assert [record["height"] for record in records] == list(range(stored))


def _first_record(user):
    async def scenario():
        communicator, _, _ = await _connect(user, "from=0")
        record = json.loads(await communicator.receive_from(timeout=5))
        await communicator.disconnect()
        return record

    return async_to_sync(scenario)()


@pytest.mark.parametrize(
    ("query", "code", "close_code"),
    [
        ("from=-1", "bad_height", 4400),
        ("from=abc", "bad_height", 4400),
        ("from=1.5", "bad_height", 4400),
        ("from=", "bad_height", 4400),
        ("from=1&from=2", "bad_height", 4400),
        ("from={beyond}", "height_not_reached", 4404),
        ("from=99999999999999999999", "height_not_reached", 4404),
        ("from=999999999999999999999", "bad_height", 4400),
    ],
)
def test_a_bad_resume_height_gets_an_error_then_a_close(
    two_validators, dispatched, make_user, query, code, close_code
):
    user = make_user("auditor-2", "auditor")
    beyond = len(store_blocks(two_validators, dispatched, 2)) + 1

    async def scenario():
        communicator, connected, _ = await _connect(user, query.format(beyond=beyond))
        assert connected
        error = json.loads(await communicator.receive_from(timeout=5))
        closed = await communicator.receive_output(timeout=5)
        return error, closed

    error, closed = async_to_sync(scenario)()
    assert error["type"] == "error"
    assert error["error"]["code"] == code
    assert error["error"]["message"]
    assert closed == {"type": "websocket.close", "code": close_code}


def test_a_bad_client_message_gets_an_error_then_a_close(two_validators, dispatched, make_user):
    user = make_user("auditor-3", "auditor")

    async def scenario():
        communicator, _, _ = await _connect(user, "from=0")
        await communicator.send_to(text_data=json.dumps({"type": "ack", "next_height": 5}))
        error = json.loads(await communicator.receive_from(timeout=5))
        while error["type"] == "heartbeat":
            error = json.loads(await communicator.receive_from(timeout=5))
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return error, closed

    error, closed = async_to_sync(scenario)()
    assert error["error"]["code"] == "bad_ack"
    assert closed == {"type": "websocket.close", "code": 4400}


@pytest.mark.parametrize("role", ["kyc_reviewer", None])
def test_roles_without_access_are_refused(two_validators, dispatched, make_user, role):
    user = make_user(f"user-{role}", *([role] if role else []))
    store_blocks(two_validators, dispatched, 1)

    async def scenario():
        return await _connect(user, "from=0")

    _, connected, code = async_to_sync(scenario)()
    assert not connected
    assert code == 4403


def test_a_session_without_the_second_factor_is_refused(two_validators, dispatched, make_user):
    user = make_user("auditor-4", "auditor")

    async def scenario():
        return await _connect(user, "from=0", session={})

    _, connected, code = async_to_sync(scenario)()
    assert not connected
    assert code == 4403


def test_a_large_block_comes_in_parts_that_add_up_to_it(two_validators, dispatched, make_user):
    user = make_user("auditor-5", "auditor")
    store_blocks(two_validators, dispatched, 1, per_block=1_200)
    large = Block.objects.filter(tree_size__gt=OBSERVATIONS_PER_MESSAGE).order_by("height").first()
    assert large is not None, "the 1,200 observations were agreed in blocks of at most 500"

    async def scenario():
        communicator, _, _ = await _connect(user, f"from={large.height}")
        parts = []
        while not parts or not parts[-1]["complete"]:
            message = json.loads(await communicator.receive_from(timeout=15))
            await communicator.send_to(
                text_data=json.dumps({"type": "ack", "next_height": message["next_height"]})
            )
            parts.append(message)
        await communicator.disconnect()
        return parts

    parts = async_to_sync(scenario)()
    assert parts[0]["type"] == "block"
    assert all(part["type"] == "observations" for part in parts[1:])
    assert all(part["height"] == large.height for part in parts)
    assert len(parts) == -(-large.tree_size // OBSERVATIONS_PER_MESSAGE)
    assert [part["complete"] for part in parts] == [False] * (len(parts) - 1) + [True]
    # Until the last part, the client holds nothing of this block: it would resume from it.
    assert [part["next_height"] for part in parts] == [large.height] * (len(parts) - 1) + [large.height + 1]
    whole = {**parts[0], "observations": [item for part in parts for item in part["observations"]]}
    whole["complete"], whole["next_height"] = True, large.height + 1
    check_block_record(whole)
