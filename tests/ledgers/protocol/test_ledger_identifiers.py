import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgers.protocol.errors import BadAssetId, BadLedgerId
from ledgers.protocol.identifiers import (
    Asset,
    asset_code,
    asset_issuer,
    correspondent_ledger_id,
    ledger_namespace,
    parse_asset_id,
    parse_ledger_id,
)


@pytest.mark.parametrize("text", ["bank-a.test/EUR", "b.example/USDC", "x/GOLD-OZ", "bank-a.test/X1"])
def test_well_formed_asset_ids_parse_to_themselves(text):
    assert parse_asset_id(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "bank-a.test/eur",
        "Bank-A.test/EUR",
        "bank-a.test",
        "/EUR",
        "bank-a.test/",
        "bank-a.test/EUR/x",
        "-bank.test/EUR",
        "bank..test/EUR",
        " bank-a.test/EUR",
        42,
        None,
        "bank-a.test/E UR",
    ],
)
def test_malformed_asset_ids_are_refused_with_their_code(text):
    with pytest.raises(BadAssetId) as caught:
        parse_asset_id(text)
    assert caught.value.code == "bad_asset_id"


def test_asset_id_names_its_issuer_and_code():
    asset = Asset(id=parse_asset_id("bank-a.test/EUR"), decimals=2)
    assert (asset.issuer, asset.code) == ("bank-a.test", "EUR")
    assert asset_issuer(asset.id) == "bank-a.test"
    assert asset_code(asset.id) == "EUR"


@pytest.mark.parametrize("decimals", [-1, 19, True, "2"])
def test_asset_decimals_must_be_a_small_integer(decimals):
    with pytest.raises(BadAssetId):
        Asset(id=parse_asset_id("bank-a.test/EUR"), decimals=decimals)


@pytest.mark.parametrize(
    "text", ["ubi:bank-a.test:alice", "ubi:bank-a.test:3f0c9d2e-0b1a-4c47-9a55-6a1e2b3c4d5e", "ubi:b:x.y_z"]
)
def test_well_formed_ledger_ids_parse_and_name_their_validator(text):
    assert parse_ledger_id(text) == text
    assert ledger_namespace(parse_ledger_id(text)) == text.split(":")[1]


@pytest.mark.parametrize(
    "text",
    [
        "bank-a.test:alice",
        "ubi:bank-a.test:",
        "ubi::alice",
        "ubi:bank-a.test:Alice",
        "UBI:bank-a.test:a",
        "ubi:bank-a.test:a:b",
        "ubi:bank_a.test:a",
        b"ubi:bank-a.test:a",
    ],
)
def test_malformed_ledger_ids_are_refused_with_their_code(text):
    with pytest.raises(BadLedgerId) as caught:
        parse_ledger_id(text)
    assert caught.value.code == "bad_ledger_id"


def test_correspondent_accounts_have_one_fixed_name_per_pair_of_banks():
    ledger = correspondent_ledger_id(kept_by="bank-a.test", for_bank="bank-b.test")
    assert ledger == "ubi:bank-a.test:bank.bank-b.test"
    assert ledger != correspondent_ledger_id(kept_by="bank-b.test", for_bank="bank-a.test")


SMALL_BOUND = 5  # so the remembered ids are cleared several times in one example


@given(
    st.lists(
        st.one_of(
            st.text(max_size=40), st.from_regex(r"ubi:[a-z0-9]{1,8}:[a-z0-9._-]{1,12}", fullmatch=True)
        ),
        max_size=30,
    )
)
def test_remembering_valid_ids_never_changes_a_verdict(texts):
    """Valid ids are remembered (bounded, cleared when full): asked twice, in any order, every
    text gets the verdict the patterns give."""
    from ledgers.protocol import identifiers

    bound = identifiers._VALID_IDS_MAX
    identifiers._VALID_IDS_MAX = SMALL_BOUND
    identifiers._valid_ledger_ids.clear()  # whatever earlier tests left there
    identifiers._valid_asset_ids.clear()
    try:
        for text in [*texts, *texts]:
            for parse, pattern, error in (
                (parse_ledger_id, identifiers._LEDGER_RE, BadLedgerId),
                (parse_asset_id, identifiers._ASSET_RE, BadAssetId),
            ):
                if pattern.fullmatch(text):  # (texts are shorter than any length limit)
                    assert parse(text) == text
                else:
                    with pytest.raises(error):
                        parse(text)
            assert len(identifiers._valid_ledger_ids) <= SMALL_BOUND
    finally:
        identifiers._VALID_IDS_MAX = bound
