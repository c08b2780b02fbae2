"""Helpers for the firehose tests: blocks stored by a real single validator, records checked
against the database and the Merkle root."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consensus_shell_support import agree_with_peer

from consensus.models import Block
from devstack.services import ManagedProcess, free_port, port_open
from settlement.protocol.merkle import MerkleTree, leaf_hash


def store_blocks(peer: Any, dispatched: list[Any], count: int, *, per_block: int = 2) -> list[int]:
    """Agree at least ``count`` new blocks with the in-process peer; returns the new heights."""
    before = Block.objects.count()
    while Block.objects.count() < before + count:
        start = Block.objects.count()
        agree_with_peer(peer, dispatched, [f"payload-{start}-{item}".encode() for item in range(per_block)])
    return list(range(before, Block.objects.count()))


def check_block_record(record: dict[str, Any]) -> None:
    """The record matches the stored block, and its leaves fold to the block's signed root."""
    block = Block.objects.get(height=record["height"])
    assert record["hash"] == bytes(block.block_hash).hex()
    assert record["previous"] == bytes(block.previous_hash).hex()
    assert record["root"] == bytes(block.merkle_root).hex()
    assert record["tree_size"] == block.tree_size == len(record["observations"])
    assert [item["index"] for item in record["observations"]] == list(range(block.tree_size))
    assert record["signatures"] == block.signatures
    leaves = []
    for item in record["observations"]:
        leaf = b"p" + item["kind"].encode() + b"\n" + base64.b64decode(item["payload"])
        assert leaf_hash(leaf).hex() == item["leaf_hash"]
        leaves.append(leaf)
    assert MerkleTree.from_entries(leaves).root.hex() == record["root"]
    assert record["complete"] is True
    assert record["next_height"] == record["height"] + 1


@pytest.fixture
def firehose_web(transactional_db: None, tmp_path: Path) -> Iterator[Any]:
    """daphne serving the node, with a short heartbeat and a small response budget, so a test
    sees heartbeats and responses that end (and must be resumed) within seconds."""
    from tests.conftest import VENV_BIN, LiveWeb, _process_env

    port = free_port()
    process = ManagedProcess(
        name="web",
        command=[
            str(VENV_BIN / "daphne"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "settlement.asgi:application",
        ],
        log_path=tmp_path / "web.log",
        env={
            **_process_env(),
            "NODE_BASE_URL": f"http://127.0.0.1:{port}",
            "FIREHOSE_HEARTBEAT_SECONDS": "0.5",
            # A pool this small fails a test if an open stream or socket held a connection
            # (each reader would take one for hours in production, starving the pages).
            "DATABASE_POOL_MAX": "3",
            "FIREHOSE_RESPONSE_BYTES": str(RESPONSE_BUDGET),
        },
    )
    process.start()
    deadline = time.monotonic() + 30
    while not port_open(port):
        if time.monotonic() > deadline or not process.running():
            raise RuntimeError(f"daphne did not start:\n{process.log_tail()}")
        time.sleep(0.1)
    yield LiveWeb(port, process)
    process.kill()  # the test is over: no graceful shutdown to wait for


RESPONSE_BUDGET = 2_500


class StreamReader:
    """One HTTP firehose response read line by line in a thread (so a test can wait with a timeout)."""

    def __init__(self, url: str, token: str, start: int) -> None:
        import requests

        self.response = requests.get(
            f"{url}/api/firehose?from={start}",
            headers={"Authorization": f"Bearer {token}"},
            stream=True,
            timeout=(5, 30),
        )
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"] == "application/x-ndjson"
        self.lines: queue.Queue[Any] = queue.Queue()
        self.bytes_read = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                if line:
                    self.bytes_read += len(line) + 1
                    self.lines.put(json.loads(line))
        except Exception as error:  # the test closed the response, or the server went away
            self.lines.put(error)
        self.lines.put(None)

    def next(self, timeout: float = 15.0) -> Any:
        item = self.lines.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.response.close()


def follow_blocks(
    url: str, token: str, start: int, count: int, *, reads: list[int] | None = None
) -> list[dict[str, Any]]:
    """``count`` complete block records from ``start``, as a client would: on ``end``, reconnect
    from its ``next_height``. ``reads``, if given, receives the byte count of each response."""
    records: list[dict[str, Any]] = []
    position = start
    while len(records) < count:
        reader = StreamReader(url, token, position)
        try:
            while len(records) < count:
                message = reader.next()
                assert message is not None, "the response ended without an end record"
                if message["type"] == "end":
                    position = message["next_height"]
                    assert reader.next() is None, "nothing follows the end record"
                    break
                if message["type"] == "block":
                    records.append(message)
                    position = message["next_height"]
        finally:
            reader.close()
            if reads is not None:
                reads.append(reader.bytes_read)
    return records
