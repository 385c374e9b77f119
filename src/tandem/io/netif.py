"""Network interfaces: names, indexes, hardware and IPv4 addresses (Linux).

Read once at start-up from ``ip -json``: the edge may run a program, the core may not.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    index: int
    mac: bytes
    addrs: tuple[IPv4Interface, ...]

    @property
    def mac_text(self) -> str:
        return ":".join(f"{b:02x}" for b in self.mac)


def list_interfaces() -> dict[str, Interface]:
    """Every interface of this network namespace with its IPv4 addresses."""
    out = subprocess.run(
        ["ip", "-json", "address", "show"], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Interface] = {}
    for entry in json.loads(out):
        name = str(entry.get("ifname", ""))
        mac_text = str(entry.get("address", "") or "")
        try:
            mac = bytes.fromhex(mac_text.replace(":", "")) if mac_text else b""
        except ValueError:
            mac = b""
        addrs: list[IPv4Interface] = []
        for info in entry.get("addr_info", []):
            if info.get("family") == "inet":
                addrs.append(IPv4Interface(f"{info['local']}/{info['prefixlen']}"))
        result[name] = Interface(name, int(entry.get("ifindex", 0)), mac, tuple(addrs))
    return result


@dataclass(frozen=True, slots=True)
class LocalAddresses:
    """The IPv4 addresses this host (this network namespace) owns, for ``config/sides.py``.

    Every interface's addresses count, loopback ones included, and for a 127.x address its
    whole prefix (Linux answers for all of 127.0.0.0/8 on ``lo``): a pair on one machine may
    use 127.0.0.1 and 127.0.0.2. In the lab each namespace has its own ``lo`` and veths, so each
    host sees only its own addresses.
    """

    addresses: frozenset[IPv4Address]
    loopback: tuple[IPv4Network, ...]

    def __contains__(self, addr: object) -> bool:
        if not isinstance(addr, IPv4Address):
            return False
        return addr in self.addresses or any(addr in net for net in self.loopback)


def local_addresses(ifaces: dict[str, Interface]) -> LocalAddresses:
    """This host's addresses, from ``list_interfaces()``'s answer."""
    addrs = frozenset(a.ip for i in ifaces.values() for a in i.addrs)
    loopback = tuple(a.network for i in ifaces.values() for a in i.addrs if a.ip.is_loopback)
    return LocalAddresses(addrs, loopback)
