"""Host names in ``failover peer`` blocks -> IPv4 addresses, through the system resolver.

dhcpd keeps ``address dhcp01.example.net;`` as a host-lookup expression limited to 4 bytes
(common/parse.c parse_ip_addr_or_hostname) and evaluates it with gethostbyname() when it
connects or listens, so a name with several addresses means its first. Tandem resolves once, when
the configuration is loaded, and takes the first IPv4 address too; a name that does not resolve
is a configuration error at the name's ``file:line:col`` (dhcpd only logs "NAME: host unknown."
and retries every 90 seconds, so ``dhcpd -t`` accepts it).

The parser does no network I/O: it keeps each name with its ``Location`` (``HostRef``) and
``config.load`` passes the peers through :func:`resolve_peers` with a resolver, by default
:func:`system_resolver` (``getaddrinfo``, AF_INET: /etc/hosts, DNS, whatever nsswitch says).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Address

from tandem.config.errors import ConfigError
from tandem.config.model import Diagnostic, FailoverPeer, HostRef


class Unresolved(Exception):
    """A resolver's answer that a name has no IPv4 address; ``str()`` says why."""


#: name -> its IPv4 addresses, first the one to use; raises Unresolved (or returns none).
Resolver = Callable[[str], Sequence[IPv4Address]]


def system_resolver(name: str) -> list[IPv4Address]:
    """The system resolver's IPv4 addresses for ``name``, in the order it gives them."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(getattr(exc, "strerror", None) or str(exc)) from exc
    out: list[IPv4Address] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = IPv4Address(sockaddr[0])
        if addr not in out:
            out.append(addr)
    return out


def resolve_peers(
    peers: Iterable[FailoverPeer], resolver: Resolver
) -> tuple[list[FailoverPeer], list[Diagnostic]]:
    """Each peer with its host names resolved, and warnings; ConfigError for a name that fails."""
    out: list[FailoverPeer] = []
    warnings: list[Diagnostic] = []
    for peer in peers:
        if peer.address_name is None and peer.peer_address_name is None:
            out.append(peer)
            continue
        address, peer_address = peer.address, peer.peer_address
        if peer.address_name is not None:
            address = _resolve(peer.name, "address", peer.address_name, resolver, warnings)
        if peer.peer_address_name is not None:
            peer_address = _resolve(
                peer.name, "peer address", peer.peer_address_name, resolver, warnings
            )
        out.append(dataclasses.replace(peer, address=address, peer_address=peer_address))
    return out, warnings


def _resolve(
    peer: str, what: str, ref: HostRef, resolver: Resolver, warnings: list[Diagnostic]
) -> IPv4Address:
    try:
        found = list(resolver(ref.name))
        reason = "it has no IPv4 address"
    except Unresolved as exc:
        found, reason = [], str(exc)
    if not found:
        raise ConfigError.at(
            ref.loc,
            f"failover peer {peer}: {what} {ref.name} does not resolve ({reason}): "
            f"add {ref.name} to DNS or /etc/hosts, or write its IPv4 address instead",
        )
    if len(found) > 1:
        others = ", ".join(str(a) for a in found[1:])
        warnings.append(
            Diagnostic(
                ref.loc,
                f"failover peer {peer}: {what} {ref.name} has several addresses; "
                f"Tandem uses the first, {found[0]}, as dhcpd does (not {others})",
                "warning",
            )
        )
    return found[0]
