"""The client FQDN option (81, RFC 4702).

:func:`decode_fqdn` is deliberately separate from packet decoding: dhcpd keeps
a packet whose FQDN option is bad and just ignores the option
(fqdn_universe_decode's failure is not fatal), so the server should catch
:class:`MalformedPacket` from here, count ``reason`` and carry on without a
name. The checks are the CVE-2022-2929 ones: labels <= 63 octets, the name
<= 255 octets, every label inside the option, no compression pointers.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandem.wire import dnsname
from tandem.wire.errors import FormatError, MalformedPacket

FLAG_S = 0x01  # the server should perform the A RR update
FLAG_O = 0x02  # the server overrode the client's S bit
FLAG_E = 0x04  # the name is in RFC 1035 wire format (otherwise ASCII)
FLAG_N = 0x08  # the server should perform no DNS update


@dataclass(frozen=True, slots=True)
class ClientFqdn:
    """Option 81 contents. ``name`` is in the text form of :mod:`tandem.wire.dnsname`
    (no trailing dot, "" when absent); ``qualified`` says whether the client sent
    a fully qualified name (wire: ended with the root label; ASCII: ended with a dot)."""

    flags: int
    rcode1: int
    rcode2: int
    name: str
    qualified: bool

    @property
    def encoded(self) -> bool:
        return bool(self.flags & FLAG_E)


def decode_fqdn(data: bytes) -> ClientFqdn:
    if len(data) < 3:
        raise MalformedPacket("fqdn-short", f"option 81 of length {len(data)}")
    flags, rcode1, rcode2 = data[0], data[1], data[2]
    body = data[3:]
    if not flags & FLAG_E:
        if body.endswith(b"\x00"):
            body = body[:-1]  # some clients NUL-terminate (dhcpd tolerates it)
        text = body.decode("utf-8", "surrogateescape")
        qualified = text.endswith(".")
        return ClientFqdn(flags, rcode1, rcode2, text.rstrip("."), qualified)
    labels: list[bytes] = []
    pos = 0
    n = len(body)
    total = 1
    qualified = False
    while pos < n:
        length = body[pos]
        if length == 0:
            qualified = True
            pos += 1
            break
        if length > dnsname.MAX_LABEL:
            raise MalformedPacket("fqdn-label-too-long", f"label length {length} in option 81")
        if pos + 1 + length > n:
            raise MalformedPacket("fqdn-overrun", "option 81 label runs past the option")
        total += length + 1
        if total > dnsname.MAX_NAME:
            raise MalformedPacket("fqdn-too-long", "option 81 name longer than 255 octets")
        labels.append(body[pos + 1 : pos + 1 + length])
        pos += 1 + length
    if pos != n:
        raise MalformedPacket("fqdn-overrun", "octets after the root label in option 81")
    name = dnsname.text_from_labels(labels) if labels else ""
    return ClientFqdn(flags, rcode1, rcode2, name, qualified)


def encode_fqdn(value: ClientFqdn) -> bytes:
    """Option 81 payload; the name is wire-encoded when ``FLAG_E`` is set."""
    head = bytes((value.flags & 0xFF, value.rcode1 & 0xFF, value.rcode2 & 0xFF))
    if not value.encoded:
        text = value.name + ("." if value.qualified else "")
        return head + text.encode("utf-8", "surrogateescape")
    if not value.name:
        return head + (b"\x00" if value.qualified else b"")
    try:
        labels = dnsname.labels_from_text(value.name)
    except FormatError as exc:
        raise FormatError(f"option 81: {exc}") from exc
    out = bytearray(head)
    for label in labels:
        out.append(len(label))
        out += label
    if value.qualified:
        out.append(0)
    return bytes(out)
