"""The committed LEI vectors still hold: the valid ones pass, each invalid one fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settlement.protocol.identifiers import InvalidLEI, lei_check_digits, validate_lei

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "lei.json").read_text())


@pytest.mark.parametrize("lei", VECTORS["valid"])
def test_valid_lei_vectors_pass(lei: str) -> None:
    assert validate_lei(lei) == lei
    assert lei_check_digits(lei[:18]) == lei[18:]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda case: case["why"])
def test_invalid_lei_vectors_fail(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidLEI):
        validate_lei(case["lei"])
