"""Hostile DHCPv4 packets and a UDP sender that runs inside a lab namespace.

The packets are built by hand, not with :func:`tandem.wire.dhcp.encode`: the encoder only writes
well-formed packets, and the point here is the malformed ones of reference/ecosystem.md section 6
(the CVE list). Each :class:`Hostile` says what a server should do with it: drop it as malformed
(and which ``MalformedPacket.reason`` it counts under), or answer it.

The sender is a tiny Python program run with ``ip netns exec``: it binds 0.0.0.0:68 on the
host's interface (as a DHCP client would), sends each payload to the server's port 67 and then
listens for replies, which it prints as hex, one per line.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tandem.lab.netns import Host, LabError

_HEADER = struct.Struct("!BBBBIHHIIII16s64s128s")
COOKIE = b"\x63\x82\x53\x63"
BROADCAST_FLAG = 0x8000


def bootrequest(
    mac: bytes,
    xid: int,
    *,
    options: bytes = b"",
    cookie: bool = True,
    hlen: int | None = None,
    flags: int = BROADCAST_FLAG,
    file: bytes = b"",
    pad_to: int = 300,
) -> bytes:
    """A BOOTREQUEST header with raw ``options`` bytes appended after the cookie, as given.

    Nothing is checked or fixed up: lengths, END and PAD are whatever the caller wrote. The
    result is zero-padded to ``pad_to`` octets like a real client's packet.
    """
    chaddr = mac.ljust(16, b"\x00")
    head = _HEADER.pack(
        1,
        1,
        len(mac) if hlen is None else hlen,
        0,
        xid,
        0,
        flags,
        0,
        0,
        0,
        0,
        chaddr,
        bytes(64),
        file.ljust(128, b"\x00"),
    )
    body = head + (COOKIE + options if cookie else options)
    return body.ljust(pad_to, b"\x00")


def _discover(extra: bytes) -> bytes:
    """Option bytes of a DISCOVER (type first), ``extra`` options, then END."""
    return b"\x35\x01\x01" + extra + b"\xff"


@dataclass(frozen=True)
class Hostile:
    """One hostile packet and what the server should do with it."""

    name: str
    payload: bytes
    drop_reason: str | None  # MalformedPacket.reason; None: the packet is valid, answer it
    mac: str  # chaddr as dhcpd prints it ("aa:bb:..")
    why: str


def _mac(index: int) -> bytes:
    return bytes((0x02, 0xBA, 0xD0, 0x00, 0x00, index))


def _text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def hostile_packets() -> list[Hostile]:
    """The section-6 patterns that apply to a DHCPv4 packet, one each, distinct chaddrs/xids."""
    out: list[Hostile] = []

    def add(name: str, index: int, payload: bytes, reason: str | None, why: str) -> None:
        out.append(Hostile(name, payload, reason, _text(_mac(index)), why))

    m = _mac
    add(
        "zero-length-client-id",
        1,
        bootrequest(m(1), 0xBAD00001, options=_discover(b"\x3d\x00")),
        "zero-length-client-id",
        "CVE-2012-3571: option 61 of length 0 looped dhcpd",
    )
    # Option 12 claims 40 octets; the datagram ends 3 octets after the length (no padding).
    add(
        "option-overrun",
        2,
        bootrequest(m(2), 0xBAD00002, options=b"\x35\x01\x01\x0c\x28abc", pad_to=0),
        "option-overrun",
        "CVE-2017-14494: an option whose length runs past the end of the packet",
    )
    # Option 52 says "file holds options"; file holds another option 52.
    add(
        "overload-loop",
        3,
        bootrequest(m(3), 0xBAD00003, options=_discover(b"\x34\x01\x01"), file=b"\x34\x01\x03\xff"),
        "overload-loop",
        "option overload pointing back into itself",
    )
    add(
        "hlen-too-big",
        4,
        bootrequest(m(4), 0xBAD00004, options=_discover(b""), hlen=17),
        "hlen-too-big",
        "CVE-2017-14493 class: hardware length larger than the 16-octet chaddr",
    )
    add(
        "max-message-size-below-576",
        5,
        bootrequest(m(5), 0xBAD00005, options=_discover(b"\x39\x02\x01\x00")),
        None,
        "CVE-2007-5365: option 57 = 256 must be clamped to 576, not obeyed",
    )
    add(
        "truncated-header",
        6,
        bootrequest(m(6), 0xBAD00006, options=_discover(b""))[:120],
        "short-header",
        "a datagram shorter than the 236-octet BOOTP header",
    )
    label = b"\x40" + b"a" * 64  # a 64-octet label: one more than DNS allows
    add(
        "fqdn-label-too-long",
        7,
        bootrequest(
            m(7),
            0xBAD00007,
            options=_discover(b"\x51" + bytes((3 + 66,)) + b"\x05\x00\x00" + label + b"\x00"),
        ),
        None,
        "CVE-2022-2929: FQDN label > 63 (Tandem does no DDNS and never decodes option 81)",
    )
    add(
        "len-minus-two-underflow",
        8,
        bootrequest(m(8), 0xBAD00008, options=_discover(b"\x39\x00")),
        "bad-max-message-size",
        "a length of 0 where two octets are read (len-2 underflow)",
    )
    add(
        "bootp-without-cookie",
        9,
        bootrequest(m(9), 0xBAD00009, cookie=False),
        None,
        "CVE-2011-2749: a BOOTP request with no magic cookie must take the BOOTP path",
    )
    return out


_SENDER = r"""
import socket, sys, time
iface, dest, gap, listen = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
bind_ip, bind_port = sys.argv[5], int(sys.argv[6])
payloads = [bytes.fromhex(line) for line in sys.stdin.read().split()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
s.bind((bind_ip, bind_port))
for p in payloads:
    s.sendto(p, (dest, 67))
    time.sleep(gap)
s.settimeout(0.1)
end = time.monotonic() + listen
while time.monotonic() < end:
    try:
        data, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    print(addr[0], data.hex(), flush=True)
"""


def send_udp(
    host: Host,
    payloads: Sequence[bytes],
    dest: str = "255.255.255.255",
    *,
    iface: str = "eth0",
    gap: float = 0.02,
    listen: float = 1.0,
    bind: tuple[str, int] = ("0.0.0.0", 68),
) -> list[tuple[str, bytes]]:
    """Send ``payloads`` from ``host``'s ``bind`` address and port (a client's 0.0.0.0:68 unless
    told, e.g. a relay agent's address and port 67) to ``dest``:67; return (source, payload) of
    every datagram received there during the ``listen`` seconds after the last send."""
    stdin = "\n".join(p.hex() for p in payloads) + "\n"
    cmd = [*host.exec_prefix(), sys.executable, "-c", _SENDER, iface, dest, str(gap), str(listen)]
    cmd += [bind[0], str(bind[1])]
    try:
        res = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30 + gap * len(payloads) + listen,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"[{host.name}] UDP sender: {exc}") from exc
    if res.returncode != 0:
        raise LabError(f"[{host.name}] UDP sender exited {res.returncode}: {res.stderr.strip()}")
    replies: list[tuple[str, bytes]] = []
    for line in res.stdout.splitlines():
        src, _, data = line.partition(" ")
        replies.append((src, bytes.fromhex(data)))
    return replies


# --- a hostile failover peer speaking Tandem's extension (tandem.wire.tandem_ext) ----------

#: What ``fake_primary`` can send, in order: ``connect`` (ISC's CONNECT with the vendor class
#: given), ``ext`` (an extension message out of place), ``hello``/``ready`` (the channel's
#: handshake, no secret), ``unknown`` (a kind nobody has), ``replay`` (the last frame again),
#: ``badjson`` (a body that is not JSON), ``liar`` (a body length past the envelope),
#: ``mac`` (a MAC although neither side has a secret), ``wait`` (read for a second).
FAKE_STEPS = frozenset(
    {"connect", "ext", "hello", "ready", "unknown", "replay", "badjson", "liar", "mac", "wait"}
)


def fake_primary(
    host: Host,
    server: str,
    port: int,
    name: str,
    steps: Sequence[str],
    *,
    vendor: str = "tandem-0.1",
    hold: float = 2.0,
) -> dict[str, object]:
    """Play a failover primary from ``host`` against the server at ``server:port``: ``steps``
    (``FAKE_STEPS``), then ``hold`` seconds of reading. Returns ``{"closed": bool, "types":
    [message types received]}``: whether the server closed the connection, and what it sent."""
    bad = [s for s in steps if s not in FAKE_STEPS]
    if bad:
        raise LabError(f"fake_primary: unknown steps {bad}")
    args = [server, str(port), name, vendor, str(hold), ",".join(steps)]
    cmd = [*host.exec_prefix(), sys.executable, "-c", _FAKE_PRIMARY, *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30 + hold, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"[{host.name}] fake primary: {exc}") from exc
    if res.returncode != 0:
        raise LabError(f"[{host.name}] fake primary exited {res.returncode}: {res.stderr}")
    closed, _, types = res.stdout.strip().partition(" ")
    return {"closed": closed == "closed", "types": [int(t) for t in types.split(",") if t]}


_FAKE_PRIMARY = r"""
import socket, struct, sys, time, hmac, hashlib
from tandem.core.failover.loadbalance import hba_from_split
from tandem.wire.failover import encode_message
from tandem.wire.failover_build import build_connect
from tandem.wire.tandem_ext import EXT_MESSAGE_TYPE, encode_ext
server, port, name, vendor, hold, steps = sys.argv[1:7]
s = socket.create_connection((server, int(port)), timeout=5)
types, closed, seq, last = [], False, 0, b""
buf = b""

def read(seconds):
    global buf, closed
    s.settimeout(0.1)
    end = time.monotonic() + seconds
    while time.monotonic() < end and not closed:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, socket.timeout):
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            closed = True
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= int.from_bytes(buf[:2], "big") >= 12:
            n = int.from_bytes(buf[:2], "big")
            types.append(buf[2])
            buf = buf[n:]

def raw(kind, body, blen=None, mac=False):
    kb = kind.encode()
    env = struct.pack("!BBQB", 1, 1 if mac else 0, seq, len(kb)) + kb
    env += struct.pack("!H", len(body) if blen is None else blen) + body
    if mac:
        env += hmac.new(b"k" * 32, env, hashlib.sha256).digest()
    head = struct.pack("!HBBII", 16 + len(env), EXT_MESSAGE_TYPE, 12, int(time.time()), seq)
    return head + struct.pack("!HH", 29, len(env)) + env

for step in [x for x in steps.split(",") if x]:
    now = int(time.time())
    frame = b""
    if step == "connect":
        frame = encode_message(build_connect(time=now, xid=0, relationship_name=name.encode(),
            max_unacked=10, receive_timer=60, vendor_class=vendor, mclt=3600,
            hba=hba_from_split(256)))
    elif step in ("ext", "hello"):
        hello = {"v": 1, "nonce": "ab" * 16, "auth": False}
        frame = encode_ext("hello", 0, hello, time=now, key=None)
    elif step == "ready":
        frame = encode_ext("ready", seq, {"v": 1}, time=now, key=None)
    elif step == "unknown":
        frame = encode_ext("future-thing", seq, {}, time=now, key=None)
    elif step == "replay":
        frame = last
    elif step == "badjson":
        frame = raw("note", b'{"a": [1,')
    elif step == "liar":
        frame = raw("note", b"{}", blen=4000)
    elif step == "mac":
        frame = raw("ready", b'{"v":1}', mac=True)
    elif step == "wait":
        read(1.0)
        continue
    if step in ("hello", "ready", "unknown", "badjson", "liar", "mac"):
        seq += 1
    if not closed:
        try:
            s.sendall(frame)
        except OSError:
            closed = True
    last = frame
    read(0.3)
read(float(hold))
print("closed" if closed else "open", ",".join(str(t) for t in types))
"""
