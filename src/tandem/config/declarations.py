"""Declarations and scopes: dhcpd's parse_statement and the block parsers it calls.

Which statement is allowed where, and what dhcpd checks while reading (a subnet's host
bits, a range outside its subnet, a pool without a range, an undeclared failover peer,
``dynamic-bootp`` in a failover pool, ...), follow server/confpars.c. Errors are raised at
the first problem, blamed where ``dhcpd -t`` blames it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from tandem.config.builder import ClassB, HostB, PoolB, Scope, SharedB, SubclassB, SubnetB
from tandem.config.cursor import Cursor
from tandem.config.expressions import ExpressionParser
from tandem.config.failover import parse_peer_body
from tandem.config.hosts import _NO_HOSTS, HostParsing
from tandem.config.lexer import Kind, Token
from tandem.config.model import (
    FailoverPeer,
    Location,
    Param,
    Permit,
    PermitKind,
    Range,
    Unimplemented,
)
from tandem.config.optionstmt import OptionReader, text_of
from tandem.config.state import MAX_INCLUDE_DEPTH, State
from tandem.config.statements import NotAStatement, StatementParser, _param_value
from tandem.config.values import (
    date,
    decimal,
    hex_list,
    host_name,
    ip_address,
)

Reader = Callable[[str], str]

_PERMITS: dict[str, tuple[PermitKind, bool]] = {
    # word -> (kind, needs the word "clients" after it)
    "unknown": ("unknown-clients", True),
    "known": ("known-clients", True),
    "unknown-clients": ("unknown-clients", False),
    "known-clients": ("known-clients", False),
    "authenticated": ("authenticated-clients", True),
    "unauthenticated": ("unauthenticated-clients", True),
    "all": ("all-clients", True),
}


class DeclarationParser(HostParsing):
    def __init__(self, st: State, read: Reader) -> None:
        self.st = st
        self.read = read
        self.root = Scope("root", None, st.cur.last.loc)
        self.subnets: list[SubnetB] = []
        self.shareds: list[SharedB] = []
        self.hosts: list[HostB] = []
        self.classes: dict[str, ClassB] = {}
        self.peers: dict[str, FailoverPeer] = {}
        self.peer_pools: dict[str, int] = {}
        self.ranges: list[tuple[int, int, Location]] = []

    @property
    def cur(self) -> Cursor:
        return self.st.cur

    @property
    def stmts(self) -> StatementParser:
        return StatementParser(self.st)

    # --- files -----------------------------------------------------------------------------

    def parse_top(self) -> None:
        while self.cur.peek().kind is not Kind.EOF:
            self.statement(self.root)

    def include(self, scope: Scope) -> None:
        tok = self.cur.next()
        if tok.kind is not Kind.STRING:
            raise self.cur.error_at(tok, "filename string expected after include")
        path = text_of(tok)
        full = os.path.abspath(path)
        if full in self.st.include_stack:
            raise self.cur.error_at(tok, f"include loop: {path} is already being read")
        if len(self.st.include_stack) >= MAX_INCLUDE_DEPTH:
            raise self.cur.error_at(tok, f"includes nested deeper than {MAX_INCLUDE_DEPTH} files")
        try:
            text = self.read(path)
        except OSError as exc:
            raise self.cur.error_at(tok, f"can't open {path}: {exc.strerror or exc}") from exc
        outer = self.cur
        self.st.cur = Cursor(text, path)
        self.st.files.append(path)
        self.st.include_stack.append(full)
        try:
            while self.cur.peek().kind is not Kind.EOF:
                self.statement(scope)
        finally:
            self.st.cur = outer
            self.st.include_stack.pop()
        self.cur.semi()

    # --- the dispatcher -------------------------------------------------------------------

    def statement(self, scope: Scope) -> None:
        """One statement or declaration in ``scope`` (dhcpd's parse_statement)."""
        cur = self.cur
        tok = cur.peek()
        word = tok.word
        if tok.is_punct("%"):
            cur.skip_statement()  # dhcpd ignores "%..." lines (used by its migration tools)
            return
        handler = _DECLARATIONS.get(word)
        if handler is not None:
            cur.next()
            handler(self, scope, tok)
            return
        try:
            stmt = self.stmts.executable()
        except NotAStatement:
            if tok.kind is Kind.EOF:
                raise cur.error("unexpected end of file") from None
            if cur.last is tok or tok.loc == cur.last.loc:
                raise cur.error_at(tok, "expecting a parameter or declaration") from None
            raise cur.error(
                f"expecting a parameter or declaration, found {tok.describe()}"
            ) from None
        if stmt is not None:
            scope.stmts.append(stmt)

    def body(self, scope: Scope, what: str, extra: Callable[[Token], bool] | None = None) -> None:
        """Statements up to the closing ``}`` (the ``{`` is consumed)."""
        cur = self.cur
        with cur.nested():
            while True:
                tok = cur.peek()
                if tok.is_punct("}"):
                    cur.next()
                    return
                if tok.kind is Kind.EOF:
                    raise cur.eof_error(what)
                if extra is not None and extra(tok):
                    continue
                self.statement(scope)

    def _enclosing(self, scope: Scope) -> Scope:
        """The nearest scope that is not a group (dhcpd's groups are transparent)."""
        found = scope
        while found.kind == "group" and found.parent is not None:
            found = found.parent
        return found

    # --- simple declarations -------------------------------------------------------------

    def _authoritative(self, scope: Scope, tok: Token, value: bool = True) -> None:
        if scope.kind == "host":
            raise self.cur.error("authority makes no sense here (in a host declaration)")
        self.cur.semi()
        scope.stmts.append(Param("authoritative", value, tok.loc))

    def _not(self, scope: Scope, tok: Token) -> None:
        if self.cur.next().word != "authoritative":
            raise self.cur.error("expecting assertion: 'not authoritative;'")
        self._authoritative(scope, tok, False)

    def _server_identifier(self, scope: Scope, tok: Token) -> None:
        ref = self.st.reg.lookup("dhcp", "dhcp-server-identifier")
        assert ref is not None
        values = OptionReader(self.cur, self.st.reg).values(ref)
        self.cur.semi()
        value = _param_value(ref.format, values)
        assert isinstance(value, IPv4Address | str) or value is not None
        scope.stmts.append(Param("server-identifier", value, tok.loc))  # type: ignore[arg-type]

    def _option(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        reader = OptionReader(cur, self.st.reg)
        if cur.take_word("space"):
            if scope.kind != "root":
                raise cur.error("option space definitions may not be scoped: move it to the top")
            reader.space_declaration(tok.loc)
            return
        space, name, ref = self.st.reg.resolve(cur, allow_new=True)
        name_tok = cur.last
        if cur.at_word("code"):
            if scope.kind != "root":
                raise cur.error("option definitions may not be scoped: move it to the top")
            cur.next()
            reader.definition(space, name, tok.loc)
            return
        if ref is None:
            raise cur.error_at(name_tok, f"unknown option {space}.{name}")
        if ref.space == "server":
            stmt = self.stmts.param_rest(ref.name, name_tok.loc)
        else:
            stmt = reader.option_set(ref, name_tok)
        if stmt is not None:
            scope.stmts.append(stmt)

    def _unimplemented_skip(self, scope: Scope, tok: Token) -> None:
        self.cur.skip_statement()
        self.st.unimplemented(tok.word, tok.loc)
        scope.stmts.append(Unimplemented(tok.word, tok.loc))

    def _host_only(self, scope: Scope, tok: Token) -> None:
        # dhcpd reads the whole parameter before complaining, so the error is at its end.
        if tok.word == "hardware":
            self._hardware()
        else:
            self._fixed_address(HostB("host", scope, tok.loc))
        raise self.cur.error(f"{tok.word} parameter not allowed here: it belongs in a host")

    # --- shared-network / subnet / group -----------------------------------------------

    def _shared_network(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if self._enclosing(scope).kind != "root":
            raise cur.error("shared-network parameters not allowed here")
        name_tok = cur.peek()
        if name_tok.kind is Kind.STRING:
            cur.next()
            name = name_tok.text or "<no-name-given>"
            if not name_tok.text:
                raise cur.error("zero-length shared network name")
        else:
            found = host_name(cur)
            if found is None:
                raise cur.error("expecting a name for shared-network")
            name = found
        shared = SharedB("shared-network", scope, tok.loc, name=name)
        cur.lbrace()
        self.body(shared, f"shared-network {name}", self._interface_line(shared))
        if not shared.subnets:
            raise cur.error(f"empty shared-network decl: {name} declares no subnet")
        self.shareds.append(shared)

    def _interface_line(self, scope: Scope) -> Callable[[Token], bool]:
        def handle(tok: Token) -> bool:
            if tok.word != "interface":
                return False
            self.cur.next()
            self.cur.next()
            self.cur.semi()
            self.st.unimplemented("interface", tok.loc)
            return True

        return handle

    def _subnet(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        around = self._enclosing(scope)
        if around.kind not in ("root", "shared-network"):
            raise cur.error("subnet declarations not allowed here")
        net = ip_address(cur)
        cur.expect_word("netmask", "Expecting netmask")
        mask = ip_address(cur)
        if int(net) & ~int(mask) & 0xFFFFFFFF:
            raise cur.error(
                f"subnet {net} netmask {mask}: bad subnet number/mask combination "
                "(the address has host bits set)"
            )
        try:
            network = IPv4Network(f"{net}/{mask}")
        except ValueError:
            raise cur.error(
                f"netmask {mask} is not contiguous: Tandem needs a prefix netmask"
            ) from None
        shared = around if isinstance(around, SharedB) else None
        subnet = SubnetB("subnet", scope, tok.loc, network=network, shared=shared)
        for other in self.subnets:
            if other.network.overlaps(network):
                self.st.warn(tok.loc, f"subnet {network} overlaps subnet {other.network}")
        self.subnets.append(subnet)
        if shared is not None:
            shared.subnets.append(subnet)
        cur.lbrace()
        self.body(subnet, f"subnet {network}", self._interface_line(subnet))

    def _group(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if scope.kind in _NO_HOSTS:
            raise cur.error("group declarations not allowed here")
        if cur.peek().kind is Kind.STRING or cur.peek().is_identifier:
            cur.next()
        group = Scope("group", scope, tok.loc)
        cur.lbrace()

        def flags(t: Token) -> bool:
            if t.word in ("deleted", "dynamic", "static"):
                cur.next()
                cur.semi()
                return True
            return False

        self.body(group, "group", flags)
        # dhcpd folds the group's statements into each member's scope; an empty group
        # still shows up in chains, which is harmless.

    # --- pools and ranges ------------------------------------------------------------------

    def _pool(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if scope.kind == "pool":
            raise cur.error("pool declared within pool")
        if not isinstance(scope, SubnetB | SharedB):
            raise cur.error("pool declared outside of network: put it in a subnet")
        shared = scope if isinstance(scope, SharedB) else scope.shared
        pool = PoolB("pool", scope, tok.loc)
        if shared is not None:
            pool.failover_peer = shared.failover_peer
        cur.lbrace()
        self.body(pool, "pool", lambda t: self._pool_line(pool, t))
        if not pool.ranges:
            raise cur.error("Pool declaration with no address range: add a range statement")
        scope.pools.append(pool)

    def _pool_line(self, pool: PoolB, tok: Token) -> bool:
        cur = self.cur
        word = tok.word
        if word == "no":
            cur.next()
            if not (cur.take_word("failover") and cur.take_word("peer")):
                raise cur.error('expecting "failover peer" after "no"')
            pool.failover_peer = None
            cur.semi()
        elif word == "failover":
            cur.next()
            cur.expect_word("peer", "expecting 'peer'")
            name = cur.next()
            if name.kind is not Kind.STRING:
                raise cur.error_at(name, 'expecting the peer name as a string: "NAME"')
            if name.text not in self.peers:
                raise cur.error_at(
                    name, f"failover peer {name.text}: not found (declare it before the pool)"
                )
            pool.failover_peer = name.text
            self.peer_pools[name.text] = self.peer_pools.get(name.text, 0) + 1
            cur.semi()
        elif word == "range":
            cur.next()
            self._range_rest(pool, tok)
        elif word in ("allow", "deny"):
            cur.next()
            pool.permits.append(self._permit(pool, word == "allow", tok.loc))
        else:
            return False
        return True

    def _range(self, scope: Scope, tok: Token) -> None:
        if not isinstance(scope, SubnetB):
            raise self.cur.error("range declaration not allowed here: put it in a subnet or pool")
        self._range_rest(scope, tok)

    def _range_rest(self, owner: SubnetB | PoolB, tok: Token) -> None:
        cur = self.cur
        dynamic = cur.take_word("dynamic-bootp")
        low = ip_address(cur)
        high = low if cur.at_punct(";") else ip_address(cur)
        cur.semi()
        if isinstance(owner, SubnetB):
            subnet: SubnetB | None = owner
        else:
            subnet = self._pool_subnet(owner, low)
        assert subnet is not None
        for addr in (low, high):
            if addr not in subnet.network:
                raise cur.error_at(
                    tok,
                    f"bad range, address {addr} not in subnet {subnet.network.network_address}"
                    f" netmask {subnet.network.netmask}",
                )
        if int(low) > int(high):
            low, high = high, low
        if isinstance(owner, PoolB) and owner.failover_peer is not None and dynamic:
            raise cur.error(
                "dynamic-bootp flag is not permitted for address range declarations where "
                "there is a failover peer in scope (the failover protocol has no dynamic BOOTP)"
            )
        for lo, hi, where in self.ranges:
            if lo <= int(high) and int(low) <= hi:
                first = IPv4Address(max(lo, int(low)))
                raise cur.error(
                    f"lease {first} is declared twice! (the range overlaps the one at {where})"
                )
        self.ranges.append((int(low), int(high), tok.loc))
        owner.ranges.append(Range(low, high, dynamic, tok.loc))

    def _pool_subnet(self, pool: PoolB, low: IPv4Address) -> SubnetB | None:
        if isinstance(pool.parent, SubnetB):
            return pool.parent
        assert isinstance(pool.parent, SharedB)
        for subnet in pool.parent.subnets:
            if low in subnet.network:
                return subnet
        raise self.cur.error(
            f"address range not on network {pool.parent.name}: declare the subnet of {low} "
            "before the pool"
        )

    def _permit(self, pool: PoolB, allow: bool, loc: Location) -> Permit:
        cur = self.cur
        tok = cur.next()
        word = tok.word
        class_name: str | None = None
        after: int | None = None
        if word in _PERMITS:
            kind, needs_clients = _PERMITS[word]
        elif word == "dynamic":
            cur.expect_word("bootp", 'expecting "bootp"')
            kind, needs_clients = "dynamic-bootp-clients", True
        elif word == "members":
            cur.expect_word("of", 'expecting "of"')
            name = cur.next()
            if name.kind is not Kind.STRING:
                raise cur.error_at(name, "expecting class name")
            if name.text not in self.classes:
                raise cur.error_at(name, f"no such class: {name.text}")
            kind, needs_clients, class_name = "members", False, name.text
        elif word == "after":
            if any(p.kind == "after" for p in pool.permits):
                raise cur.error('duplicate "after" clause')
            kind, needs_clients, after = "after", False, date(cur)
        else:
            raise cur.error_at(tok, f"expecting permit type, found {tok.describe()}")
        if needs_clients:
            cur.expect_word("clients", 'expecting "clients"')
        cur.semi()
        return Permit(allow, kind, class_name, after, loc)

    # --- classes -----------------------------------------------------------------------------

    def _class(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if scope.kind in ("class", "subclass"):
            raise cur.error("class declarations not allowed here")
        name = cur.next()
        if name.kind is not Kind.STRING:
            raise cur.error_at(name, 'Expecting class name (a string: class "NAME")')
        cls = self.classes.get(name.text)
        if cls is None:
            cls = ClassB("class", scope, tok.loc, name=name.text)
            self.classes[name.text] = cls
            self.st.class_names.add(name.text)
        cur.lbrace()
        self.body(cls, f'class "{name.text}"', lambda t: self._class_line(cls, t))

    def _subclass(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if scope.kind in ("class", "subclass"):
            raise cur.error("class declarations not allowed here")
        name = cur.next()
        if name.kind is not Kind.STRING:
            raise cur.error_at(name, "Expecting class name")
        parent = self.classes.get(name.text)
        if parent is None:
            raise cur.error_at(name, f"no class named {name.text}: declare the class first")
        key_tok = cur.peek()
        if key_tok.kind is Kind.STRING:
            key = cur.next().raw
        elif key_tok.kind in (Kind.NUMBER, Kind.NUMBER_OR_NAME):
            key = hex_list(cur)
        else:
            raise cur.error("Expecting string or hex list for the subclass key")
        sub = next((s for s in parent.subclasses if s.key == key), None)
        if sub is None:
            sub = SubclassB("subclass", parent, tok.loc, class_name=name.text, key=key)
            parent.subclasses.append(sub)
        if cur.take_punct(";"):
            return
        cur.lbrace()
        self.body(sub, "subclass", lambda t: self._class_line(sub, t))

    def _class_line(self, cls: ClassB | SubclassB, tok: Token) -> bool:
        cur = self.cur
        word = tok.word
        exprs = ExpressionParser(cur, self.st.reg)
        if word in ("dynamic", "deleted"):
            cur.next()
            cur.semi()
            return True
        if word not in ("match", "spawn", "lease"):
            return False
        cur.next()
        if word == "lease":
            # dhcpd takes `lease limit` in a subclass too (its own limit, else the class's).
            cur.expect_word("limit", 'expecting "limit"')
            cls.lease_limit = decimal(cur, cur.next(), "lease limit")
        elif not isinstance(cls, ClassB):
            raise cur.error(f"invalid {word} in subclass")
        elif word == "match" and cur.take_word("if"):
            if cls.match_if is not None:
                raise cur.error("A class may only have one 'match if' clause")
            cls.match_if = exprs.boolean()
        else:
            if word == "spawn":
                cur.expect_word("with", "expecting with after spawn")
            if cls.match is not None or cls.spawn is not None:
                raise cur.error("can't override existing submatch/spawn")
            expr = exprs.data()
            if word == "spawn":
                cls.spawn = expr
            else:
                cls.match = expr
        cur.semi()
        return True

    # --- failover ------------------------------------------------------------------------------

    def _failover(self, scope: Scope, tok: Token) -> None:
        cur = self.cur
        if scope.kind not in ("root", "shared-network"):
            raise cur.error(
                "failover peers may only be defined in shared-network declarations "
                "and the outer scope"
            )
        cur.expect_word("peer", 'expecting "peer"')
        name_tok = cur.next()
        if not (name_tok.kind is Kind.STRING or name_tok.is_identifier):
            raise cur.error_at(name_tok, "expecting failover peer name")
        name = name_tok.text
        after = cur.next()
        if after.is_punct(";"):
            if not isinstance(scope, SharedB):
                raise cur.error("failover peer reference not in shared-network declaration")
            if name not in self.peers:
                raise cur.error(f"reference to unknown failover peer {name}")
            scope.failover_peer = name
            return
        if after.word == "state":
            if name not in self.peers:
                raise cur.error(f"state declaration for unknown failover peer {name}")
            cur.skip_statement()
            self.st.unimplemented("failover peer state", tok.loc)
            return
        if not after.is_punct("{"):
            raise cur.error_at(after, "expecting left brace")
        if name in self.peers:
            raise cur.error(f"redeclaration of failover peer {name}")
        peer, notes = parse_peer_body(cur, name, tok.loc)
        peer = dataclasses.replace(peer, span=(tok.start, cur.last.end))
        for note in notes:
            self.st.warn(tok.loc, note)
        self.peers[name] = peer
        self.st.peer_names.add(name)
        if isinstance(scope, SharedB):
            scope.failover_peer = name


def _decl(name: str) -> Callable[[DeclarationParser, Scope, Token], None]:
    return getattr(DeclarationParser, name)  # type: ignore[no-any-return]


_DECLARATIONS: dict[str, Callable[[DeclarationParser, Scope, Token], None]] = {
    "include": lambda p, scope, tok: p.include(scope),
    "host": _decl("_host"),
    "group": _decl("_group"),
    "shared-network": _decl("_shared_network"),
    "subnet": _decl("_subnet"),
    "class": _decl("_class"),
    "subclass": _decl("_subclass"),
    "vendor-class": _decl("_unimplemented_skip"),
    "user-class": _decl("_unimplemented_skip"),
    "pool": _decl("_pool"),
    "range": _decl("_range"),
    "not": _decl("_not"),
    "authoritative": lambda p, scope, tok: p._authoritative(scope, tok),
    "server-identifier": _decl("_server_identifier"),
    "option": _decl("_option"),
    "failover": _decl("_failover"),
    "server-duid": _decl("_unimplemented_skip"),
    "lease-id-format": _decl("_unimplemented_skip"),
    "subnet6": _decl("_unimplemented_skip"),
    "hardware": _decl("_host_only"),
    "fixed-address": _decl("_host_only"),
}
