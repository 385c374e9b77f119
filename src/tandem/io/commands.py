"""The command layer: Kea's control-channel vocabulary and envelope over a running Tandem.

One registry serves both transports: the HTTP listener (tandem.io.http_api, Kea's control
agent shape, ``POST /``) and the local control socket (tandem.io.control). A request is
Kea's envelope::

    {"command": "lease4-get", "arguments": {"ip-address": "192.0.2.100"}}

and every answer is too: ``{"result": R, "text": "...", "arguments": {...}}`` with Kea's result
codes (0 success, 1 error, 2 unsupported, 3 empty: found nothing). Names, arguments and texts
follow Kea's lease_cmds and stat_cmds hooks, so a Kea user's scripts and tools read them;
Tandem's failover relationship has its own two commands, ``failover-get`` and
``failover-partner-down`` (Kea's HA hook speaks a different protocol).

Parsing (``parse_command``) takes bytes from the network and refuses, with a result-1 message
and never an exception other than ``CommandError``, whatever is too long, not UTF-8, nested
deeper than the control socket's limit (the same linear pre-scan runs *before* ``json.loads``),
not an object, or has a ``command``/``arguments`` of the wrong type. Each handler checks its own
arguments the same way. Facts come from the running server at the time of the request; the
views (JSON shapes) are ``tandem.io.command_views``.

Commands that change the server (``WRITE_COMMANDS``) are for the control socket (root only)
and for an HTTP listener with a token; a lease change goes the way of a DHCP packet's: the core
makes it (``DhcpServer.delete_lease``), it is appended to the journal and committed by the
server's ``GroupCommit``, the failover links send its BNDUPD, and only then is it answered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address
from typing import Final

from tandem import BUILD, __version__
from tandem.core.lease import Lease
from tandem.core.server import BOUND_STATES, DhcpServer
from tandem.io import command_views as views
from tandem.io.commit import GroupCommit
from tandem.io.control import ControlError, json_object
from tandem.io.dhcp_socket import Counters
from tandem.io.failover_listen import FailoverLinks
from tandem.io.reload import ReloadResult

__all__ = [
    "MAX_BODY",
    "RESULT_EMPTY",
    "RESULT_ERROR",
    "RESULT_SUCCESS",
    "RESULT_UNSUPPORTED",
    "WRITE_COMMANDS",
    "CommandError",
    "Commands",
    "Request",
    "parse_command",
    "reply",
    "request_from",
]

log = logging.getLogger("tandem")

RESULT_SUCCESS: Final = 0
RESULT_ERROR: Final = 1
RESULT_UNSUPPORTED: Final = 2
RESULT_EMPTY: Final = 3

#: Largest request accepted (bytes): Kea's commands are a few hundred bytes.
MAX_BODY: Final = 64 * 1024
#: How long ``lease4-del`` waits for its commit before it answers with an error.
COMMIT_TIMEOUT: Final = 10.0

#: Commands that change the server: never over an HTTP listener without a token.
WRITE_COMMANDS: Final = frozenset(
    {"lease4-del", "failover-partner-down", "config-reload", "reservation-add", "reservation-del"}
)

Reply = dict[str, object]
Args = dict[str, object]


class CommandError(Exception):
    """A request that cannot be served; ``result`` and ``text`` go back to the client."""

    def __init__(self, text: str, result: int = RESULT_ERROR) -> None:
        super().__init__(text)
        self.text = text
        self.result = result


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed command: its name, its arguments, and Kea's ``service`` list if given."""

    command: str
    arguments: Args
    service: tuple[str, ...] | None = None


def reply(result: int, text: str, arguments: object = None) -> Reply:
    """Kea's answer envelope (``arguments`` left out when None)."""
    out: Reply = {"result": result, "text": text}
    if arguments is not None:
        out["arguments"] = arguments
    return out


def parse_command(data: bytes, limit: int = MAX_BODY) -> Request:
    """Bytes from a client -> a ``Request``; ``CommandError`` (result 1) for anything else."""
    try:
        obj = json_object(data, limit, "status-get")
    except ControlError as exc:
        raise CommandError(str(exc)) from exc
    return request_from(obj)


def request_from(obj: dict[str, object]) -> Request:
    """A decoded JSON object -> a ``Request`` (types checked); ``CommandError`` otherwise."""
    command = obj.get("command")
    if not isinstance(command, str) or not command:
        raise CommandError('request needs a string "command"')
    arguments = obj.get("arguments", {})
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise CommandError('"arguments" must be a JSON object')
    service = obj.get("service")
    services: tuple[str, ...] | None = None
    if service is not None:
        if not isinstance(service, list) or not all(isinstance(s, str) for s in service):
            raise CommandError('"service" must be a list of names, like ["dhcp4"]')
        if any(s != "dhcp4" for s in service):
            raise CommandError('Tandem is a DHCPv4 server: "service" can only be ["dhcp4"]')
        services = tuple(service)
    return Request(command, arguments, services)


# --- argument checks ---------------------------------------------------------------------------


def _allow(command: str, args: Args, allowed: frozenset[str]) -> None:
    extra = sorted(set(args) - allowed)
    if extra:
        known = ", ".join(sorted(allowed)) or "none"
        raise CommandError(f"{command}: unknown argument {extra[0]!r} (accepted: {known})")


def _address(command: str, value: object, key: str = "ip-address") -> IPv4Address:
    if not isinstance(value, str):
        raise CommandError(f'{command}: {key!r} must be a string like "192.0.2.100"')
    try:
        return IPv4Address(value)
    except AddressValueError as exc:
        raise CommandError(f"{command}: {key!r} is not an IPv4 address: {value!r}") from exc


def _int(command: str, args: Args, key: str, *, low: int, high: int) -> int:
    value = args.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CommandError(f"{command}: {key!r} must be an integer from {low} to {high}")
    return value


def _hex(command: str, value: object) -> bytes:
    """``aa:bb:cc`` / ``aa-bb-cc`` / ``aabbcc`` -> bytes."""
    if not isinstance(value, str):
        raise CommandError(f"{command}: 'identifier' must be a string like \"52:54:00:12:34:56\"")
    digits = value.replace(":", "").replace("-", "").replace(" ", "")
    try:
        raw = bytes.fromhex(digits)
    except ValueError as exc:
        raise CommandError(f"{command}: 'identifier' is not hexadecimal: {value!r}") from exc
    if not raw or len(raw) > 255:
        raise CommandError(f"{command}: 'identifier' must be 1 to 255 bytes")
    return raw


_LEASE_KEYS = frozenset({"ip-address", "identifier-type", "identifier", "subnet-id"})


class Commands:
    """The registry: command name -> handler, over one running server's facts.

    Everything but ``server`` is optional, so tests, the fuzz harness and a server without
    failover build it from what they have; a command that needs a missing part says so.
    """

    def __init__(
        self,
        server: DhcpServer,
        *,
        commit: GroupCommit | None = None,
        links: FailoverLinks | None = None,
        counters: Counters | None = None,
        emit: Callable[[list[str]], None] | None = None,
        config_path: str = "",
        check_config: Callable[[str], list[str]] | None = None,
        started: float | None = None,
        clock: Callable[[], float] = time.time,
        reload: Callable[[], Awaitable[ReloadResult]] | None = None,
    ) -> None:
        self.server = server
        self.reload = reload
        self.commit = commit
        self.links = links
        self.counters = counters
        self.emit = emit
        self.config_path = config_path
        self.check_config = check_config
        self.clock = clock
        self.started = clock() if started is None else started
        self.subnets = views.SubnetIndex(server)
        self.pool_labels = views.pool_labels(server, self.subnets)  # fixed until a reload
        sync: dict[str, Callable[[Args], Reply]] = {
            "list-commands": self._list_commands,
            "version-get": self._version_get,
            "status-get": self._status_get,
            "config-get": self._config_get,
            "config-test": self._config_test,
            "lease4-get": self._lease4_get,
            "lease4-get-all": self._lease4_get_all,
            "lease4-get-page": self._lease4_get_page,
            "stat-lease4-get": self._stat_lease4_get,
            "statistic-get-all": self._statistic_get_all,
            "failover-get": self._failover_get,
            "failover-partner-down": self._failover_partner_down,
        }
        self._sync = sync
        self._async: dict[str, Callable[[Args], Awaitable[Reply]]] = {
            "lease4-del": self._lease4_del,
            "config-reload": self._config_reload,
        }

    def add(self, name: str, handler: Callable[[Args], Reply]) -> None:
        """Register one more read-only command (the runtime's ``history-get``, for the page's
        memory, which lives beside the commands in tandem.io.page_feed)."""
        self._sync[name] = handler

    def add_async(self, name: str, handler: Callable[[Args], Awaitable[Reply]]) -> None:
        """Register a command that awaits (io/hostcmds.py's reservation commands); one that
        changes the server must be in ``WRITE_COMMANDS`` (the token check reads it)."""
        self._async[name] = handler

    @property
    def names(self) -> list[str]:
        return sorted([*self._sync, *self._async])

    async def execute(self, req: Request, *, may_write: bool) -> Reply:
        """Answer one request (never raises). A read-only command never awaits anything."""
        name = req.command
        try:
            if name in WRITE_COMMANDS and not may_write:
                raise CommandError(
                    f"{name} changes the server: not allowed on a read-only listener (start "
                    "Tandem with --http-token-file, or use the control socket as root)"
                )
            handler = self._sync.get(name)
            if handler is not None:
                return handler(req.arguments)
            coro = self._async.get(name)
            if coro is not None:
                return await coro(req.arguments)
            return reply(RESULT_UNSUPPORTED, f"'{name}' command not supported.")
        except CommandError as exc:
            return reply(exc.result, exc.text)
        except Exception as exc:  # a bug in a handler costs one answer, never the server
            log.exception("internal error in command %s", name)
            return reply(RESULT_ERROR, f"internal error: {type(exc).__name__}: {exc}")

    # --- facts ------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def pools(self) -> list[views.PoolView]:
        return views.pool_views(self.server, self.subnets)

    def relationships(self) -> list[Reply]:
        if self.links is None:
            return []
        return [
            views.failover_view(link.status(), self.pool_labels, self.now())
            for link in self.links.links.values()
        ]

    def dhcp_counters(self) -> Reply:
        counters = self.counters
        commit = self.commit
        dropped: dict[str, int] = dict(counters.drops) if counters is not None else {}
        if commit is not None and commit.failures:
            dropped["journal-error"] = commit.withheld
        return {
            "received": counters.received if counters is not None else 0,
            "replied": counters.replied if counters is not None else 0,
            "dropped": dropped,
            "by-type": dict(self.server.counters),
        }

    # --- general -----------------------------------------------------------------------

    def _list_commands(self, args: Args) -> Reply:
        _allow("list-commands", args, frozenset())
        return reply(RESULT_SUCCESS, f"{len(self.names)} commands", self.names)

    def _version_get(self, args: Args) -> Reply:
        _allow("version-get", args, frozenset())
        return reply(RESULT_SUCCESS, __version__, {"extended": f"tandem {__version__} ({BUILD})"})

    def _status_get(self, args: Args) -> Reply:
        _allow("status-get", args, frozenset())
        now = self.clock()
        uptime = int(now - self.started)
        failover = [
            {
                "name": r["name"],
                "role": r["role"],
                "local-state": views.side_state(r, "local"),
                "partner-state": views.side_state(r, "partner"),
                "link": r["link"],
            }
            for r in self.relationships()
        ]
        return reply(
            RESULT_SUCCESS,
            "",
            {
                "pid": os.getpid(),
                "uptime": uptime,
                "reload": uptime,  # no reload yet: the configuration is as old as the process
                "version": __version__,
                "build": BUILD,
                "multi-threading-enabled": False,
                "sockets": {"status": "ready"},
                "config-file": self.config_path,
                "failover": failover,
                "pools": [p.as_json() for p in self.pools()],
                "dhcp": self.dhcp_counters(),
            },
        )

    def _config_get(self, args: Args) -> Reply:
        _allow("config-get", args, frozenset())
        return reply(
            RESULT_SUCCESS,
            f"the running configuration of {self.config_path or 'this server'} (a summary)",
            views.config_view(self.server, self.subnets, self.config_path),
        )

    def _config_test(self, args: Args) -> Reply:
        _allow("config-test", args, frozenset())
        if self.check_config is None or not self.config_path:
            raise CommandError("config-test: this server has no configuration file to test")
        problems = self.check_config(self.config_path)
        if problems:
            return reply(RESULT_ERROR, "\n".join(problems))
        return reply(
            RESULT_SUCCESS, f"Configuration seems sane ({self.config_path}); nothing applied."
        )

    async def _config_reload(self, args: Args) -> Reply:
        """SIGHUP's reload (tandem.io.reload): refused with the file:line:col errors, or
        applied; either way the answer says what happened."""
        _allow("config-reload", args, frozenset())
        if self.reload is None:
            return reply(
                RESULT_UNSUPPORTED,
                "config-reload: this server has no configuration file to reload",
            )
        result = await self.reload()
        return reply(
            RESULT_SUCCESS if result.ok else RESULT_ERROR,
            "\n".join(result.log_lines()),
            result.as_dict(),
        )

    def rebind(self, server: DhcpServer, links: FailoverLinks | None) -> None:
        """After a reload: answer from the new server (and its links) from now on."""
        self.server = server
        self.links = links
        self.subnets = views.SubnetIndex(server)
        self.pool_labels = views.pool_labels(server, self.subnets)

    # --- leases ------------------------------------------------------------------------

    def _lease_json(self, lease: Lease) -> Reply:
        return views.lease_json(lease, self.subnets)

    def _find(self, command: str, args: Args) -> Lease | None:
        """lease4-get / lease4-del: the lease by ip-address, or by hw-address / client-id."""
        _allow(command, args, _LEASE_KEYS)
        db = self.server.db
        subnet_id: int | None = None
        if "subnet-id" in args:
            subnet_id = _int(command, args, "subnet-id", low=1, high=0xFFFFFFFF)
        if "ip-address" in args:
            if "identifier" in args or "identifier-type" in args:
                raise CommandError(
                    f"{command}: give either 'ip-address' or 'identifier-type' and 'identifier'"
                )
            addr = int(_address(command, args["ip-address"]))
            candidates = [addr]
        elif "identifier-type" in args or "identifier" in args:
            kind = args.get("identifier-type")
            raw = _hex(command, args.get("identifier"))
            if kind == "hw-address":
                candidates = [a for (_ht, hw), lst in db.by_hw.items() if hw == raw for a in lst]
            elif kind == "client-id":
                candidates = list(db.by_uid.get(raw, []))
            else:
                raise CommandError(
                    f"{command}: 'identifier-type' {kind!r} is not supported "
                    "(hw-address or client-id)"
                )
        else:
            raise CommandError(
                f"{command} needs 'ip-address', or 'identifier-type' and 'identifier'"
            )
        found: list[Lease] = []
        for a in candidates:
            lease = db.by_addr.get(a)
            if lease is None or lease.binding_state not in BOUND_STATES:
                continue
            if subnet_id is not None and self.subnets.id_of(lease.address) != subnet_id:
                continue
            found.append(lease)
        if not found:
            return None
        # The client's most recent binding: active ones first, then the latest to start.
        return max(found, key=lambda x: (x.is_active(self.now()), x.starts or 0))

    def _lease4_get(self, args: Args) -> Reply:
        lease = self._find("lease4-get", args)
        if lease is None:
            return reply(RESULT_EMPTY, "Lease not found.")
        return reply(RESULT_SUCCESS, "IPv4 lease found.", self._lease_json(lease))

    def _bound(self, subnets: set[int] | None = None) -> list[Lease]:
        out = [
            lease
            for lease in self.server.db.by_addr.values()
            if lease.binding_state in BOUND_STATES
            and (subnets is None or self.subnets.id_of(lease.address) in subnets)
        ]
        out.sort(key=lambda x: int(x.address))
        return out

    def _lease_list(self, leases: list[Lease], extra: Reply | None = None) -> Reply:
        body: Reply = {"leases": [self._lease_json(x) for x in leases]}
        if extra:
            body.update(extra)
        code = RESULT_SUCCESS if leases else RESULT_EMPTY
        return reply(code, f"{len(leases)} IPv4 lease(s) found.", body)

    def _lease4_get_all(self, args: Args) -> Reply:
        _allow("lease4-get-all", args, frozenset({"subnets"}))
        wanted: set[int] | None = None
        if "subnets" in args:
            ids = args["subnets"]
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise CommandError("lease4-get-all: 'subnets' must be a list of subnet ids")
            wanted = {int(i) for i in ids}
        return self._lease_list(self._bound(wanted))

    def _lease4_get_page(self, args: Args) -> Reply:
        command = "lease4-get-page"
        _allow(command, args, frozenset({"from", "limit"}))
        start = args.get("from")
        if start is None:
            raise CommandError(f"{command}: 'from' is required (\"start\" or an IPv4 address)")
        after = -1 if start == "start" else int(_address(command, start, "from"))
        if "limit" not in args:
            raise CommandError(f"{command}: 'limit' is required")
        limit = _int(command, args, "limit", low=1, high=100_000)
        page = [x for x in self._bound() if int(x.address) > after][:limit]
        return self._lease_list(page, {"count": len(page)})

    async def _lease4_del(self, args: Args) -> Reply:
        lease = self._find("lease4-del", args)
        if lease is None:
            return reply(RESULT_EMPTY, "IPv4 lease not found.")
        commit = self.commit
        if commit is None:
            raise CommandError("lease4-del: this server has no lease file to commit to")
        out = self.server.delete_lease(int(lease.address), self.now())
        if out.drop is not None:
            return reply(RESULT_EMPTY, "IPv4 lease not found.")
        for changed in out.writes:
            commit.journal.append(changed)
        if out.log and self.emit is not None:
            self.emit(out.log)
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not durable.done():
                durable.set_result(None)

        commit.after_durable(done)
        links = self.links
        if links is not None:
            commit.after_durable(links.after_batch)  # the BNDUPD, once the lease is on disk
        try:
            await asyncio.wait_for(durable, COMMIT_TIMEOUT)
        except TimeoutError as exc:
            raise CommandError(
                "lease4-del: the lease file commit did not complete (see the log); the lease "
                "is freed in memory and will be written by the next commit"
            ) from exc
        return reply(RESULT_SUCCESS, "IPv4 lease deleted.")

    # --- statistics --------------------------------------------------------------------

    def _stat_lease4_get(self, args: Args) -> Reply:
        command = "stat-lease4-get"
        _allow(command, args, frozenset({"subnet-id", "subnet-range"}))
        rows = views.subnet_rows(self.server, self.subnets)
        label = "all subnets"
        if "subnet-id" in args:
            sid = _int(command, args, "subnet-id", low=1, high=0xFFFFFFFF)
            rows = [r for r in rows if r[0] == sid]
            label = f"subnet-id={sid}"
        elif "subnet-range" in args:
            rng = args["subnet-range"]
            if not isinstance(rng, dict):
                raise CommandError(f"{command}: 'subnet-range' must be an object")
            first = _int(command, rng, "first-subnet-id", low=1, high=0xFFFFFFFF)
            last = rng.get("last-subnet-id", 0xFFFFFFFF)
            if not isinstance(last, int) or isinstance(last, bool) or last < first:
                raise CommandError(f"{command}: 'last-subnet-id' must be >= 'first-subnet-id'")
            rows = [r for r in rows if first <= r[0] <= last]
            label = f"subnets {first}-{last}"
        body = {
            "result-set": {
                "timestamp": views.kea_time(self.clock()),
                "columns": list(views.STAT_COLUMNS),
                "rows": [list(r) for r in rows],
            }
        }
        code = RESULT_SUCCESS if rows else RESULT_EMPTY
        return reply(code, f"stat-lease4-get[{label}]: {len(rows)} rows found", body)

    def _statistic_get_all(self, args: Args) -> Reply:
        _allow("statistic-get-all", args, frozenset())
        stats = views.kea_statistics(self.dhcp_counters(), self.server, self.subnets)
        stamp = views.kea_time(self.clock())
        return reply(RESULT_SUCCESS, "", {name: [[value, stamp]] for name, value in stats.items()})

    # --- failover ----------------------------------------------------------------------

    def _relationship_name(self, command: str, args: Args, *, required: bool) -> str | None:
        _allow(command, args, frozenset({"name"}))
        links = self.links
        known = [] if links is None else sorted(links.links)
        name = args.get("name")
        if name is None:
            if required and len(known) == 1:
                return known[0]
            if required:
                raise CommandError(
                    f"{command} needs 'name': the failover peer's name (configured: {known})"
                )
            return None
        if not isinstance(name, str):
            raise CommandError(f"{command}: 'name' must be a string")
        if name not in known:
            raise CommandError(f"no failover peer named {name!r} (configured: {known})")
        return name

    def _failover_get(self, args: Args) -> Reply:
        name = self._relationship_name("failover-get", args, required=False)
        rels = [r for r in self.relationships() if name is None or r["name"] == name]
        if not rels:
            return reply(RESULT_EMPTY, "no failover relationship is configured")
        return reply(
            RESULT_SUCCESS, f"{len(rels)} failover relationship(s)", {"relationships": rels}
        )

    def _failover_partner_down(self, args: Args) -> Reply:
        name = self._relationship_name("failover-partner-down", args, required=True)
        assert name is not None and self.links is not None
        link = self.links.partner_down(name)
        view = views.failover_view(link.status(), self.pool_labels, self.now())
        state = views.side_state(view, "local")
        return reply(
            RESULT_SUCCESS,
            f"failover peer {name}: partner-down requested; my state is now {state}",
            view,
        )
