"""Drift detection: do the two peers' configurations agree? An extension feature, plus what a
dhcpd partner lets us compare.

Between two Tandems (``DriftFeature``, over tandem.core.failover.ext): right after the hello
each side sends its digest (``drift-digest``, tandem.config.digest). Equal: nothing more.
Different: each side asks for the other's items (``drift-want``) and gets them in chunks
(``drift-items``), compares them with its own and says so once per connection, loudly: one
line with the count and both digests, then the first few differences with ``file:line`` on
both sides. A reload recomputes the items and sends the new digest (``update``).

With a peer that is not Tandem (ISC dhcpd) only what ISC's CONNECT/CONNECTACK carry can be
compared (``isc_compare``): the primary's MCLT and HBA against the secondary's own settings,
and each side's max-unacked-updates and receive timer (shown, each server's own).
``drift_section`` makes failover-get's ``drift`` section of either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tandem.config.digest import Difference, Item, compare, config_digest, digest_items
from tandem.config.model import Config, FailoverPeer
from tandem.core.failover.ext import Send
from tandem.core.failover.loadbalance import hba_from_split
from tandem.wire.tandem_ext import MAX_BODY

__all__ = ["DriftFeature", "drift_section", "isc_compare"]

SHOWN = 5  #: differences logged after the loud line
LISTED = 20  #: differences kept for failover-get and the page
MAX_VALUE = 300  #: characters of a value on the wire (longer: cut, with a hash of the whole)
MAX_PARTS = 1024
MAX_ITEMS = 100_000
_BUDGET = MAX_BODY - 160  #: bytes of items per ``drift-items`` message

ISC_NOTE = (
    "the peer is not Tandem: the ISC failover protocol carries only the primary's MCLT and "
    "split/HBA and each side's max-unacked-updates and receive timer; subnets, pools, ranges, "
    "permits, host reservations, options and classes cannot be compared with it"
)


def _wire(item: Item) -> tuple[str, str, str]:
    """An item as sent: long text cut the same way on both sides, so cuts still compare."""

    def cut(text: str) -> str:
        if len(text) <= MAX_VALUE:
            return text
        tail = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return f"{text[: MAX_VALUE - 20]}...#{tail}"

    return cut(item.key), cut(item.value), item.loc[:MAX_VALUE]


@dataclass
class _Peer:
    """What we know of one relationship's peer on the current connection."""

    send: Send | None = None
    digest: str | None = None  #: the peer's current digest
    items: list[Item] | None = None  #: the peer's items for ``digest``
    parts: dict[int, list[Item]] = field(default_factory=dict)
    parts_of: str | None = None
    wanted: str | None = None  #: the digest we asked items for
    differences: list[Difference] | None = None
    said: tuple[str, str] | None = None  #: (ours, theirs) last logged


class DriftFeature:
    """The drift exchange for every relationship; ``emit`` takes log lines (the I/O layer's)."""

    name = "drift"
    kinds = frozenset({"drift-digest", "drift-want", "drift-items"})

    def __init__(self, config: Config, emit: Callable[[list[str]], None]) -> None:
        self._emit = emit
        self._peers: dict[str, _Peer] = {}
        self._mine: dict[str, tuple[list[Item], str]] = {}
        self._config = config
        self._compute(config)

    # --- configuration ------------------------------------------------------------------

    def _compute(self, config: Config) -> None:
        self._config = config
        self._mine = {}
        for peer in config.failover_peers:
            items = [Item(*_wire(i)) for i in digest_items(config, peer.name)]
            self._mine[peer.name] = (items, config_digest(items))

    def _own(self, name: str) -> tuple[list[Item], str]:
        got = self._mine.get(name)
        if got is None:  # a relationship the config does not have (yet): its items only
            items = [Item(*_wire(i)) for i in digest_items(self._config, name)]
            got = self._mine[name] = (items, config_digest(items))
        return got

    def update(self, config: Config, now: int) -> None:
        """A reload: recompute, send the new digest on every channel that is up, compare."""
        self._compute(config)
        for name, peer in self._peers.items():
            if peer.send is not None:
                self._send_digest(name, peer)
                self._evaluate(name, peer)

    # --- ExtFeature -----------------------------------------------------------------------

    def ext_up(self, peer: str, send: Send, now: int) -> None:
        state = self._peers[peer] = _Peer(send=send)
        self._send_digest(peer, state)

    def ext_down(self, peer: str, now: int) -> None:
        state = self._peers.get(peer)
        if state is not None:
            state.send = None

    def ext_message(self, peer: str, kind: str, body: Mapping[str, object], now: int) -> None:
        state = self._peers.get(peer)
        if state is None or state.send is None:
            return
        digest = body.get("digest")
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"{kind} without a digest")
        if kind == "drift-digest":
            if digest != state.digest:
                state.digest, state.items, state.wanted = digest, None, None
                state.parts, state.parts_of = {}, None
            self._evaluate(peer, state)
        elif kind == "drift-want":
            self._send_items(peer, state)
        else:
            self._take_items(peer, state, digest, body)

    # --- the exchange ---------------------------------------------------------------------

    def _send_digest(self, name: str, state: _Peer) -> None:
        items, digest = self._own(name)
        if state.send is not None:
            state.send("drift-digest", {"digest": digest, "items": len(items)})

    def _send_items(self, name: str, state: _Peer) -> None:
        items, digest = self._own(name)
        chunks: list[list[list[str]]] = [[]]
        size = 0
        for item in items:
            row = [item.key, item.value, item.loc]
            n = len(json.dumps(row)) + 1
            if size + n > _BUDGET and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(row)
            size += n
        for i, chunk in enumerate(chunks):
            if state.send is None:
                return
            body = {"digest": digest, "part": i, "parts": len(chunks), "items": chunk}
            state.send("drift-items", body)

    def _take_items(self, name: str, state: _Peer, digest: str, body: Mapping[str, object]) -> None:
        if digest != state.digest:
            return  # items of a digest the peer has since replaced
        part, parts, rows = body.get("part"), body.get("parts"), body.get("items")
        if not (
            isinstance(part, int)
            and isinstance(parts, int)
            and 0 <= part < parts <= MAX_PARTS
            and isinstance(rows, list)
        ):
            raise ValueError("drift-items: bad part/parts/items")
        items: list[Item] = []
        for row in rows:
            if not (
                isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)
            ):
                raise ValueError("drift-items: an item is not [key, value, loc]")
            items.append(Item(row[0], row[1], row[2]))
        if state.parts_of != f"{digest}/{parts}":
            state.parts, state.parts_of = {}, f"{digest}/{parts}"
        state.parts[part] = items
        if sum(len(x) for x in state.parts.values()) > MAX_ITEMS:
            state.parts = {}
            raise ValueError(f"drift-items: more than {MAX_ITEMS} items")
        if len(state.parts) == parts:
            state.items = [i for n in range(parts) for i in state.parts[n]]
            state.parts = {}
            self._evaluate(name, state)

    def _evaluate(self, name: str, state: _Peer) -> None:
        items, mine = self._own(name)
        theirs = state.digest
        if theirs is None:
            return
        if theirs == mine:
            was_drift = bool(state.differences)
            state.differences = []
            if was_drift and state.said != (mine, theirs):
                self._emit([f"failover peer {name}: configuration agrees with the peer's now"])
            state.said = (mine, theirs)
            return
        if state.items is None:
            if state.wanted != theirs and state.send is not None:
                state.wanted = theirs
                state.send("drift-want", {"digest": theirs})
            return
        diffs = compare(items, state.items)
        state.differences = diffs
        if state.said != (mine, theirs):
            state.said = (mine, theirs)
            lines = [
                f"failover peer {name}: CONFIGURATION DRIFT: this server's configuration "
                f"differs from the peer's in {len(diffs)} item(s) (digest {mine[:12]} here, "
                f"{theirs[:12]} on the peer): make both files agree"
            ]
            lines += [f"failover peer {name}: drift: {d.describe()}" for d in diffs[:SHOWN]]
            if len(diffs) > SHOWN:
                lines.append(f"failover peer {name}: drift: ... and {len(diffs) - SHOWN} more")
            self._emit(lines)

    # --- what failover-get shows ------------------------------------------------------------

    def ext_status(self, peer: str) -> dict[str, object]:
        items, mine = self._own(peer)
        state = self._peers.get(peer)
        theirs = state.digest if state is not None else None
        diffs = state.differences if state is not None else None
        if state is None or theirs is None:
            verdict = "unknown"
        elif diffs is None:
            verdict = "comparing"
        else:
            verdict = "drift" if diffs else "agree"
        return {
            "compared": "tandem",
            "state": verdict,
            "drift": verdict == "drift",
            "connected": state is not None and state.send is not None,
            "digest": mine,
            "peer-digest": theirs,
            "items": len(items),
            "count": len(diffs or []),
            "differences": [
                {
                    "key": d.key,
                    "here": d.here,
                    "here-loc": d.here_loc,
                    "peer": d.peer,
                    "peer-loc": d.peer_loc,
                }
                for d in (diffs or [])[:LISTED]
            ],
        }


def _hba_text(hba: bytes | None) -> str | None:
    if hba is None:
        return None
    for split in range(257):
        if hba_from_split(split) == hba:
            return f"split {split}"
    return f"hba {hba.hex(':')}"


def isc_compare(
    cfg: FailoverPeer,
    *,
    peer_mclt: int | None,
    peer_hba: bytes | None,
    peer_max_unacked: int,
    peer_receive_timer: int,
) -> dict[str, object]:
    """What the ISC protocol lets us compare with any peer, from its CONNECT/CONNECTACK.

    The secondary sees the primary's MCLT and HBA and compares them with its own block (when
    it sets them); both see the other's max-unacked-updates and receive timer, each server's
    own setting (shown, never drift).
    """
    own_hba = (
        cfg.hba
        if cfg.hba is not None
        else (hba_from_split(cfg.split) if cfg.split is not None else None)
    )
    rows: dict[str, dict[str, object]] = {
        "mclt": {"here": cfg.mclt, "peer": peer_mclt},
        "split-hba": {"here": _hba_text(own_hba), "peer": _hba_text(peer_hba)},
        "max-unacked-updates": {
            "here": cfg.max_unacked_updates,
            "peer": peer_max_unacked or None,
        },
        "receive-timer": {"here": cfg.max_response_delay, "peer": peer_receive_timer or None},
    }
    differences = [
        f"{name}: here {row['here']}, peer {row['peer']}"
        for name, row in rows.items()
        if name in ("mclt", "split-hba")
        and row["here"] is not None
        and row["peer"] is not None
        and row["here"] != row["peer"]
    ]
    return {"values": rows, "differences": differences}


def drift_section(status: Mapping[str, object]) -> dict[str, object]:
    """failover-get's ``drift``: the Tandem comparison, or what ISC's protocol lets us see."""
    ext = status.get("extension")
    isc = status.get("isc_compare")
    isc_view = isc if isinstance(isc, dict) else {"values": {}, "differences": []}
    if isinstance(ext, dict):
        features = ext.get("features")
        drift = features.get("drift") if isinstance(features, dict) else None
        if ext.get("peer_is_tandem") and isinstance(drift, dict):
            out = dict(drift)
            out["isc"] = isc_view
            if ext.get("state") == "refused":
                out["note"] = f"the extension was refused: {ext.get('refused')}"
            return out
        if ext.get("peer_vendor") is None:
            return {
                "compared": "none",
                "state": "unknown",
                "drift": False,
                "note": "not connected to the peer yet",
                "isc": isc_view,
            }
    diffs = isc_view.get("differences")
    found = bool(diffs) if isinstance(diffs, list) else False
    return {
        "compared": "isc",
        "state": "drift" if found else "agree",
        "drift": found,
        "note": ISC_NOTE,
        "isc": isc_view,
    }
