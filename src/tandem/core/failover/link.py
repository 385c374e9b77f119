"""One connection to the failover peer: framing, the CONNECT handshake, link timers, peer clock.

The engine (``tandem.core.failover.engine``) keeps one ``Link`` per relationship and opens it
again for every TCP connection the I/O layer makes. The link knows nothing of leases or server
states. It cuts the byte stream into messages, numbers and buffers what we send, and runs the
CONNECT/CONNECTACK exchange (draft-12 §7.2; ISC's checks are in ``tandem.wire.failover_build``).
It keeps the link's deadlines: CONNECT or CONNECTACK within ``LINK_STARTUP`` seconds, a CONTACT
once we have been quiet for a third of the peer's receive-timer, and failure once the peer has
been quiet for our max-response-delay. It also estimates the peer's clock offset from message
headers. A failure sets ``close`` (the I/O layer then closes the connection) and logs
dhcpd's line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandem.wire.failover import FailoverProtocolError, Message, encode_message
from tandem.wire.failover_build import (
    build_connect,
    build_connectack,
    build_disconnect,
    build_empty,
    check_connect,
    check_connectack,
)
from tandem.wire.failover_codes import MessageType, RejectReason
from tandem.wire.framing import FrameBuffer

if TYPE_CHECKING:
    from tandem.config.model import FailoverPeer

VENDOR_CLASS = "tandem-0.1"
LINK_STARTUP = 15  #: seconds for CONNECT (secondary) / CONNECTACK (primary) to arrive


class Link:
    """The link to one relationship's peer: ``state`` is down, connecting or up."""

    def __init__(self, peer: FailoverPeer, log: list[str], now: int) -> None:
        self.name = peer.name
        self.cfg = peer
        self.name_bytes = peer.name.encode("utf-8", "surrogateescape")
        self._log = log
        self.state = "down"  # down | connecting | up
        self.frames = FrameBuffer()
        self.out = bytearray()
        self.close: str | None = None
        self._xid = 0
        self.partner_max_unacked = 0
        self.partner_receive_timer = 0
        self._last_rx = now
        self._last_tx = now
        self._deadline: int | None = None
        self._skew: int | None = None  # max over this link of (peer's header time - ours)
        #: When the peer's last message arrived (any link; None: never), for operators.
        self.last_contact: int | None = None
        #: The vendor class of the peer's CONNECT/CONNECTACK on this connection (None: none
        #: yet); ``tandem-...`` identifies a Tandem peer (tandem.core.failover.ext).
        self.peer_vendor: str | None = None

    # --- the connection ----------------------------------------------------------------

    def open(self, now: int) -> None:
        """A new TCP connection: fresh framing and buffers; the handshake is due in 15 s."""
        self.state = "connecting"
        self.frames = FrameBuffer()
        self.out = bytearray()
        self.close = None
        self._xid = 0
        self._last_rx = self._last_tx = now
        self._deadline = now + LINK_STARTUP
        self._skew = None
        self.peer_vendor = None

    def accepted(self) -> None:
        """The handshake succeeded: the link is up."""
        self.state = "up"
        self._deadline = None

    def lost(self) -> None:
        """The connection is gone (closed by either side, or never completed)."""
        self.state = "down"
        self._deadline = None

    def fail(self, reason: str, *, line: str | None = None) -> None:
        """Close the link for ``reason`` (the first reason wins); logs ``line`` or the reason."""
        if self.close is None:
            self.close = reason
            self._log.append(line or f"failover peer {self.name}: {reason}")

    # --- bytes in and out ----------------------------------------------------------------

    def receive(self, data: bytes, now: int) -> list[bytes]:
        """The whole messages completed by ``data``; raises FailoverProtocolError."""
        self.frames.feed(data)
        frames = self.frames.drain()
        if frames:
            self._last_rx = self.last_contact = now
        return frames

    def take(self, now: int) -> bytes:
        """Everything buffered for the peer (drains)."""
        if not self.out:
            return b""
        out = bytes(self.out)
        self.out.clear()
        self._last_tx = now
        return out

    def next_xid(self) -> int:
        xid = self._xid
        self._xid = (self._xid + 1) & 0xFFFFFFFF
        return xid

    def next_update_xid(self) -> int:
        """The xid for a BNDUPD: the same sequence, but never 0 (ISC never uses it for one)."""
        xid = self._xid or 1
        self._xid = (xid + 1) & 0xFFFFFFFF
        return xid

    def send(self, msg: Message) -> None:
        self.out += encode_message(msg)

    # --- timers --------------------------------------------------------------------------

    def timers(self) -> list[int | None]:
        """When the link next needs ``handle_timer`` (None: no deadline)."""
        times: list[int | None] = []
        if self.state == "connecting":
            times.append(self._deadline)
        if self.state == "up" and self.close is None:
            times.append(self._last_rx + self.cfg.max_response_delay)
            if self.partner_receive_timer:
                times.append(self._last_tx + max(1, self.partner_receive_timer // 3))
        return times

    def handle_timer(self, now: int) -> None:
        """Fail a link that stayed silent too long; send CONTACT when we did."""
        if self.close is not None:
            return
        if self.state == "connecting" and self._deadline is not None:
            if now >= self._deadline:
                self.fail("link startup timeout (no CONNECT/CONNECTACK within 15 s)")
        elif self.state == "up":
            if now >= self._last_rx + self.cfg.max_response_delay:
                self.fail(
                    "timeout waiting for failover peer",
                    line=f"timeout waiting for failover peer {self.name}",  # dhcpd's words
                )
            elif self.partner_receive_timer and now >= self._last_tx + max(
                1, self.partner_receive_timer // 3
            ):
                self.send(build_empty(MessageType.CONTACT, time=now, xid=self.next_xid()))

    # --- the peer's clock ----------------------------------------------------------------

    def note_time(self, frame: bytes, now: int) -> None:
        """Track the peer's clock from message headers (bytes 4-8: the sender's time).

        Delays only make a message look older, so the largest (peer time - our time) seen
        on this link is the best estimate of the clock offset.
        """
        if len(frame) >= 8:
            seen = int.from_bytes(frame[4:8], "big") - now
            if self._skew is None or seen > self._skew:
                self._skew = seen

    @property
    def clock_skew(self) -> int | None:
        """The estimate of (peer's clock - ours) in seconds on this link; None before any
        message."""
        return self._skew

    @property
    def peer_offset(self) -> int:
        """Seconds to add to our times to express them in the peer's clock (0 within 2 s).

        BNDUPD times go out in the peer's clock, so the peer (ISC too, which corrects no
        skew) expires a lease when the client's lease really ends. Without it a primary
        whose clock runs 30 s ahead freed, 30 s early, a lease its secondary had granted,
        and could hand it out again while the client still held it (found by tandem.sim).
        """
        skew = self._skew or 0
        return skew if abs(skew) > 2 else 0

    # --- the handshake (draft-12 §7.2) ---------------------------------------------------

    def send_connect(self, now: int, *, mclt: int, hba: bytes) -> None:
        """The primary opens the link with CONNECT."""
        self.send(
            build_connect(
                time=now,
                xid=self.next_xid(),
                relationship_name=self.name_bytes,
                max_unacked=self.cfg.max_unacked_updates,
                receive_timer=self.cfg.max_response_delay,
                vendor_class=VENDOR_CLASS,
                mclt=mclt,
                hba=hba,
            )
        )

    def vet_connect(self, msg: Message, now: int, *, primary: bool) -> bool:
        """Check the peer's CONNECT as ISC does; a refused one is answered and fails the link.

        ``primary``: we are the primary, so any CONNECT is refused (both servers primary).
        """
        up = self.state == "up"
        err = check_connect(msg, relationship_name=self.name_bytes, now=now, already_connected=up)
        if err is None and primary:
            err = FailoverProtocolError(
                "connect-refused",
                "both servers are primary",
                reject_reason=RejectReason.INVALID_PARTNER,
            )
        if err is None:
            return True
        reason = err.reject_reason or RejectReason.UNKNOWN
        offered = msg.relationship_name
        unknown = reason is RejectReason.INVALID_PARTNER and offered is not None
        self.send(
            build_connectack(
                time=now,
                xid=msg.xid,
                relationship_name=offered if unknown and offered else self.name_bytes,
                vendor_class=VENDOR_CLASS,
                max_unacked=None if unknown else self.cfg.max_unacked_updates,
                receive_timer=None if unknown else self.cfg.max_response_delay,
                tls_reply=msg.tls_request is not None,
                reject=(reason, str(err)),
            )
        )
        self.fail(f"CONNECT refused: {err} (reject reason {int(reason)})")
        return False

    def accept_connect(self, msg: Message, now: int) -> None:
        """Take the peer's window and receive-timer from its CONNECT and answer CONNECTACK."""
        self.partner_max_unacked = msg.max_unacked or 0
        self.partner_receive_timer = msg.receive_timer or 0
        self.peer_vendor = msg.vendor_class
        self.send(
            build_connectack(
                time=now,
                xid=msg.xid,
                relationship_name=self.name_bytes,
                vendor_class=VENDOR_CLASS,
                max_unacked=self.cfg.max_unacked_updates,
                receive_timer=self.cfg.max_response_delay,
                tls_reply=msg.tls_request is not None,
            )
        )

    def accept_connectack(self, msg: Message, now: int) -> bool:
        """Check the peer's CONNECTACK (primary only); False when it refused us or is invalid.

        An invalid one gets a DISCONNECT with the reason; either way the link fails.
        """
        err = check_connectack(
            msg,
            relationship_name=self.name_bytes,
            now=now,
            already_connected=self.state == "up",
        )
        if err is not None:
            if err.reject_reason is not None:
                self.send(
                    build_disconnect(
                        time=now, xid=self.next_xid(), reason=err.reject_reason, text=str(err)
                    )
                )
                self.fail(f"CONNECTACK refused: {err} (reject reason {int(err.reject_reason)})")
            else:
                self.fail(f"Failover CONNECT to {self.name} rejected: {msg.message_text}")
            return False
        self.partner_max_unacked = msg.max_unacked or 0
        self.partner_receive_timer = msg.receive_timer or 0
        self.peer_vendor = msg.vendor_class
        return True
