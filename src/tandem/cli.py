"""Command line: dhcpd's flags, plus friendly subcommands. Wiring only.

dhcpd style::

    tandem [-4] [-f] [-d] [-q] [-t|-T] [-p PORT] [-cf FILE] [-lf FILE] [-pf FILE]
           [--no-pid] [IFACE...]

Subcommands::

    tandem serve [--config FILE] [--leases FILE] [--pid FILE] [--port N] [-d] [IFACE...]
    tandem check [CONFIG]            # like -t
    tandem check-leases [LEASES]     # like -T
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from tandem import __version__
from tandem.config import ConfigError, load
from tandem.config.model import Config, Param
from tandem.core.server import DhcpServer
from tandem.io.dhcp_socket import DhcpEndpoint
from tandem.io.netif import list_interfaces
from tandem.store.journal import LeaseJournal
from tandem.store.leasefile import LeaseFileError, parse_leases

DEFAULT_CONF = "/etc/dhcp/dhcpd.conf"
DEFAULT_LEASES = "/var/lib/dhcp/dhcpd.leases"
DEFAULT_PID = "/run/tandem.pid"
REWRITE_PERIOD = 3600  # seconds between lease-file compactions, as dhcpd

USAGE = """\
Usage: tandem [-4] [-f] [-d] [-q] [-t|-T] [-p <port>] [-cf config-file] [-lf lease-file]
              [-pf pid-file] [--no-pid] [if0 [...ifN]]
       tandem serve [--config FILE] [--leases FILE] [--pid FILE] [--port N] [-d] [if0 ...]
       tandem check [CONFIG]
       tandem check-leases [LEASES] [--config CONFIG]
       tandem --version"""


class UsageError(Exception):
    pass


@dataclass
class Options:
    mode: str = "serve"  # serve | test-config | test-leases
    config: str = DEFAULT_CONF
    leases: str = DEFAULT_LEASES
    pid: str | None = DEFAULT_PID
    port: int = 67
    foreground: bool = False
    debug: bool = False  # -d: log to stderr
    quiet: bool = False
    interfaces: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    """Parse dhcpd's flags or a friendly subcommand into Options."""
    opts = Options()
    args = list(argv)
    if args and args[0] in ("serve", "check", "check-leases"):
        return _parse_subcommand(args[0], args[1:], opts)
    it = iter(args)
    for arg in it:
        if arg in ("-4",):
            continue
        if arg == "-6":
            raise UsageError("tandem serves DHCPv4 only (-6 is not supported)")
        if arg == "-f":
            opts.foreground = True
        elif arg == "-d":
            opts.debug = True
            opts.foreground = True
        elif arg == "-q":
            opts.quiet = True
        elif arg == "-t":
            opts.mode = "test-config"
        elif arg == "-T":
            opts.mode = "test-leases"
        elif arg == "--no-pid":
            opts.pid = None
        elif arg in ("-cf", "-lf", "-pf", "-p", "-user", "-group", "-chroot", "-tf", "-play"):
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            if arg == "-cf":
                opts.config = value
            elif arg == "-lf":
                opts.leases = value
            elif arg == "-pf":
                opts.pid = value
            elif arg == "-p":
                opts.port = _port(value)
            else:
                raise UsageError(f"{arg} is a dhcpd option Tandem does not support yet")
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}")
        else:
            opts.interfaces.append(arg)
    return opts


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65535:
        raise UsageError(f"bad port {value!r}: give a number from 1 to 65534")
    return int(value)


def _parse_subcommand(name: str, args: list[str], opts: Options) -> Options:
    opts.foreground = True
    if name == "check":
        opts.mode = "test-config"
    elif name == "check-leases":
        opts.mode = "test-leases"
    it = iter(args)
    positional: list[str] = []
    for arg in it:
        if arg in ("--config", "--leases", "--pid", "--port"):
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            if arg == "--config":
                opts.config = value
            elif arg == "--leases":
                opts.leases = value
            elif arg == "--pid":
                opts.pid = value
            else:
                opts.port = _port(value)
        elif arg in ("-d", "--debug"):
            opts.debug = True
        elif arg in ("-q", "--quiet"):
            opts.quiet = True
        elif arg == "--no-pid":
            opts.pid = None
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}")
        else:
            positional.append(arg)
    if name == "check" and positional:
        opts.config = positional.pop(0)
    elif name == "check-leases" and positional:
        opts.leases = positional.pop(0)
    if name != "serve" and positional:
        raise UsageError(f"unexpected argument {positional[0]!r}")
    opts.interfaces = positional
    return opts


def _say(opts: Options, text: str) -> None:
    if not opts.quiet:
        print(text, file=sys.stderr, flush=True)


def _banner(opts: Options) -> None:
    _say(opts, f"Tandem DHCP Server {__version__}")
    _say(opts, "A dhcpd.conf-compatible DHCPv4 server; see docs/ for details.")


def _load_config(opts: Options) -> Config | None:
    """Parse the config; print its diagnostics like dhcpd; None when it has errors."""
    try:
        config = load(opts.config)
    except ConfigError as exc:
        for diag in exc.diagnostics:
            print(str(diag), file=sys.stderr)
        print("Configuration file errors encountered -- exiting", file=sys.stderr)
        return None
    except OSError as exc:
        print(f"Can't open {opts.config}: {exc.strerror}", file=sys.stderr)
        return None
    for diag in config.warnings:
        print(str(diag), file=sys.stderr)
    return config


def test_config(opts: Options) -> int:
    """``-t``: exit 0 when the config is valid; file:line:col errors and exit 1 otherwise."""
    _banner(opts)
    config = _load_config(opts)
    if config is None:
        return 1
    _say(opts, f"Config file: {opts.config}")
    return 0


def test_leases(opts: Options) -> int:
    """``-T``: exit 0 when the lease file parses; errors with file:line:col otherwise."""
    _banner(opts)
    try:
        with open(opts.leases, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
        contents = parse_leases(text, opts.leases)
    except LeaseFileError as exc:
        print(str(exc), file=sys.stderr)
        print("Lease file errors encountered -- exiting", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Can't open lease database {opts.leases}: {exc.strerror}", file=sys.stderr)
        return 1
    for warning in contents.warnings:
        print(str(warning), file=sys.stderr)
    _say(opts, f"Database file: {opts.leases}")
    _say(opts, f"Read {len(contents.leases)} leases.")
    return 0


def _setup_logging(opts: Options, facility: str | None) -> None:
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


def serve(opts: Options) -> int:
    """Load config and leases, bind the interfaces, serve until SIGTERM/SIGINT."""
    _banner(opts)
    config = _load_config(opts)
    if config is None:
        return 1
    facility = next(
        (
            str(s.value)
            for s in config.statements
            if isinstance(s, Param) and s.name == "log-facility"
        ),
        None,
    )
    _setup_logging(opts, facility)
    _say(opts, f"Config file: {opts.config}")
    _say(opts, f"Database file: {opts.leases}")
    if opts.pid:
        _say(opts, f"PID file: {opts.pid}")

    journal = LeaseJournal(opts.leases)
    try:
        contents = journal.load()
    except LeaseFileError as exc:
        print(str(exc), file=sys.stderr)
        print("Lease file errors encountered -- exiting", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Can't open lease database {opts.leases}: {exc.strerror}", file=sys.stderr)
        return 1
    for warning in contents.warnings:
        print(str(warning), file=sys.stderr)

    all_ifaces = list_interfaces()
    networks = [s.network for s in config.subnets]
    if opts.interfaces:
        missing = [n for n in opts.interfaces if n not in all_ifaces]
        if missing:
            print(f"Interface {missing[0]} does not exist -- exiting", file=sys.stderr)
            return 1
        chosen = [all_ifaces[n] for n in opts.interfaces]
    else:
        chosen = [
            i
            for i in all_ifaces.values()
            if i.name != "lo" and any(a.ip in n for a in i.addrs for n in networks)
        ]
    for iface in chosen:
        if not any(a.ip in n for a in iface.addrs for n in networks):
            print(
                f"No subnet declaration for {iface.name} "
                f"({', '.join(str(a.ip) for a in iface.addrs) or 'no IPv4 addresses'}).",
                file=sys.stderr,
            )
            print(
                "** Ignoring requests on "
                f"{iface.name}.  If this is not what you want, please write a subnet "
                "declaration in your dhcpd.conf file for the network segment to which "
                f"interface {iface.name} is attached. **",
                file=sys.stderr,
            )
    chosen = [i for i in chosen if any(a.ip in n for a in i.addrs for n in networks)]
    if not chosen:
        print("Not configured to listen on any interfaces!", file=sys.stderr)
        return 1

    server = DhcpServer(
        config,
        leases=contents.leases.values(),
        interfaces={i.name: i.addrs for i in chosen},
    )
    journal.rewrite(server.leases(), contents.failover_states.values())
    _say(opts, f"Wrote {sum(1 for _ in server.leases())} leases to leases file.")
    try:
        endpoint = DhcpEndpoint(server, journal, chosen, server_port=opts.port)
    except OSError as exc:
        print(f"Can't bind to dhcp address: {exc.strerror}", file=sys.stderr)
        print("Please make sure there is no other dhcp server running.", file=sys.stderr)
        return 1
    for iface in chosen:
        net = next(a.network for a in iface.addrs if any(a.ip in n for n in networks))
        _say(opts, f"Listening on Socket/{iface.name}/{iface.mac_text}/{net}")
        _say(opts, f"Sending on   Socket/{iface.name}/{iface.mac_text}/{net}")

    if not opts.foreground:
        _daemonize()
    if opts.pid:
        with open(opts.pid, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
    _say(opts, "Server starting service.")
    try:
        asyncio.run(_run(endpoint, server, journal))
    finally:
        endpoint.close()
        journal.close()
        if opts.pid:
            with contextlib.suppress(OSError):
                os.unlink(opts.pid)
    return 0


async def _run(endpoint: DhcpEndpoint, server: DhcpServer, journal: LeaseJournal) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    endpoint.start(loop)
    last_rewrite = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        endpoint.tick()
        if time.monotonic() - last_rewrite >= REWRITE_PERIOD and endpoint.compact():
            last_rewrite = time.monotonic()


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tandem`` command."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("--version", "-V"):
        print(f"tandem {__version__}")
        return 0
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    try:
        opts = parse_args(args)
    except UsageError as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    if opts.mode == "test-config":
        return test_config(opts)
    if opts.mode == "test-leases":
        return test_leases(opts)
    return serve(opts)


if __name__ == "__main__":
    sys.exit(main())
