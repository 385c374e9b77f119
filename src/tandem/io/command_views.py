"""What the command layer shows: JSON shapes of leases, pools and failover relationships, and
``tandem status``'s text. Pure functions of the server's state (and ``now``): no I/O.

Pools are named as a person knows them, by subnet and ranges
(``192.0.2.0/24 192.0.2.100-192.0.2.200``), and subnets are numbered 1, 2, ... in the order
of the configuration file: Kea's ``subnet-id``, which dhcpd.conf does not have.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from operator import attrgetter

from tandem.core.failover.balance import ranges_text
from tandem.core.failover.drift import drift_section
from tandem.core.lease import BindingState, Lease
from tandem.core.pools import PoolState
from tandem.core.server import DhcpServer

__all__ = [
    "POOL_STATES",
    "STAT_COLUMNS",
    "PoolView",
    "SubnetIndex",
    "config_view",
    "failover_view",
    "format_status",
    "kea_statistics",
    "kea_time",
    "lease_json",
    "pool_labels",
    "pool_views",
    "side_state",
    "subnet_rows",
]

#: Every binding state, in the lease file's words: the ``state`` label of the pool metrics.
POOL_STATES = tuple(s.keyword for s in BindingState)
#: stat-lease4-get's columns (Kea's, without the cumulative count Tandem does not keep).
STAT_COLUMNS = ("subnet-id", "total-addresses", "assigned-addresses", "declined-addresses")
#: Kea's lease ``state``: 0 default (assigned), 1 declined, 2 expired-reclaimed.
KEA_STATE = {
    BindingState.ACTIVE: 0,
    BindingState.ABANDONED: 1,
    BindingState.EXPIRED: 2,
    BindingState.RELEASED: 2,
}
INFINITE = 0xFFFFFFFF


class SubnetIndex:
    """Subnet ids (1-based, file order) and each pool's subnet, computed once."""

    def __init__(self, server: DhcpServer) -> None:
        self.topo = server.topo
        self.ids = {id(st): i for i, st in enumerate(server.topo.subnets, 1)}

    def id_of(self, addr: IPv4Address | int) -> int:
        st = self.topo.subnet_of(addr)
        return 0 if st is None else self.ids.get(id(st), 0)

    def network_of(self, addr: IPv4Address | int) -> str:
        st = self.topo.subnet_of(addr)
        return "?" if st is None else str(st.network)


@dataclass(slots=True)
class PoolView:
    """One pool: its name, subnet, size, and how many addresses are in each binding state."""

    name: str
    ranges: str
    subnet_id: int
    size: int
    states: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "pool": self.name,
            "subnet-id": self.subnet_id,
            "total": self.size,
            "states": dict(self.states),
        }


def pool_name(pool: PoolState, subnets: SubnetIndex) -> str:
    ranges = ranges_text(pool.model)
    first = pool.model.ranges[0].low if pool.model.ranges else None
    return f"{subnets.network_of(first) if first is not None else '?'} {ranges}"


def pool_labels(server: DhcpServer, subnets: SubnetIndex) -> dict[str, str]:
    """Each pool's ranges text -> its name (the failover status names pools by ranges)."""
    return {
        ranges_text(p.model): pool_name(p, subnets)
        for share in server.topo.shares
        for p in share.pools
    }


def pool_views(server: DhcpServer, subnets: SubnetIndex) -> list[PoolView]:
    """Every pool with its counts by state; the counts add up to the pool's size.

    O(leases), but with the per-lease work in C: the lease addresses are sorted once, each
    range takes its slice by bisection, and the states of a slice are counted by ``map``
    (a scrape of 60,000 leases costs milliseconds, not the 140 ms of a ``locate`` per lease,
    on the event loop). Addresses never used since start-up have no lease and count as free.
    """
    by_addr = server.db.by_addr
    keys = sorted(by_addr)
    get = by_addr.__getitem__
    out: list[PoolView] = []
    for share in server.topo.shares:
        for pool in share.pools:
            first = pool.model.ranges[0].low if pool.model.ranges else None
            counts: Counter[BindingState] = Counter()
            for r in pool.model.ranges:
                lo, hi = sorted((int(r.low), int(r.high)))
                part = keys[bisect_left(keys, lo) : bisect_right(keys, hi)]
                counts.update(map(_STATE_OF, map(get, part)))
            states = {s.keyword: counts[s] for s in BindingState}
            states[BindingState.FREE.keyword] += pool.size - sum(counts.values())
            out.append(
                PoolView(
                    pool_name(pool, subnets),
                    ranges_text(pool.model),
                    subnets.id_of(first) if first is not None else 0,
                    pool.size,
                    states,
                )
            )
    return out


_STATE_OF = attrgetter("binding_state")


def _hex(raw: bytes) -> str:
    return raw.hex(":")


def lease_json(lease: Lease, subnets: SubnetIndex) -> dict[str, object]:
    """A lease as Kea's lease4-get shows one (Tandem's own facts under ``user-context``)."""
    starts = lease.starts
    ends = lease.ends
    if ends is None:
        valid = INFINITE if lease.binding_state is BindingState.ACTIVE else 0
    else:
        valid = max(0, ends - (lease.cltt or starts or ends))
    out: dict[str, object] = {
        "ip-address": str(lease.address),
        "hw-address": _hex(lease.hardware[1]) if lease.hardware is not None else "",
        "subnet-id": subnets.id_of(lease.address),
        "valid-lft": valid,
        "cltt": lease.cltt or starts or 0,
        "fqdn-fwd": False,
        "fqdn-rev": False,
        "hostname": lease.client_hostname or "",
        "state": KEA_STATE.get(lease.binding_state, 2),
        "user-context": {
            "tandem": {
                "binding-state": lease.binding_state.keyword,
                "starts": starts,
                "ends": ends,
            }
        },
    }
    if lease.uid is not None:
        out["client-id"] = _hex(lease.uid)
    return out


def subnet_rows(server: DhcpServer, subnets: SubnetIndex) -> list[tuple[int, int, int, int]]:
    """stat-lease4-get's rows: (subnet-id, total, assigned (active), declined (abandoned))."""
    total: Counter[int] = Counter()
    for view in pool_views(server, subnets):
        total[view.subnet_id] += view.size
    assigned: Counter[int] = Counter()
    declined: Counter[int] = Counter()
    for lease in server.db.by_addr.values():
        if lease.binding_state is BindingState.ACTIVE:
            assigned[subnets.id_of(lease.address)] += 1
        elif lease.binding_state is BindingState.ABANDONED:
            declined[subnets.id_of(lease.address)] += 1
    return [(i, total[i], assigned[i], declined[i]) for i in sorted(set(subnets.ids.values()))]


def kea_time(now: float) -> str:
    """Kea's statistics timestamp: ``2026-12-04 19:20:00.123456`` (UTC)."""
    whole = int(now)
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + f".{int((now - whole) * 1e6):06d}"
    )


def kea_statistics(
    dhcp: Mapping[str, object], server: DhcpServer, subnets: SubnetIndex
) -> dict[str, int]:
    """Kea's statistic names where Tandem has the number (pkt4-*, subnet[N].*)."""
    out: dict[str, int] = {}
    received = dhcp.get("received")
    replied = dhcp.get("replied")
    dropped = dhcp.get("dropped")
    by_type = dhcp.get("by-type")
    out["pkt4-received"] = received if isinstance(received, int) else 0
    out["pkt4-sent"] = replied if isinstance(replied, int) else 0
    drops = dropped if isinstance(dropped, dict) else {}
    out["pkt4-receive-drop"] = sum(v for v in drops.values() if isinstance(v, int))
    if isinstance(by_type, dict):
        for key, value in sorted(by_type.items()):
            if not isinstance(value, int):
                continue
            if key.startswith("rx.DHCP"):
                out[f"pkt4-{key[7:].lower()}-received"] = value
            elif key.startswith("tx.DHCP"):
                out[f"pkt4-{key[7:].lower()}-sent"] = value
    for sid, total, assigned, declined in subnet_rows(server, subnets):
        out[f"subnet[{sid}].total-addresses"] = total
        out[f"subnet[{sid}].assigned-addresses"] = assigned
        out[f"subnet[{sid}].declined-addresses"] = declined
    return out


def config_view(server: DhcpServer, subnets: SubnetIndex, path: str) -> dict[str, object]:
    """config-get: the running configuration's subnets, pools and failover peers (no keys)."""
    config = server.config
    subnet4 = []
    for st in server.topo.subnets:
        sid = subnets.ids[id(st)]
        pools = [
            {"pool": r, "failover-peer": p.model.failover_peer}
            for share in server.topo.shares
            for p in share.pools
            for r in ranges_text(p.model).split(",")
            if r and p.model.ranges and subnets.id_of(p.model.ranges[0].low) == sid
        ]
        subnet4.append({"id": sid, "subnet": str(st.network), "pools": pools})
    peers = [
        {
            "name": p.name,
            "role": p.role,
            "address": f"{p.address}:{p.port}",
            "peer-address": f"{p.peer_address}:{p.peer_port}",
            "mclt": p.mclt,
            "split": p.split,
            "max-response-delay": p.max_response_delay,
            "max-unacked-updates": p.max_unacked_updates,
            "load-balance-max-seconds": p.load_balance_max_seconds,
            "auto-partner-down": p.auto_partner_down,
        }
        for p in config.failover_peers
    ]
    return {
        "Dhcp4": {"subnet4": subnet4},
        "tandem": {
            "config-file": path,
            "failover-peers": peers,
            "hosts": len(config.hosts),
        },
    }


# --- failover ---------------------------------------------------------------------------------


def failover_view(
    status: Mapping[str, object], labels: Mapping[str, str], now: int
) -> dict[str, object]:
    """One relationship, from its link's ``status()``: both states and since when, the last
    contact, the clock skew, the update queues, per-pool free and backup counts."""
    last = status.get("last_contact")
    pools = []
    raw_pools = status.get("pools")
    for entry in raw_pools if isinstance(raw_pools, list) else []:
        if not isinstance(entry, dict):
            continue
        ranges = str(entry.get("ranges", ""))
        pools.append(
            {
                "pool": labels.get(ranges, ranges),
                "total": entry.get("total"),
                "free": entry.get("free"),
                "backup": entry.get("backup"),
            }
        )
    tcp = status.get("tcp")
    return {
        "name": status.get("name"),
        "role": status.get("role"),
        "local": {"state": status.get("my_state"), "since": status.get("my_stos")},
        "partner": {"state": status.get("partner_state"), "since": status.get("partner_stos")},
        "link": status.get("link"),
        "connected": tcp.get("connected") if isinstance(tcp, dict) else None,
        "last-contact": last,
        "last-contact-age": now - last if isinstance(last, int) else None,
        "clock-skew": status.get("clock_skew"),
        "mclt": status.get("mclt"),
        "queued-updates": status.get("queued_updates"),
        "unacked-updates": status.get("unacked_updates"),
        "pools": pools,
        "drift": drift_section(status),
        "extension": _extension(status.get("extension")),
        # auto-partner-down's probes, witness and fencing (io/autopd.py); None when off
        "auto-partner-down": status.get("auto_partner_down"),
    }


def _extension(ext: object) -> dict[str, object] | None:
    """The Tandem extension channel's state for failover-get (None: off), features apart."""
    if not isinstance(ext, dict):
        return None
    return {k.replace("_", "-"): v for k, v in ext.items() if k != "features"}


def side_state(view: Mapping[str, object], side: str) -> str:
    info = view.get(side)
    state = info.get("state") if isinstance(info, dict) else None
    return str(state) if state is not None else "unknown-state"


# --- tandem status -------------------------------------------------------------------------


def _when(stamp: object, now: int) -> str:
    if not isinstance(stamp, int):
        return "since an unknown time"
    text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    return f"since {text} ({_ago(now - stamp)})"


def _ago(seconds: int) -> str:
    if seconds < 0:
        return f"in {-seconds} s"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def format_status(
    status: Mapping[str, object],
    relationships: list[object],
    now: int,
    history: Mapping[str, object] | None = None,
) -> str:
    """``tandem status``: status-get's, failover-get's and history-get's answers as text for a
    terminal (the live page's facts)."""
    lines = [
        f"tandem {status.get('version')} pid {status.get('pid')} up {status.get('uptime')} s"
        f", config {status.get('config-file')} (build: {status.get('build')})"
    ]
    for rel in relationships:
        if not isinstance(rel, dict):
            continue
        lines.append(f"failover peer {rel.get('name')} ({rel.get('role')}): link {rel.get('link')}")
        for side in ("local", "partner"):
            info = rel.get(side)
            info = info if isinstance(info, dict) else {}
            label = "me     " if side == "local" else "partner"
            lines.append(f"  {label} {info.get('state')} {_when(info.get('since'), now)}")
        age = rel.get("last-contact-age")
        contact = "never" if not isinstance(age, int) else _ago(age)
        skew = rel.get("clock-skew")
        lines.append(
            f"  last contact {contact}, clock skew "
            f"{'unknown' if skew is None else f'{skew} s'}, updates queued "
            f"{rel.get('queued-updates')}, unacked {rel.get('unacked-updates')}"
        )
        for pool in rel.get("pools") or []:
            if isinstance(pool, dict):
                lines.append(
                    f"  pool {pool.get('pool')}: free {pool.get('free')}, "
                    f"backup {pool.get('backup')} of {pool.get('total')}"
                )
    pools = status.get("pools")
    if isinstance(pools, list) and pools:
        lines.append("pools:")
        for pool in pools:
            if not isinstance(pool, dict):
                continue
            states = pool.get("states")
            counts = states if isinstance(states, dict) else {}
            shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "empty"
            lines.append(f"  {pool.get('pool')}: {pool.get('total')} addresses: {shown}")
    dhcp = status.get("dhcp")
    if isinstance(dhcp, dict):
        dropped = dhcp.get("dropped")
        drops = dropped if isinstance(dropped, dict) else {}
        total = sum(v for v in drops.values() if isinstance(v, int))
        detail = ", ".join(f"{k} {v}" for k, v in sorted(drops.items()))
        lines.append(
            f"dhcp: received {dhcp.get('received')}, replied {dhcp.get('replied')}, "
            f"dropped {total}" + (f" ({detail})" if detail else "")
        )
    if history is not None:
        lines.extend(_history_lines(history, now))
    return "\n".join(lines)


def _history_lines(history: Mapping[str, object], now: int) -> list[str]:
    summary = history.get("history")
    h = summary if isinstance(summary, dict) else {}
    lines = []
    since = h.get("since")
    if isinstance(since, int):
        lines.append(
            f"last {_ago(now - since).removesuffix(' ago')}: leases in use {h.get('leases-in-use')}"
            f" (max {h.get('leases-in-use-max')}), DHCP packets/s {h.get('pps')}"
            f" (max {h.get('pps-max')})"
        )
    events = history.get("events")
    if isinstance(events, list) and events:
        lines.append("latest events:")
        for ev in events:
            if isinstance(ev, dict):
                t = ev.get("t")
                stamp = time.strftime("%H:%M:%S", time.gmtime(t)) if isinstance(t, int) else "?"
                lines.append(f"  {stamp} {ev.get('kind')}: {ev.get('text')}")
    return lines
