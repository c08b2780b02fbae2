"""The address of a recovered key is remembered, and is the address eth_account computes."""

from __future__ import annotations

import os

from eth_account import Account

from channels_app.protocol import eip712


def test_the_remembered_address_of_a_key_is_eth_accounts_address():
    for _ in range(20):
        key = os.urandom(32)
        digest = os.urandom(32)
        signature = eip712.sign_digest(key, digest)
        expected = Account.from_key(key).address.lower()
        assert eip712.recover_digest(digest, signature) == expected
        assert eip712.recover_digest(digest, signature) == expected  # from the cache
    assert eip712.address_of_public_key.cache_info().hits >= 20
