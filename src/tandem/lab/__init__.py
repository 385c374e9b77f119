"""Network-namespace lab: real DHCP servers, relays and clients for tests, demo and bench.

Not part of the server: this package may use subprocess, time and os freely.
"""

from __future__ import annotations

from tandem.lab.clients import ClientEvent, Dhclient, Dhcpcd, Udhcpc
from tandem.lab.netns import Host, Lab, LabError, Proc, Segment, cleanup_stale
from tandem.lab.servers import (
    DHCPD_KINDS,
    Server,
    run_dhcpd,
    run_dhcpd_kind,
    run_dhcrelay,
    run_kea,
    run_tandem,
)

__all__ = [
    "DHCPD_KINDS",
    "ClientEvent",
    "Dhclient",
    "Dhcpcd",
    "Host",
    "Lab",
    "LabError",
    "Proc",
    "Segment",
    "Server",
    "Udhcpc",
    "cleanup_stale",
    "run_dhcpd",
    "run_dhcpd_kind",
    "run_dhcrelay",
    "run_kea",
    "run_tandem",
]
