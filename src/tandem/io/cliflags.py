"""The command line's flag values: each checked, with a UsageError that says what to give.

Split from ``tandem.cli`` (the 600-line rule); the parser there calls these per flag.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from tandem.config.sides import ROLES, Role
from tandem.io.startup import Options, http_address
from tandem.io.witness_client import listen_address

__all__ = [
    "APD_OPTIONS",
    "HTTP_OPTIONS",
    "LIMIT_OPTIONS",
    "WITNESS_OPTIONS",
    "UsageError",
    "event_timeout",
    "failover_role",
    "port_number",
    "set_apd",
    "set_http",
    "set_limit",
]


class UsageError(Exception):
    """A bad command line; the message says what to give."""


LIMIT_OPTIONS = ("--reserve", "--reserve-rate")
APD_OPTIONS = ("--probe-address", "--witness", "--witness-secret")
WITNESS_OPTIONS = ("--listen", "--state", "--witness-secret")


def set_apd(opts: Options, arg: str, value: str) -> None:
    """auto-partner-down's flags: ``--probe-address [NAME=]ADDR``, ``--witness ADDR:PORT``,
    ``--witness-secret FILE``."""
    if arg == "--witness-secret":
        opts.witness_secret = value
    elif arg == "--witness":
        try:
            listen_address(value)
        except ValueError as exc:
            raise UsageError(f"--witness {exc}") from exc
        opts.witness = value
    else:
        name, sep, addr = value.rpartition("=")
        try:
            IPv4Address(addr)
        except ValueError:
            raise UsageError(
                f"--probe-address {value!r}: give an IPv4 address, or NAME=ADDR for one "
                "failover peer"
            ) from None
        opts.probe_addresses[name if sep else None] = addr


HTTP_OPTIONS = ("--http", "--http-token-file")


def set_http(opts: Options, arg: str, value: str) -> None:
    """``--http ADDR:PORT`` / ``--http off``, ``--http-token-file FILE``."""
    if arg == "--http-token-file":
        opts.http_token_file = value
    elif value == "off":
        opts.http = None
    else:
        try:
            http_address(value)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        opts.http = value


def set_limit(opts: Options, arg: str, value: str) -> None:
    """``--reserve PERCENT`` and ``--reserve-rate N``: the new-lease gate (tandem.core.flood)."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if arg == "--reserve":
        if not 0 <= number <= 100:
            raise UsageError(f"--reserve {value!r}: give a percentage from 0 (off) to 100")
        opts.reserve_percent = number
    else:
        if not number > 0:
            raise UsageError(f"--reserve-rate {value!r}: give new leases per second, above 0")
        opts.reserve_rate = number


def event_timeout(value: str) -> float:
    """``--event-timeout SECONDS``: how long an ``execute()`` of a lease event may run."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise UsageError(f"--event-timeout {value!r}: give seconds, above 0 (default 30)")
    return seconds


def failover_role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise UsageError(f"--failover-role {value!r}: give primary or secondary")


def port_number(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65535:
        raise UsageError(f"bad port {value!r}: give a number from 1 to 65534")
    return int(value)
