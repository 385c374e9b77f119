"""The failover engine: one ``failover peer`` relationship, sans I/O (aioquic style).

The I/O layer owns the TCP connection and a clock; it feeds bytes in (``receive_data``),
takes bytes out (``data_to_send``), calls ``handle_timer`` at ``get_timer()`` and closes the
link when ``close_reason()`` is set. Everything the engine wants persisted comes out of
``take_writes()``; that call is also the commit barrier: BNDACKs for the peer's updates and
BNDUPDs for our own changes (the DHCP core's and the engine's) are released to
``data_to_send`` only by a ``take_writes`` after them, because the caller commits (fsyncs)
what it took before it sends. So a BNDACK never leaves before the update is durable (ISC
acks after its commit too) and a BNDUPD never announces something a crash could lose.

Server states come from ``tandem.core.failover.states`` (the table); lease work is in
``tandem.core.failover.leases``; the connection itself (framing, the CONNECT handshake, the
link timers, the peer's clock) in ``tandem.core.failover.link``; BNDUPD/BNDACK bytes in
``tandem.wire.failover_fast``; everything else is encoded with ``tandem.wire.failover``. Log
lines use dhcpd's words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from tandem.core.failover.ext import ExtSession, ExtSetup
from tandem.core.failover.handover import (
    HANDOVER_FROM,
    handed_over,
    nothing_to_wait_for,
    restart_after_shutdown,
)
from tandem.core.failover.leases import FailoverLeases
from tandem.core.failover.link import Link
from tandem.core.failover.loadbalance import hba_from_split
from tandem.core.failover.pump import pump_updates
from tandem.core.failover.states import Action, FailoverStateMachine, Input
from tandem.core.lease import FailoverStateRecord, Lease
from tandem.wire.failover import FailoverEncodeError, FailoverProtocolError, Message
from tandem.wire.failover_build import build_empty, build_poolresp, build_state
from tandem.wire.failover_codes import MessageType, ServerState
from tandem.wire.failover_fast import Binding, decode_binding, encode_bndack
from tandem.wire.tandem_ext import is_ext_frame

if TYPE_CHECKING:
    from tandem.config.model import Config, FailoverPeer
    from tandem.core.failover.policy import PoolFailover
    from tandem.core.pools import LeaseDB, PoolState

S = ServerState
A = Action
M = MessageType
STATE_BY_KEYWORD = {s.keyword: s for s in ServerState}

__all__ = ["FailoverEngine", "FailoverSetup"]


def _state_name(value: int | None) -> str:
    if value is None:
        return "unknown-state"
    try:
        return S(value).keyword
    except ValueError:
        return f"invalid-state-{value}"


class _Machine(FailoverStateMachine):
    """The table-driven machine, reporting each transition (for dhcpd's log lines)."""

    moves: list[tuple[ServerState, ServerState]]

    def _transition(self, new: ServerState, actions: list[Action]) -> None:
        self.moves.append((self.state, new))
        super()._transition(new, actions)


class FailoverEngine:
    """One failover relationship: link protocol, server state, binding updates."""

    def __init__(
        self,
        db: LeaseDB,
        pools: Sequence[PoolState],
        peer: FailoverPeer,
        saved: FailoverStateRecord | None,
        now: int,
        *,
        ext: ExtSetup | None = None,
    ) -> None:
        self.name = peer.name
        self.cfg = peer
        self.role = peer.role
        saved_state = STATE_BY_KEYWORD.get(saved.my_state) if saved is not None else None
        if saved_state is S.STARTUP:
            saved_state = None
        peer_state = STATE_BY_KEYWORD.get(saved.partner_state) if saved is not None else None
        if peer.role == "primary":
            mclt = peer.mclt or 0
        else:
            mclt = (saved.mclt if saved is not None else None) or peer.mclt or 0
        self.machine = _Machine(
            role=peer.role,
            mclt=mclt,
            now=now,
            saved_state=saved_state,
            saved_stos=saved.my_stos if saved is not None else None,
            peer_state=peer_state,
            auto_partner_down=peer.auto_partner_down,
        )
        self.machine.moves = []
        self.partner_stos: int | None = saved.partner_stos if saved is not None else None
        self._log: list[str] = []
        self.leases = FailoverLeases(db, pools, peer, self.machine, self._log)
        if peer.role == "primary":
            self.leases.hba = peer.hba if peer.hba is not None else hba_from_split(peer.split or 0)
        self._now = now
        self.link = Link(peer, self._log, now)
        #: The Tandem extension channel (tandem.core.failover.ext); None: off.
        self.ext_setup = ext
        self.ext: ExtSession | None = None
        if ext is not None and ext.nonce is not None:
            self.ext = ExtSession(peer, self.link, ext, log=self._log, clock=self._clock)
        self._record: FailoverStateRecord | None = None
        self._acks_pending: list[bytes] = []
        self._acks_ready: list[bytes] = []
        self._gated = True  # see output_needs_commit
        self._answering: tuple[int, set[int]] | None = None  # our UPDDONE: xid, leases left
        self._received: dict[int, int] = {}  # message type -> count (see ``counters``)
        self._log += restart_after_shutdown(self.machine, self.leases, now)
        self._run(self.machine.start(now), now)

    # --- the API the I/O layer uses -------------------------------------------------------

    def connection_made(self, now: int) -> None:
        """A TCP link to the peer is established: the primary sends CONNECT at once."""
        self._now = now
        self.link.open(now)
        self._acks_pending.clear()
        self._acks_ready.clear()
        self._answering = None
        if self.role == "primary":
            hba = self.leases.hba
            assert hba is not None
            self.link.send_connect(now, mclt=self.machine.mclt, hba=hba)

    def connection_lost(self, now: int) -> None:
        """The link is gone (closed by either side, or never completed)."""
        self._now = now
        link = self.link
        if link.state == "down":
            return
        was_up = link.state == "up"
        link.lost()
        self.leases.rescind()
        self._acks_pending.clear()
        self._acks_ready.clear()
        self._answering = None
        if self.ext is not None:
            self.ext.link_down(now)
        if was_up:
            self._log.append(f"peer {self.name}: disconnected")  # dhcpd's words
            self._run(self.machine.on_input(Input.LINK_DOWN, now), now)

    def receive_data(self, data: bytes, now: int) -> None:
        """Bytes from the link; never raises (a protocol error sets close_reason)."""
        self._now = now
        link = self.link
        if link.state == "down" or link.close is not None:
            return
        try:
            for frame in link.receive(data, now):  # every message of this read, in order
                link.note_time(frame, now)
                self._dispatch(frame, now)
                if self.close_reason() is not None:
                    break
        except FailoverProtocolError as exc:
            link.fail(f"protocol error ({exc.reason}): {exc}")
        except FailoverEncodeError as exc:
            link.fail(f"cannot answer: {exc}")

    def data_to_send(self) -> bytes:
        """Bytes to write to the link now (drains): acks first, then BNDUPDs in the window."""
        link = self.link
        if link.state == "up" and link.close is None:
            if self._acks_ready:
                for ack in self._acks_ready:
                    link.out += ack
                self._acks_ready.clear()
            pump_updates(self.leases, link, self._now, self._log)
        return link.take(self._now)

    def _clock(self) -> int:
        return self._now

    def close_reason(self) -> str | None:
        return self.link.close

    def get_timer(self) -> int | None:
        times = [self.machine.get_timer(), self.leases.pd_deadline(), *self.link.timers()]
        if self.machine.state is S.NORMAL:
            times.append(self.leases.pools.next_balance)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, now: int) -> None:
        self._now = now
        self._run(self.machine.handle_timer(now), now)
        self.leases.run_pd_timer(now)
        self.link.handle_timer(now)
        nb = self.leases.pools.next_balance
        if nb is not None and nb <= now:
            self.leases.pools.next_balance = None
            if self.machine.state is S.NORMAL:
                _, poolreq = self.leases.balance(now, want_poolreq=True)
                if poolreq and self.link.state == "up":
                    self.link.send(build_empty(M.POOLREQ, time=now, xid=self.link.next_xid()))

    def rebind(self, db: LeaseDB, pools: Sequence[PoolState]) -> None:
        """A reload kept this relationship (its ``failover peer`` block is unchanged): go on
        over the new server's lease database and pools; the link and the states are kept."""
        self.leases.rebind(db, pools)

    def partner_down(self, now: int) -> None:
        """Operator: the partner is down (dhcpd: OMAPI local-state = partner-down)."""
        self._now = now
        self._run(self.machine.on_input(Input.ADMIN_PARTNER_DOWN, now), now)

    def auto_partner_down(self, now: int) -> None:
        """Tandem's rule says so (``core/failover/autopd_hook.py``): the table's input."""
        self._now = now
        self._run(self.machine.on_input(Input.AUTO_PARTNER_DOWN, now), now)

    def shutdown(self, now: int) -> bool:
        """A planned stop (SIGTERM, failover-shutdown): NORMAL -> SHUTDOWN, STATE to the peer.

        True when a handover began (wait until ``handover_done``); False when the state
        hands nothing over (tandem.core.failover.handover) and the caller may stop at once.
        """
        self._now = now
        if self.machine.state not in HANDOVER_FROM or self.link.state != "up":
            return False
        self._run(self.machine.on_input(Input.ADMIN_SHUTDOWN, now), now)
        return True

    def handover_done(self) -> bool:
        """The partner showed it saw our SHUTDOWN (or it never will): stop now."""
        up = self.link.state == "up" and self.link.close is None
        return nothing_to_wait_for(self.machine, self.leases, up)

    def handed_over(self) -> bool:
        """SHUTDOWN seen by the partner (PARTNER-DOWN) and nothing of ours un-acked."""
        return handed_over(self.machine, self.leases)

    def status(self) -> dict[str, object]:
        m = self.machine
        return {
            "name": self.name,
            "role": self.role,
            "my_state": m.state.keyword,
            "reported_state": m.reported_state.keyword,
            "my_stos": m.stos,
            "partner_state": _state_name(m.peer_state),
            "partner_stos": self.partner_stos,
            "service_state": m.service_state.value,
            "link": self.link.state,
            "last_contact": self.link.last_contact,
            "clock_skew": self.link.clock_skew,
            "mclt": m.mclt,
            "unacked_updates": len(self.leases.inflight),
            "queued_updates": len(self.leases.queue) + len(self.leases.staged),
            "unsynced_leases": len(self.leases.unsynced),
            "partner_max_unacked": self.link.partner_max_unacked,
            "pools": self.leases.pools.summary(),
            "extension": None if self.ext is None else self.ext.status(),
        }

    def take_writes(self) -> tuple[list[Lease], list[FailoverStateRecord]]:
        """Leases and state records to persist; the caller commits them before sending.

        Also the commit barrier (see the module docstring): call it after handling DHCP
        packets and committing their writes, then send ``data_to_send()``.
        """
        leases = self.leases
        self._gated = bool(
            leases.staged or self._acks_pending or self._record is not None or leases.writes_gate
        )
        leases.writes_gate = False
        leases.barrier()
        if self._acks_pending:
            self._acks_ready += self._acks_pending
            self._acks_pending.clear()
        writes = list(self.leases.writes.values())
        self.leases.writes.clear()
        records = [self._record] if self._record is not None else []
        self._record = None
        return writes, records

    def output_needs_commit(self) -> bool:
        """Does what ``take_writes`` released depend on the records it returned?

        True when that call released BNDACKs, BNDUPDs for changes not yet announced, or a
        state record (with the STATE message beside it), or returned any record other than
        a BNDACK's bookkeeping. False lets the link send at once, without waiting for a
        sync, provided nothing it sent earlier is still waiting for one (then every record
        the queued BNDUPDs describe is on disk already); the records returned are still
        committed, just not ahead of the bytes.
        """
        return self._gated

    @property
    def counters(self) -> dict[str, int]:
        """Messages received on every link so far, by type number (as text)."""
        return {str(int(t)): n for t, n in self._received.items()}

    def take_log(self) -> list[str]:
        out = list(self._log)
        self._log.clear()
        return out

    # --- internals: sending ---------------------------------------------------------------

    def _send_state(self) -> None:
        m = self.machine
        self.link.send(
            build_state(
                time=self._now,
                xid=self.link.next_xid(),
                state=m.reported_state,
                flags=m.reported_flags,
                stos=m.stos,
            )
        )

    # --- internals: receiving ---------------------------------------------------------------

    def _dispatch(self, frame: bytes, now: int) -> None:
        if self.ext is not None and is_ext_frame(frame):  # Tandem's extension (type 200)
            self._received[200] = self._received.get(200, 0) + 1
            self.ext.receive(frame, self.link.state == "up", now)
            return
        msg = decode_binding(frame)
        mtype = msg.type
        received = self._received
        received[mtype] = received.get(mtype, 0) + 1
        if isinstance(msg, Binding):
            if self.link.state != "up":
                self.link.fail("binding message before the link was accepted")
            elif mtype == M.BNDUPD:
                self._on_bndupd(msg, now)
            else:
                self._on_bndack(msg, now)
            return
        if mtype == M.CONNECT:
            self._on_connect(msg, now)
        elif mtype == M.CONNECTACK:
            self._on_connectack(msg, now)
        elif mtype == M.DISCONNECT:
            text = msg.message_text or ""
            self.link.fail(f"peer disconnected (reason {msg.reject_reason}): {text}".rstrip(": "))
        elif not isinstance(mtype, MessageType):
            return  # a type ISC ignores (no options)
        elif self.link.state != "up":
            self.link.fail(f"{mtype.name} before the link was accepted")
        elif mtype == M.STATE:
            self._on_state(msg, now)
        elif mtype == M.CONTACT:
            pass
        elif mtype in (M.UPDREQ, M.UPDREQALL):
            self._on_update_request(msg, now)
        elif mtype == M.UPDDONE:
            self._run(self.machine.on_input(Input.UPDDONE, now), now)
        elif mtype == M.POOLREQ:
            moved, _ = self.leases.balance(now)
            if not moved:
                self._log.append(f"failover peer {self.name}: Got POOLREQ, answering negatively!")
            self.link.send(build_poolresp(time=now, xid=msg.xid, addresses_transferred=moved))
        elif mtype == M.POOLRESP:
            self._log.append(
                f"failover peer {self.name}: pool response: {msg.addresses_transferred or 0} leases"
            )

    def _on_connect(self, msg: Message, now: int) -> None:
        link = self.link
        if not link.vet_connect(msg, now, primary=self.role == "primary"):
            return
        mclt = msg.mclt or 0
        if mclt != self.machine.mclt:
            self.machine.mclt = mclt
            self._stage_record()
        self.leases.hba = msg.hba
        link.accept_connect(msg, now)
        self._link_up(now)

    def _on_connectack(self, msg: Message, now: int) -> None:
        if self.role != "primary":
            self.link.fail("CONNECTACK received by a secondary")
        elif self.link.accept_connectack(msg, now):
            self._link_up(now)

    def _link_up(self, now: int) -> None:
        self.link.accepted()
        self._run(self.machine.on_input(Input.LINK_UP, now), now)
        if self.ext is not None:
            self.ext.link_up(self.link.peer_vendor, now)

    def _on_state(self, msg: Message, now: int) -> None:
        m = self.machine
        value = msg.server_state if msg.server_state is not None else 0
        previous = m.peer_state
        m.moves.clear()
        actions = m.on_peer_state(value, msg.server_flags or 0, now)
        moves = list(m.moves)
        m.moves.clear()
        if A.RECORD_PEER_STATE in actions:
            self.partner_stos = msg.stos if msg.stos is not None else now
            self._log.append(
                f"failover peer {self.name}: peer moves from {_state_name(previous)} "
                f"to {_state_name(value)}"
            )
            # When we move to NORMAL ourselves, _run says "Both servers normal" after the move
            # line, as dhcpd does; say it here only when we were NORMAL already.
            we_move = any(new is S.NORMAL for _old, new in moves)
            if m.state is S.NORMAL and value == S.NORMAL and not we_move:
                self._log.append(f"failover peer {self.name}: Both servers normal")
        self._run(actions, now, moves)

    def _on_update_request(self, msg: Message, now: int) -> None:
        if msg.type == M.UPDREQALL:
            self.leases.queue_all()
        else:
            self.leases.queue_unsynced()
        pending = self.leases.pending_update_addresses()
        if pending:
            self._answering = (msg.xid, pending)
        else:
            self._answering = None
            self.link.send(build_empty(M.UPDDONE, time=now, xid=msg.xid))

    def _on_bndupd(self, b: Binding, now: int) -> None:
        reject = self.leases.process_update(b, now)
        if reject is not None:
            self.link.out += encode_bndack(
                time=now, xid=b.xid, address=b.address or 0, reject=(int(reject[0]), reject[1])
            )
            self._log.append(
                f"failover peer {self.name}: BNDUPD for {IPv4Address(b.address or 0)} "
                f"refused: {reject[1]} (reason {int(reject[0])})"
            )
        else:
            self._acks_pending.append(encode_bndack(time=now, xid=b.xid, address=b.address or 0))
            if b.address is not None:
                # A dueling update of ours that lost is dropped, never acked: it is settled
                # too, or UPDDONE would never go (found by tandem.sim seed 2844: both
                # servers stuck in POTENTIAL-CONFLICT waiting for it).
                self._settled(b.address, now)

    def _on_bndack(self, b: Binding, now: int) -> None:
        settled = self.leases.process_ack(b, now)
        if settled is not None:
            self._settled(settled, now)

    def _settled(self, address: int, now: int) -> None:
        """``address`` has no update of ours outstanding: UPDDONE once none is left."""
        if self._answering is None:
            return
        xid, left = self._answering
        left.discard(address)
        if not left:
            self._answering = None
            self.link.send(build_empty(M.UPDDONE, time=now, xid=xid))

    # --- internals: the state machine's actions -----------------------------------------

    def _stage_record(self) -> None:
        self._record = self.state_record()

    def state_record(self) -> FailoverStateRecord:
        """The relationship's state as the lease file records it (``failover peer`` line)."""
        m = self.machine
        return FailoverStateRecord(
            name=self.name,
            my_state=m.reported_state.keyword,
            my_stos=m.stos,
            partner_state=_state_name(m.peer_state),
            partner_stos=self.partner_stos,
            mclt=m.mclt if self.role == "secondary" else None,
        )

    def _run(
        self,
        actions: list[Action],
        now: int,
        moves: list[tuple[ServerState, ServerState]] | None = None,
    ) -> None:
        m = self.machine
        if moves is None:
            moves = list(m.moves)
        m.moves.clear()
        for old, new in moves:
            self._log.append(
                f"failover peer {self.name}: I move from {old.keyword} to {new.keyword}"
            )
            if new is S.NORMAL and m.peer_state == S.NORMAL:
                self._log.append(f"failover peer {self.name}: Both servers normal")
            if old is S.NORMAL and new is not S.NORMAL:
                self.leases.left_normal()
        connected = self.link.state == "up"
        for act in actions:
            if act in (A.RECORD_STATE, A.RECORD_PEER_STATE):
                self._stage_record()
            elif act is A.SEND_STATE:
                if connected:
                    self._send_state()
            elif act is A.RESCIND_UPDATES:
                self.leases.rescind()
            elif act is A.QUEUE_PENDING_UPDATES:
                self.leases.queue_unsynced()
            elif act is A.BALANCE_POOLS:
                self.leases.balance(now)
            elif act is A.SCHEDULE_POOL_CHECK:
                self.leases.pools.schedule(now)
            elif act in (A.SEND_UPDREQ, A.SEND_UPDREQALL):
                if connected:
                    mt = M.UPDREQALL if act is A.SEND_UPDREQALL else M.UPDREQ
                    self.link.send(build_empty(mt, time=now, xid=self.link.next_xid()))
            elif act is A.SCHEDULE_EXPIRED_TO_FREE:
                self.leases.schedule_expired_to_free(now)
            elif act is A.LOG_INVALID_TRANSITION:
                self._log.append(
                    f"failover peer {self.name}: invalid state transition "
                    f"(peer {_state_name(m.peer_state)})"
                )
            elif act is A.LOG_UNEXPECTED:
                self._log.append(
                    f"failover peer {self.name}: unexpected message in {m.state.keyword}"
                )
            elif act is A.LOG_BOTH_RECOVER_DONE:
                self._log.append("Both servers have entered recover-done!")
            elif act is A.FATAL:
                self._log.append(
                    f"failover peer {self.name}: invalid attempt to move from "
                    f"{m.state.keyword} (peer {_state_name(m.peer_state)}); stopping"
                )
                self.link.fail("fatal state conflict")
            # SEND_UPDATES: data_to_send() pumps; timers: the machine keeps deadlines;
            # UPDATE_SERVICE_STATE: the service state is computed when asked.


class FailoverSetup:
    """Builds an engine per ``failover peer`` when the ``DhcpServer`` is built.

    Pass it as ``DhcpServer(..., failover=setup)``: the server calls it with its lease
    database and pools (leases already loaded) and gives each pool the policy of its
    relationship; ``engines`` then holds the engines by relationship name.
    """

    def __init__(
        self,
        config: Config,
        saved: Mapping[str, FailoverStateRecord],
        now: int,
        *,
        ext: ExtSetup | None = None,
    ) -> None:
        self._peers = config.failover_peers
        self._saved = saved
        self._now = now
        self._ext = ext  # the Tandem extension channel (tandem.core.failover.ext); None: off
        self.engines: dict[str, FailoverEngine] = {}

    def __call__(self, db: LeaseDB, pools: Sequence[PoolState]) -> dict[str, PoolFailover]:
        self.engines = {
            peer.name: FailoverEngine(
                db, pools, peer, self._saved.get(peer.name), self._now, ext=self._ext
            )
            for peer in self._peers
        }
        return {name: engine.leases for name, engine in self.engines.items()}
