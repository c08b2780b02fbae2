"""The firehose's rules, pure: where a stream may start, and how much may be unacknowledged.

The firehose streams agreed blocks in height order. Its resume contract: a client that has
processed everything before height ``n`` asks ``from=n`` and receives block ``n`` first, then
``n + 1``, ... with no gap and no duplicate. Heights exist from 0 to the chain's next height
minus one; ``from`` may name the next height (the stream waits for that block), never beyond it:
a height the chain has not reached is an error, not a silent wait for a block that may never come.

A websocket client acknowledges what it processed with ``next_height`` (every message names it):
the server keeps at most a window of bytes unacknowledged, so a client that stops reading stops
the stream instead of making the server buffer without bound.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

# Digits only: no sign, no spaces, no exponent, no other scripts' digits (str.isdigit takes "٣").
_HEIGHT = re.compile(r"[0-9]{1,20}")


class FirehoseRequestError(ValueError):
    """A stream request the firehose refuses: ``code`` is machine-readable, the message a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


BAD_HEIGHT = "bad_height"
HEIGHT_NOT_REACHED = "height_not_reached"
BAD_ACK = "bad_ack"


def resume_height(values: list[str], *, next_height: int) -> int:
    """The height a stream starts from, given the request's ``from`` values (none: 0).

    Raises :class:`FirehoseRequestError`: ``bad_height`` for anything but one whole number
    from 0, ``height_not_reached`` for a height past ``next_height``.
    """
    if not values:
        return 0
    if len(values) > 1:
        raise FirehoseRequestError(BAD_HEIGHT, "give one resume height (from=<height>), not several")
    raw = values[0]
    if not _HEIGHT.fullmatch(raw):
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise FirehoseRequestError(
            BAD_HEIGHT, f"the resume height is a whole number from 0 (a block height); got {shown!r}"
        )
    height = int(raw)
    if height > next_height:
        held = f"blocks 0 to {next_height - 1}" if next_height else "no blocks yet"
        raise FirehoseRequestError(
            HEIGHT_NOT_REACHED,
            f"there is no block {height}: the chain holds {held}; resume from at most {next_height} "
            "to wait for the next block",
        )
    return height


@dataclass
class FlowWindow:
    """Bytes sent and not yet acknowledged, by the ``next_height`` each message carried.

    ``acknowledge(n)`` frees every message whose ``next_height`` is at most ``n``: the client says
    it has processed everything before height ``n``. Acknowledging more than was sent is refused:
    it would open the window to a client that is not reading.
    """

    limit: int
    _in_flight: deque[tuple[int, int]] = field(default_factory=deque)
    _unacknowledged: int = 0
    _highest_sent: int = 0

    @property
    def unacknowledged(self) -> int:
        return self._unacknowledged

    def has_room(self) -> bool:
        # Always room for one message when nothing is in flight: a message larger than the
        # window must still go, or the stream would stop forever.
        return not self._in_flight or self._unacknowledged < self.limit

    def sent(self, next_height: int, size: int) -> None:
        self._in_flight.append((next_height, size))
        self._unacknowledged += size
        self._highest_sent = max(self._highest_sent, next_height)

    def acknowledge(self, next_height: object) -> None:
        if isinstance(next_height, bool) or not isinstance(next_height, int) or next_height < 0:
            raise FirehoseRequestError(BAD_ACK, "an acknowledgement names next_height, a whole number")
        if next_height > self._highest_sent:
            raise FirehoseRequestError(
                BAD_ACK,
                f"acknowledged next_height {next_height}, but the stream only reached {self._highest_sent}",
            )
        while self._in_flight and self._in_flight[0][0] <= next_height:
            self._unacknowledged -= self._in_flight.popleft()[1]
