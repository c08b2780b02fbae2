"""A validator keeps its identity across a rotation of the node's signing key: the validator set
knows it by the key it had when the set was agreed, so its events and block signatures go on
being made with that key (the new key signs its requests and co-signatures at once; moving the
validator id to it is a membership change). Before, a worker started after a rotation restored
its validator with the new key, which the snapshot refused (``our_id`` is not its public key),
and the node agreed nothing more."""

from __future__ import annotations

from consensus_shell_support import agree_with_peer, dispatched, our_validator_id, two_validators

from consensus import services
from consensus.models import Block
from settlement.keystore import node_key_rotate, node_signer
from settlement.models import KeyPurpose

__all__ = ["dispatched", "two_validators"]


def test_a_validator_goes_on_agreeing_after_its_node_key_is_rotated(two_validators, dispatched):
    agree_with_peer(two_validators, dispatched, [b"before the rotation"])
    validator_id = our_validator_id()
    heights_before = Block.objects.count()

    node_key_rotate(purpose=KeyPurpose.SIGNING, actor="test")
    services.forget_cached_state()  # as a worker started after the rotation would
    assert node_signer().public_key != validator_id

    agree_with_peer(two_validators, dispatched, [b"after the rotation"])

    assert our_validator_id() == validator_id
    assert Block.objects.count() > heights_before
    stored = [bytes(item) for item in Block.objects.order_by("height").values_list("block_hash", flat=True)]
    assert stored == [block.hash for block in two_validators.blocks]
    assert not two_validators.parsec.accusations(), "the peer accused us after the rotation"
