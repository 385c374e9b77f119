"""What goes into and comes out of the DHCP core (the contract with the I/O layer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from tandem.core.lease import Lease
from tandem.wire.dhcp import Packet


@dataclass(frozen=True, slots=True)
class RxMeta:
    """What the I/O layer knows about a received datagram."""

    interface: str  # receiving interface name ("eth0")
    if_addrs: tuple[IPv4Interface, ...]  # that interface's IPv4 addresses (with prefix)
    src_ip: IPv4Address
    src_port: int
    unicast: bool  # sent to one of our addresses (not broadcast)


@dataclass(slots=True)
class Reply:
    """A packet to send and where to send it."""

    packet: Packet
    dest_ip: IPv4Address
    dest_port: int
    dest_mac: bytes | None  # set when we must unicast to yiaddr/chaddr without ARP
    interface: str
    server_ip: IPv4Address  # source address to use


@dataclass(frozen=True, slots=True)
class PingRequest:
    """ping-check: ping ``address`` and wait ``timeout_ms`` before the prepared OFFER leaves.

    The I/O layer answers with ``DhcpServer.ping_timed_out`` or ``ping_answered`` (core.ping).
    """

    address: IPv4Address
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class RunProgram:
    """A lease event's ``execute()``: run ``argv`` (``argv[0]`` as written, no shell)."""

    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LogLine:
    """A lease event's ``log()`` line at its level: fatal, error, info or debug."""

    level: str
    text: str


#: What a lease event (core.events) asks the I/O layer to do once its lease is durable.
EventAction = RunProgram | LogLine


@dataclass(slots=True)
class Outcome:
    """The result of handling one packet.

    ``writes`` holds every lease the packet changed; the caller makes them durable before
    sending ``reply``. ``drop`` names the reason when the packet is ignored. ``ping`` (set
    instead of ``reply``) asks for a ping before an OFFER (``core.ping``). ``events`` (None
    unless the configuration has ``on`` blocks) are the lease events' actions, to run only
    once ``writes`` are durable.
    """

    reply: Reply | None = None
    writes: list[Lease] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    drop: str | None = None
    ping: PingRequest | None = None
    events: list[EventAction] | None = None
