"""/ws/firehose/ for integrations: an API token in the handshake's Authorization header, through
the node's whole websocket stack (origin check, session, token middleware, router). The token
acts with its own role only; a bad token is refused with 4401; a token opens no dashboard
partial."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from consensus_shell_support import dispatched, two_validators
from django.utils import timezone
from firehose_support import store_blocks

from settlement.models import ApiToken

__all__ = ["dispatched", "two_validators"]

pytestmark = pytest.mark.django_db(transaction=True)


def _handshake(path: str, authorization: str | None) -> tuple[bool, int | None, list[dict]]:
    from settlement.asgi import application

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode("latin-1")))

    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=10)
        messages = []
        if connected:
            while len([m for m in messages if m["type"] == "block"]) < 2:
                messages.append(json.loads(await communicator.receive_from(timeout=15)))
            await communicator.disconnect()
        return connected, code, messages

    return async_to_sync(scenario)()


def test_an_auditor_token_follows_the_firehose(two_validators, dispatched, make_user):
    store_blocks(two_validators, dispatched, 2)
    _, token = ApiToken.issue(user=make_user("integration", "auditor"), name="feed", role="auditor")

    connected, _, messages = _handshake("/ws/firehose/?from=0", f"Bearer {token}")

    assert connected
    assert [m["height"] for m in messages if m["type"] == "block"] == [0, 1]


def test_a_token_acts_with_its_own_role_only(two_validators, dispatched, make_user):
    # The user is an admin too, but this token was made for KYC review.
    _, token = ApiToken.issue(
        user=make_user("broad", "admin", "kyc_reviewer"), name="kyc", role="kyc_reviewer"
    )

    connected, code, _ = _handshake("/ws/firehose/?from=0", f"Bearer {token}")

    assert not connected
    assert code == 4403


@pytest.mark.parametrize("kind", ["revoked", "wrong secret", "not a Parsec token", "three words"])
def test_a_bad_token_is_refused_with_4401(two_validators, dispatched, make_user, kind):
    issued, token = ApiToken.issue(user=make_user("integration", "auditor"), name="feed", role="auditor")
    if kind == "revoked":
        ApiToken.objects.filter(pk=issued.pk).update(revoked_at=timezone.now())
        header = f"Bearer {token}"
    elif kind == "wrong secret":
        header = f"Bearer {token[:-4]}xxxx"
    elif kind == "not a Parsec token":
        header = "Bearer abc_def_ghi"
    else:
        header = f"Bearer {token} extra"

    connected, code, _ = _handshake("/ws/firehose/?from=0", header)

    assert not connected
    assert code == 4401


def test_a_token_opens_no_dashboard_partial(make_user):
    _, token = ApiToken.issue(user=make_user("integration", "admin"), name="feed", role="admin")

    connected, code, _ = _handshake("/ws/overview/", f"Bearer {token}")

    assert not connected
    assert code == 4403
