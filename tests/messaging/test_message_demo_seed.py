"""`manage.py messages_demo_seed`: one encrypted demo message from the first custodial
counterparty, through the same service as the API; a second run is a replay."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from messaging.models import Message
from messaging.protocol import open_body, parse_envelope


def test_the_demo_message_is_sent_once_and_opens_for_its_recipient(make_party):
    alice, bob = make_party("alice"), make_party("bob")
    call_command("messages_demo_seed", "--to", bob.address)
    call_command("messages_demo_seed", "--to", bob.address)
    message = Message.objects.get()
    assert message.sender_address == alice.address
    assert message.encrypted
    assert "MEGA" in open_body(parse_envelope(message.envelope), recipient=bob.address, recipient_box=bob.box)
    with pytest.raises(CommandError, match="unknown_recipient"):
        call_command("messages_demo_seed", "--to", "nobody*bank-test.test")
