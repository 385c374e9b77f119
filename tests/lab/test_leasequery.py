"""DHCPLEASEQUERY (RFC 4388) from a relay's address: Tandem answers as ISC dhcpd 4.4.3 does.

The same lease state is made on each server (the seed subnet, ``allow leasequery;``, a dhclient
with client identifier "lab-1", a udhcpc, which sends 01 + its MAC and a vendor class, and a
second lease for the udhcpc's MAC, without client identifier, relayed from the relay's subnet, so
that a query by that MAC finds two ACTIVE leases: option 92), then the same queries by IP
address, MAC address and client identifier are sent from a socket bound to the relay's address,
port 67, with giaddr set. The replies' type, fields and options, and the
servers' log lines, must be equal after normalising what legitimately differs between the runs:

- the clients' addresses and MACs (each run has its own hosts and each server its own allocation
  order) are replaced by role names ("<dhclient-addr>", "<udhcpc-mac>", ...), in ciaddr, chaddr,
  option 61 and option 92, and in the log lines;
- the relative times (lease time 51, T1 58, T2 59, client-last-transaction-time 91) are compared
  within a few seconds: the two runs do not query at the same second after binding.

The server identifier is not normalised: both servers are 192.0.2.1 on the same segment.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from tandem.lab.clients import Dhclient, Udhcpc
from tandem.lab.hostile import send_udp
from tandem.lab.netns import Host, Lab
from tandem.lab.scenarios import RELAY_SUBNET, RELAY_UP_ADDR, SERVER_ADDR, seed_conf
from tandem.lab.servers import DHCPD_KINDS, run_dhcpd_kind
from tandem.wire.dhcp import Packet, decode, encode

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("lab_prerequisites"),
]

RELAY_IP = RELAY_UP_ADDR.split("/")[0]
SERVER_IP = SERVER_ADDR.split("/")[0]
FREE_ADDR = "192.0.2.150"  # in the pool, handed to neither client
OUTSIDE_ADDR = "192.0.2.20"  # in the subnet, in no range
FAR_GIADDR = "198.51.100.1"  # the relay's address on RELAY_SUBNET (a second address here)
UNKNOWN_MAC = bytes.fromhex("020000000099")
TIMES = (51, 58, 59, 91)  # relative times in seconds
SLACK = 5  # seconds the two runs may differ by


def _query(
    xid: int,
    *,
    ciaddr: str = "0.0.0.0",
    mac: bytes = b"",
    client_id: bytes | None = None,
    giaddr: str = RELAY_IP,
    mtype: int = 10,
    extra: dict[int, bytes] | None = None,
) -> bytes:
    opts = {53: bytes([mtype])}
    if client_id is not None:
        opts[61] = client_id
    opts.update(extra or {})
    p = Packet(
        op=1,
        htype=1,
        hlen=len(mac),
        hops=0,
        xid=xid,
        secs=0,
        flags=0,
        ciaddr=IPv4Address(ciaddr),
        yiaddr=IPv4Address(0),
        siaddr=IPv4Address(0),
        giaddr=IPv4Address(giaddr),
        chaddr=mac.ljust(16, b"\x00"),
        options=opts,
    )
    return encode(p)


@dataclass
class Run:
    """One server's answers, normalised: query name -> reply (None: no reply), log lines."""

    replies: dict[str, dict[str, object] | None] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


def _mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _normalise(p: Packet, tokens: dict[bytes, str]) -> dict[str, object]:
    def tok(raw: bytes) -> str:
        return tokens.get(raw, raw.hex())

    opts: dict[int, object] = {}
    for code, data in p.options.items():
        if code in TIMES:
            opts[code] = int.from_bytes(data, "big")
        elif code == 92:
            opts[code] = [tok(data[i : i + 4]) for i in range(0, len(data), 4)]
        else:
            opts[code] = tok(data)
    return {
        "op": p.op,
        "xid": p.xid,
        "htype": p.htype,
        "hlen": p.hlen,
        "chaddr": tok(bytes(p.chaddr[: p.hlen])),
        "ciaddr": tok(p.ciaddr.packed),
        "yiaddr": str(p.yiaddr),
        "siaddr": str(p.siaddr),
        "giaddr": str(p.giaddr),
        "flags": p.flags,
        "options": opts,
    }


def _relayed_dora(relay: Host, mac: bytes) -> str:
    """DISCOVER and REQUEST for ``mac`` relayed from FAR_GIADDR: a second lease for that MAC,
    on the relay's subnet (the client then has two ACTIVE leases: option 92)."""
    bind = (FAR_GIADDR, 67)
    disc = _query(101, mac=mac, giaddr=FAR_GIADDR, mtype=1)
    (offer,) = [decode(d) for _, d in send_udp(relay, [disc], SERVER_IP, bind=bind)]
    addr = str(offer.yiaddr)
    ask = {50: offer.yiaddr.packed, 54: IPv4Address(SERVER_IP).packed}
    req = _query(102, mac=mac, giaddr=FAR_GIADDR, mtype=3, extra=ask)
    (ack,) = [decode(d) for _, d in send_udp(relay, [req], SERVER_IP, bind=bind)]
    assert ack.options[53] == bytes([5]) and str(ack.yiaddr) == addr, ack
    return addr


def _serve_and_query(kind: str) -> Run:
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER_ADDR)
        relay = lab.add_host("relay", RELAY_UP_ADDR)
        relay.run(["ip", "addr", "add", f"{FAR_GIADDR}/24", "dev", "eth0"])
        srv.run(["ip", "route", "add", "198.51.100.0/24", "via", RELAY_IP])
        conf = seed_conf(ping_check=False, extra="allow leasequery;\n" + RELAY_SUBNET)
        server = run_dhcpd_kind(kind, srv, conf)
        dhcl = Dhclient(lab.add_host("dhcl"), extra_conf='send dhcp-client-identifier "lab-1";\n')
        udh = Udhcpc(lab.add_host("udhcpc"))
        dhcl.start()
        udh.start()
        a_dhcl = dhcl.wait_lease(25).address
        a_udh = udh.wait_lease(25).address
        assert a_dhcl and a_udh and FREE_ADDR not in (a_dhcl, a_udh)
        m_dhcl, m_udh = _mac_bytes(dhcl.mac()), _mac_bytes(udh.mac())
        time.sleep(1.5)  # a later client-last-transaction-time (dhcpd keeps whole seconds)
        a_far = _relayed_dora(relay, m_udh)
        tokens = {
            IPv4Address(a_dhcl).packed: "<dhclient-addr>",
            IPv4Address(a_udh).packed: "<udhcpc-addr>",
            IPv4Address(a_far).packed: "<relayed-addr>",
            m_dhcl: "<dhclient-mac>",
            m_udh: "<udhcpc-mac>",
            b"\x01" + m_udh: "<udhcpc-cid>",
        }
        queries = {
            "ip-dhclient": _query(1, ciaddr=a_dhcl),
            "ip-udhcpc": _query(2, ciaddr=a_udh),
            "mac-dhclient": _query(3, mac=m_dhcl),
            "mac-udhcpc": _query(4, mac=m_udh),
            "cid-dhclient": _query(5, client_id=b"lab-1"),
            "cid-udhcpc": _query(6, client_id=b"\x01" + m_udh),
            "ip-free": _query(7, ciaddr=FREE_ADDR),
            "ip-outside": _query(8, ciaddr=OUTSIDE_ADDR),
            "mac-unknown": _query(9, mac=UNKNOWN_MAC),
            "cid-unknown": _query(10, client_id=b"nobody"),
            "no-giaddr": _query(11, ciaddr=a_dhcl, giaddr="0.0.0.0"),
        }
        mark = server.proc.log_size()
        got = send_udp(
            relay, list(queries.values()), SERVER_IP, gap=0.1, listen=2.0, bind=(RELAY_IP, 67)
        )
        by_xid: dict[int, Packet] = {}
        for src, data in got:
            assert src == SERVER_IP, (src, data.hex())
            p = decode(data)
            assert p.xid not in by_xid, f"two replies to query {p.xid}"
            by_xid[p.xid] = p
        run = Run()
        for xid, name in enumerate(queries, start=1):
            p = by_xid.get(xid)
            run.replies[name] = None if p is None else _normalise(p, tokens)
        server.wait_for_log(r"missing giaddr", 5, start=mark)
        text = server.log()[mark:]
        roles = ((a_dhcl, "<dhclient-addr>"), (a_udh, "<udhcpc-addr>"), (a_far, "<relayed-addr>"))
        for ip, role in roles:
            text = re.sub(rf"\b{re.escape(ip)}\b", role, text)
        text = text.replace(dhcl.mac(), "<dhclient-mac>").replace(udh.mac(), "<udhcpc-mac>")
        text = text.replace("01:" + "<udhcpc-mac>", "<udhcpc-cid>")
        run.log = re.findall(r"^DHCPLEASE\w+ .*$", text, re.MULTILINE)
        return run


def _close(code: int, a: object, b: object) -> bool:
    if code in TIMES and isinstance(a, int) and isinstance(b, int):
        return abs(a - b) <= SLACK
    return a == b


def test_leasequery_by_ip_mac_and_client_id_matches_dhcpd() -> None:
    ref = _serve_and_query("dhcpd")
    # The harness against dhcpd itself: each query kind gets the reply type dhcpd 4.4.3 sends.
    types = {k: (None if v is None else v["options"][53]) for k, v in ref.replies.items()}  # type: ignore[index]
    active, unassigned, unknown = bytes([13]).hex(), bytes([11]).hex(), bytes([12]).hex()
    assert types == {
        "ip-dhclient": active,
        "ip-udhcpc": active,
        "mac-dhclient": active,
        "mac-udhcpc": active,
        "cid-dhclient": active,
        "cid-udhcpc": active,
        "ip-free": unassigned,
        "ip-outside": unknown,
        "mac-unknown": unknown,
        "cid-unknown": unknown,
        "no-giaddr": None,
    }, ref.replies
    # By MAC, the newest of the udhcpc MAC's two leases, the other one as associated-ip.
    two = ref.replies["mac-udhcpc"]
    assert two is not None and two["ciaddr"] == "<relayed-addr>", two
    assert two["options"][92] == ["<udhcpc-addr>"], two  # type: ignore[index]
    got = _serve_and_query("tandem")
    for name, want in ref.replies.items():
        have = got.replies[name]
        if want is None or have is None:
            assert have == want, (name, have, want)
            continue
        w_opts, h_opts = want["options"], have["options"]
        assert isinstance(w_opts, dict) and isinstance(h_opts, dict)
        assert set(h_opts) == set(w_opts), (name, sorted(h_opts), sorted(w_opts))
        for code, value in w_opts.items():
            assert _close(code, h_opts[code], value), (name, code, h_opts[code], value)
        fields = {k: v for k, v in want.items() if k != "options"}
        assert {k: v for k, v in have.items() if k != "options"} == fields, (name, have, want)
    assert got.log == ref.log


@pytest.mark.parametrize("kind", DHCPD_KINDS)
def test_leasequery_not_allowed_is_ignored(lab: Lab, kind: str) -> None:
    """Without ``allow leasequery;`` (dhcpd's default is deny) a query gets no answer."""
    srv = lab.add_host("srv", SERVER_ADDR)
    relay = lab.add_host("relay", RELAY_UP_ADDR)
    server = run_dhcpd_kind(kind, srv, seed_conf(ping_check=False))
    got = send_udp(relay, [_query(1, ciaddr=FREE_ADDR)], SERVER_IP, bind=(RELAY_IP, 67))
    assert got == []
    server.wait_for_log(
        rf"^DHCPLEASEQUERY from {re.escape(RELAY_IP)}: LEASEQUERY not allowed, query ignored$",
        5,
    )
