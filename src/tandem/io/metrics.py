"""``GET /metrics``: Prometheus' text format through prometheus-client, read at scrape time.

A custom collector (``TandemCollector``) reads the counters the server keeps anyway (the DHCP
endpoint's, the core's per-message counters, the failover links' status, the group commit's
sync-time histogram) when Prometheus scrapes; nothing is counted twice and no packet pays for
metrics. Pool counts walk the leases (O(leases), like ``tandem status``), once per scrape.

Names follow Prometheus' conventions: ``tandem_`` prefix, base units (seconds), ``_total``
for counters, labels for what varies (``pool`` by subnet and ranges, ``state`` in the lease
file's words, ``peer`` by relationship name).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tandem.io.command_views import POOL_STATES
from tandem.io.commands import Commands
from tandem.io.commit import COMMIT_BUCKETS
from tandem.wire.failover_codes import ServerState

__all__ = ["TandemCollector", "registry_for"]

#: Every failover state in dhcpd's words: ``tandem_failover_state`` has a series for each.
FAILOVER_STATES = tuple(s.keyword for s in ServerState)


class TandemCollector(Collector):
    """Reads one running server's facts through its ``Commands`` at every scrape."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands

    def collect(self) -> Iterator[Metric]:
        cmd = self.commands
        yield from self._pools(cmd)
        yield from self._dhcp(cmd)
        yield from self._failover(cmd)
        yield from self._auto_partner_down(cmd)
        yield from self._commit(cmd)

    def _pools(self, cmd: Commands) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "tandem_pool_addresses",
            "Addresses of each pool by binding state (they add up to the pool's size).",
            labels=["pool", "state"],
        )
        size = GaugeMetricFamily("tandem_pool_size", "Addresses in each pool.", labels=["pool"])
        for view in cmd.pools():
            size.add_metric([view.name], view.size)
            for state in POOL_STATES:
                fam.add_metric([view.name, state], view.states.get(state, 0))
        yield fam
        yield size

    def _dhcp(self, cmd: Commands) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "tandem_dhcp_received", "DHCP messages handled, by message type.", labels=["type"]
        )
        sent = CounterMetricFamily(
            "tandem_dhcp_sent", "DHCP replies built, by message type.", labels=["type"]
        )
        for key, value in sorted(cmd.server.counters.items()):
            if key.startswith("rx."):
                received.add_metric([key[3:]], value)
            elif key.startswith("tx."):
                sent.add_metric([key[3:]], value)
        yield received
        yield sent
        dropped = CounterMetricFamily(
            "tandem_dhcp_dropped", "Datagrams dropped, by reason.", labels=["reason"]
        )
        counters = cmd.dhcp_counters()
        drops = counters.get("dropped")
        for reason, value in sorted((drops if isinstance(drops, dict) else {}).items()):
            dropped.add_metric([str(reason)], value)
        yield dropped
        total = CounterMetricFamily(
            "tandem_dhcp_datagrams_received", "Datagrams read from the DHCP sockets."
        )
        total.add_metric([], _int(counters.get("received")))
        yield total

    def _failover(self, cmd: Commands) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "tandem_failover_state",
            "1 for the current failover state of each side (local or partner), else 0.",
            labels=["peer", "side", "state"],
        )
        contact = GaugeMetricFamily(
            "tandem_failover_last_contact_seconds",
            "Seconds since the partner's last message (absent before the first one).",
            labels=["peer"],
        )
        contact_at = GaugeMetricFamily(
            "tandem_failover_last_contact_timestamp_seconds",
            "Unix time of the partner's last message (absent before the first one).",
            labels=["peer"],
        )
        skew = GaugeMetricFamily(
            "tandem_failover_clock_skew_seconds",
            "The partner's clock minus ours, as seen in its message headers.",
            labels=["peer"],
        )
        unacked = GaugeMetricFamily(
            "tandem_failover_unacked_updates",
            "Binding updates sent and not yet acknowledged.",
            labels=["peer"],
        )
        queued = GaugeMetricFamily(
            "tandem_failover_queued_updates",
            "Binding updates waiting to be sent.",
            labels=["peer"],
        )
        drift = GaugeMetricFamily(
            "tandem_failover_config_drift",
            "1 when this server's configuration differs from the partner's (drift detection), "
            "else 0.",
            labels=["peer"],
        )
        for rel in cmd.relationships():
            peer = str(rel.get("name"))
            seen = rel.get("drift")
            drift.add_metric([peer], 1 if isinstance(seen, dict) and seen.get("drift") else 0)
            for side in ("local", "partner"):
                info = rel.get(side)
                current = info.get("state") if isinstance(info, dict) else None
                for name in FAILOVER_STATES:
                    state.add_metric([peer, side, name], 1 if name == current else 0)
            age = rel.get("last-contact-age")
            if isinstance(age, int):
                contact.add_metric([peer], age)
            at = rel.get("last-contact")
            if isinstance(at, int):
                contact_at.add_metric([peer], at)
            offset = rel.get("clock-skew")
            if isinstance(offset, int):
                skew.add_metric([peer], offset)
            unacked.add_metric([peer], _int(rel.get("unacked-updates")))
            queued.add_metric([peer], _int(rel.get("queued-updates")))
        yield from (state, contact, contact_at, skew, unacked, queued, drift)

    def _auto_partner_down(self, cmd: Commands) -> Iterator[Metric]:
        """auto-partner-down's probes and witness (io/autopd.py), per relationship with it."""
        peer_label = ["peer"]
        sent = CounterMetricFamily(
            "tandem_failover_probe_sent",
            "DHCPINFORM probes sent to the partner.",
            labels=peer_label,
        )
        answered = CounterMetricFamily(
            "tandem_failover_probe_answered", "Probes the partner answered.", labels=peer_label
        )
        pdrop = CounterMetricFamily(
            "tandem_failover_probe_dropped",
            "Datagrams on the probe socket that answered no probe, by reason.",
            labels=["peer", "reason"],
        )
        alive = GaugeMetricFamily(
            "tandem_failover_partner_alive",
            "1 while the failover link is down and the partner answers probes, else 0.",
            labels=peer_label,
        )
        fenced = GaugeMetricFamily(
            "tandem_failover_fenced",
            "1 while this server answers no client (its witness ticket lapsed), else 0.",
            labels=peer_label,
        )
        wreq = CounterMetricFamily(
            "tandem_witness_requests", "Requests sent to the witness.", labels=peer_label
        )
        wans = CounterMetricFamily(
            "tandem_witness_answers", "Witness answers accepted.", labels=peer_label
        )
        wdrop = CounterMetricFamily(
            "tandem_witness_dropped",
            "Datagrams from the witness dropped (bad MAC, stale id, junk), by reason.",
            labels=["reason"],
        )
        granted = GaugeMetricFamily(
            "tandem_witness_granted",
            "1 while the witness's partner-down grant is valid for this server, else 0.",
            labels=peer_label,
        )
        drops_seen = False
        for rel in cmd.relationships():
            apd = rel.get("auto-partner-down")
            if not isinstance(apd, dict):
                continue
            peer = [str(rel.get("name"))]
            probe = apd.get("probe")
            if isinstance(probe, dict):
                sent.add_metric(peer, _int(probe.get("sent")))
                answered.add_metric(peer, _int(probe.get("answered")))
                reasons = probe.get("dropped")
                for reason, n in sorted((reasons if isinstance(reasons, dict) else {}).items()):
                    pdrop.add_metric([peer[0], str(reason)], _int(n))
            alive.add_metric(peer, 1 if apd.get("partner_alive") is True else 0)
            fenced.add_metric(peer, 1 if apd.get("fenced") is True else 0)
            wit = apd.get("witness")
            if isinstance(wit, dict):
                wreq.add_metric(peer, _int(wit.get("sent")))
                wans.add_metric(peer, _int(wit.get("answered")))
                granted.add_metric(peer, 1 if wit.get("granted") is True else 0)
                reasons = wit.get("dropped")
                if not drops_seen and isinstance(reasons, dict):  # one shared socket
                    drops_seen = True
                    for reason, n in sorted(reasons.items()):
                        wdrop.add_metric([str(reason)], _int(n))
        yield from (sent, answered, pdrop, alive, fenced, wreq, wans, wdrop, granted)

    def _commit(self, cmd: Commands) -> Iterator[Metric]:
        commit = cmd.commit
        if commit is None:
            return
        times = commit.sync_times
        hist = HistogramMetricFamily(
            "tandem_lease_commit",
            "Seconds to write and fsync one group of lease records (per group, not per lease).",
            unit="seconds",
        )
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(COMMIT_BUCKETS, times.counts, strict=False):
            running += n
            buckets.append((_le(bound), running))
        buckets.append(("+Inf", times.count))
        hist.add_metric([], buckets, times.total)
        yield hist
        failures = CounterMetricFamily(
            "tandem_lease_commit_failures", "Lease-file writes or syncs that failed."
        )
        failures.add_metric([], commit.failures)
        yield failures


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _le(bound: float) -> str:
    return repr(bound)


def registry_for(commands: Commands) -> CollectorRegistry:
    """A registry holding only Tandem's collector (no process or platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TandemCollector(commands))
    return registry
