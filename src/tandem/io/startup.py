"""Start-up: the command line's ``Options``, logging, and reading the config and lease file.

What ``serve`` (tandem.io.runtime) and the other commands (``-t``, ``-T``, ``status``) need
before any socket opens: dhcpd's banner and start-up lines (``say``), the config checked as
``-t`` checks it (errors as file:line:col), the lease file read or refused, the HTTP listener's
address and token, and ``give_up``, which ends every start-up failure with dhcpd's
``exiting.`` line.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from tandem import BUILD, __version__
from tandem.config import ConfigError, load
from tandem.config.model import Config
from tandem.config.sides import Role
from tandem.core.flood import NewLeaseLimit
from tandem.io.control import control_path_for
from tandem.io.events import DEFAULT_TIMEOUT
from tandem.io.privileges import (
    PrivilegeError,
)
from tandem.store.leasefile import LeaseFileContents, LeaseFileError

if TYPE_CHECKING:
    from tandem.io.http_api import HttpApi

DEFAULT_CONF = "/etc/dhcp/dhcpd.conf"
DEFAULT_LEASES = "/var/lib/dhcp/dhcpd.leases"
DEFAULT_PID = "/run/tandem.pid"
DEFAULT_HTTP = "127.0.0.1:8067"  # the command API and /metrics (tandem.io.http_api)

log = logging.getLogger("tandem")
#: The last line of every start-up failure, as dhcpd's log_fatal (omapip/errwarn.c) ends its
#: message; scripts wait for it. The exit status stays non-zero.
EXITING = "exiting."


DEFAULT_LIMIT = NewLeaseLimit()


@dataclass
class Options:
    mode: str = "serve"  # serve | test-config | test-leases | status | partner-down
    config: str = DEFAULT_CONF
    leases: str = DEFAULT_LEASES
    pid: str | None = DEFAULT_PID
    port: int = 67
    foreground: bool = False
    debug: bool = False  # -d: log to stderr
    quiet: bool = False
    interfaces: list[str] = field(default_factory=list)
    control: str | None = None  # control socket; None: next to the pid file
    peer_name: str | None = None  # partner-down NAME
    json: bool = False  # status --json
    reserve_percent: float = DEFAULT_LIMIT.reserve_percent  # --reserve (tandem.core.flood)
    reserve_rate: float = DEFAULT_LIMIT.rate  # --reserve-rate
    user: str | None = None  # -user: drop to this user once root's work is done
    group: str | None = None  # -group (default: the user's primary group)
    chroot: str | None = None  # -chroot: after the config is read (tandem.io.privileges)
    http: str | None = DEFAULT_HTTP  # --http ADDR:PORT (None: --http off); tandem.io.http_api
    http_token_file: str | None = None  # --http-token-file: bearer token, writes allowed
    event_timeout: float = DEFAULT_TIMEOUT  # --event-timeout: seconds an execute() may run
    peer_url: str | None = None  # check --peer URL: a running peer's HTTP API
    peer_secret: str | None = None  # --peer-secret FILE: the extension channel's secret

    failover_role: Role | None = None  # --failover-role: which side of the peer blocks (sides)
    output: str | None = None  # export-partner-config -o (None: standard output)
    # auto-partner-down (io/probe.py, io/witness_client.py): where probes go (None: each peer
    # block's ``peer address``; NAME=ADDR entries per relationship), the witness, its secret
    probe_addresses: dict[str | None, str] = field(default_factory=dict)  # --probe-address
    witness: str | None = None  # --witness ADDR:PORT
    witness_secret: str | None = None  # --witness-secret FILE (also tandem witness's)
    witness_listen: str | None = None  # tandem witness --listen ADDR:PORT
    witness_state: str | None = None  # tandem witness --state FILE

    @property
    def new_lease_limit(self) -> NewLeaseLimit:
        rate = self.reserve_rate
        return NewLeaseLimit(self.reserve_percent, rate, max(1, round(rate)))

    @property
    def control_path(self) -> str:
        return self.control or control_path_for(self.pid)


def http_address(value: str) -> tuple[str, int]:
    """``--http ADDR:PORT`` -> (IPv4 address, port); ValueError with the fix otherwise."""
    host, sep, port = value.rpartition(":")
    try:
        IPv4Address(host)
    except ValueError:
        sep = ""
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--http {value!r}: give ADDR:PORT (e.g. 127.0.0.1:8067) or off")
    return host, int(port)


@dataclass
class HttpSetup:
    """What ``--http`` asked for, checked before the chroot (the token file is read there)."""

    host: str
    port: int
    token: str | None
    api: type[HttpApi]  # tandem.io.http_api.HttpApi, imported before the chroot


def prepare_http(opts: Options) -> HttpSetup | None:
    """Check ``--http``/``--http-token-file`` and load the HTTP modules (before a chroot,
    which may not hold them). None when off; HttpError says what is wrong."""
    if opts.http is None:
        return None
    # aiohttp and prometheus-client: imported only when serving HTTP, and before a chroot.
    from tandem.io import http_api  # noqa: PLC0415

    host, port = http_address(opts.http)
    token = http_api.read_token(opts.http_token_file) if opts.http_token_file else None
    http_api.check_listen(host, token)
    return HttpSetup(host, port, token, http_api.HttpApi)


def check_config_file(path: str) -> list[str]:
    """config-test: the diagnostics ``tandem -t`` would print for ``path`` (empty: valid)."""
    try:
        load(path)
    except ConfigError as exc:
        return [str(d) for d in exc.diagnostics] or [str(exc)]
    except OSError as exc:
        return [f"Can't open {path}: {exc.strerror}"]
    return []


def read_leases(opts: Options, read: Callable[[], LeaseFileContents]) -> LeaseFileContents | None:
    """Run ``read``; print dhcpd-style errors (None) or the file's warnings."""
    try:
        contents = read()
    except LeaseFileError as exc:
        give_up(None, str(exc), "Lease file errors encountered -- exiting")
        return None
    except OSError as exc:
        give_up(None, f"Can't open lease database {opts.leases}: {exc.strerror}")
        return None
    for warning in contents.warnings:
        print(str(warning), file=sys.stderr)
    return contents


def say(opts: Options, text: str) -> None:
    if not opts.quiet:
        print(text, file=sys.stderr, flush=True)


def banner(opts: Options) -> None:
    say(opts, f"Tandem DHCP Server {__version__}")
    say(opts, "A dhcpd.conf-compatible DHCPv4 server; see docs/ for details.")
    if BUILD != "native":  # scripts/build_native.py compiles the hot path; see README
        say(opts, f"Hot path: {BUILD}")


def load_config(opts: Options) -> Config | None:
    """Parse the config; print its diagnostics like dhcpd; None when it has errors."""
    try:
        config = load(opts.config)
    except ConfigError as exc:
        lines = [str(diag) for diag in exc.diagnostics]
        give_up(None, *lines, "Configuration file errors encountered -- exiting")
        return None
    except OSError as exc:
        give_up(None, f"Can't open {opts.config}: {exc.strerror}")
        return None
    for diag in config.warnings:
        print(str(diag), file=sys.stderr)
    return config


def setup_logging(opts: Options, facility: str | None) -> None:
    logger = logging.getLogger("tandem")
    logger.setLevel(logging.INFO)
    handler: logging.Handler
    if opts.debug or not os.path.exists("/dev/log"):
        handler = logging.StreamHandler(sys.stderr)
    else:
        fac = logging.handlers.SysLogHandler.facility_names.get(facility or "daemon", 3 << 3)
        handler = logging.handlers.SysLogHandler("/dev/log", facility=fac)
        handler.ident = "tandem: "
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)


def emit_stderr(lines: list[str]) -> None:
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def give_up(opts: Options | None, *lines: str) -> int:
    """A start-up failure: ``lines``, then dhcpd's ``exiting.``, on stderr and (given ``opts``,
    once logging is set up and not -d) in the log too; returns the exit status, 1."""
    for line in (*lines, EXITING):
        print(line, file=sys.stderr, flush=True)
    if opts is not None and not opts.debug and log.handlers:
        for line in (*lines, EXITING):
            log.error("%s", line)
    return 1


def privilege_failure(opts: Options, exc: PrivilegeError) -> int:
    """A start-up failure of -user/-group/-chroot: on stderr, and in the log once it is set up."""
    return give_up(opts, str(exc))


def emit_log(lines: list[str]) -> None:
    for line in lines:
        log.info("%s", line)
