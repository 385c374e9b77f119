"""Kea's host_cmds over the command layer: ``reservation-add``, ``reservation-get``,
``reservation-get-all``, ``reservation-del``, and the I/O side of their replication.

A change goes the way of a lease change: the core table makes it (``core.reservations``), it
is appended to the journal as a ``host { dynamic; ... }`` block and committed (fsync) before
anything is answered or sent; then ``core.hostsync`` sends it to every connected Tandem peer,
and the command waits (at most ``PEER_WAIT`` seconds) for their answers. A peer that refuses
(its own conflict check) makes the command undo its change and answer result 1 with the
peer's reason. A peer that is not connected gets the change with the next connect's full
exchange; an ISC dhcpd partner never gets it, and the answer says so.

What the peers send on their own (their changes, the exchange on connect) arrives through
``HostSync.notify``: ``pump`` writes it, and once durable the held acks leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from ipaddress import AddressValueError, IPv4Address
from typing import TYPE_CHECKING, Final

from tandem.core.hostsync import HostSync, Pending
from tandem.core.reservations import (
    Reservation,
    ReservationError,
    Reservations,
    generated_name,
    hw_text,
    option_from_kea,
    option_to_kea,
    valid_name,
)
from tandem.io.commit import GroupCommit

if TYPE_CHECKING:
    from tandem.core.server import DhcpServer
    from tandem.io.commands import Commands

__all__ = ["PEER_WAIT", "HostService", "bind", "start"]

log = logging.getLogger("tandem")

#: How long reservation-add / -del wait for the connected peers' answers (seconds).
PEER_WAIT: Final = 2.0
COMMIT_TIMEOUT: Final = 10.0
#: Largest reservation (its JSON form) replicated in one extension message (body <= 1955).
MAX_RECORD: Final = 1500

Args = dict[str, object]
Reply = dict[str, object]
_ID_KEYS = frozenset(
    {"subnet-id", "ip-address", "identifier-type", "identifier", "operation-target"}
)
_ADD_KEYS = frozenset(
    {"subnet-id", "hw-address", "client-id", "ip-address", "hostname", "option-data", "name"}
)


class HostService:
    """The reservation commands of one running server, and the journal side of HostSync."""

    def __init__(
        self,
        table: Reservations,
        sync: HostSync,
        commit: GroupCommit | None,
        *,
        emit: Callable[[list[str]], None] | None = None,
        clock: Callable[[], float] | None = None,
        peer_wait: float = PEER_WAIT,
    ) -> None:
        self.table = table
        self.sync = sync
        self.commit = commit
        self.emit = emit
        self.peer_wait = peer_wait
        self._clock = clock
        self.commands: Commands | None = None
        self._futures: dict[int, asyncio.Future[Pending]] = {}
        self._pump_queued = False
        sync.notify = self.pump
        sync.on_answer = self._answered

    def register(self, commands: Commands) -> None:
        self.commands = commands
        commands.add("reservation-get", self.get)
        commands.add("reservation-get-all", self.get_all)
        commands.add_async("reservation-add", self.add)  # both in WRITE_COMMANDS
        commands.add_async("reservation-del", self.delete)

    # --- helpers -------------------------------------------------------------------------

    def now(self) -> int:
        if self._clock is not None:
            return int(self._clock())
        assert self.commands is not None
        return self.commands.now()

    def _subnet_id(self, rec: Reservation) -> int:
        if self.commands is None or rec.address is None:
            return 0
        return self.commands.subnets.id_of(rec.address)

    def view(self, rec: Reservation, source: str = "dynamic") -> Reply:
        """A reservation as Kea's reservation-get shows it (plus Tandem's name/source)."""
        out: Reply = {"subnet-id": self._subnet_id(rec)}
        if rec.hardware is not None:
            out["hw-address"] = hw_text(rec.hardware)
        if rec.client_id is not None:
            out["client-id"] = rec.client_id.hex(":")
        out["ip-address"] = str(rec.address)
        out["hostname"] = rec.hostname or ""
        out["option-data"] = [option_to_kea(c, d) for c, d in rec.options]
        out["next-server"] = "0.0.0.0"
        out["server-hostname"] = ""
        out["boot-file-name"] = ""
        out["client-classes"] = []
        out["name"] = rec.name
        out["source"] = source
        return out

    def _config_hosts(self) -> list[tuple[Reservation, str]]:
        """dhcpd.conf's hosts with one fixed address, in the table's shape (read-only)."""
        if self.commands is None:
            return []
        out: list[tuple[Reservation, str]] = []
        for h in self.commands.server.config.hosts:
            if not h.fixed_addresses:
                continue
            r = Reservation(h.name, h.hardware, h.client_id, h.fixed_addresses[0])
            out.append((r, f"configuration {h.loc.file}:{h.loc.line}"))
        return out

    def _lookup(self, command: str, args: Args) -> tuple[Reservation, str] | None:
        _allow(command, args, _ID_KEYS)
        sid = args.get("subnet-id")
        if sid is not None and (not isinstance(sid, int) or isinstance(sid, bool)):
            raise _Refused(f"{command}: 'subnet-id' must be an integer")
        if "ip-address" in args:
            if "identifier" in args or "identifier-type" in args:
                raise _Refused(
                    f"{command}: give either 'ip-address' or 'identifier-type' and 'identifier'"
                )
            addr = _address(command, args["ip-address"])

            def match(r: Reservation) -> bool:
                return r.address == addr

        elif "identifier-type" in args or "identifier" in args:
            kind = args.get("identifier-type")
            raw = _hex(command, args.get("identifier"), "identifier")
            if kind == "hw-address":

                def match(r: Reservation) -> bool:
                    return r.hardware is not None and r.hardware[1] == raw

            elif kind == "client-id":

                def match(r: Reservation) -> bool:
                    return r.client_id == raw

            else:
                raise _Refused(
                    f"{command}: 'identifier-type' {kind!r} is not supported "
                    "(hw-address or client-id)"
                )
        else:
            raise _Refused(f"{command} needs 'ip-address', or 'identifier-type' and 'identifier'")
        found = [(r, "dynamic") for r in self.table.live() if match(r)]
        found += [(r, s) for r, s in self._config_hosts() if match(r)]
        if sid:
            found = [(r, s) for r, s in found if self._subnet_id(r) == sid]
        return found[0] if found else None

    # --- read commands -------------------------------------------------------------------

    def get(self, args: Args) -> Reply:
        try:
            hit = self._lookup("reservation-get", args)
        except _Refused as exc:
            return _reply(1, exc.text)
        if hit is None:
            return _reply(3, "Host not found.")
        return _reply(0, "Host found.", self.view(*hit))

    def get_all(self, args: Args) -> Reply:
        try:
            _allow("reservation-get-all", args, frozenset({"subnet-id", "operation-target"}))
        except _Refused as exc:
            return _reply(1, exc.text)
        sid = args.get("subnet-id")
        if sid is not None and (not isinstance(sid, int) or isinstance(sid, bool)):
            return _reply(1, "reservation-get-all: 'subnet-id' must be an integer")
        hosts = [self.view(r) for r in self.table.live()]
        hosts += [self.view(r, s) for r, s in self._config_hosts()]
        if sid is not None:
            hosts = [h for h in hosts if h["subnet-id"] == sid]
        return _reply(0 if hosts else 3, f"{len(hosts)} IPv4 host(s) found.", {"hosts": hosts})

    # --- write commands ------------------------------------------------------------------

    async def add(self, args: Args) -> Reply:
        try:
            rec = self._parse_add(args)
            stamped, prev = self.table.add(rec, self.now())
        except (_Refused, ReservationError) as exc:
            text = exc.text if isinstance(exc, _Refused) else exc.reason
            return _reply(1, f"Host not added: {text}")
        self._emit(
            [f"reservation-add: host {stamped.name} ({stamped.identifier()}) -> {stamped.address}"]
        )
        return await self._replicate("reservation-add", stamped, prev, "Host added.")

    async def delete(self, args: Args) -> Reply:
        try:
            hit = self._lookup("reservation-del", args)
        except _Refused as exc:
            return _reply(1, exc.text)
        if hit is None:
            return _reply(3, "Host not deleted (not found).")
        rec, source = hit
        if source != "dynamic":
            return _reply(
                1,
                f"Host not deleted: host {rec.name} is in the {source}; edit the file and reload",
            )
        tomb, prev = self.table.delete(rec.name, self.now())
        self._emit([f"reservation-del: host {rec.name} ({rec.identifier()}) deleted"])
        return await self._replicate("reservation-del", tomb, prev, "Host deleted.")

    def _parse_add(self, args: Args) -> Reservation:
        _allow("reservation-add", args, frozenset({"reservation", "operation-target"}))
        res = args.get("reservation")
        if not isinstance(res, dict):
            raise _Refused("reservation-add needs a 'reservation' object")
        _allow("reservation-add", res, _ADD_KEYS)
        hardware: tuple[int, bytes] | None = None
        client_id: bytes | None = None
        if "hw-address" in res:
            hardware = (1, _hex("reservation-add", res["hw-address"], "hw-address"))
            if len(hardware[1]) > 16:
                raise _Refused("reservation-add: 'hw-address' is longer than 16 bytes")
        if "client-id" in res:
            client_id = _hex("reservation-add", res["client-id"], "client-id")
        if (hardware is None) == (client_id is None):
            raise _Refused("reservation-add: give one of 'hw-address' or 'client-id'")
        if "ip-address" not in res:
            raise _Refused("reservation-add: 'ip-address' is required")
        addr = _address("reservation-add", res["ip-address"])
        hostname = res.get("hostname")
        if hostname is not None and (not isinstance(hostname, str) or not valid_name(hostname)):
            raise _Refused(
                "reservation-add: 'hostname' must be a host name (letters, digits, hyphens, dots)"
            )
        name = res.get("name", hostname)
        if name is not None and (not isinstance(name, str) or not valid_name(name)):
            raise _Refused("reservation-add: 'name' must be a host name")
        options: list[tuple[int, bytes]] = []
        raw = res.get("option-data", [])
        if not isinstance(raw, list):
            raise _Refused("reservation-add: 'option-data' must be a list")
        for item in raw:
            if not isinstance(item, dict):
                raise _Refused("reservation-add: each 'option-data' entry must be an object")
            oname, code, data = item.get("name"), item.get("code"), item.get("data", "")
            csv = item.get("csv-format", True)
            if (
                (oname is not None and not isinstance(oname, str))
                or (code is not None and (not isinstance(code, int) or isinstance(code, bool)))
                or not isinstance(data, str)
                or not isinstance(csv, bool)
            ):
                raise _Refused(
                    "reservation-add: 'option-data' entries have name/code, data, csv-format"
                )
            try:
                options.append(option_from_kea(oname, code, data, csv))
            except ReservationError as exc:
                raise _Refused(f"reservation-add: {exc.reason}") from None
        rec = Reservation(
            name or generated_name(hardware, client_id),
            hardware,
            client_id,
            addr,
            hostname,
            tuple(options),
        )
        if len(json.dumps(rec.to_json())) > MAX_RECORD:
            raise _Refused(
                "reservation-add: the reservation is too large to replicate (options: at most "
                f"{MAX_RECORD} bytes of JSON in all)"
            )
        sid = res.get("subnet-id")
        if sid is not None:
            if not isinstance(sid, int) or isinstance(sid, bool):
                raise _Refused("reservation-add: 'subnet-id' must be an integer")
            actual = self._subnet_id(rec)
            if actual and sid not in (0, actual):
                raise _Refused(
                    f"reservation-add: {addr} is not in subnet-id {sid} "
                    f"(it is in subnet-id {actual})"
                )
        return rec

    async def _replicate(
        self, command: str, rec: Reservation, prev: Reservation | None, done: str
    ) -> Reply:
        try:
            await self._durable(rec)
        except TimeoutError:
            return _reply(
                1,
                f"{command}: the lease file commit did not complete (see the log); the change "
                "is made in memory and will be written by the next commit",
            )
        p = self.sync.publish(rec)
        self._flush_links()
        if p.waiting:
            fut: asyncio.Future[Pending] = asyncio.get_running_loop().create_future()
            self._futures[p.op] = fut
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.peer_wait)
            except TimeoutError:
                pass
            finally:
                self._futures.pop(p.op, None)
                self.sync.forget(p)
        refused = [(peer, why) for peer, (ok, why) in sorted(p.answers.items()) if not ok]
        if refused:
            back = self.table.restore(rec.name, prev)
            if any(ok for ok, _ in p.answers.values()):
                # Another peer took it: the undo is a new change, which it takes too.
                back = self.table.restamp(back, self.now())
                self.sync.publish(back)
            with contextlib.suppress(TimeoutError):
                await self._durable(back)
            self._flush_links()
            peer, why = refused[0]
            self._emit(
                [f"{command}: host {rec.name} undone: failover peer {peer} refused it: {why}"]
            )
            verb = "added" if command == "reservation-add" else "deleted"
            return _reply(1, f"Host not {verb}: failover peer {peer} refused it: {why}")
        return _reply(0, " ".join([done, *self._peer_notes(p)]))

    def _peer_notes(self, p: Pending) -> list[str]:
        notes: list[str] = []
        links = None if self.commands is None else self.commands.links
        names = [] if links is None else sorted(links.links)
        for name in names:
            if name in p.answers:
                _, why = p.answers[name]
                notes.append(
                    f"Failover peer {name} has it." if not why else f"Failover peer {name}: {why}."
                )
            elif name in self.sync.peers:
                notes.append(
                    f"Failover peer {name} did not answer within {self.peer_wait:g} s; "
                    "it gets the change with the next exchange."
                )
            elif _link_up(links, name):
                notes.append(
                    f"The partner of failover peer {name} is ISC dhcpd: it does not have this "
                    "reservation (add it to its dhcpd.conf)."
                )
            elif name in self.sync.seen:
                notes.append(
                    f"Failover peer {name} is not connected: the change is sent when the link "
                    "is back."
                )
            else:
                notes.append(
                    f"Failover peer {name} is not connected: the change is sent when the link is "
                    "back (an ISC dhcpd partner never gets it)."
                )
        return notes

    # --- the journal side ----------------------------------------------------------------

    async def _durable(self, *recs: Reservation) -> None:
        commit = self.commit
        if commit is None:
            return
        for rec in recs:
            commit.journal.append_host(rec)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not fut.done():
                fut.set_result(None)

        commit.after_durable(done)
        await asyncio.wait_for(fut, COMMIT_TIMEOUT)

    def pump(self) -> None:
        """HostSync has writes, log lines or held acks: handled on the loop's next turn
        (``notify`` comes from inside the engine's receive, which must finish first)."""
        if self._pump_queued:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pump_now()
            return
        self._pump_queued = True
        loop.call_soon(self._pump_now)

    def _pump_now(self) -> None:
        """Write what HostSync took in, then send the acks that wait for it once durable."""
        self._pump_queued = False
        lines = self.sync.take_log()
        for loud, text in lines:
            (log.error if loud else log.info)("%s", text)
        if lines and self.emit is not None:
            self.emit([t for _, t in lines])
        writes = self.sync.take_writes()
        commit = self.commit
        if commit is None:
            self.sync.durable()
            return
        for rec in writes:
            commit.journal.append_host(rec)

        def durable() -> None:
            self.sync.durable()
            self._flush_links()

        commit.after_durable(durable)

    def _flush_links(self) -> None:
        links = None if self.commands is None else self.commands.links
        if links is not None:
            links.after_batch()

    def _answered(self, p: Pending) -> None:
        fut = self._futures.get(p.op)
        if fut is not None and not fut.done():
            fut.set_result(p)

    def _emit(self, lines: list[str]) -> None:
        if self.emit is not None:
            self.emit(lines)


def _link_up(links: object, name: str) -> bool:
    link = getattr(links, "links", {}).get(name)
    if link is None:
        return False
    status = link.status()
    return bool(status.get("link") == "up")


class _Refused(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _reply(result: int, text: str, arguments: object = None) -> Reply:
    out: Reply = {"result": result, "text": text}
    if arguments is not None:
        out["arguments"] = arguments
    return out


def _allow(command: str, args: Args, allowed: frozenset[str]) -> None:
    extra = sorted(set(args) - allowed)
    if extra:
        raise _Refused(
            f"{command}: unknown argument {extra[0]!r} (accepted: {', '.join(sorted(allowed))})"
        )


def _address(command: str, value: object) -> IPv4Address:
    if not isinstance(value, str):
        raise _Refused(f"{command}: 'ip-address' must be a string like \"192.0.2.100\"")
    try:
        return IPv4Address(value)
    except AddressValueError:
        raise _Refused(f"{command}: 'ip-address' is not an IPv4 address: {value!r}") from None


def _hex(command: str, value: object, key: str) -> bytes:
    if not isinstance(value, str):
        raise _Refused(f'{command}: {key!r} must be a string like "52:54:00:12:34:56"')
    digits = value.replace(":", "").replace("-", "").replace(" ", "")
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise _Refused(f"{command}: {key!r} is not hexadecimal: {value!r}") from None
    if not raw or len(raw) > 255:
        raise _Refused(f"{command}: {key!r} must be 1 to 255 bytes")
    return raw


def feature() -> HostSync:
    """The replication feature, made before the failover engines (they take it at
    construction) over a table that ``start`` binds once the server exists."""
    return HostSync(Reservations())


def start(
    server: DhcpServer,
    saved: Iterable[Reservation],
    commit: GroupCommit | None,
    commands: Commands,
    sync: HostSync | None = None,
    *,
    emit: Callable[[list[str]], None] | None = None,
) -> HostService:
    """The reservation table of a server starting up: the lease file's dynamic hosts served,
    the commands registered. Stamps name this server by its failover address (or "local")."""
    sync = sync or feature()
    table = sync.table
    peers = server.config.failover_peers
    table.origin = str(peers[0].address) if peers else "local"
    bind(table, server)
    for line in table.load(saved):
        log.warning("%s", line)
        if emit is not None:
            emit([line])
    service = HostService(table, sync, commit, emit=emit)
    service.register(commands)
    return service


def bind(table: Reservations, server: DhcpServer) -> None:
    """Serve the table through ``server`` (at start-up, and after a reload built a new one)."""
    table.bind(server.ctx.hosts, server.db, server.topo, server.config.hosts)
