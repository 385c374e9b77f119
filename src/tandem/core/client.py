"""The per-packet view of a client, and an address chosen for it.

Kept apart from ``server`` so the per-message flows can use these types without importing
the server module (which dispatches to them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tandem.config.model import Block, Host
from tandem.core.expr import ExprContext
from tandem.core.lease import Lease
from tandem.core.pools import HwKey, PoolState
from tandem.core.topology import NetState, SubnetState
from tandem.core.types import RxMeta
from tandem.wire.dhcp import Packet

INFINITE = 0xFFFFFFFF  # lease time meaning "never expires"


def hw_text(hw: HwKey) -> str:
    """dhcpd's print_hw_addr: colon-separated two-digit hex."""
    return hw[1].hex(":")


@dataclass(slots=True)
class Candidate:
    """An address chosen for a client: its lease (None while fresh), pool and subnet."""

    address: int
    lease: Lease | None
    pool: PoolState | None
    subnet: SubnetState
    static: bool = False
    abandoned: bool = False


@dataclass(slots=True)
class Client:
    """Everything derived from one received packet that the flows share."""

    packet: Packet
    meta: RxMeta
    now: int
    mtype: int | None
    hw: HwKey
    uid: bytes | None
    via: str
    share: NetState | None = None
    hosts: list[Host] = field(default_factory=list)
    host: Host | None = None  # the host whose statements apply (fixed or not)
    known: bool = False
    classes: list[tuple[str, tuple[Block, ...]]] = field(default_factory=list)
    _ectx: ExprContext | None = None
    _hwstr: str | None = None

    @property
    def hwstr(self) -> str:
        """The hardware address as dhcpd prints it (computed once: every log line has it)."""
        text = self._hwstr
        if text is None:
            text = self._hwstr = hw_text(self.hw)
        return text

    @property
    def class_names(self) -> list[str]:
        if not self.classes:
            return []
        return [name for name, _ in self.classes]

    @property
    def bootp(self) -> bool:
        return self.mtype is None

    def ectx(self, names: dict[str, tuple[str, int]]) -> ExprContext:
        if self._ectx is None:
            self._ectx = ExprContext(
                self.packet,
                names,
                known=self.known,
                host_name=self.host.name if self.host else None,
                client_state=self.mtype or 0,
            )
        return self._ectx
