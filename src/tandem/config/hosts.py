"""``host`` declarations: hardware, uid, fixed-address (dhcpd's parse_host_declaration).

Host names in ``fixed-address`` are kept in ``Host.fixed_hostnames`` with a warning:
dhcpd resolves them with DNS when it starts; Tandem does not resolve names.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from tandem.config.builder import HostB, Scope
from tandem.config.cursor import Cursor
from tandem.config.lexer import Kind, Token
from tandem.config.model import OptionSet
from tandem.config.state import State
from tandem.config.values import address_or_host_name, hex_list, host_name, numeric_aggregate

_HARDWARE_TYPES = {"ethernet": 1, "token-ring": 6, "fddi": 8, "infiniband": 32}
_NO_HOSTS = ("host", "class", "subclass")


class HostParsing:
    """Mixin of DeclarationParser: everything about ``host { ... }``."""

    st: State
    hosts: list[HostB]

    @property
    def cur(self) -> Cursor:
        return self.st.cur

    def body(self, scope: Scope, what: str, extra: Callable[[Token], bool] | None = None) -> None:
        raise NotImplementedError

    def _enclosing(self, scope: Scope) -> Scope:
        raise NotImplementedError

    def _host(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if scope.kind in _NO_HOSTS:
            raise cur.error("host declarations not allowed here")
        name = host_name(cur)
        if name is None:
            raise cur.error("expecting a name for host declaration")
        if self._enclosing(scope).kind in ("subnet", "shared-network"):
            self.st.warn_once(
                "global-hosts",
                tok.loc,
                "host declarations are global: they are not limited to the scope "
                "they are declared in (as in dhcpd)",
            )
        host = HostB("host", scope, tok.loc, name=name)
        cur.lbrace()
        self.body(host, f"host {name}", lambda t: self._host_line(host, t))
        if any(h.name == name for h in self.hosts):
            raise cur.error(f"host {name}: already exists")
        self._host_client_id(host)
        self.hosts.append(host)

    def _host_line(self, host: HostB, tok: Token) -> bool:
        cur = self.cur
        word = tok.word
        if word in ("dynamic", "deleted"):
            cur.next()
            cur.semi()
        elif word == "uid":
            cur.next()
            if host.uid is not None:
                raise cur.error(f"host '{host.name}' already has a uid")
            host.uid = cur.next().raw if cur.peek().kind is Kind.STRING else hex_list(cur)
            cur.semi()
        elif word == "hardware":
            cur.next()
            if host.hardware is not None:
                raise cur.error(f"host {host.name} hardware address already configured")
            host.hardware = self._hardware()
        elif word == "fixed-address":
            cur.next()
            self._fixed_address(host)
        elif word in ("group", "host-identifier"):
            cur.next()
            cur.skip_statement()
            self.st.unimplemented(f"{word} (in a host)", tok.loc)
        else:
            return False
        return True

    def _hardware(self) -> tuple[int, bytes]:
        cur = self.cur
        tok = cur.next()
        if tok.word in _HARDWARE_TYPES:
            htype = _HARDWARE_TYPES[tok.word]
        elif tok.word.startswith("unknown-") and tok.word[8:].isdigit():
            htype = int(tok.word[8:])
        else:
            raise cur.error_at(tok, "expecting a network hardware type (ethernet, ...)")
        if cur.at_punct(";"):
            cur.next()
            return htype, b""
        octets = numeric_aggregate(cur, ":", 16, 8, 0)
        if len(octets) > 16:
            raise cur.error("hardware address too long (at most 16 octets)")
        end = cur.next()
        if not end.is_punct(";"):
            raise cur.error_at(end, "expecting semicolon after the hardware address")
        return htype, bytes(octets)

    def _fixed_address(self, host: HostB) -> None:
        cur = self.cur
        seen_before = host.has_fixed
        while True:
            addr = address_or_host_name(cur)
            if isinstance(addr, IPv4Address):
                host.fixed.append(addr)
            else:
                host.fixed_names.append(addr)
                self.st.warn(
                    cur.last.loc,
                    f"fixed-address {addr} is a host name: Tandem does not resolve names, "
                    "so this address is not reserved (write the IP address)",
                )
            if not cur.take_punct(","):
                break
        cur.semi()
        if seen_before:  # dhcpd reads the statement first, then complains at its end
            raise cur.error("Only one fixed address declaration per host")
        host.has_fixed = True

    def _host_client_id(self, host: HostB) -> None:
        for stmt in host.stmts:
            if isinstance(stmt, OptionSet) and stmt.space == "dhcp" and stmt.code == 61:
                if host.uid is not None:
                    self.st.warn(stmt.loc, f"host {host.name} already has a uid: "
                                 "ignoring dhcp-client-identifier")  # fmt: skip
                elif stmt.data is not None:
                    host.uid = stmt.data
