"""Errors raised by the wire codecs.

Every decoder in :mod:`tandem.wire` promises to raise only subclasses of
:class:`WireError` on bad input, never ``IndexError``/``struct.error``/
``ValueError``: the server wraps per-packet handling in one ``except
WireError`` and counts drops by :attr:`MalformedPacket.reason`, so an escaping
built-in exception would be a crash (see the Kea/dhcpd CVE list in
reference/ecosystem.md section 6).
"""

from __future__ import annotations


class WireError(Exception):
    """Base class of every error raised by the wire layer."""


class FormatError(WireError):
    """A value does not fit a dhcpd format string, or option data does not parse
    under one (wrong type, count, range, or length)."""


class MalformedPacket(WireError):
    """A packet (or a part of one) that must be dropped.

    ``reason`` is a short, stable key meant for drop counters and logs
    ("short-header", "option-overrun", "bad-cookie", "zero-length-client-id",
    "hlen-too-big", "overload-loop", "bad-overload", "bad-max-message-size",
    "udp-length-mismatch", "ip-header", ...). It never contains packet data, so
    metrics stay low-cardinality; the human message may.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type[MalformedPacket], tuple[str, str]]:
        return (type(self), (self.reason, str(self)))
