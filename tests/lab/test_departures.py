"""dhcpd 4.4.3's small behaviours: the same packets at ISC dhcpd and at Tandem, same replies.

Each scenario runs once against dhcpd and once against Tandem, each in a fresh lab (a server
and one client namespace on a bridge), with the same dhcpd.conf. The client is the lab's raw
sender (``tandem.lab.hostile.send_udp``): it sends hand-built packets from 0.0.0.0:68 and
collects the broadcast replies. What is compared, reply by reply: the message type, yiaddr,
ciaddr and every option, with lease times compared within ``SLACK`` seconds where the reply
depends on how long ago the lease was made (dhcp-cache-threshold), and T1/T2, which only Tandem
sends unasked, checked against its lease time instead. The servers' own answers are
also held to dhcpd's known ones, so a scenario both got wrong the same way would not pass:

- allocation order: a fresh server offers 192.0.2.100, .101, .102 (server/mdb.c, dhcp.c
  allocate_lease); after a restart with leases on .100 and .102, .103 comes first;
- dhcp-cache-threshold (25 %, reuse_lease): a REQUEST or DISCOVER of a lease younger than a
  quarter of its length is answered with the existing lease (its remaining time), without a new
  lease-file record, with dhcpd's reuse_lease log line; an older one, or a changed host name,
  gets a new lease;
- echo-client-id: a host's configured dhcp-client-identifier goes to a client that sent none,
  and a client's own is echoed;
- lease-time floor: ``default-lease-time 3;`` gives 300 s (DEFAULT_MIN_LEASE_TIME), in the
  OFFER and the ACK; with ``max-lease-time 60;`` the floor is 60; a client asking for 10 s
  gets 300.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from tandem.core.lease import BindingState, Lease
from tandem.lab.hostile import send_udp
from tandem.lab.netns import Host, Lab
from tandem.lab.scenarios import SERVER_ADDR, seed_conf
from tandem.lab.servers import Server, run_dhcpd_kind, tandem_command
from tandem.store.leasefile import format_lease
from tandem.wire.dhcp import Packet, decode, encode

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.usefixtures("lab_prerequisites"),
]

SERVER_IP = SERVER_ADDR.split("/")[0]
SLACK = 2  # seconds two runs' ages may differ by
TIMES = (51, 58, 59)
PRL = bytes([1, 3, 6, 15, 51, 58, 59])
DISCOVER, REQUEST, RELEASE = 1, 3, 7


def _mac(n: int) -> bytes:
    return bytes([0x02, 0, 0, 0, 0x0E, n])


def _mac_text(n: int) -> str:
    return _mac(n).hex(":")


HOSTS = f"""\
echo-client-id on;
default-lease-time 600;
max-lease-time 7200;
host cid {{ hardware ethernet {_mac_text(0x21)}; option dhcp-client-identifier "cfg-id"; }}
host short {{ hardware ethernet {_mac_text(0x22)}; default-lease-time 3; }}
host capped {{ hardware ethernet {_mac_text(0x23)}; default-lease-time 3; max-lease-time 60; }}
host aged {{ hardware ethernet {_mac_text(0x24)}; default-lease-time 8; min-lease-time 4; }}
"""


def _packet(
    mtype: int,
    n: int,
    xid: int,
    *,
    requested: str | None = None,
    server_id: bool = False,
    client_id: bytes | None = None,
    hostname: bytes | None = None,
    lease_time: int | None = None,
    ciaddr: str = "0.0.0.0",
) -> bytes:
    opts: dict[int, bytes] = {53: bytes([mtype])}
    if requested is not None:
        opts[50] = IPv4Address(requested).packed
    if server_id:
        opts[54] = IPv4Address(SERVER_IP).packed
    if client_id is not None:
        opts[61] = client_id
    if hostname is not None:
        opts[12] = hostname
    if lease_time is not None:
        opts[51] = lease_time.to_bytes(4, "big")
    if mtype != RELEASE:
        opts[55] = PRL
    p = Packet(
        op=1,
        htype=1,
        hlen=6,
        hops=0,
        xid=xid,
        secs=0,
        flags=0x8000,
        ciaddr=IPv4Address(ciaddr),
        yiaddr=IPv4Address(0),
        siaddr=IPv4Address(0),
        giaddr=IPv4Address(0),
        chaddr=_mac(n).ljust(16, b"\x00"),
        options=opts,
    )
    return encode(p)


@dataclass
class Run:
    """One server's answers: step name -> normalised reply (None: no reply), and what else
    each scenario looks at."""

    replies: dict[str, dict[str, object] | None] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)  # lease-file blocks per step
    log: str = ""


def _normalise(p: Packet) -> dict[str, object]:
    opts: dict[int, object] = {}
    for code, data in p.options.items():
        opts[code] = int.from_bytes(data, "big") if code in TIMES else data.hex()
    return {"yiaddr": str(p.yiaddr), "ciaddr": str(p.ciaddr), "options": opts}


class Talk:
    """The client side of a run: send one packet, keep its reply under a step name."""

    def __init__(self, client: Host, server: Server, run: Run) -> None:
        self.client, self.server, self.run = client, server, run
        self.xid = 0

    def send(self, step: str, payload_of: object) -> Packet | None:
        self.xid += 1
        assert callable(payload_of)
        payload = payload_of(self.xid)
        got = send_udp(self.client, [payload], listen=1.0)
        replies = [decode(d) for _, d in got if decode(d).xid == self.xid]
        assert len(replies) <= 1, (step, replies)
        reply = replies[0] if replies else None
        self.run.replies[step] = None if reply is None else _normalise(reply)
        return reply

    def records(self, step: str, addr: str) -> None:
        """How many lease-file blocks the server wrote for ``addr`` so far."""
        time.sleep(0.3)
        text = self.server.leases_text()
        self.run.records[step] = len(re.findall(rf"^lease {re.escape(addr)} {{", text, re.M))


def _request(n: int, addr: str, **kw: object) -> object:
    """An INIT-REBOOT REQUEST (requested address, no server identifier), broadcast."""
    return lambda xid: _packet(REQUEST, n, xid, requested=addr, **kw)  # type: ignore[arg-type]


def _dora(talk: Talk, step: str, n: int, **kw: object) -> str:
    offer = talk.send(f"{step}-offer", lambda xid: _packet(DISCOVER, n, xid, **kw))  # type: ignore[arg-type]
    assert offer is not None, step
    addr = str(offer.yiaddr)

    def sel(xid: int) -> bytes:
        return _packet(REQUEST, n, xid, requested=addr, server_id=True, **kw)  # type: ignore[arg-type]

    ack = talk.send(f"{step}-ack", sel)
    assert ack is not None and ack.options[53] == b"\x05", (step, ack)
    return addr


def _scenario(kind: str) -> Run:
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER_ADDR)
        cli = lab.add_host("cli")
        server = run_dhcpd_kind(kind, srv, seed_conf(ping_check=False, extra=HOSTS))
        run = Run()
        talk = Talk(cli, server, run)
        # 1. allocation order of a fresh server (offers only: each held for its client)
        for n in (1, 2, 3):
            talk.send(f"order-{n}", lambda xid, n=n: _packet(DISCOVER, n, xid))
        # 2. dhcp-cache-threshold: 600 s lease, asked again 2 s later (25 % = 150 s)
        addr = _dora(talk, "reuse", 4, hostname=b"alpha")
        talk.records("reuse-bound", addr)
        time.sleep(2)
        talk.send("reuse-request", _request(4, addr, hostname=b"alpha"))
        talk.records("reuse-request", addr)
        talk.send("reuse-discover", lambda xid: _packet(DISCOVER, 4, xid, hostname=b"alpha"))
        talk.send("reuse-after-discover", _request(4, addr, hostname=b"alpha"))
        talk.records("reuse-after-discover", addr)
        talk.send("reuse-renamed", _request(4, addr, hostname=b"beta"))
        talk.records("reuse-renamed", addr)
        # ... and an 8 s lease (25 % = 2 s): at once, then 3 s later
        aged = _dora(talk, "aged", 0x24)
        talk.send("aged-at-once", _request(0x24, aged))
        talk.records("aged-at-once", aged)
        time.sleep(3)
        talk.send("aged-later", _request(0x24, aged))
        talk.records("aged-later", aged)
        # 3. echo-client-id: a host's configured identifier, a client's own
        _dora(talk, "echo-host", 0x21)
        _dora(talk, "echo-own", 5, client_id=b"\x01" + _mac(5))
        # 4. the lease-time floor
        _dora(talk, "short", 0x22)
        _dora(talk, "capped", 0x23)
        _dora(talk, "asks-10", 6, lease_time=10)
        time.sleep(0.5)
        run.log = server.log()
        return run


def _times_close(a: dict[str, object] | None, b: dict[str, object] | None) -> bool:
    """Tandem's reply ``a`` is dhcpd's ``b``, but for T1/T2: Tandem adds them (at 1/2 and 7/8
    of the lease, README's list of deliberate differences) where dhcpd 4.4.3 sends them only
    when configured."""
    if a is None or b is None:
        return a is b
    oa, ob = dict(a["options"]), b["options"]  # type: ignore[call-overload]
    assert isinstance(ob, dict)
    if 58 not in ob and 59 not in ob and 51 in oa:
        lease = int(oa[51])
        if oa.pop(58, lease // 2) != lease // 2 or oa.pop(59, lease * 7 // 8) != lease * 7 // 8:
            return False
    if {**a, "options": None} != {**b, "options": None} or set(oa) != set(ob):
        return False
    for code, value in oa.items():
        if code in TIMES:
            if abs(int(value) - int(ob[code])) > SLACK:
                return False
        elif value != ob[code]:
            return False
    return True


def _lease_time(run: Run, step: str) -> int:
    reply = run.replies[step]
    assert reply is not None, step
    opts = reply["options"]
    assert isinstance(opts, dict)
    return int(opts[51])


def test_same_packets_same_replies_as_dhcpd() -> None:
    dhcpd = _scenario("dhcpd")
    tandem = _scenario("tandem")
    for step, want in dhcpd.replies.items():
        assert _times_close(tandem.replies.get(step), want), (step, tandem.replies.get(step), want)
    assert set(tandem.replies) == set(dhcpd.replies)
    assert tandem.records == dhcpd.records, (tandem.records, dhcpd.records)
    for run in (dhcpd, tandem):
        # dhcpd's answers, as read from its source
        yi = [run.replies[f"order-{n}"]["yiaddr"] for n in (1, 2, 3)]  # type: ignore[index]
        assert yi == ["192.0.2.100", "192.0.2.101", "192.0.2.102"]
        assert _lease_time(run, "reuse-ack") == 600
        assert 595 <= _lease_time(run, "reuse-request") <= 599
        assert 595 <= _lease_time(run, "reuse-discover") <= 599
        assert run.records["reuse-request"] == run.records["reuse-bound"]
        assert run.records["reuse-after-discover"] == run.records["reuse-bound"]
        assert run.records["reuse-renamed"] == run.records["reuse-bound"] + 1
        assert _lease_time(run, "reuse-renamed") == 600
        assert run.records["aged-later"] == run.records["aged-at-once"] + 1
        assert _lease_time(run, "aged-later") == 8
        addr = run.replies["reuse-ack"]["yiaddr"]  # type: ignore[index]
        assert re.search(
            rf"^reuse_lease: lease age \d+ \(secs\) under 25% threshold, reply with unaltered, "
            rf"existing lease for {re.escape(str(addr))}$",
            run.log,
            re.M,
        ), run.log[-3000:]
        host_id = run.replies["echo-host-offer"]["options"]  # type: ignore[index]
        assert host_id[61] == b"cfg-id".hex(), host_id  # type: ignore[index]
        own = run.replies["echo-own-ack"]["options"]  # type: ignore[index]
        assert own[61] == (b"\x01" + _mac(5)).hex()  # type: ignore[index]
        for step in ("short-offer", "short-ack", "asks-10-offer", "asks-10-ack"):
            assert _lease_time(run, step) == 300, step
        assert _lease_time(run, "capped-offer") == _lease_time(run, "capped-ack") == 60


def _restart_order(kind: str) -> list[str]:
    """Offers to three new clients after a restart with leases on .100 and .102."""
    now = int(time.time())
    leases = [
        Lease(
            IPv4Address(a),
            BindingState.ACTIVE,
            starts=now - 60,
            ends=now + 3600,
            cltt=now - 60,
            hardware=(1, _mac(0x40 + i)),
        )
        for i, a in enumerate(("192.0.2.100", "192.0.2.102"))
    ]
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER_ADDR)
        cli = lab.add_host("cli")
        path = srv.workdir / f"{kind}.leases"
        path.write_text("".join(format_lease(x) for x in leases), encoding="utf-8")
        server = run_dhcpd_kind(kind, srv, seed_conf(ping_check=False), path)
        talk = Talk(cli, server, Run())
        out = []
        for n in (1, 2, 3):
            reply = talk.send(f"after-restart-{n}", lambda xid, n=n: _packet(DISCOVER, n, xid))
            assert reply is not None
            out.append(str(reply.yiaddr))
        return out


def test_after_a_restart_the_same_next_addresses_as_dhcpd() -> None:
    dhcpd = _restart_order("dhcpd")
    assert dhcpd == ["192.0.2.103", "192.0.2.104", "192.0.2.105"]
    assert _restart_order("tandem") == dhcpd


_HOLD_67 = (
    "import socket, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 67))\n"
    "print('bound', flush=True)\n"
    "time.sleep(120)\n"
)


def test_the_dhcp_port_in_use_ends_with_exiting_as_dhcpd() -> None:
    """Another program holds UDP port 67: both servers give up with their bind error and
    dhcpd's last line, ``exiting.`` (log_fatal), with a non-zero status."""
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER_ADDR)
        holder = srv.spawn([sys.executable, "-c", _HOLD_67], name="hold67")
        holder.wait_for_log(r"^bound$", 10)
        conf = srv.workdir / "dhcpd.conf"
        conf.write_text(seed_conf(ping_check=False), encoding="utf-8")
        leases = srv.workdir / "x.leases"
        leases.touch()
        common = ["-f", "-d", "-cf", str(conf), "-lf", str(leases)]
        dhcpd = srv.run(["dhcpd", "-4", *common, "-pf", "/dev/null", "eth0"], check=False)
        tandem = srv.run([*tandem_command(), "-4", *common, "--no-pid", "eth0"], check=False)
        for res in (dhcpd, tandem):
            assert res.returncode != 0, res.stderr
            assert "Can't bind to dhcp address: Address already in use" in res.stderr
            lines = [line for line in res.stderr.splitlines() if line.strip()]
            assert lines[-1] == "exiting.", res.stderr
