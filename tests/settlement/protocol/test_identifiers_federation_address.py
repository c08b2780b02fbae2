"""Federation addresses are name*domain (SEP-0002 shape), compared case-insensitively."""

from __future__ import annotations

import pytest

from settlement.protocol.identifiers import (
    FederationAddress,
    InvalidFederationAddress,
    parse_federation_address,
)


@pytest.mark.parametrize(
    ("text", "name", "domain"),
    [
        ("alice*bank-a.test", "alice", "bank-a.test"),
        ("Alice*Bank-A.Test", "alice", "bank-a.test"),
        ("alice@example.com*bank-a.test", "alice@example.com", "bank-a.test"),
        ("a.b-c_d+1*x.y.z", "a.b-c_d+1", "x.y.z"),
    ],
)
def test_valid_addresses_parse_to_lower_case_parts(text: str, name: str, domain: str) -> None:
    address = parse_federation_address(text)
    assert address == FederationAddress(name=name, domain=domain)
    assert str(address) == f"{name}*{domain}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "exactly one"),
        ("alice*bob*bank.test", "exactly one"),
        ("*bank.test", "1 to 64"),
        ("a" * 65 + "*bank.test", "1 to 64"),
        ("al ice*bank.test", "spaces"),
        ("al<ice*bank.test", "< \\* , >"),
        ("al,ice*bank.test", "< \\* , >"),
        ("alice\x00*bank.test", "control"),
        ("alice*", "not a domain"),
        ("alice*localhost", "not a domain"),
        ("alice*-bank.test", "not a domain"),
        ("alice*bank..test", "not a domain"),
        ("alice*bank_a.test", "not a domain"),
        ("alice*" + "a" * 64 + ".test", "not a domain"),
    ],
)
def test_malformed_addresses_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidFederationAddress, match=message):
        parse_federation_address(text)
