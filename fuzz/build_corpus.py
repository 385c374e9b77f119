"""Rebuild the seed corpora in fuzz/corpus/<target>/ from the project's real vectors.

Sources: the ISC dhcpd pair's captures and lease files (shared/vectors/isc-dhcpd-pair), the
dhcpd.conf corpus in tests/configs (good and broken), and a few hand-written control
requests. Run it again after the vectors change; the output is deterministic, so git shows
only real differences::

    .venv/bin/python fuzz/build_corpus.py [--vectors DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
from pathlib import Path

from tandem.lab.shared import VECTORS as SHARED_VECTORS
from tandem.wire.failover import FailoverProtocolError
from tandem.wire.framing import FrameBuffer

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
DEFAULT_VECTORS = SHARED_VECTORS


def pcap_frames(path: Path) -> list[bytes]:
    """Link-layer frames of a classic pcap file (either byte order)."""
    data = path.read_bytes()
    if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    record = struct.Struct(endian + "IIII")
    pos, frames = 24, []
    while pos + record.size <= len(data):
        caplen = record.unpack_from(data, pos)[2]
        pos += record.size
        if pos + caplen > len(data):
            break
        frames.append(data[pos : pos + caplen])
        pos += caplen
    return frames


def ipv4_of(frame: bytes) -> bytes | None:
    """The IPv4 datagram inside an Ethernet II frame (Ethernet padding removed)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    total = int.from_bytes(ip[2:4], "big")
    return ip[:total] if 20 <= total <= len(ip) else None


def dhcp_seeds(vectors: Path) -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    for i, frame in enumerate(pcap_frames(vectors / "dhcp-udp.pcap"), start=1):
        ip = ipv4_of(frame)
        if ip is None or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        seeds[f"frame{i:03d}-payload"] = ip[ihl + 8 :]
        seeds[f"frame{i:03d}-ipv4"] = ip
    return seeds


def failover_seeds(vectors: Path) -> dict[str, bytes]:
    """TCP payloads of the failover capture, and each whole message framed out of them."""
    seeds: dict[str, bytes] = {}
    seen: set[bytes] = set()  # one of each: most CONTACTs and ACKs look alike
    streams: dict[tuple[bytes, bytes], bytearray] = {}
    for i, frame in enumerate(pcap_frames(vectors / "failover-tcp.pcap"), start=1):
        ip = ipv4_of(frame)
        if ip is None or ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        tcp = ip[ihl:]
        payload = tcp[(tcp[12] >> 4) * 4 :]
        # Keep the segments that are not exactly one message (coalesced or split ones):
        # the single messages come out of the framer below.
        whole = len(payload) >= 2 and int.from_bytes(payload[:2], "big") == len(payload)
        if payload and not whole and payload not in seen and len(seen) < 40:
            seen.add(payload)
            seeds[f"segment{i:03d}"] = payload
        if payload:
            streams.setdefault((ip[12:16] + tcp[:2], ip[16:20] + tcp[2:4]), bytearray()).extend(
                payload
            )
    per_type: dict[int, int] = {}
    for n, stream in enumerate(streams.values()):
        fb = FrameBuffer(max_buffered=len(stream) + 4096)
        try:
            fb.feed(bytes(stream))
            for k, message in enumerate(fb):
                kept = per_type.get(message[2], 0)
                if message not in seen and kept < 6:  # most CONTACTs/ACKs look alike
                    per_type[message[2]] = kept + 1
                    seen.add(message)
                    seeds[f"stream{n}-msg{k:03d}-type{message[2]}"] = message
        except FailoverProtocolError:
            pass  # a capture cut mid-message: the segments above still have it
    return seeds


def config_seeds(vectors: Path) -> dict[str, bytes]:
    configs = REPO / "tests" / "configs"
    paths = sorted(configs.rglob("*.conf")) + sorted((configs / "inc").rglob("*"))
    paths += sorted(vectors.glob("*.conf"))
    seeds: dict[str, bytes] = {}
    for path in paths:
        if path.is_file():
            rel = path.relative_to(configs if configs in path.parents else vectors)
            seeds[str(rel).replace("/", "--")] = path.read_bytes()
    return seeds


def lease_seeds(vectors: Path) -> dict[str, bytes]:
    seeds = {p.name: p.read_bytes() for p in sorted(vectors.glob("*.leases"))}
    seeds["hostile-strings.leases"] = (
        b"lease 192.0.2.100 {\n  starts 3 2024/01/03 10:00:00;\n  ends never;\n"
        b"  binding state active;\n  hardware ethernet 52:54:00:12:34:56;\n"
        b'  uid "\\001RT\\000\\0224V";\n  set vendor-class-identifier = "a\\"b\\\\c";\n'
        b'  client-hostname "x;$(reboot)`id`";\n}\n'
        b'failover peer "failover-example" state {\n  my state normal at 3 2024/01/03 10:00:00;\n'
        b"  partner state normal at 3 2024/01/03 10:00:00;\n  mclt 3600;\n}\n"
        b'server-duid "\\000\\001\\000\\001";\n'
    )
    return seeds


def control_seeds() -> dict[str, bytes]:
    requests: list[object] = [
        {"command": "status"},
        {"command": "partner-down", "name": "failover-example"},
        {"command": "status", "args": [1, 2.5, None, True, {"a": ["b"]}]},
        {"command": "x" * 100, "nested": {"a": {"b": {"c": [[[]]]}}}},
        ["command", "status"],
    ]
    seeds = {f"request{i}": json.dumps(r).encode() for i, r in enumerate(requests)}
    seeds["escaped"] = b'{"command": "st\\u0061tus", "s": "\\"[{\\\\"}'
    return seeds


def command_seeds() -> dict[str, bytes]:
    requests: list[object] = [
        {"command": "list-commands"},
        {"command": "status-get", "service": ["dhcp4"]},
        {"command": "lease4-get", "arguments": {"ip-address": "192.0.2.100"}},
        {
            "command": "lease4-get",
            "arguments": {"identifier-type": "hw-address", "identifier": "52:54:00:00:00:64"},
        },
        {"command": "lease4-get-page", "arguments": {"from": "start", "limit": 2}},
        {"command": "lease4-get-all", "arguments": {"subnets": [1]}},
        {"command": "stat-lease4-get", "arguments": {"subnet-range": {"first-subnet-id": 1}}},
        {"command": "statistic-get-all"},
        {"command": "failover-get", "arguments": {"name": "failover-example"}},
        {"command": "lease4-del", "arguments": {"ip-address": "192.0.2.100"}},
        {"command": "config-get"},
    ]
    return {f"request{i}": json.dumps(r).encode() for i, r in enumerate(requests)}


def witness_seeds() -> dict[str, bytes]:
    from tandem.wire.witness import WitnessAnswer, WitnessRequest, encode  # noqa: PLC0415

    key = b"fuzz witness secret"  # fuzzlib.WITNESS_KEY
    req = WitnessRequest("failover-example", "secondary", 41, want_partner_down=True, mclt_s=30)
    ans = WitnessAnswer("failover-example", "secondary", 41, 12000, 12000, 0, False, False)
    held = WitnessAnswer("failover-example", "primary", 2**40, 12000, 0, 30000, True, True)
    return {
        "request": encode(req),
        "request-signed": encode(req, key),
        "answer": encode(ans),
        "answer-signed": encode(ans, key),
        "answer-held": encode(held, key),
        "request-unicode": encode(WitnessRequest("pair-\u00e9t\u00e9", "primary", 1), key),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=Path, default=DEFAULT_VECTORS)
    args = ap.parse_args()
    sets = {
        "dhcp": dhcp_seeds(args.vectors),
        "failover": failover_seeds(args.vectors),
        "config": config_seeds(args.vectors),
        "leases": lease_seeds(args.vectors),
        "control": control_seeds(),
        "command": command_seeds(),
        "witness": witness_seeds(),
    }
    for target, seeds in sets.items():
        folder = FUZZ / "corpus" / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
