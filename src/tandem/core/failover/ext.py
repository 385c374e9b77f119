"""The Tandem extension channel on one failover link: identification, hello, keys, dispatch.

Two Tandem peers say more to each other than ISC's protocol carries (drift digests,
replicated reservations), on the failover connection itself, in extension messages
(``tandem.wire.tandem_ext``). One ``ExtSession`` per relationship runs it on each connection:

* identification: the peer is Tandem when the vendor class of its CONNECT (seen by the
  secondary) or CONNECTACK (seen by the primary) starts with ``tandem-``. Nothing beyond
  ISC's protocol is sent before the link is up and the peer identified, so a dhcpd peer never
  sees an extension message;
* hello: each side sends ``hello`` (its nonce, whether it has a secret; sequence 0, never
  MACed) as soon as the link is up, then ``ready`` (MACed with the session key when a
  secret is configured); the channel is up, and the features hear ``ext_up``, once the
  peer's ``ready`` checks out. The key of each direction is derived from the secret
  (``--peer-secret``), the sender's role and both nonces, so a message cannot be replayed
  on another connection or reflected back; within a connection the sequence numbers must
  increase;
* a failed MAC, a replayed sequence number, a secret on one side only, a malformed
  envelope or body: the extension is refused for this connection (one loud line naming the
  peer, a counter, ``status()`` for failover-get); the ISC protocol goes on. An extension
  message from a peer that is not Tandem, or before the link is up, is dropped and counted
  (one line per connection and reason); an unknown kind too (a newer peer's feature).

Nonces come from the caller (``ExtSetup.nonce``: the I/O layer's ``os.urandom``), so this
module stays free of randomness. Features implement ``ExtFeature``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tandem.wire.tandem_ext import (
    ExtDecodeError,
    ExtEncodeError,
    decode_body,
    decode_envelope,
    derive_key,
    encode_ext,
    mac_ok,
)

if TYPE_CHECKING:
    from tandem.config.model import FailoverPeer
    from tandem.core.failover.link import Link

__all__ = ["ExtFeature", "ExtSession", "ExtSetup", "Send"]

TANDEM_PREFIX = "tandem-"
HELLO_VERSION = 1
NONCE_MIN, NONCE_MAX = 16, 64  #: bytes
_RESERVED = frozenset({"hello", "ready"})

Send = Callable[[str, Mapping[str, object]], None]


class ExtFeature(Protocol):
    """A feature riding the channel; one object serves every relationship (``peer``)."""

    kinds: frozenset[str]  #: message kinds this feature receives

    def ext_up(self, peer: str, send: Send, now: int) -> None: ...
    def ext_message(self, peer: str, kind: str, body: Mapping[str, object], now: int) -> None: ...
    def ext_down(self, peer: str, now: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ExtSetup:
    """What every relationship's session shares. ``nonce`` None: the extension is off."""

    features: Sequence[ExtFeature] = ()
    secret: bytes | None = None
    nonce: Callable[[], bytes] | None = None  #: a fresh 16..64-byte nonce per connection


class ExtSession:
    """The channel on one relationship's link; ``state`` is one of:

    off (no link), not-tandem (the peer is not Tandem: nothing is sent), hello (ours sent,
    waiting for the peer's), ready (keys derived, waiting for the peer's ``ready``), up,
    refused (for the rest of this connection).
    """

    def __init__(
        self,
        peer: FailoverPeer,
        link: Link,
        setup: ExtSetup,
        *,
        log: list[str],
        clock: Callable[[], int],
    ) -> None:
        self.name = peer.name
        self.role = peer.role
        self.setup = setup
        self._link = link
        self._log = log
        self._clock = clock
        self._by_kind: dict[str, ExtFeature] = {}
        for feature in setup.features:
            for kind in feature.kinds:
                if kind in _RESERVED or kind in self._by_kind:
                    raise ValueError(f"extension kind {kind!r} is reserved or taken twice")
                self._by_kind[kind] = feature
        self.state = "off"
        self.peer_vendor: str | None = None
        self.refused: str | None = None  #: why the last refusal happened
        self.refusals = 0
        self.sent = 0
        self.received = 0
        self.dropped: dict[str, int] = {}
        self._generation = 0  # a send() from an earlier connection sends nothing
        self._said: set[str] = set()  # drop reasons logged on this connection
        self._nonce = b""
        self._tx_key: bytes | None = None
        self._rx_key: bytes | None = None
        self._tx_seq = 0
        self._rx_seq = -1

    # --- the engine's hooks -------------------------------------------------------------

    def link_up(self, peer_vendor: str | None, now: int) -> None:
        """The ISC handshake completed; ``peer_vendor`` is the peer's vendor class."""
        self._reset()
        self.peer_vendor = peer_vendor
        if peer_vendor is None or not peer_vendor.startswith(TANDEM_PREFIX):
            self.state = "not-tandem"
            return
        assert self.setup.nonce is not None
        self._nonce = bytes(self.setup.nonce())
        self.state = "hello"
        self._emit(
            "hello",
            {"v": HELLO_VERSION, "nonce": self._nonce.hex(), "auth": self._secret is not None},
            now,
        )

    def link_down(self, now: int) -> None:
        was_up = self.state == "up"
        self.state = "off"
        self._generation += 1
        if was_up:
            self._features_down(now)

    def receive(self, frame: bytes, link_up: bool, now: int) -> None:
        """One extension frame from the peer; never raises."""
        self.received += 1
        state = self.state
        if not link_up or state == "off":
            self._drop("before-link-up", "an extension message before the link was up")
            return
        if state == "not-tandem":
            self._drop(
                "peer-not-tandem",
                f"an extension message from a non-Tandem peer ({self.peer_vendor})",
            )
            return
        if state == "refused":
            self._count("refused")
            return
        try:
            env = decode_envelope(frame)
        except ExtDecodeError as exc:
            self._refuse(f"malformed extension message ({exc.reason}: {exc})", now)
            return
        if env.seq <= self._rx_seq:
            self._refuse(f"replayed sequence number {env.seq} (last {self._rx_seq})", now)
            return
        if state == "hello":
            if env.kind != "hello" or env.seq != 0 or env.mac is not None:
                self._refuse(f"expected the peer's hello, got {env.kind!r}", now)
                return
            self._rx_seq = env.seq
            self._on_hello(env.body, now)
            return
        key = self._rx_key
        if key is not None and not mac_ok(env, key):
            what = "no MAC" if env.mac is None else "bad MAC"
            self._refuse(f"{what} on {env.kind!r} (is --peer-secret the same on both peers?)", now)
            return
        if key is None and env.mac is not None:
            self._refuse(f"a MAC on {env.kind!r} although neither side has a secret", now)
            return
        self._rx_seq = env.seq
        try:
            body = decode_body(env.body)
        except ExtDecodeError as exc:
            self._refuse(f"malformed body of {env.kind!r} ({exc.reason}: {exc})", now)
            return
        if state == "ready":
            if env.kind != "ready":
                self._refuse(f"expected the peer's ready, got {env.kind!r}", now)
                return
            self.state = "up"
            self._log.append(
                f"failover peer {self.name}: Tandem extension up with {self.peer_vendor} "
                f"({self._mode()})"
            )
            self._features_up(now)
            return
        if env.kind in _RESERVED:
            self._refuse(f"a second {env.kind!r} on this connection", now)
            return
        feature = self._by_kind.get(env.kind)
        if feature is None:
            self._drop(
                f"unknown-kind:{env.kind}", f"an extension message of unknown kind {env.kind!r}"
            )
            return
        try:
            feature.ext_message(self.name, env.kind, body, now)
        except Exception as exc:  # a feature's bug or a hostile body: drop it, keep the link
            self._drop(f"feature-error:{env.kind}", f"{env.kind!r} could not be handled ({exc!r})")

    def status(self) -> dict[str, object]:
        """For failover-get: who the peer is, the channel's state, its counters."""
        return {
            "peer_vendor": self.peer_vendor,
            "peer_is_tandem": self.peer_vendor is not None
            and self.peer_vendor.startswith(TANDEM_PREFIX),
            "state": self.state,
            "mode": self._mode(),
            "refused": self.refused,
            "refusals": self.refusals,
            "sent": self.sent,
            "received": self.received,
            "dropped": dict(self.dropped),
        }

    # --- internals ----------------------------------------------------------------------

    @property
    def _secret(self) -> bytes | None:
        return self.setup.secret or None

    def _mode(self) -> str:
        if self._secret is not None:
            return "authenticated (--peer-secret)"
        return "unauthenticated (no --peer-secret on either side)"

    def _reset(self) -> None:
        self._generation += 1
        self._said.clear()
        self._nonce = b""
        self._tx_key = self._rx_key = None
        self._tx_seq = 0
        self._rx_seq = -1
        self.peer_vendor = None

    def _on_hello(self, raw: bytes, now: int) -> None:
        try:
            body = decode_body(raw)
        except ExtDecodeError as exc:
            self._refuse(f"malformed hello ({exc.reason}: {exc})", now)
            return
        nonce_text = body.get("nonce")
        auth = body.get("auth")
        if body.get("v") != HELLO_VERSION or not isinstance(auth, bool):
            self._refuse(f"unsupported hello (v={body.get('v')!r})", now)
            return
        try:
            nonce = bytes.fromhex(nonce_text) if isinstance(nonce_text, str) else b""
        except ValueError:
            nonce = b""
        if not NONCE_MIN <= len(nonce) <= NONCE_MAX:
            self._refuse("hello without a valid nonce", now)
            return
        secret = self._secret
        if auth != (secret is not None):
            side = "this side" if secret is not None else "the peer"
            self._refuse(f"--peer-secret is configured on {side} only", now)
            return
        if secret is not None:
            mine, theirs = self.role, "secondary" if self.role == "primary" else "primary"
            p_nonce, s_nonce = (self._nonce, nonce) if mine == "primary" else (nonce, self._nonce)
            self._tx_key = derive_key(secret, mine, p_nonce, s_nonce)
            self._rx_key = derive_key(secret, theirs, p_nonce, s_nonce)
        self.state = "ready"
        self._emit("ready", {"v": HELLO_VERSION}, now)

    def _emit(self, kind: str, body: Mapping[str, object], now: int) -> None:
        key = None if kind == "hello" else self._tx_key
        frame = encode_ext(kind, self._tx_seq, body, time=now, key=key)
        self._tx_seq += 1
        self._link.out += frame
        self.sent += 1

    def _sender(self) -> Send:
        generation = self._generation

        def send(kind: str, body: Mapping[str, object]) -> None:
            if generation != self._generation or self.state != "up":
                self._count("not-sent")
                return
            if kind in _RESERVED:
                raise ExtEncodeError(f"kind {kind!r} is the channel's own")
            self._emit(kind, body, self._clock())

        return send

    def _features_up(self, now: int) -> None:
        send = self._sender()
        for feature in self.setup.features:
            try:
                feature.ext_up(self.name, send, now)
            except Exception as exc:  # one feature's bug must not cost the link
                self._log.append(f"failover peer {self.name}: extension feature failed: {exc!r}")

    def _features_down(self, now: int) -> None:
        for feature in self.setup.features:
            try:
                feature.ext_down(self.name, now)
            except Exception as exc:
                self._log.append(f"failover peer {self.name}: extension feature failed: {exc!r}")

    def _refuse(self, reason: str, now: int) -> None:
        was_up = self.state == "up"
        self.state = "refused"
        self._generation += 1
        self.refused = reason
        self.refusals += 1
        self._log.append(
            f"failover peer {self.name}: Tandem extension refused for this connection: "
            f"{reason} (peer {self.peer_vendor}); ISC failover continues"
        )
        if was_up:
            self._features_down(now)

    def _count(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _drop(self, reason: str, what: str) -> None:
        self._count(reason)
        if reason not in self._said:
            self._said.add(reason)
            self._log.append(f"failover peer {self.name}: dropped {what}")
