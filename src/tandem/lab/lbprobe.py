"""A many-MAC DHCP probe for failover tests: who answers which client, and with what.

perfdhcp counts exchanges but cannot say *which* server answered *which* MAC, and that is what
a load-balancing test needs ("each server answers exactly the clients whose hash bucket it
owns"). This probe sends one DISCOVER per synthetic MAC (broadcast flag set, so every answer is
broadcast and one UDP socket hears all of them), collects every OFFER by xid, and optionally
completes the exchange with a REQUEST for the first OFFER to create real bindings.

Run it inside a client namespace (``host.run([python, "-m", "tandem.lab.lbprobe", ...])``); it
prints one JSON object: ``{"clients": {mac: {"offers": [[server_id, yiaddr], ...],
"acked": address-or-null, "server": server_id-or-null}}}``. The namespace needs an address on
the interface (any address outside the pool) so that the kernel delivers broadcasts to port 68.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from ipaddress import IPv4Address

from tandem.wire import dhcp

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_ZERO = IPv4Address(0)
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6


def mac_list(base: str, count: int) -> list[bytes]:
    """``count`` MACs counting up from ``base`` (like perfdhcp's -b mac= with -R)."""
    start = int(base.replace(":", ""), 16)
    return [(start + i).to_bytes(6, "big") for i in range(count)]


def _packet(mac: bytes, xid: int, mtype: int, secs: int, extra: dict[int, bytes]) -> bytes:
    options: dict[int, bytes] = {53: bytes([mtype]), **extra, 55: bytes([1, 3, 6, 51, 54])}
    pkt = dhcp.Packet(
        op=1,
        htype=1,
        hlen=6,
        hops=0,
        xid=xid,
        secs=secs,
        flags=0x8000,  # broadcast: every server's answer reaches our one socket
        ciaddr=_ZERO,
        yiaddr=_ZERO,
        siaddr=_ZERO,
        giaddr=_ZERO,
        chaddr=mac + bytes(10),
        options=options,
    )
    return dhcp.encode(pkt)


def probe(
    iface: str, macs: list[bytes], *, secs: int, wait: float, bind: bool, port: int = 67
) -> dict[str, dict[str, object]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", port + 1))
    base_xid = int.from_bytes(os.urandom(3), "big") << 8
    by_xid = {base_xid + i: m for i, m in enumerate(macs)}
    result: dict[str, dict[str, object]] = {
        m.hex(":"): {"offers": [], "acked": None, "server": None} for m in macs
    }
    requested: set[int] = set()
    for xid, mac in by_xid.items():
        sock.sendto(_packet(mac, xid, DISCOVER, secs, {}), ("255.255.255.255", port))
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        data, _addr = sock.recvfrom(4096)
        try:
            reply = dhcp.decode(data)
        except Exception:
            continue
        found = by_xid.get(reply.xid)
        mt = reply.options.get(53, b"")
        if found is None or reply.op != 2 or len(mt) != 1:
            continue
        mac = found
        entry = result[mac.hex(":")]
        sid = str(IPv4Address(reply.options.get(54, bytes(4))[:4]))
        if mt[0] == OFFER:
            offers = entry["offers"]
            assert isinstance(offers, list)
            offers.append([sid, str(reply.yiaddr)])
            if bind and reply.xid not in requested:
                requested.add(reply.xid)
                extra = {50: reply.yiaddr.packed, 54: reply.options.get(54, bytes(4))}
                sock.sendto(
                    _packet(mac, reply.xid, REQUEST, secs, extra), ("255.255.255.255", port)
                )
        elif mt[0] == ACK and bind:
            entry["acked"] = str(reply.yiaddr)
            entry["server"] = sid
        elif mt[0] == NAK:
            entry["nak"] = sid
    sock.close()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--base", default="02:10:00:00:00:00")
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--secs", type=int, default=0)
    ap.add_argument("--wait", type=float, default=4.0)
    ap.add_argument("--bind", action="store_true", help="REQUEST the first offer of each MAC")
    args = ap.parse_args(argv)
    macs = mac_list(args.base, args.count)
    out = probe(args.iface, macs, secs=args.secs, wait=args.wait, bind=args.bind)
    json.dump({"clients": out}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
