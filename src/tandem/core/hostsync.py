"""Replicated reservations: the extension-channel feature that keeps two Tandem peers' dynamic
host tables (``core.reservations``) equal.

Three message kinds travel on the Tandem extension channel (``core.failover.ext``; only
between two Tandems, never towards dhcpd):

* ``hosts-sync`` ``{"recs": [...], "more": bool}``: on every (re)connect each side sends its
  whole table, live entries and tombstones, in chunks. The receiver merges each record: the
  newer stamp wins (time, then sequence, then origin); one that conflicts with what the
  receiver serves is refused and logged loud, and the receiver keeps its own.
* ``host-op`` ``{"op": N, "rec": {...}}``: one change made on the peer (``reservation-add``
  or ``-del``). The receiver checks it against its side (addresses, identifiers, leases),
  applies and writes it, and answers once the write is durable.
* ``host-ack`` ``{"op": N, "ok": bool, "reason": str}``: that answer. The command that made
  the change waits for it (bounded) and, if refused, undoes its own change.

Pure: ``send`` comes from the engine (``ext_up``); writes to persist, log lines and acks held
until those writes are durable are taken by the I/O layer (``take_writes``, ``take_log``,
``durable``); ``notify`` tells it there is something to take outside a command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tandem.core.reservations import Reservation, ReservationError, Reservations

__all__ = ["KINDS", "HostSync", "Pending"]

Send = Callable[[str, Mapping[str, object]], None]

KINDS = frozenset({"hosts-sync", "host-op", "host-ack"})
#: Largest JSON text of the records in one ``hosts-sync`` (a failover frame is 2048 bytes).
CHUNK_BYTES = 1200


@dataclass(slots=True)
class Pending:
    """A local change sent to peers, waiting for their answers."""

    op: int
    rec: Reservation
    waiting: set[str]
    answers: dict[str, tuple[bool, str]] = field(default_factory=dict)


class HostSync:
    """The ``ExtFeature`` of replicated reservations, over one server's table."""

    kinds: frozenset[str] = KINDS

    def __init__(self, table: Reservations) -> None:
        self.table = table
        #: Connected Tandem peers (relationship name -> send), between ext_up and ext_down.
        self.peers: dict[str, Send] = {}
        #: Relationships whose peer identified as Tandem at least once (this process).
        self.seen: set[str] = set()
        self.pending: dict[int, Pending] = {}
        self.refused = 0  # records refused from a peer (sync or op)
        self._writes: list[Reservation] = []
        self._log: list[tuple[bool, str]] = []  # (loud, text)
        self._held: list[tuple[str, str, dict[str, object]]] = []  # acks after durable
        self._next_op = 0
        #: Set by the I/O layer: called when there is something to persist or send.
        self.notify: Callable[[], None] | None = None
        #: Set by the I/O layer: called when a pending op is fully answered.
        self.on_answer: Callable[[Pending], None] | None = None

    # --- ExtFeature ----------------------------------------------------------------------

    def ext_up(self, peer: str, send: Send, now: int) -> None:
        self.peers[peer] = send
        self.seen.add(peer)
        recs = [r.to_json() for r in self.table.entries.values() if r.stamp[0]]
        chunks = _chunks(recs)
        for i, chunk in enumerate(chunks):
            send("hosts-sync", {"recs": chunk, "more": i + 1 < len(chunks)})
        self._log.append((False, f"failover peer {peer}: sent {len(recs)} dynamic host(s)"))
        self._poke()

    def ext_down(self, peer: str, now: int) -> None:
        self.peers.pop(peer, None)
        self._held = [h for h in self._held if h[0] != peer]
        for p in list(self.pending.values()):
            if peer in p.waiting:
                self._answer(p, peer, True, "link down before the answer: sent again on reconnect")

    def ext_message(self, peer: str, kind: str, body: Mapping[str, object], now: int) -> None:
        if kind == "hosts-sync":
            recs = body.get("recs")
            if not isinstance(recs, list):
                self._loud(peer, "hosts-sync without a record list: ignored")
                return
            applied = 0
            for obj in recs:
                if not isinstance(obj, dict):
                    continue
                status, why = self._merge(obj)
                if status == "applied":
                    applied += 1
                elif status == "refused":
                    self.refused += 1
                    self._loud(peer, f"hosts-sync: refused {_label(obj)}: {why}")
            if applied:
                self._log.append((False, f"failover peer {peer}: {applied} dynamic host(s) synced"))
        elif kind == "host-op":
            op = body.get("op")
            obj = body.get("rec")
            if not isinstance(op, int) or not isinstance(obj, dict):
                self._loud(peer, "host-op without op/rec: ignored")
                return
            status, why = self._merge(obj)
            ok = status in ("applied", "same")
            if not ok:
                self.refused += 1
                self._loud(peer, f"refused {_label(obj)}: {why}")
            ack: dict[str, object] = {"op": op, "ok": ok, "reason": why}
            if status == "applied":
                done = "deleted" if obj.get("deleted") is True else "added"
                self._log.append((False, f"failover peer {peer}: {_label(obj)} {done} by the peer"))
                self._held.append((peer, "host-ack", ack))  # once the write is durable
            else:
                send = self.peers.get(peer)
                if send is not None:
                    send("host-ack", ack)
        elif kind == "host-ack":
            op = body.get("op")
            p = self.pending.get(op) if isinstance(op, int) else None
            if p is None:
                return
            ok = body.get("ok") is True
            reason = body.get("reason")
            self._answer(p, peer, ok, reason if isinstance(reason, str) else "")
        self._poke()

    # --- local changes -------------------------------------------------------------------

    def publish(self, rec: Reservation) -> Pending:
        """Send a local change to every connected peer; its answers arrive in ``pending``."""
        self._next_op += 1
        p = Pending(self._next_op, rec, set(self.peers))
        body: dict[str, object] = {"op": p.op, "rec": rec.to_json()}
        if p.waiting:
            self.pending[p.op] = p
        for send in self.peers.values():
            send("host-op", body)
        return p

    def forget(self, p: Pending) -> None:
        """The command stopped waiting (answered or timed out)."""
        self.pending.pop(p.op, None)

    # --- the I/O layer's side ------------------------------------------------------------

    def take_writes(self) -> list[Reservation]:
        out, self._writes = self._writes, []
        return out

    def take_log(self) -> list[tuple[bool, str]]:
        out, self._log = self._log, []
        return out

    def durable(self) -> None:
        """The writes taken so far are on disk: send the acks that waited for them."""
        held, self._held = self._held, []
        for peer, kind, body in held:
            send = self.peers.get(peer)
            if send is not None:
                send(kind, body)

    # --- helpers -------------------------------------------------------------------------

    def _merge(self, obj: Mapping[str, object]) -> tuple[str, str]:
        """(applied | same | stale | refused, reason) for one record from a peer."""
        try:
            rec = Reservation.from_json(obj)
        except ReservationError as exc:
            return "refused", exc.reason
        before = self.table.entries.get(rec.name)
        if before is not None and before.stamp == rec.stamp:
            return "same", ""
        if before is not None and before.stamp > rec.stamp:
            return "stale", f"host {rec.name}: this server has a newer change"
        why = self.table.merge(rec)
        if why is not None:
            return "refused", why
        self._writes.append(rec)
        return "applied", ""

    def _answer(self, p: Pending, peer: str, ok: bool, reason: str) -> None:
        p.waiting.discard(peer)
        p.answers[peer] = (ok, reason)
        if not p.waiting:
            self.pending.pop(p.op, None)
            if self.on_answer is not None:
                self.on_answer(p)

    def _loud(self, peer: str, text: str) -> None:
        self._log.append((True, f"failover peer {peer}: dynamic hosts: {text}"))

    def _poke(self) -> None:
        if self.notify is not None and (self._writes or self._log or self._held):
            self.notify()


def _label(obj: Mapping[str, object]) -> str:
    name = obj.get("name")
    return f"host {name}" if isinstance(name, str) else "a host record"


def _chunks(recs: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    out: list[list[dict[str, object]]] = [[]]
    size = 0
    for r in recs:
        n = len(json.dumps(r, separators=(",", ":")))
        if out[-1] and size + n > CHUNK_BYTES:
            out.append([])
            size = 0
        out[-1].append(r)
        size += n
    return out
