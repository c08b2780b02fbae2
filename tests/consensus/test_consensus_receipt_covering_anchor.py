"""The anchor a receipt points to (``consensus.receipts.covering_anchor``): among the mined anchors
at or above the block, the newest final one, else the newest mined one; none while nothing mined
covers the block. One query whatever the number of anchors, served by the partial index
``anchor_usable_by_status_height``; a receipt reads it joined laterally to the observation's
block, with the same answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consensus.models import Anchor, AnchorStatus
from consensus.receipts import _COVERING_ANCHOR_SQL, _covering_anchor_sql, covering_anchor

pytestmark = pytest.mark.django_db


def _anchor(height: int, status: str, *, on_chain: bool = True) -> Anchor:
    return Anchor.objects.create(
        height=height,
        log_root=bytes([height % 256]) * 32,
        account="0x" + "ab" * 20,
        status=status,
        tx_hash=f"0x{height:064x}",
        block_number=1_000 + height if on_chain else None,
        log_index=0 if on_chain else None,
        confirmations=3,
    )


def _chosen(height: int) -> int | None:
    with CaptureQueriesContext(connection) as queries:
        found = covering_anchor(height)
    assert len(queries) == 1
    chosen = None if found is None else found.height
    # A receipt reads the same query joined laterally to the observation's block: same answer.
    lateral = _covering_anchor_sql("b.height")
    joined = f"SELECT anchor.height FROM (VALUES (%s::bigint)) AS b (height) LEFT JOIN LATERAL ({lateral}) AS anchor ON true"  # noqa: S608 - constants
    with connection.cursor() as cursor:
        cursor.execute(joined, [height])
        assert cursor.fetchone() == (chosen,)
    return chosen


def test_no_anchor_at_all_covers_nothing() -> None:
    assert _chosen(0) is None


def test_anchors_below_the_block_or_not_mined_do_not_cover_it() -> None:
    _anchor(4, AnchorStatus.FINAL)
    _anchor(6, AnchorStatus.PENDING, on_chain=False)
    _anchor(7, AnchorStatus.SUBMITTED, on_chain=False)
    _anchor(8, AnchorStatus.REVERTED)
    _anchor(9, AnchorStatus.MINED, on_chain=False)  # mined, but its log not recorded yet

    assert _chosen(5) is None
    assert _chosen(4) == 4


def test_a_final_anchor_is_preferred_to_a_newer_mined_one_and_the_newest_of_each_kind_wins() -> None:
    for height in (3, 7, 12):
        _anchor(height, AnchorStatus.FINAL)
    for height in (14, 20):
        _anchor(height, AnchorStatus.MINED)
    _anchor(25, AnchorStatus.PENDING, on_chain=False)

    assert _chosen(0) == 12  # the newest final: it will not be reorganised away
    assert _chosen(12) == 12
    assert _chosen(13) == 20  # no final covers block 13: the newest mined
    assert _chosen(20) == 20
    assert _chosen(21) is None


def test_the_anchor_carries_what_the_receipt_states() -> None:
    made = _anchor(5, AnchorStatus.FINAL)

    found = covering_anchor(2)

    assert found is not None
    assert (found.height, found.log_root, found.tx_hash, found.block_number, found.log_index) == (
        5,
        bytes(made.log_root),
        made.tx_hash,
        made.block_number,
        made.log_index,
    )


def _rows_read_and_dropped(plan: dict[str, Any]) -> int:
    """Rows an index or table scan read and then filtered out, over the whole plan."""
    dropped = int(plan.get("Rows Removed by Filter", 0))
    return dropped + sum(_rows_read_and_dropped(child) for child in plan.get("Plans", []))


def _assert_bounded_work(cursor: Any, height: int) -> None:
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _COVERING_ANCHOR_SQL, {"height": height})
    [[explained]] = cursor.fetchall()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    assert _rows_read_and_dropped(plan) <= 3, json.dumps(plan, indent=1)


def test_the_work_does_not_grow_with_the_number_of_anchors() -> None:
    # Years of anchors, all final: no mined one covers an old block, and finding that out must
    # not mean reading every later anchor.
    Anchor.objects.bulk_create(
        Anchor(
            height=height,
            log_root=bytes(32),
            status=AnchorStatus.FINAL,
            tx_hash=f"0x{height:064x}",
            block_number=height,
            log_index=0,
        )
        for height in range(5_000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE consensus_anchor")
        # Whatever the planner prefers for a table this small, an index must serve each probe.
        cursor.execute("SET LOCAL enable_seqscan = off")
        _assert_bounded_work(cursor, 10)
        assert _chosen(10) == 4_999
        # The newest few mined and not final yet.
        Anchor.objects.filter(height__gte=4_997).update(status=AnchorStatus.MINED)
        cursor.execute("ANALYZE consensus_anchor")
        for height, newest in ((10, 4_996), (4_998, 4_999)):
            _assert_bounded_work(cursor, height)
            assert _chosen(height) == newest
