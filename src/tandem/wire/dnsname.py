"""RFC 1035 domain names as used inside DHCP options (formats ``d`` and ``D``).

Text form (what :mod:`tandem.wire.optformat` hands out as ``str``): labels
joined by ``.``, no trailing dot, the root as ``"."``. Inside a label ``.``
and ``\\`` are written ``\\.`` and ``\\\\``; bytes outside printable ASCII and
the space are ``\\DDD`` (decimal), as in DNS presentation format, so any wire
name survives a round trip through text.

Compression (format ``Dc``, e.g. domain-search) reproduces what dhcpd does
when it parses ``option domain-search "a", "b";`` (parse_domain_list with
MRns_name_compress): every label position written literally is remembered
(at most 253 of them, only below offset 0x4000) and each later name is cut
at its first suffix that matches a remembered position, compared
ASCII-case-insensitively. Offsets are relative to the start of the option
data (RFC 3397 section 2). That keeps our bytes identical to dhcpd's.

Decoding is bounded: labels <= 63, names <= 255 octets, pointers must land
inside the data and may not loop (the hop budget is the data length, as in
BIND's ns_name_unpack), CVE-2022-2929 style inputs end in :class:`FormatError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tandem.wire.errors import FormatError

MAX_LABEL = 63
MAX_NAME = 255  # octets on the wire, terminating root label included
_MAX_SAVED = 253  # dnptrs[256] minus the message slot and the end marker
_PTR_LIMIT = 0x4000

_ESCAPE_BACKSLASH = frozenset(b'.\\"();@$')


def labels_from_text(name: str) -> list[bytes]:
    """Parse the text form (``\\.`` and ``\\DDD`` escapes allowed) into labels."""
    if name in ("", "."):
        return []
    raw = name.encode("utf-8", "surrogateescape")
    labels: list[bytes] = []
    cur = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x5C:  # backslash
            if i + 1 >= n:
                raise FormatError(f"dangling backslash in domain name {name!r}")
            d = raw[i + 1]
            if 0x30 <= d <= 0x39:
                digits = raw[i + 1 : i + 4]
                if len(digits) != 3 or not digits.isdigit() or int(digits) > 255:
                    raise FormatError(f"bad \\DDD escape in {name!r}")
                cur.append(int(digits))
                i += 4
                continue
            cur.append(d)
            i += 2
            continue
        if c == 0x2E:  # '.'
            if not cur:
                raise FormatError(f"empty label in domain name {name!r}")
            labels.append(bytes(cur))
            cur.clear()
            i += 1
            continue
        cur.append(c)
        i += 1
    if cur:
        labels.append(bytes(cur))
    _check_labels(labels, name)
    return labels


def _check_labels(labels: Sequence[bytes], name: str) -> None:
    total = 1
    for label in labels:
        if len(label) > MAX_LABEL:
            raise FormatError(f"label longer than 63 octets in {name!r}")
        total += len(label) + 1
    if total > MAX_NAME:
        raise FormatError(f"domain name longer than 255 octets: {name!r}")


def text_from_labels(labels: Sequence[bytes]) -> str:
    """The text form of a label list (inverse of :func:`labels_from_text`)."""
    if not labels:
        return "."
    parts: list[str] = []
    for label in labels:
        if label.isascii() and label.isalnum():
            parts.append(label.decode("ascii"))
            continue
        out: list[str] = []
        for b in label:
            if b in _ESCAPE_BACKSLASH:
                out.append("\\" + chr(b))
            elif 0x21 <= b <= 0x7E:
                out.append(chr(b))
            else:
                out.append(f"\\{b:03d}")
        parts.append("".join(out))
    return ".".join(parts)


def encode_names(names: Iterable[str], *, compress: bool) -> bytes:
    """Wire form of a list of names, concatenated, optionally compressed."""
    buf = bytearray()
    saved: dict[tuple[bytes, ...], int] = {}
    for name in names:
        labels = labels_from_text(name)
        if not compress:
            for label in labels:
                buf.append(len(label))
                buf += label
            buf.append(0)
            continue
        lowered = [label.lower() for label in labels]
        for i, label in enumerate(labels):
            key = tuple(lowered[i:])
            hit = saved.get(key)
            if hit is not None:
                buf.append(0xC0 | (hit >> 8))
                buf.append(hit & 0xFF)
                break
            if len(saved) < _MAX_SAVED and len(buf) < _PTR_LIMIT:
                saved[key] = len(buf)
            buf.append(len(label))
            buf += label
        else:
            buf.append(0)
    return bytes(buf)


def decode_name(data: bytes, pos: int, *, allow_pointers: bool = True) -> tuple[list[bytes], int]:
    """Read one name starting at ``pos``; return its labels and the offset after it.

    The returned offset is where the name ends in the original stream (after
    the first pointer if the name is compressed).
    """
    n = len(data)
    labels: list[bytes] = []
    total = 1
    end_pos = -1
    hops = 0
    while True:
        if pos >= n:
            raise FormatError("domain name runs past the end of the data")
        length = data[pos]
        if length == 0:
            pos += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if not allow_pointers:
                raise FormatError("compression pointer where none is allowed")
            if pos + 1 >= n:
                raise FormatError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if end_pos < 0:
                end_pos = pos + 2
            hops += 2
            if target >= n or hops > n:
                raise FormatError("compression pointer loop or out of range")
            pos = target
            continue
        if kind != 0:
            raise FormatError("unknown label type")
        if pos + 1 + length > n:
            raise FormatError("label runs past the end of the data")
        total += length + 1
        if total > MAX_NAME:
            raise FormatError("domain name longer than 255 octets")
        labels.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return labels, (end_pos if end_pos >= 0 else pos)


def decode_names(data: bytes) -> list[str]:
    """All names in ``data`` (a ``D``/``Dc`` option body), in text form."""
    out: list[str] = []
    pos = 0
    while pos < len(data):
        labels, pos = decode_name(data, pos)
        out.append(text_from_labels(labels))
    return out
