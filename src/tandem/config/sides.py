"""One file for both peers: which side of each ``failover peer`` block this host takes.

The seed's recipe keeps two files, the primary's and the secondary's, that must be edited
together forever. Tandem reads the *primary's* file on both hosts: a host whose own addresses
include the block's ``peer address`` takes the block's other side, the mirror dhcpd's
secondary would be written as (:func:`mirror`): ``primary`` <-> ``secondary``, ``address`` <->
``peer address``, ``port`` <-> ``peer port``. The primary-only parameters (``mclt``,
``split``/``hba``) stay the primary's: dhcpd's secondary may not carry split or hba (confpars.c:
"secondary may not define load balance settings") and takes the MCLT and HBA the primary's
CONNECT carries (failover.c), as Tandem's secondary does once connected (until then, the
mirrored mclt is the primary's own number). ``max-response-delay`` and ``max-unacked-updates``
are each server's own (dhcpd learns the partner's from its CONNECT, receive-timer and
max-unacked-bndupd; a ``peer max-response-delay`` in the block is overwritten there), as are
``load balance max seconds`` and the balance settings: kept as written (both of the seed's
files carry the same numbers).

Which side: the block's ``address`` local and its ``peer address`` not: as written; the other
way round: mirrored; neither or both: an error at the block's ``file:line:col`` unless the
operator says ``--failover-role primary|secondary``. Pure: the caller (io/runtime.py) passes
this host's addresses.

:func:`partner_text` writes the file a dhcpd partner needs: the mirrored block in dhcpd's
syntax (without mclt/split, as dhcpd's secondary must be), the rest of the file byte for byte.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal

from tandem.config.errors import ConfigError
from tandem.config.failover import ANY_ADDRESS, DEFAULTS
from tandem.config.model import Config, FailoverPeer, HostRef

Role = Literal["primary", "secondary"]
ROLES: tuple[Role, ...] = ("primary", "secondary")


@dataclass(frozen=True, slots=True)
class Side:
    """The side this host takes of one block: the peer as it runs it, and why."""

    peer: FailoverPeer  # as this host runs it (mirrored when ``mirrored``)
    mirrored: bool
    reason: str

    def describe(self) -> str:
        return (
            f'failover peer "{self.peer.name}": this host is the {self.peer.role} ({self.reason})'
        )


def other(role: Role) -> Role:
    return "secondary" if role == "primary" else "primary"


def mirror(peer: FailoverPeer) -> FailoverPeer:
    """The block as its other side reads it: roles, addresses (and names) and ports swapped.

    ``mclt``, ``split`` and ``hba`` stay the primary's (ConfigError if the block, written for
    the secondary, has none to give a mirrored primary); every other number is kept.
    """
    if peer.role == "secondary" and (
        peer.mclt is None or (peer.split is None and peer.hba is None)
    ):
        raise ConfigError.at(
            peer.loc,
            f'failover peer "{peer.name}": the block is written for the secondary, so it has no '
            "mclt and split for the primary its other side would be: write the primary's block "
            "(with mclt and split) and use it on both hosts",
        )
    if peer.address == ANY_ADDRESS and peer.address_name is None:
        raise ConfigError.at(
            peer.loc,
            f"failover peer \"{peer.name}\": the block has no 'address', which its other side "
            "needs as its peer address: add 'address A.B.C.D;' (this host's address)",
        )
    return dataclasses.replace(
        peer,
        role=other(peer.role),
        address=peer.peer_address,
        peer_address=peer.address,
        port=peer.peer_port,
        peer_port=peer.port,
        address_name=peer.peer_address_name,
        peer_address_name=peer.address_name,
    )


def choose_side(
    peer: FailoverPeer, local: Container[IPv4Address], role: Role | None = None
) -> Side:
    """Which side of ``peer`` a host with the addresses ``local`` takes (``role``: the override)."""
    if role is not None:
        if role == peer.role:
            return Side(peer, False, f"--failover-role {role}: the block as written")
        return Side(mirror(peer), True, f"--failover-role {role}: the block's other side")
    mine = peer.address != ANY_ADDRESS and peer.address in local
    theirs = peer.peer_address in local
    addr, paddr = peer.address, peer.peer_address
    if mine and not theirs:
        return Side(peer, False, f"its address {addr} is the block's address")
    if theirs and not mine:
        if peer.address == ANY_ADDRESS:
            raise ConfigError.at(
                peer.loc,
                f'failover peer "{peer.name}": the block gives no address and its peer address '
                f"{paddr} is this host's: write 'address A.B.C.D;' (the primary's address), "
                "or say which side this host takes with --failover-role primary|secondary",
            )
        return Side(mirror(peer), True, f"its address {paddr} is the block's peer address")
    if peer.address == ANY_ADDRESS:
        return Side(
            peer, False, f"the block gives no address and its peer address {paddr} is not local"
        )
    if mine:
        what = f"both its address {addr} and its peer address {paddr} are addresses of this host"
    else:
        what = f"neither its address {addr} nor its peer address {paddr} is an address of this host"
    raise ConfigError.at(
        peer.loc,
        f'failover peer "{peer.name}": {what}, so this host could be either side: '
        "say which with --failover-role primary|secondary"
        + ("" if mine else ", or run it where one of the two addresses is configured"),
    )


def choose_sides(
    config: Config, local: Container[IPv4Address], role: Role | None = None
) -> tuple[Config, tuple[Side, ...]]:
    """The config with every peer as this host runs it, and the side taken of each."""
    sides = tuple(choose_side(p, local, role) for p in config.failover_peers)
    if not any(s.mirrored for s in sides):
        return config, sides
    return dataclasses.replace(config, failover_peers=tuple(s.peer for s in sides)), sides


# --- the dhcpd partner's file ----------------------------------------------------------------


def _addr(value: IPv4Address, name: HostRef | None) -> str:
    return name.name if name is not None else str(value)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def partner_block(peer: FailoverPeer, *, indent: str = "        ", newline: str = "\n") -> str:
    """The block dhcpd's other side of ``peer`` needs, in dhcpd's syntax (``mirror``'s rules).

    A secondary's block carries no mclt, split or hba (dhcpd refuses split/hba there and
    learns all three from the primary). Numbers at dhcpd's default are written only when they
    are the ones the seed writes (max-response-delay, max-unacked-updates).
    """
    side = mirror(peer)
    lines: list[str] = [side.role]
    if side.address != ANY_ADDRESS or side.address_name is not None:
        lines.append(f"address {_addr(side.address, side.address_name)}")
    lines.append(f"port {side.port}")
    lines.append(f"peer address {_addr(side.peer_address, side.peer_address_name)}")
    lines.append(f"peer port {side.peer_port}")
    lines.append(f"max-response-delay {side.max_response_delay}")
    lines.append(f"max-unacked-updates {side.max_unacked_updates}")
    if side.role == "primary":
        lines.append(f"mclt {side.mclt}")
        if side.hba is not None:
            lines.append("hba " + ":".join(f"{b:02x}" for b in side.hba))
        else:
            lines.append(f"split {side.split}")
    for key, value in (
        ("max-lease-misbalance", side.max_lease_misbalance),
        ("max-lease-ownership", side.max_lease_ownership),
        ("min-balance", side.min_balance),
        ("max-balance", side.max_balance),
        ("auto-partner-down", side.auto_partner_down),
    ):
        if value != DEFAULTS[key]:
            lines.append(f"{key} {value}")
    if side.load_balance_max_seconds:
        lines.append(f"load balance max seconds {side.load_balance_max_seconds}")
    body = "".join(f"{indent}{line};{newline}" for line in lines)
    return f"failover peer {_quoted(peer.name)} {{{newline}{body}}}"


def _style(block: str) -> tuple[str, str]:
    """The indentation and line ending of a block as written (8 spaces and LF by default)."""
    newline = "\r\n" if "\r\n" in block else "\n"
    lines = block.split("\n")
    inner = lines[1] if len(lines) > 2 else ""
    indent = inner[: len(inner) - len(inner.lstrip(" \t"))]
    return indent or "        ", newline


def partner_text(text: str, filename: str, peers: Sequence[FailoverPeer]) -> str:
    """``text`` (the file ``filename``) with each of ``peers``' blocks in it mirrored for dhcpd.

    Only the characters of each block (``FailoverPeer.span``) change. ConfigError when a
    block's span does not hold its ``failover peer`` text (the file changed since it was read).
    """
    out: list[str] = []
    pos = 0
    for peer in sorted((p for p in peers if p.loc.file == filename), key=lambda p: p.span):
        start, end = peer.span
        block = text[start:end]
        if not (block.startswith("failover") and block.endswith("}")) or start < pos:
            raise ConfigError.at(
                peer.loc,
                f'failover peer "{peer.name}": {filename} changed while it was read: run again',
            )
        indent, newline = _style(block)
        out.append(text[pos:start])
        out.append(partner_block(peer, indent=indent, newline=newline))
        pos = end
    out.append(text[pos:])
    return "".join(out)
