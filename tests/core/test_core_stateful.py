"""Random clients doing random DORA/RENEW/RELEASE/DECLINE never share an address."""

from __future__ import annotations

from ipaddress import IPv4Address

from corekit import META, SERVER_IP, config, mac, packet, subnet
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tandem.core.lease import BindingState
from tandem.core.server import DhcpServer, Outcome

CLIENTS = 8


class DhcpMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # 5 addresses for 8 clients: exhaustion, reuse and abandonment all happen
        self.srv = DhcpServer(config(subnet(ranges=(("192.0.2.100", "192.0.2.104"),))))
        self.now = 1_000_000
        self.bound: dict[int, tuple[IPv4Address, int]] = {}  # client -> (address, ends)
        self.offered: dict[int, IPv4Address] = {}

    def _send(self, n: int, mtype: int, **kw: object) -> Outcome:
        uid = b"\x00cid" + bytes([n]) if n % 2 else None
        out = self.srv.handle(packet(mtype, mac(n), client_id=uid, **kw), META, self.now)  # type: ignore[arg-type]
        acked = out.reply is not None and out.reply.packet.options.get(53) == b"\x05"
        if acked and mtype == 3:
            assert out.reply is not None
            addr = out.reply.packet.yiaddr
            # every ACKed lease is in writes, ACTIVE, bound to this client; or, young enough
            # (dhcp-cache-threshold), the client's lease unaltered: nothing written
            reused = any(line.startswith("reuse_lease: ") for line in out.log)
            mine = [x for x in out.writes if x.address == addr]
            if reused:
                assert not out.writes
                mine = [self.srv.db.by_addr[int(addr)]]
                left = int.from_bytes(out.reply.packet.options[51], "big")
                assert mine[0].ends == self.now + left
            assert mine and mine[0].binding_state is BindingState.ACTIVE
            assert mine[0].hardware == (1, mac(n))
            assert mine[0].ends is not None
            self.bound[n] = (addr, mine[0].ends)
        return out

    @rule(n=st.integers(0, CLIENTS - 1))
    def discover(self, n: int) -> None:
        out = self._send(n, 1)
        if out.reply is not None:
            self.offered[n] = out.reply.packet.yiaddr

    @rule(n=st.integers(0, CLIENTS - 1))
    def select(self, n: int) -> None:
        if n in self.offered:
            self._send(n, 3, requested=str(self.offered.pop(n)), server_id=str(SERVER_IP.ip))

    @rule(n=st.integers(0, CLIENTS - 1), addr=st.integers(100, 104))
    def init_reboot(self, n: int, addr: int) -> None:
        self._send(n, 3, requested=f"192.0.2.{addr}")

    @rule(n=st.integers(0, CLIENTS - 1))
    def renew(self, n: int) -> None:
        if n in self.bound:
            self._send(n, 3, ciaddr=str(self.bound[n][0]))

    @rule(n=st.integers(0, CLIENTS - 1))
    def release(self, n: int) -> None:
        if n in self.bound:
            self._send(n, 7, ciaddr=str(self.bound.pop(n)[0]))

    @rule(n=st.integers(0, CLIENTS - 1))
    def decline(self, n: int) -> None:
        if n in self.bound:
            self._send(n, 4, requested=str(self.bound.pop(n)[0]))

    @rule(dt=st.sampled_from([1, 60, 121, 20000, 43201]))
    def time_passes(self, dt: int) -> None:
        self.now += dt
        for lease in self.srv.tick(self.now):
            assert lease.binding_state is BindingState.FREE
        self.bound = {n: b for n, b in self.bound.items() if b[1] > self.now}

    @invariant()
    def no_address_held_by_two_clients(self) -> None:
        addrs = [a for a, _ in self.bound.values()]
        assert len(addrs) == len(set(addrs)), self.bound
        for n, (a, _) in self.bound.items():
            lease = self.srv.db.by_addr[int(a)]
            assert lease.binding_state is BindingState.ACTIVE
            assert lease.hardware == (1, mac(n))


TestDhcpMachine = DhcpMachine.TestCase
TestDhcpMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
