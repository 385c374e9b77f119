"""A simulated RFC 2131 client (section 4.4): the state machine, timers and retransmission.

INIT/SELECTING (broadcast DISCOVER, first OFFER wins), REQUESTING (broadcast REQUEST with
the server identifier), BOUND, RENEWING at T1 (unicast to the server identifier),
REBINDING at T2 (broadcast), INIT-REBOOT after a reboot (broadcast REQUEST with option 50,
no server identifier), RELEASE (unicast) and DECLINE (broadcast). Retransmissions back off
4, 8, 16, 32, 64 s with +/-1 s of jitter; ``secs`` counts from the start of the exchange.

The lease end a client holds is "the time the original request was sent plus the lease
time" (RFC 2131 4.4.1), in virtual time: the invariant checker compares exactly that.
Every random choice comes from the client's own ``random.Random``, seeded from the run seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address
from typing import Protocol

from tandem.wire import dhcp
from tandem.wire.dhcp import Packet
from tandem.wire.errors import MalformedPacket

__all__ = ["SimClient"]

S = 1000
ZERO = IPv4Address(0)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7


class ClientWorld(Protocol):
    """What a client needs of its world (``sim.world.World``): the clock, timers and the
    network, and the two reports the invariant checker counts."""

    t: int  #: virtual time, ms

    def at(self, t: int, action: Callable[[], None]) -> None: ...

    def client_send(
        self, client: SimClient, data: bytes, to: IPv4Address | None, src: IPv4Address
    ) -> None: ...

    def client_acked(
        self, client: SimClient, addr: IPv4Address, end: int, p: dhcp.Packet
    ) -> None: ...

    def client_dropped(self, client: SimClient, addr: IPv4Address, why: str) -> None: ...


class SimClient:
    """One client; ``holding`` is (address, end in virtual ms) while it may use an address."""

    def __init__(self, world: ClientWorld, index: int, rng: random.Random) -> None:
        self.world = world
        self.index = index
        self.rng = rng
        self.hw = bytes([0x52, 0x54, 0x00, 0x5E, index >> 8, index & 0xFF])
        self.client_id = b"\x01" + self.hw if rng.random() < 0.4 else None
        self.state = "off"
        self.xid = 0
        self.token = 0
        self.began = 0  # when the current exchange started (secs)
        self.sent_first = 0  # when the current request was first sent (lease start)
        self.tries = 0
        self.offer: tuple[IPv4Address, IPv4Address] | None = None  # (yiaddr, server id)
        self.holding: tuple[IPv4Address, int] | None = None
        self.server_id: IPv4Address | None = None
        self.t1 = self.t2 = 0
        self.stopped = False
        self.acks = 0

    def label(self) -> str:
        return f"client{self.index}({self.hw.hex(':')})"

    # --- timers ---------------------------------------------------------------------------

    def _later(self, delay_ms: int, what: str) -> None:
        self.token += 1
        self.world.at(self.world.t + max(1, delay_ms), partial(self._timer, self.token, what))

    def _timer(self, token: int, what: str) -> None:
        if token != self.token or self.stopped:
            return
        getattr(self, "_on_" + what)()

    def _backoff(self) -> int:
        base = min(64, 4 << min(self.tries, 4)) * S
        return base + self.rng.randrange(-S, S + 1)

    # --- sending --------------------------------------------------------------------------

    def _packet(self, mtype: int, *, ciaddr: IPv4Address = ZERO, **opts: bytes) -> Packet:
        options: dict[int, bytes] = {53: bytes([mtype])}
        if self.client_id is not None:
            options[61] = self.client_id
        for key, value in opts.items():
            options[int(key[1:])] = value
        options[55] = bytes([1, 3, 6, 15, 51, 54, 58, 59])
        secs = min(65535, (self.world.t - self.began) // S)
        return Packet(
            op=1, htype=1, hlen=6, hops=0, xid=self.xid, secs=secs, flags=0,
            ciaddr=ciaddr, yiaddr=ZERO, siaddr=ZERO, giaddr=ZERO,
            chaddr=self.hw.ljust(16, b"\x00"), options=options,
        )  # fmt: skip

    def _send(self, p: Packet, to: IPv4Address | None) -> None:
        self.world.client_send(self, dhcp.encode(p), to, p.ciaddr)

    def _new_xid(self) -> None:
        self.xid = self.rng.getrandbits(32)
        self.tries = 0
        self.began = self.sent_first = self.world.t

    # --- life cycle -----------------------------------------------------------------------

    def boot(self) -> None:
        """Power on (or reboot): INIT-REBOOT if we still have a lease, else INIT."""
        self.stopped = False
        if self.holding is not None and self.holding[1] > self.world.t:
            self.state = "rebooting"
            self._new_xid()
            self._send_reboot()
        else:
            self._init()

    def stop(self) -> None:
        """Stop sending (the end of a run): pending timers do nothing from now on."""
        self.stopped = True

    def _init(self) -> None:
        self.state = "selecting"
        self.offer = None
        self._new_xid()
        self._send_discover()

    def _drop(self, why: str) -> None:
        if self.holding is not None:
            self.world.client_dropped(self, self.holding[0], why)
        self.holding = None

    # --- INIT / SELECTING / REQUESTING ---------------------------------------------------

    def _send_discover(self) -> None:
        self._send(self._packet(DISCOVER), None)
        self._later(self._backoff(), "discover_timeout")

    def _on_discover_timeout(self) -> None:
        if self.state == "selecting":
            self.tries += 1
            self._send_discover()

    def _send_request(self) -> None:
        assert self.offer is not None
        yiaddr, sid = self.offer
        self._send(self._packet(REQUEST, o50=yiaddr.packed, o54=sid.packed), None)
        self._later(self._backoff(), "request_timeout")

    def _on_request_timeout(self) -> None:
        if self.state != "requesting":
            return
        self.tries += 1
        if self.tries > 4:
            self._init()
        else:
            self._send_request()

    def _send_reboot(self) -> None:
        assert self.holding is not None
        self._send(self._packet(REQUEST, o50=self.holding[0].packed), None)
        self._later(self._backoff(), "reboot_timeout")

    def _on_reboot_timeout(self) -> None:
        if self.state != "rebooting":
            return
        self.tries += 1
        if self.tries > 3 or self.holding is None:
            self._init()  # RFC 2131 3.2: may keep the unexpired lease meanwhile (we do)
        else:
            self._send_reboot()

    # --- BOUND / RENEWING / REBINDING --------------------------------------------------------

    def _on_t1(self) -> None:
        if self.state != "bound" or self.holding is None:
            return
        self.state = "renewing"
        self._new_xid()
        self._send_renew()

    def _send_renew(self) -> None:
        assert self.holding is not None and self.server_id is not None
        self._send(self._packet(REQUEST, ciaddr=self.holding[0]), self.server_id)
        self._retry_until(self.t2, "renew_timeout")

    def _retry_until(self, deadline: int, what: str) -> None:
        wait = max(60 * S, (deadline - self.world.t) // 2)
        if self.world.t + wait >= deadline:
            self._later(deadline - self.world.t, what)
        else:
            self._later(wait, what)

    def _on_renew_timeout(self) -> None:
        if self.state != "renewing" or self.holding is None:
            return
        if self.world.t >= self.t2:
            self.state = "rebinding"
            self._send_rebind()
        else:
            self._send_renew()

    def _send_rebind(self) -> None:
        assert self.holding is not None
        self._send(self._packet(REQUEST, ciaddr=self.holding[0]), None)
        self._retry_until(self.holding[1], "rebind_timeout")

    def _on_rebind_timeout(self) -> None:
        if self.state != "rebinding" or self.holding is None:
            return
        if self.world.t >= self.holding[1]:
            self._drop("lease ended while rebinding")
            self._init()
        else:
            self._send_rebind()

    def _on_expire(self) -> None:
        if self.holding is not None and self.world.t >= self.holding[1]:
            self._drop("lease ended")
            if self.state in ("bound", "renewing", "rebinding", "rebooting"):
                self._init()

    def _on_release(self) -> None:
        if self.state != "bound" or self.holding is None or self.server_id is None:
            return
        addr = self.holding[0]
        self._drop("released")
        self._new_xid()
        self._send(self._packet(RELEASE, ciaddr=addr, o54=self.server_id.packed), self.server_id)
        self.state = "idle"
        self._later(self.rng.randrange(5 * S, 300 * S), "restart")

    def _on_restart(self) -> None:
        self.boot()

    def _on_reboot(self) -> None:
        self.boot()

    # --- receiving ----------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        if self.stopped:
            return
        try:
            p = dhcp.decode(data)
        except MalformedPacket:
            return
        if p.op != 2 or p.xid != self.xid or p.chaddr[:6] != self.hw:
            return
        mtype = p.message_type
        sid_raw = p.options.get(54)
        sid = IPv4Address(sid_raw) if sid_raw is not None and len(sid_raw) == 4 else None
        if mtype == OFFER and self.state == "selecting" and sid is not None:
            self.offer = (p.yiaddr, sid)
            self.state = "requesting"
            self.tries = 0
            self._send_request()
        elif mtype == ACK and self.state in ("requesting", "rebooting", "renewing", "rebinding"):
            self._acked(p, sid)
        elif mtype == NAK and self.state in ("requesting", "rebooting", "renewing", "rebinding"):
            self._drop("NAK")
            self.state = "nak-wait"
            self._later(self.rng.randrange(S // 10, 3 * S), "restart")

    def _acked(self, p: Packet, sid: IPv4Address | None) -> None:
        raw = p.options.get(51)
        if raw is None or len(raw) != 4 or sid is None:
            return
        lease_time = int.from_bytes(raw, "big")
        start = self.sent_first
        end = start + lease_time * S
        if end <= self.world.t:
            return  # already over (a very late answer)
        t1_raw, t2_raw = p.options.get(58), p.options.get(59)
        t1 = int.from_bytes(t1_raw, "big") if t1_raw and len(t1_raw) == 4 else lease_time // 2
        t2 = int.from_bytes(t2_raw, "big") if t2_raw and len(t2_raw) == 4 else lease_time * 7 // 8
        addr = p.yiaddr
        if self.holding is not None and self.holding[0] != addr:
            self._drop("moved to another address")
        if self.state == "requesting" and self.rng.random() < 0.03:
            # Pretend ARP found the address in use: DECLINE it (RFC 2131 3.1.5).
            self.holding = (addr, end)
            self.world.client_acked(self, addr, end, p)
            self._drop("declined")
            self._new_xid()
            self._send(self._packet(DECLINE, o50=addr.packed, o54=sid.packed), None)
            self.state = "idle"
            self._later(10 * S, "restart")
            return
        self.holding = (addr, end)
        self.server_id = sid
        self.acks += 1
        self.world.client_acked(self, addr, end, p)
        self.state = "bound"
        self.t1 = start + t1 * S
        self.t2 = start + t2 * S
        roll = self.rng.random()
        if roll < 0.08:
            self._later(self.rng.randrange(S, max(2 * S, end - self.world.t)), "release")
        elif roll < 0.16:
            self._later(self.rng.randrange(S, max(2 * S, end - self.world.t)), "reboot")
        else:
            self._later(self.t1 - self.world.t, "t1")
        self.world.at(end, partial(self._timer_expire, self.holding))

    def _timer_expire(self, holding: tuple[IPv4Address, int]) -> None:
        if self.holding == holding and not self.stopped:
            self._on_expire()
