"""Dynamic host reservations: the table beside dhcpd.conf's ``host`` declarations.

A reservation (Kea's host_cmds vocabulary: ``reservation-add`` ...) ties one client, by
hardware address or client identifier, to one fixed address, with an optional host name and
options. It becomes a ``config.model.Host`` in the server's ``HostIndex``, the same index the
configuration's hosts are in, so a packet pays nothing for the table: the one host lookup it
already does finds both kinds. Its address joins ``LeaseDB.excluded``: while reserved, an
address inside a pool is given to nobody else (neither allocated nor handed back to an earlier
holder).

Every change carries a ``Stamp`` (time, sequence, origin): the last writer wins when two peers
compare their tables (``core.hostsync``), and a deletion stays as a tombstone (``deleted``) so
it wins over the older record it removed. The lease file keeps them as dhcpd's OMAPI writes
host objects (``store.leasehosts``), so a restart reads the same table back.

Conflicts are refused with the reason (``ReservationError``): an address outside every
subnet (or a subnet's network or broadcast address), an address or identifier already
reserved (in dhcpd.conf or here), an address bound (ACTIVE) to another client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from ipaddress import AddressValueError, IPv4Address
from typing import Any

from tandem.config.model import Host, OptionSet
from tandem.core.lease import BindingState
from tandem.core.pools import LeaseDB
from tandem.core.scope import HostIndex
from tandem.core.topology import Topology
from tandem.wire import optformat
from tandem.wire.errors import FormatError
from tandem.wire.options import default_table

__all__ = [
    "NO_STAMP",
    "Reservation",
    "ReservationError",
    "Reservations",
    "Stamp",
    "hw_text",
    "option_from_kea",
    "option_to_kea",
]

#: (time in seconds, sequence within this origin, origin): the order of writers.
Stamp = tuple[int, int, str]
#: The stamp of "never written": loses against every real one.
NO_STAMP: Stamp = (0, 0, "")

HOST_NAME_CODE = 12
_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")
_HW_NAMES = {1: "ethernet", 6: "token-ring", 8: "fddi", 32: "infiniband"}


class ReservationError(Exception):
    """A reservation refused; ``reason`` says why, in words an operator acts on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hw_text(hw: tuple[int, bytes]) -> str:
    return ":".join(f"{b:02x}" for b in hw[1])


@dataclass(frozen=True, slots=True)
class Reservation:
    """One dynamic host: live (``address`` set) or a tombstone (``deleted``)."""

    name: str
    hardware: tuple[int, bytes] | None = None
    client_id: bytes | None = None
    address: IPv4Address | None = None
    hostname: str | None = None
    options: tuple[tuple[int, bytes], ...] = ()  # dhcp-space code -> payload as on the wire
    deleted: bool = False
    stamp: Stamp = NO_STAMP

    def identifier(self) -> str:
        if self.hardware is not None:
            return f"hw-address {hw_text(self.hardware)}"
        if self.client_id is not None:
            return f"client-id {self.client_id.hex(':')}"
        return "no identifier"

    def to_host(self) -> Host:
        """The ``Host`` the server serves: fixed address, options, host name (option 12)."""
        table = default_table()
        stmts: list[OptionSet] = []
        codes = {code for code, _ in self.options}
        if self.hostname is not None and HOST_NAME_CODE not in codes:
            stmts.append(OptionSet("dhcp", HOST_NAME_CODE, "host-name", self.hostname.encode()))
        for code, data in self.options:
            info = table.by_code("dhcp", code)
            stmts.append(OptionSet("dhcp", code, info.name if info else f"option-{code}", data))
        fixed = (self.address,) if self.address is not None else ()
        return Host(
            self.name,
            hardware=self.hardware,
            client_id=self.client_id,
            fixed_addresses=fixed,
            chain=(tuple(stmts),) if stmts else (),
        )

    def to_json(self) -> dict[str, object]:
        """The form the peers exchange (``core.hostsync``)."""
        out: dict[str, object] = {"name": self.name, "stamp": list(self.stamp)}
        if self.deleted:
            out["deleted"] = True
            return out
        if self.hardware is not None:
            out["hw"] = [self.hardware[0], self.hardware[1].hex()]
        if self.client_id is not None:
            out["uid"] = self.client_id.hex()
        if self.address is not None:
            out["ip"] = str(self.address)
        if self.hostname is not None:
            out["hostname"] = self.hostname
        if self.options:
            out["options"] = [[code, data.hex()] for code, data in self.options]
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Reservation:
        """The peer's form back; ``ReservationError`` for anything malformed."""
        try:
            name = obj["name"]
            stamp = obj["stamp"]
            if not isinstance(name, str) or not valid_name(name):
                raise ReservationError(f"bad host name {name!r}")
            if not (isinstance(stamp, list) and len(stamp) == 3):
                raise ReservationError("bad stamp")
            t, seq, origin = stamp
            if not (isinstance(t, int) and isinstance(seq, int) and isinstance(origin, str)):
                raise ReservationError("bad stamp")
            st: Stamp = (t, seq, origin)
            if obj.get("deleted") is True:
                return cls(name, deleted=True, stamp=st)
            hw = obj.get("hw")
            hardware: tuple[int, bytes] | None = None
            if hw is not None:
                if not (isinstance(hw, list) and len(hw) == 2 and isinstance(hw[0], int)):
                    raise ReservationError("bad hw")
                hardware = (hw[0], bytes.fromhex(str(hw[1])))
            uid = obj.get("uid")
            client_id = bytes.fromhex(uid) if isinstance(uid, str) else None
            ip = obj.get("ip")
            if not isinstance(ip, str):
                raise ReservationError("a live reservation needs an address")
            hostname = obj.get("hostname")
            if hostname is not None and not isinstance(hostname, str):
                raise ReservationError("bad hostname")
            opts: list[tuple[int, bytes]] = []
            raw = obj.get("options", [])
            if not isinstance(raw, list):
                raise ReservationError("bad options")
            for item in raw:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
                    raise ReservationError("bad option")
                opts.append((item[0], bytes.fromhex(str(item[1]))))
            return cls(name, hardware, client_id, IPv4Address(ip), hostname, tuple(opts), False, st)
        except (KeyError, ValueError, AddressValueError) as exc:
            raise ReservationError(f"malformed reservation: {exc}") from None


def valid_name(name: str) -> bool:
    """A host name dhcpd's parse_host_name reads back (labels of letters, digits, hyphens)."""
    return len(name) <= 253 and _NAME.fullmatch(name) is not None


def generated_name(hardware: tuple[int, bytes] | None, client_id: bytes | None) -> str:
    """The name of a reservation given without a hostname (from its identifier)."""
    if hardware is not None:
        return "tandem-hw-" + hardware[1].hex()
    assert client_id is not None
    return "tandem-id-" + client_id.hex()[:120]


# --- options as Kea writes them ----------------------------------------------------------


def option_from_kea(name: str | None, code: int | None, data: str, csv: bool) -> tuple[int, bytes]:
    """One ``option-data`` entry (``name``/``code`` + ``data``) -> (code, payload).

    With ``csv`` (Kea's default ``csv-format``), ``data`` is comma-separated values along the
    option's dhcpd format (``"192.0.2.1, 192.0.2.2"``); without, it is hexadecimal.
    """
    table = default_table()
    info = table.by_name("dhcp", name) if name is not None else None
    if name is not None and info is None:
        raise ReservationError(f"unknown option name {name!r}")
    if info is None:
        if code is None or not 1 <= code <= 254:
            raise ReservationError("option-data needs a 'name' or a 'code' from 1 to 254")
        info = table.by_code("dhcp", code)
    if info is not None and code is not None and info.code != code:
        raise ReservationError(f"option {info.name} has code {info.code}, not {code}")
    the_code = info.code if info is not None else code
    assert the_code is not None
    if the_code in (0, 255, 53, 54, 61, 82):
        raise ReservationError(f"option {the_code} cannot be reserved for a host")
    if not csv or info is None:
        try:
            raw = bytes.fromhex(data.replace(":", "").replace(" ", ""))
        except ValueError:
            raise ReservationError(f"option {the_code}: data is not hexadecimal") from None
        return the_code, raw
    try:
        return the_code, optformat.encode(info.format, _values(info.format, data))
    except (FormatError, ValueError) as exc:
        raise ReservationError(f"option {info.name}: {exc}") from None


def _values(fmt: str, data: str) -> list[object]:
    spec = optformat.atom_kinds(fmt)
    if len(spec.atoms) == 1 and spec.atoms[0].code in "tkU":
        return [data]
    tokens = [t.strip() for t in data.split(",")] if data.strip() else []
    out: list[object] = []
    atoms = spec.walk()
    for tok in tokens:
        atom = next(atoms)
        code = atom.code
        if code == "I":
            out.append(IPv4Address(tok))
        elif code == "f":
            out.append(tok.lower() in ("true", "1", "on", "yes"))
        elif code in "XE":
            out.append(bytes.fromhex(tok.replace(":", "")))
        elif code in "tkUdD":
            out.append(tok.strip('"'))
        else:
            out.append(int(tok, 0))
    return out


def option_to_kea(code: int, data: bytes) -> dict[str, object]:
    """(code, payload) -> Kea's ``option-data`` entry."""
    info = default_table().by_code("dhcp", code)
    if info is None:
        return {"code": code, "csv-format": False, "data": data.hex()}
    try:
        text = optformat.to_text(info.format, data)
    except FormatError:
        return {"name": info.name, "code": code, "csv-format": False, "data": data.hex()}
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"' and text.count('"') == 2:
        text = text[1:-1]
    return {"name": info.name, "code": code, "data": text}


# --- the table ---------------------------------------------------------------------------


class Reservations:
    """The dynamic hosts of one server, live and deleted, by name.

    ``bind`` attaches the table to a server's host index, lease database and topology (at
    start-up, and again after a reload built a new server). ``origin`` names this server in
    stamps (its failover address, or the host name).
    """

    def __init__(self, origin: str = "") -> None:
        self.origin = origin
        self.entries: dict[str, Reservation] = {}
        self._seq = 0
        self._hosts: HostIndex | None = None
        self._db: LeaseDB | None = None
        self._topo: Topology | None = None
        self._config: tuple[Host, ...] = ()

    # --- binding -----------------------------------------------------------------------

    def bind(self, hosts: HostIndex, db: LeaseDB, topo: Topology, config: Iterable[Host]) -> None:
        """Serve the live entries through ``hosts`` (a new server's, after a reload: its
        configuration may now hold a host that conflicts; that entry is left unserved)."""
        self._hosts, self._db, self._topo = hosts, db, topo
        self._config = tuple(config)
        for rec in self.entries.values():
            if not rec.deleted and self.conflict(rec) is None:
                self._index(rec)

    def load(self, records: Iterable[Reservation]) -> list[str]:
        """Entries read from the lease file (the last per name); returns warnings for the
        ones the configuration now contradicts (kept, not served)."""
        warnings: list[str] = []
        for rec in records:
            self._seq = max(self._seq, rec.stamp[1]) if rec.stamp[2] == self.origin else self._seq
            self.entries[rec.name] = rec
        if self._hosts is not None:
            for rec in self.entries.values():
                if rec.deleted:
                    continue
                why = self.conflict(rec)
                if why is None:
                    self._index(rec)
                else:
                    warnings.append(f"host {rec.name} (dynamic) not served: {why}")
        return warnings

    # --- queries -----------------------------------------------------------------------

    def live(self) -> list[Reservation]:
        return sorted(
            (r for r in self.entries.values() if not r.deleted),
            key=lambda r: int(r.address or 0),
        )

    def find(
        self,
        *,
        address: IPv4Address | None = None,
        hardware: bytes | None = None,
        client_id: bytes | None = None,
    ) -> Reservation | None:
        for r in self.entries.values():
            if r.deleted:
                continue
            if address is not None and r.address == address:
                return r
            if hardware is not None and r.hardware is not None and r.hardware[1] == hardware:
                return r
            if client_id is not None and r.client_id == client_id:
                return r
        return None

    def conflict(self, rec: Reservation) -> str | None:
        """Why ``rec`` cannot be served next to everything else (None: it can)."""
        topo, db = self._topo, self._db
        assert topo is not None and db is not None, "bind() first"
        addr = rec.address
        if addr is None:
            return "no ip-address"
        if rec.hardware is None and rec.client_id is None:
            return "needs a hw-address or a client-id"
        st = topo.subnet_of(addr)
        if st is None:
            return f"address {addr} is outside every subnet"
        n = st.network
        if n.prefixlen < 31 and addr in (n.network_address, n.broadcast_address):
            return f"address {addr} is the network or broadcast address of {n}"
        for h in self._config:
            where = f"host {h.name} in {h.loc.file}:{h.loc.line}"
            if h.name == rec.name:
                return f"the name {rec.name} is used by {where}"
            if addr in h.fixed_addresses:
                return f"address {addr} is already reserved for {where}"
            if rec.hardware is not None and h.hardware == rec.hardware:
                return f"hw-address {hw_text(rec.hardware)} is already reserved for {where}"
            if rec.client_id is not None and h.client_id == rec.client_id:
                return f"client-id {rec.client_id.hex(':')} is already reserved for {where}"
        for other in self.entries.values():
            if other.deleted or other.name == rec.name:
                continue
            where = f"host {other.name} (dynamic)"
            if other.address == addr:
                return f"address {addr} is already reserved for {where}"
            if rec.hardware is not None and other.hardware == rec.hardware:
                return f"hw-address {hw_text(rec.hardware)} is already reserved for {where}"
            if rec.client_id is not None and other.client_id == rec.client_id:
                return f"client-id {rec.client_id.hex(':')} is already reserved for {where}"
        lease = db.by_addr.get(int(addr))
        if lease is not None and lease.binding_state is BindingState.ACTIVE:
            mine = (
                lease.uid == rec.client_id
                if lease.uid is not None and rec.client_id is not None
                else rec.hardware is not None and lease.hardware == rec.hardware
            )
            if not mine:
                holder = hw_text(lease.hardware) if lease.hardware else "another client"
                return f"address {addr} is leased to {holder}"
        return None

    # --- changes -----------------------------------------------------------------------

    def stamp(self, now: int, after: Stamp = NO_STAMP) -> Stamp:
        """A new stamp of ours, later than ``after`` (the entry it replaces) even when the
        peer's clock is ahead of ours or the change comes in the same second."""
        t = max(now, after[0])
        self._seq = max(self._seq + 1, after[1] + 1 if t == after[0] else 0)
        return (t, self._seq, self.origin)

    def _after(self, name: str) -> Stamp:
        old = self.entries.get(name)
        return NO_STAMP if old is None else old.stamp

    def add(self, rec: Reservation, now: int) -> tuple[Reservation, Reservation | None]:
        """A new local reservation: (the stamped record to write, the entry it replaced)."""
        if rec.name in self.entries and not self.entries[rec.name].deleted:
            raise ReservationError(f"a host named {rec.name} is already reserved")
        why = self.conflict(rec)
        if why is not None:
            raise ReservationError(why)
        stamped = replace(rec, stamp=self.stamp(now, self._after(rec.name)))
        return stamped, self._put(stamped)

    def delete(self, name: str, now: int) -> tuple[Reservation, Reservation | None]:
        """Delete a live entry: (the tombstone to write, the entry it replaced)."""
        old = self.entries.get(name)
        if old is None or old.deleted:
            raise ReservationError(f"no dynamic host named {name}")
        tomb = Reservation(name, deleted=True, stamp=self.stamp(now, old.stamp))
        return tomb, self._put(tomb)

    def merge(self, rec: Reservation) -> str | None:
        """A record from the peer: applied when newer than ours and conflict-free.

        Returns None when applied (or already there), else the reason it was refused.
        """
        mine = self.entries.get(rec.name)
        if mine is not None and mine.stamp == rec.stamp:
            return None
        if mine is not None and mine.stamp > rec.stamp:
            return f"host {rec.name}: this server has a newer change ({_when(mine.stamp)})"
        if not rec.deleted:
            why = self.conflict(rec)
            if why is not None:
                return why
        self._put(rec)
        return None

    def restore(self, name: str, previous: Reservation | None) -> Reservation:
        """Undo a local change (the peer refused it): back to ``previous``; returns the
        record to write (a stamp-less tombstone when there was nothing before)."""
        back = previous if previous is not None else Reservation(name, deleted=True)
        self._put(back)
        return back

    def restamp(self, rec: Reservation, now: int) -> Reservation:
        """``rec`` again as a new change of ours (an undo some peer must take too)."""
        again = replace(rec, stamp=self.stamp(now, self._after(rec.name)))
        self._put(again)
        return again

    def _put(self, rec: Reservation) -> Reservation | None:
        old = self.entries.get(rec.name)
        if old is not None and not old.deleted:
            self._unindex(old)
        self.entries[rec.name] = rec
        if not rec.deleted and self._hosts is not None:
            self._index(rec)
        return old

    # --- the server's indexes ----------------------------------------------------------

    def _index(self, rec: Reservation) -> None:
        hosts, db = self._hosts, self._db
        assert hosts is not None and db is not None and rec.address is not None
        host = rec.to_host()
        if rec.client_id is not None:
            hosts.by_uid.setdefault(rec.client_id, []).append(host)
        if rec.hardware is not None:
            hosts.by_hw.setdefault(rec.hardware, []).append(host)
        a = int(rec.address)
        hosts.fixed.add(a)
        db.excluded.add(a)

    def _unindex(self, rec: Reservation) -> None:
        hosts, db = self._hosts, self._db
        if hosts is None or db is None or rec.address is None:
            return
        if rec.client_id is not None:
            _drop(hosts.by_uid, rec.client_id, rec.name)
        if rec.hardware is not None:
            _drop(hosts.by_hw, rec.hardware, rec.name)
        a = int(rec.address)
        if any(a in h.fixed_addresses for h in self._config):
            return
        hosts.fixed.discard(a)
        db.excluded.discard(a)
        # Back into its pool's free queue (a never-used address becomes a FREE lease).
        if db.locate(a) is not None:
            lease = db.materialize(a)
            if lease.binding_state in (BindingState.FREE, BindingState.BACKUP):
                db.requeue(lease)


def _drop(table: dict[Any, list[Host]], key: object, name: str) -> None:
    lst = table.get(key)
    if lst:
        lst[:] = [h for h in lst if h.name != name]
        if not lst:
            del table[key]


def _when(stamp: Stamp) -> str:
    return f"stamp {stamp[0]}.{stamp[1]} by {stamp[2] or '?'}"


def describe_hw(hw: tuple[int, bytes]) -> str:
    return f"{_HW_NAMES.get(hw[0], f'unknown-{hw[0]}')} {hw_text(hw)}"
