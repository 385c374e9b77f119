"""Sub-option (TLV) walkers for encapsulated spaces.

Option 82 (``agent``), 43 (vendor space), 63 (``nwip``) all use one-octet
codes and one-octet lengths, like the DHCP space itself, but without PAD/END
(RFC 3046 2.0: sub-options are not padded). Options 124/125 (RFC 3925) are
lists of (enterprise number, length, data) with four-octet enterprise codes.
Lengths are checked against the end before anything is sliced; a bad length
raises :class:`FormatError` (the caller decides whether that drops a packet).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from tandem.wire.errors import FormatError

_ENTERPRISE = struct.Struct("!IB")


def decode_suboptions(data: bytes) -> list[tuple[int, bytes]]:
    """(code, value) pairs in wire order; repeated codes stay separate."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + 2 > n:
            raise FormatError(f"sub-option {data[pos]} has no length octet")
        code = data[pos]
        end = pos + 2 + data[pos + 1]
        if end > n:
            raise FormatError(f"sub-option {code} runs {end - n} octets past the option")
        out.append((code, data[pos + 2 : end]))
        pos = end
    return out


def encode_suboptions(items: Iterable[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for code, value in items:
        if not 0 <= code <= 255 or len(value) > 255:
            raise FormatError(f"sub-option {code} with {len(value)} octets cannot be encoded")
        out.append(code)
        out.append(len(value))
        out += value
    return bytes(out)


def decode_enterprise(data: bytes) -> list[tuple[int, bytes]]:
    """Options 124/125: (enterprise number, data) pairs (RFC 3925)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + 5 > n:
            raise FormatError("truncated enterprise header")
        enterprise, length = _ENTERPRISE.unpack_from(data, pos)
        end = pos + 5 + length
        if end > n:
            raise FormatError(f"enterprise {enterprise} data runs past the option")
        out.append((enterprise, data[pos + 5 : end]))
        pos = end
    return out


def encode_enterprise(items: Iterable[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for enterprise, value in items:
        if not 0 <= enterprise <= 0xFFFFFFFF or len(value) > 255:
            raise FormatError(f"enterprise {enterprise} with {len(value)} octets")
        out += _ENTERPRISE.pack(enterprise, len(value))
        out += value
    return bytes(out)
