"""The channels page's "Open a virtual channel through a peer" form: shown to operators when two
peer nodes are known, refused to auditors, and without confirmation or without an open ledger
channel to lock funds in it changes nothing and says why."""

from __future__ import annotations

import pytest

from channels_app.models import Channel
from settlement.models import Peer


@pytest.fixture
def two_peers(db):
    return [
        Peer.objects.create(
            name=f"bank-{name}",
            domain=f"bank-{name}.test",
            base_url=f"http://127.0.0.1:{port}",
            ethereum_address="0x" + digit * 40,
        )
        for name, port, digit in (("x", 9, "1"), ("y", 10, "2"))
    ]


def test_the_form_opens_nothing_without_confirmation_a_ledger_channel_or_an_operator(
    two_peers, client, make_user
):
    intermediary, other_end = two_peers
    body = {
        "intermediary": intermediary.pk,
        "peer": other_end.pk,
        "asset": "ETH",
        "ours": "100",
        "theirs": "0",
    }

    client.force_login(make_user("auditor-v", "auditor"))
    assert "Open a virtual channel through a peer" not in client.get("/channels/").content.decode()
    assert client.post("/channels/virtual/open/", {**body, "confirm": "yes"}).status_code == 403

    client.force_login(make_user("operator-v", "operator"))
    assert "Open a virtual channel through a peer" in client.get("/channels/").content.decode()
    page = client.post("/channels/virtual/open/", body, follow=True).content.decode()
    assert "Confirm the action" in page
    page = client.post("/channels/virtual/open/", {**body, "confirm": "yes"}, follow=True).content.decode()
    assert "there is no open ledger channel with bank-x to lock funds in (wrong_phase)" in page
    same = {**body, "peer": intermediary.pk, "confirm": "yes"}
    assert "two different nodes" in client.post("/channels/virtual/open/", same, follow=True).content.decode()
    assert not Channel.objects.exists()
