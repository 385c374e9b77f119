"""dhcpd.conf -> the frozen ``Config`` model.

``load(path)`` reads a file (and the files it includes, relative paths taken from the
current working directory, as dhcpd does); ``parse_text(text)`` parses a string. Both
raise ``ConfigError`` with ``file:line:col`` diagnostics; warnings (valid dhcpd statements
Tandem ignores, host names it will not resolve, ...) are in ``Config.warnings``.

Host names in ``failover peer`` blocks are resolved after parsing by ``resolver``
(``tandem.config.resolve``; by default the system resolver), the only network I/O here.
"""

from __future__ import annotations

from tandem.config.builder import Freezer
from tandem.config.cursor import Cursor
from tandem.config.declarations import DeclarationParser, Reader
from tandem.config.errors import ConfigError
from tandem.config.model import Config, Location, Subnet
from tandem.config.registry import OptionTableLike, Registry
from tandem.config.resolve import Resolver, resolve_peers, system_resolver
from tandem.config.state import State
from tandem.wire.options import default_table

__all__ = ["ConfigError", "load", "parse_text"]


def _read_file(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("latin-1")


def load(
    path: str, *, table: OptionTableLike | None = None, resolver: Resolver = system_resolver
) -> Config:
    """Read and check the dhcpd.conf at ``path``; resolve failover host names with ``resolver``."""
    try:
        text = _read_file(path)
    except OSError as exc:
        raise ConfigError.at(
            Location(path, 0, 0), f"can't open {path}: {exc.strerror or exc}"
        ) from exc
    return _parse(text, path, _read_file, table, resolver)


def parse_text(
    text: str,
    filename: str = "<string>",
    *,
    table: OptionTableLike | None = None,
    resolver: Resolver = system_resolver,
) -> Config:
    """Parse configuration text (``include`` still reads files)."""
    raw = text.encode("utf-8", "surrogateescape").decode("latin-1")
    return _parse(raw, filename, _read_file, table, resolver)


def _parse(
    text: str, filename: str, read: Reader, table: OptionTableLike | None, resolver: Resolver
) -> Config:
    if table is None:
        table = default_table()
    cur = Cursor(text, filename)
    st = State(cur, Registry(table))
    parser = DeclarationParser(st, read)
    parser.parse_top()
    _check(parser)
    peers, warnings = resolve_peers(parser.peers.values(), resolver)
    parser.peers = {p.name: p for p in peers}
    st.warnings.extend(warnings)
    return _freeze(parser)


def _check(p: DeclarationParser) -> None:
    """dhcpd's checks after reading the whole file (no line numbers in dhcpd's output)."""
    for name, peer in p.peers.items():
        if not p.peer_pools.get(name):
            raise ConfigError.at(
                peer.loc,
                f"failover peer {name} has no referring pools: refer to it with "
                f"'failover peer \"{name}\";' in at least one pool",
            )
    dynamic = [(lo, hi) for lo, hi, _ in p.ranges]
    for host in p.hosts:
        for addr in host.fixed:
            if any(lo <= int(addr) <= hi for lo, hi in dynamic):
                p.st.warn(
                    host.loc,
                    f"host {host.name}: fixed-address {addr} is inside a dynamic range; "
                    "dhcpd allows it but the address can also be leased to another client",
                )
    seen: dict[tuple[int, bytes], str] = {}
    for host in p.hosts:
        if host.hardware and host.hardware[1]:
            other = seen.setdefault(host.hardware, host.name)
            if other != host.name:
                p.st.warn(host.loc, f"host {host.name} has the same hardware address as {other}")
    for stmt in p.root.stmts:
        if getattr(stmt, "name", None) == "vendor-option-space":
            value = getattr(stmt, "value", None)
            if isinstance(value, str) and not p.st.reg.has_space(value):
                p.st.warn(stmt.loc, f"vendor-option-space {value}: no such option space")


def _freeze(p: DeclarationParser) -> Config:
    fz = Freezer()
    subnets: dict[int, Subnet] = {id(s): fz.subnet(s) for s in p.subnets}
    hosts = tuple(fz.host(h) for h in p.hosts)
    return Config(
        statements=fz.block(p.root),
        subnets=tuple(subnets[id(s)] for s in p.subnets),
        shared_networks=tuple(fz.shared(s, subnets) for s in p.shareds),
        hosts=hosts,
        classes=tuple(fz.client_class(c) for c in p.classes.values()),
        failover_peers=tuple(p.peers.values()),
        option_definitions=tuple(p.st.reg.definitions),
        option_spaces=tuple(p.st.reg.spaces.values()),
        warnings=tuple(p.st.warnings),
        files=tuple(p.st.files),
    )
