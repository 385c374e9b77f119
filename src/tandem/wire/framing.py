"""Cut the failover TCP byte stream into whole messages.

Each failover message starts with a 2-byte length that counts itself (draft-12 §6.1), so
framing needs no knowledge of the payload. The declared length is checked as soon as its two
bytes arrive: ISC closes the link on a length outside 12..2048 without waiting for the body
(server/failover.c, ``dhcp_flink_message_length_wait``), and checking early also means a
hostile peer cannot make us buffer a body we will refuse anyway.

The buffer is bounded: between two drains it holds at most one partial message plus what the
caller fed since the last drain, and ``feed`` refuses to go past ``max_buffered`` bytes, so a
caller that forgets to iterate fails loudly instead of growing memory without limit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from tandem.wire.failover import MAX_MESSAGE_SIZE, MIN_MESSAGE_SIZE, FailoverProtocolError

_LENGTH = struct.Struct("!H")

#: Default cap on un-drained bytes: 32 maximum-size messages, far more than one TCP read.
DEFAULT_MAX_BUFFERED = 32 * MAX_MESSAGE_SIZE


class FrameBuffer:
    """Accumulates stream bytes; iterating yields complete messages as ``bytes``.

    After a :class:`FailoverProtocolError` the stream cannot be resynchronised: every later
    ``feed`` or ``next`` raises again, and the caller must close the connection.
    """

    __slots__ = ("_checked", "_data", "_error", "max_buffered")

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        if max_buffered < MAX_MESSAGE_SIZE:
            raise ValueError("max_buffered must hold at least one maximum-size message")
        self.max_buffered = max_buffered
        self._data = bytearray()
        self._checked = 0  # offset of the first frame whose length is not yet validated
        self._error: FailoverProtocolError | None = None

    def __len__(self) -> int:
        """Bytes buffered and not yet returned as messages."""
        return len(self._data)

    def feed(self, data: bytes) -> None:
        """Append received bytes and validate every length prefix now complete."""
        if self._error is not None:
            raise self._error
        if len(self._data) + len(data) > self.max_buffered:
            self._fail(
                FailoverProtocolError(
                    "buffer-full",
                    f"{len(self._data) + len(data)} bytes un-drained (cap {self.max_buffered})",
                )
            )
        self._data += data
        self._validate()

    def _validate(self) -> None:
        """Walk the length prefixes of the buffered frames, each checked exactly once."""
        data = self._data
        pos = self._checked
        while pos + _LENGTH.size <= len(data):
            (length,) = _LENGTH.unpack_from(data, pos)
            if not MIN_MESSAGE_SIZE <= length <= MAX_MESSAGE_SIZE:
                self._fail(FailoverProtocolError("bad-length", f"message length {length}"))
            pos += length
        self._checked = pos

    def _fail(self, error: FailoverProtocolError) -> None:
        self._error = error
        self._data.clear()
        self._checked = 0
        raise error

    def drain(self) -> list[bytes]:
        """Every complete message buffered, in order, in one pass (one compaction).

        The link reads up to 64 KiB at a time and a window of BNDUPDs arrives in one read:
        slicing them all from one snapshot and dropping the consumed prefix once costs less
        than a ``__next__`` (a copy and a front deletion) per message.
        """
        if self._error is not None:
            raise self._error
        data = self._data
        size = len(data)
        if size < _LENGTH.size:
            return []
        unpack = _LENGTH.unpack_from
        bounds: list[int] = []
        pos = 0
        while pos + 2 <= size:
            (length,) = unpack(data, pos)  # validated by feed: 12..2048, so pos advances
            if pos + length > size:
                break
            pos += length
            bounds.append(pos)
        if not bounds:
            return []
        snap = bytes(data) if pos == size else bytes(data[:pos])
        frames: list[bytes] = []
        start = 0
        for stop in bounds:
            frames.append(snap[start:stop])
            start = stop
        del data[:pos]
        self._checked -= pos
        return frames

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._error is not None:
            raise self._error
        data = self._data
        if len(data) < _LENGTH.size:
            raise StopIteration
        (length,) = _LENGTH.unpack_from(data, 0)
        if len(data) < length:
            raise StopIteration
        message = bytes(data[:length])
        del data[:length]
        self._checked -= length  # the first frame was validated by feed()
        return message
