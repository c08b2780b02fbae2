"""The REST API with a self-custody counterparty: its signatures arrive through the API; bad
input (wrong version, bad or missing signature, money not conserved, unknown or closed
channel, deposit below the agreed share) gets a 4xx with a code and a sentence, and nothing is
stored."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, run_chain_work

from channels_app import codec, services
from channels_app.models import Channel, ChannelState, ChannelStateChange, OnChainTransaction
from channels_app.protocol import eip712
from channels_app.protocol.channel_state import Allocation
from channels_app.protocol.types import ETH, Wei

pytestmark = pytest.mark.ethereum


@pytest.fixture
def operator_client(client, make_user):
    client.force_login(make_user("operator-1", "operator"))
    return client


def _open_self_custody(operator_client, counterparty) -> Channel:
    answer = operator_client.post(
        "/api/channels/",
        {
            "counterparty_id": counterparty.pk,
            "deposits": [{"asset": "ETH", "ours": str(ONE_ETH), "theirs": "0"}],
        },
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["phase"] == "proposed"
    channel = Channel.objects.get(channel_id=body["channel_id"])
    opening = codec.decode(channel.opening["state"])
    signature = eip712.sign_state(counterparty.test_private_key, services.domain(), opening)
    answer = operator_client.post(
        f"/api/channels/{channel.channel_id}/opening-signature/",
        {"signature": "0x" + signature.hex()},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.json()
    answer = operator_client.post(
        f"/api/channels/{channel.channel_id}/deposits/",
        {"asset": "ETH", "amount": str(ONE_ETH)},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.json()
    run_chain_work(2)
    channel.refresh_from_db()
    assert channel.phase == "open"
    # The node pays half; the counterparty countersigns through the API.
    answer = operator_client.post(
        f"/api/channels/{channel.channel_id}/payments/",
        {"asset": "ETH", "amount": str(ONE_ETH // 2)},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["pending"]["state"]["version"] == 1
    state = channel_refresh(channel).protocol_channel.pending.state
    countersignature = eip712.sign_state(counterparty.test_private_key, services.domain(), state)
    answer = operator_client.post(
        f"/api/channels/{channel.channel_id}/countersignatures/",
        {"version": 1, "signature": "0x" + countersignature.hex()},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["version"] == 1
    return channel_refresh(channel)


def channel_refresh(channel: Channel) -> Channel:
    return Channel.objects.get(pk=channel.pk)


def _proposal(
    channel: Channel, key: bytes, *, version_step: int = 1, pay: int = ONE_ETH // 10, conserve: bool = True
):
    latest = channel.protocol_channel.latest.state
    allocation = latest.allocation(ETH)
    new_b = allocation.balance_b - pay
    new_a = allocation.balance_a + pay + (0 if conserve else 1)
    state = latest.next(allocations=[Allocation(ETH, Wei(new_a), Wei(new_b))])
    if version_step != 1:
        state = type(state)(state.channel_id, latest.version + version_step, state.allocations)
    return state, eip712.sign_state(key, services.domain(), state)


def _body(state, signature) -> dict:
    from channels_app.api import state_output

    return {"state": state_output(state), "signature": "0x" + signature.hex()}


def _stored() -> tuple[int, int, int]:
    return (
        ChannelState.objects.count(),
        ChannelStateChange.objects.count(),
        OnChainTransaction.objects.count(),
    )


def _refused(operator_client, path: str, body: dict, status: int, code: str) -> None:
    before = _stored()
    answer = operator_client.post(path, body, content_type="application/json")
    assert answer.status_code == status, answer.json()
    error = answer.json()["error"]
    assert error["code"] == code
    assert len(error["message"]) > 10
    assert _stored() == before


def test_a_self_custody_proposal_is_countersigned_and_bad_ones_change_nothing(
    node_account, make_counterparty, operator_client
):
    counterparty = make_counterparty("self", funded=False)
    key = counterparty.test_private_key
    channel = _open_self_custody(operator_client, counterparty)
    path = f"/api/channels/{channel.channel_id}/proposals/"

    state, signature = _proposal(channel, key, version_step=2)
    _refused(operator_client, path, _body(state, signature), 400, "wrong_version")

    state, _ = _proposal(channel, key)
    wrong_signer = eip712.sign_state(b"\x07" * 32, services.domain(), state)
    _refused(operator_client, path, _body(state, wrong_signer), 400, "bad_signature")

    body = _body(state, signature)
    del body["signature"]
    _refused(operator_client, path, body, 400, "invalid")

    state, signature = _proposal(channel, key, conserve=False)
    _refused(operator_client, path, _body(state, signature), 400, "not_conserved")

    state, signature = _proposal(channel, key, pay=-(ONE_ETH // 10))  # takes from the node
    _refused(operator_client, path, _body(state, signature), 400, "unfavourable_update")

    _refused(
        operator_client,
        "/api/channels/0x" + "ab" * 32 + "/proposals/",
        _body(state, signature),
        404,
        "unknown_channel",
    )

    state, signature = _proposal(channel, key)
    answer = operator_client.post(path, _body(state, signature), content_type="application/json")
    assert answer.status_code == 200, answer.json()
    countersignature = bytes.fromhex(answer.json()["countersignature"][2:])
    eip712.verify_state_signature(services.domain(), state, channel.protocol_channel.us, countersignature)
    assert ChannelState.objects.filter(channel=channel, version=2).exists()


def test_a_deposit_below_the_agreed_share_and_updates_to_a_closed_channel_are_refused(
    node_account, make_counterparty, operator_client
):
    counterparty = make_counterparty("custodial")
    answer = operator_client.post(
        "/api/channels/",
        {
            "counterparty_id": counterparty.pk,
            "deposits": [{"asset": "ETH", "ours": str(ONE_ETH), "theirs": str(ONE_ETH)}],
        },
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    channel_id = answer.json()["channel_id"]
    deposits = f"/api/channels/{channel_id}/deposits/"
    _refused(
        operator_client, deposits, {"asset": "ETH", "amount": str(ONE_ETH - 1)}, 400, "deposit_below_agreed"
    )
    _refused(
        operator_client,
        deposits,
        {"asset": "ETH", "amount": "1", "by": "counterparty"},
        400,
        "deposit_below_agreed",
    )
    _refused(operator_client, deposits, {"asset": "ETH", "amount": "-5"}, 400, "invalid")
    for by in ("node", "counterparty"):
        answer = operator_client.post(
            deposits, {"asset": "ETH", "amount": str(ONE_ETH), "by": by}, content_type="application/json"
        )
        assert answer.status_code == 202, answer.json()
    run_chain_work(2)
    answer = operator_client.post(
        f"/api/channels/{channel_id}/settle/", {"mode": "cooperative"}, content_type="application/json"
    )
    assert answer.status_code == 202, answer.json()
    run_chain_work(2)
    assert operator_client.get(f"/api/channels/{channel_id}/").json()["phase"] == "concluded"
    _refused(
        operator_client,
        f"/api/channels/{channel_id}/payments/",
        {"asset": "ETH", "amount": "1"},
        409,
        "channel_closed",
    )
    transactions = operator_client.get(f"/api/channels/{channel_id}/transactions/").json()
    assert {t["purpose"] for t in transactions} == {"deposit", "conclude"}


def test_an_auditor_reads_channels_but_cannot_open_one(make_user, client, make_counterparty, node_account):
    client.force_login(make_user("auditor-1", "auditor"))
    assert client.get("/api/channels/").status_code == 200
    counterparty = make_counterparty("custodial", funded=False)
    answer = client.post(
        "/api/channels/",
        {"counterparty_id": counterparty.pk, "deposits": [{"asset": "ETH", "ours": "1", "theirs": "0"}]},
        content_type="application/json",
    )
    assert answer.status_code == 403
    assert not Channel.objects.exists()


def test_a_counterparty_whose_kyc_is_not_accepted_cannot_open_a_channel(
    make_counterparty, operator_client, node_account
):
    counterparty = make_counterparty("custodial", funded=False, accepted=False)
    _refused(
        operator_client,
        "/api/channels/",
        {"counterparty_id": counterparty.pk, "deposits": [{"asset": "ETH", "ours": "1", "theirs": "0"}]},
        409,
        "counterparty_not_accepted",
    )
    assert not Channel.objects.exists()
