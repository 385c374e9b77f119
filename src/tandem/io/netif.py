"""Network interfaces: names, indexes, hardware and IPv4 addresses (Linux).

Read once at start-up from ``ip -json``: the edge may run a program, the core may not.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Interface


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
