"""ping-check as dhcpd 4.4.3 does it, sans I/O: which OFFERs wait for a ping, and what waits.

dhcpd pings an address before it first offers it (server/dhcp.c ``do_ping_check``, called by
``ack_lease`` for a DHCPOFFER only, so never for BOOTP nor for an ACK) when all of these hold:

1. ``ping-check`` is not false in the scope of the reply (default on);
2. the lease is neither static (a host's ``fixed-address``) nor ACTIVE;
3. it is abandoned, or it was never offered (cltt 0), or it goes to a client other than its
   last one, or to that client but at least ``ping-cltt-secs`` (default 60) after its cltt.

The wait is ``ping-timeout-ms`` when that is above 0, else ``ping-timeout`` seconds (default 1).
The OFFER is prepared and the address held for the client before the ping leaves, as dhcpd
supersedes the lease with the offer before it pings; the flow then returns an ``Outcome``
whose ``ping`` says which address to ping for how long, and no reply. The I/O layer pings and
calls ``DhcpServer.ping_timed_out`` (the held OFFER leaves, dhcpd's ``lease_ping_timeout``) or
``DhcpServer.ping_answered`` (dhcpd's ``lease_pinged``: the lease is abandoned "pinged before
offer" and the client gets no answer to that DISCOVER; its next one gets another address).
While a ping waits, the same client's DHCPDISCOVERs and REQUESTs for that address are ignored
without a word, as ``ack_lease`` ignores a lease whose state is set.

Tandem keeps the time of an offer in its hold (``pools.Offer``), not in the lease's cltt as
dhcpd does, so a hold of this client counts as its cltt here.

``abandon-lease-time`` (default 86400) is read from the global scope only, once, as dhcpd reads
it in ``postconf_initialization``; it sets how long an abandoned lease (ping or DECLINE) lasts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tandem.config.model import Block, Conditional, Config, Param, Statement
from tandem.core.client import Candidate, Client
from tandem.core.lease import BindingState
from tandem.core.pools import OFFER_HOLD, HwKey, LeaseDB
from tandem.core.types import Outcome, PingRequest, Reply
from tandem.wire.dhcp import ipv4

if TYPE_CHECKING:
    from tandem.core.scope import Values

DEFAULT_PING_TIMEOUT = 1  # seconds (includes/dhcpd.h)
DEFAULT_PING_CLTT_SECS = 60
DEFAULT_ABANDON_LEASE_TIME = 86400
MAX_TIME = 0x7FFFFFFF  # dhcpd's MAX_TIME: an abandoned lease's end past it is "never"

_ABANDONED = BindingState.ABANDONED


def abandon_lease_time(config: Config) -> int:
    """The global ``abandon-lease-time`` (the last one wins, as dhcpd's option state)."""
    value = DEFAULT_ABANDON_LEASE_TIME
    for s in config.statements:
        if isinstance(s, Param) and s.name == "abandon-lease-time" and type(s.value) is int:
            value = s.value
    return value


def _ping_params(block: Iterable[Statement]) -> Iterable[Param]:
    for s in block:
        if isinstance(s, Param) and s.name == "ping-check":
            yield s
        elif isinstance(s, Conditional):
            for _, body in s.branches:
                yield from _ping_params(body)
            yield from _ping_params(s.otherwise)


def ping_configured(config: Config) -> bool:
    """Whether any reply can have ping-check on; False only when the global scope turns it
    off and no scope anywhere turns it on again (then the server opens no ICMP socket)."""
    off = False
    for s in config.statements:
        if isinstance(s, Param) and s.name == "ping-check":
            off = s.value is False
    if not off:
        return True
    chains: list[tuple[Block, ...]] = [(config.statements,)]
    chains += [s.chain for s in config.subnets]
    chains += [p.chain for s in config.subnets for p in s.pools]
    chains += [sn.chain for sn in config.shared_networks]
    chains += [p.chain for sn in config.shared_networks for p in sn.pools]
    chains += [h.chain for h in config.hosts]
    chains += [c.chain for c in config.classes]
    chains += [sub.chain for c in config.classes for sub in c.subclasses]
    return any(p.value is not False for chain in chains for b in chain for p in _ping_params(b))


@dataclass(slots=True)
class HeldOffer:
    """An OFFER prepared for a client, waiting for its address's ping."""

    reply: Reply
    line: str  # dhcpd's "DHCPOFFER on ..." line, logged when the offer leaves
    hw: HwKey
    uid: bytes | None


class Pings:
    """The offers waiting for a ping, by address."""

    def __init__(self) -> None:
        self.pending: dict[int, HeldOffer] = {}

    def busy(self, db: LeaseDB, c: Client) -> bool:
        """The client's held address is being pinged (a retransmitted DISCOVER)."""
        held = db.held_for(c.uid, c.hw)
        return held is not None and held.address in self.pending

    def timeout_ms(self, db: LeaseDB, c: Client, cand: Candidate, vals: Values) -> int | None:
        """How long to ping ``cand`` before offering it (dhcpd's do_ping_check), or None.

        Call before the address is held for this offer (an earlier hold counts as cltt).
        """
        if cand.static or not vals.flag("ping-check", True):
            return None
        lease = cand.lease
        now = c.now
        if lease is not None and lease.is_active(now):
            return None
        if not (cand.abandoned or (lease is not None and lease.binding_state is _ABANDONED)):
            same = False
            cltt = 0
            if lease is not None:
                same = lease.hardware == c.hw and lease.uid == c.uid
                cltt = lease.cltt or 0
            off = db.offers.get(cand.address)
            if off is not None and not db.is_held_by_other(cand.address, c.uid, c.hw):
                same = True
                cltt = max(cltt, off.until - OFFER_HOLD)
            if same and cltt:
                secs = vals.integer("ping-cltt-secs", DEFAULT_PING_CLTT_SECS)
                if now - cltt < (DEFAULT_PING_CLTT_SECS if secs is None else secs):
                    return None
        ms = vals.integer("ping-timeout-ms", 0)
        if ms is not None and ms > 0:
            return ms
        secs = vals.integer("ping-timeout", DEFAULT_PING_TIMEOUT)
        return 1000 * (DEFAULT_PING_TIMEOUT if secs is None else secs)

    def start(self, out: Outcome, c: Client, reply: Reply, line: str, ms: int) -> None:
        """Hold the prepared OFFER and ask the I/O layer for a ping (no reply yet)."""
        a = int(reply.packet.yiaddr)
        self.pending[a] = HeldOffer(reply, line, c.hw, c.uid)
        out.ping = PingRequest(ipv4(a), ms)

    def timed_out(self, db: LeaseDB, a: int, out: Outcome) -> bool:
        """Nobody answered: the held OFFER goes into ``out``, if its hold is still the client's.

        False when no offer waited for ``a`` (late or spurious), or its hold lapsed meanwhile
        (a ``ping-timeout`` above the two minutes of a hold): that offer is not sent.
        """
        held = self.pending.pop(a, None)
        if held is None:
            return False
        off = db.offers.get(a)
        if off is None or off.hw != held.hw or off.uid != held.uid:
            return False
        out.reply = held.reply
        out.log.append(held.line)
        return True
