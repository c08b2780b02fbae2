"""The batch of channel updates between two nodes, as bytes (``BATCH_CONTENT_TYPE``).

A batch of 250 updates as JSON was about 100 KB of text that both nodes wrote and parsed field
by field (hex addresses, amounts as strings of digits, signatures as hex), and the answer about
50 KB more. The proposer already holds each proposal as bytes (the channel row's ``pending``:
``codec.pending_bytes``, the state in fixed-width fields and our signature), and the receiver
stores the both-signed state in the same layout with one more signature; so the request
carries those bytes as they are, and the answer each countersignature as 65 raw bytes.
The body is still one request under the signed transport: the node's Ed25519 signature covers
its digest, whatever the format (``settlement.transport``).

Request (big-endian)::

    magic (4) = b"PCB\\x01" | count (2) | count x [length (2) | proposal (length)]

where a proposal is ``codec.pending_bytes``: format byte, channel id, version, flags,
allocations, sub-allocations, one signature (the proposer's). Answer::

    magic (4) = b"PCA\\x01" | count (2) | count x result

    result = kind (1) | channel id (32) | version (8)
             | kind 0 (countersigned): countersignature (65)
             | kind 1 (refused): code length (1) | code (ASCII) | message length (2) | message (UTF-8)

An answer names each proposal's channel id and version, in the request's order; the
proposer checks both against what it sent. A refusal whose proposal could not be read at
all carries 32 zero bytes and version 2**64 - 1 (``NO_VERSION``).

Pure functions: framing errors raise ``ValueError``, which the endpoint turns into a refusal
of the whole batch; what is inside each proposal is checked by ``codec`` and the rules, one
proposal at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BATCH_CONTENT_TYPE = "application/vnd.parsec.channel-batch"
REQUEST_MAGIC = b"PCB\x01"
ANSWER_MAGIC = b"PCA\x01"
NO_VERSION = 2**64 - 1
"""The version field of a refusal whose proposal could not be read."""

_COUNTERSIGNED = 0
_REFUSED = 1
_SIGNATURE_BYTES = 65
_NO_CHANNEL = bytes(32)


@dataclass(frozen=True, slots=True)
class Result:
    """One item of an answer: a countersignature, or a refusal's code and sentence."""

    channel_id: bytes
    version: int
    countersignature: bytes | None = None
    code: str = ""
    message: str = ""


def request_bytes(proposals: Sequence[bytes]) -> bytes:
    """A batch request from each proposal's stored bytes (``codec.pending_bytes``)."""
    if len(proposals) > 0xFFFF:
        raise ValueError("a batch holds at most 65,535 proposals on the wire")
    parts = [REQUEST_MAGIC, len(proposals).to_bytes(2, "big")]
    for proposal in proposals:
        if len(proposal) > 0xFFFF:
            raise ValueError("a proposal is at most 65,535 bytes")
        parts += (len(proposal).to_bytes(2, "big"), proposal)
    return b"".join(parts)


def request_items(body: bytes) -> list[bytes]:
    """The proposals of a request, each still to be decoded; ``ValueError`` if the framing is
    wrong (a wrong magic, a count or length that runs past the end, trailing bytes)."""
    if body[:4] != REQUEST_MAGIC:
        raise ValueError("the body is not a channel batch in format 1")
    if len(body) < 6:
        raise ValueError("the batch is cut short")
    count = int.from_bytes(body[4:6], "big")
    items = []
    at = 6
    size = len(body)
    for _ in range(count):
        if at + 2 > size:
            raise ValueError("the batch is cut short")
        end = at + 2 + int.from_bytes(body[at : at + 2], "big")
        if end > size:
            raise ValueError("a proposal runs past the end of the batch")
        items.append(body[at + 2 : end])
        at = end
    if at != size:
        raise ValueError("the batch has trailing bytes")
    return items


def answer_bytes(results: Sequence[Result]) -> bytes:
    parts = [ANSWER_MAGIC, len(results).to_bytes(2, "big")]
    for result in results:
        if len(result.channel_id) != 32 or not 0 <= result.version <= NO_VERSION:
            raise ValueError("a result names a 32-byte channel id and a 64-bit version")
        head = result.channel_id + result.version.to_bytes(8, "big")
        if result.countersignature is not None:
            if len(result.countersignature) != _SIGNATURE_BYTES:
                raise ValueError("a countersignature is 65 bytes")
            parts += (b"\x00", head, result.countersignature)
            continue
        code = result.code.encode("ascii")[:255]
        message = result.message.encode()[:0xFFFF]
        parts += (b"\x01", head, bytes((len(code),)), code, len(message).to_bytes(2, "big"), message)
    return b"".join(parts)


def answer_results(body: bytes) -> list[Result]:
    """The results of an answer; ``ValueError`` if it is not one, or not a whole one."""
    if body[:4] != ANSWER_MAGIC or len(body) < 6:
        raise ValueError("the answer is not a channel batch answer in format 1")
    count = int.from_bytes(body[4:6], "big")
    results = []
    at = 6
    size = len(body)
    for _ in range(count):
        if at + 41 > size:
            raise ValueError("the answer is cut short")
        kind = body[at]
        channel_id = body[at + 1 : at + 33]
        version = int.from_bytes(body[at + 33 : at + 41], "big")
        at += 41
        if kind == _COUNTERSIGNED:
            if at + _SIGNATURE_BYTES > size:
                raise ValueError("the answer is cut short")
            results.append(Result(channel_id, version, body[at : at + _SIGNATURE_BYTES]))
            at += _SIGNATURE_BYTES
        elif kind == _REFUSED:
            if at + 1 > size:
                raise ValueError("the answer is cut short")
            code_end = at + 1 + body[at]
            if code_end + 2 > size:
                raise ValueError("the answer is cut short")
            message_end = code_end + 2 + int.from_bytes(body[code_end : code_end + 2], "big")
            if message_end > size:
                raise ValueError("the answer is cut short")
            code = body[at + 1 : code_end].decode("ascii", "replace")
            message = body[code_end + 2 : message_end].decode("utf-8", "replace")
            results.append(Result(channel_id, version, code=code, message=message))
            at = message_end
        else:
            raise ValueError(f"an answer's result has unknown kind {kind}")
    if at != size:
        raise ValueError("the answer has trailing bytes")
    return results


def channel_id_of(proposal: bytes) -> bytes:
    """The channel id a proposal names (the 32 bytes after its format byte), or 32 zero bytes
    when it is too short to name one: for answering a proposal that cannot be read."""
    return proposal[1:33] if len(proposal) >= 33 else _NO_CHANNEL
