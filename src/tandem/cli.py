"""Command line: dhcpd's flags, plus friendly subcommands. Wiring only.

dhcpd style::

    tandem [-4] [-f] [-d] [-q] [-t|-T] [-p PORT] [-cf FILE] [-lf FILE] [-pf FILE]
           [-ctl FILE] [--no-pid] [-user USER] [-group GROUP] [-chroot DIR] [IFACE...]

Subcommands::

    tandem serve [--config FILE] [--leases FILE] [--pid FILE] [--port N] [-d] [IFACE...]
    tandem check [CONFIG]            # like -t
    tandem check-leases [LEASES]     # like -T
    tandem status [--control FILE] [--json]
    tandem partner-down NAME [--control FILE]

The control socket defaults to the pid file's name with ``.ctl`` (``/run/tandem.ctl``); the
``status`` and ``partner-down`` commands accept ``-pf``/``--pid`` to find it the same way.
"""

from __future__ import annotations

import json
import sys

from tandem import __version__
from tandem.io.control import ControlUnavailable, request
from tandem.io.privileges import PrivilegeError, enter_chroot, resolve
from tandem.io.runtime import Options, banner, give_up, load_config, read_leases, say, serve
from tandem.store.leasefile import LeaseFileContents, parse_leases

__all__ = ["Options", "UsageError", "main", "parse_args"]

USAGE = """\
Usage: tandem [-4] [-f] [-d] [-q] [-t|-T] [-p <port>] [-cf config-file] [-lf lease-file]
              [-pf pid-file] [-ctl control-socket] [--no-pid]
              [-user user] [-group group] [-chroot dir] [if0 [...ifN]]
       tandem serve [--config FILE] [--leases FILE] [--pid FILE] [--port N]
                    [--control FILE] [-d] [if0 ...]
       tandem check [CONFIG]
       tandem check-leases [LEASES] [--config CONFIG]
       tandem status [--control FILE] [--json]
       tandem partner-down NAME [--control FILE]
       tandem --version"""

_SUBCOMMANDS = ("serve", "check", "check-leases", "status", "partner-down")


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> Options:
    """Parse dhcpd's flags or a friendly subcommand into Options."""
    opts = Options()
    args = list(argv)
    if args and args[0] in _SUBCOMMANDS:
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
        elif arg in (
            "-cf",
            "-lf",
            "-pf",
            "-p",
            "-ctl",
            "--control",
            *_LIMIT_OPTIONS,
            "-user",
            "-group",
            "-chroot",
            "-tf",
            "-play",
        ):
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
            elif arg in ("-ctl", "--control"):
                opts.control = value
            elif arg in _LIMIT_OPTIONS:
                _set_limit(opts, arg, value)
            elif arg == "-user":
                opts.user = value
            elif arg == "-group":
                opts.group = value
            elif arg == "-chroot":
                opts.chroot = value
            else:
                raise UsageError(f"{arg} is a dhcpd option Tandem does not support yet")
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}")
        else:
            opts.interfaces.append(arg)
    return opts


_LIMIT_OPTIONS = ("--reserve", "--reserve-rate")


def _set_limit(opts: Options, arg: str, value: str) -> None:
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
    elif name in ("status", "partner-down"):
        opts.mode = name
    it = iter(args)
    positional: list[str] = []
    for arg in it:
        if arg in _LIMIT_OPTIONS:
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            _set_limit(opts, arg, value)
        elif arg in ("--config", "--leases", "--pid", "--port", "--control", "-ctl", "-pf"):
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            if arg == "--config":
                opts.config = value
            elif arg == "--leases":
                opts.leases = value
            elif arg in ("--pid", "-pf"):
                opts.pid = value
            elif arg in ("--control", "-ctl"):
                opts.control = value
            else:
                opts.port = _port(value)
        elif arg in ("-d", "--debug"):
            opts.debug = True
        elif arg in ("-q", "--quiet"):
            opts.quiet = True
        elif arg == "--json" and name == "status":
            opts.json = True
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
    elif name == "partner-down":
        if not positional:
            raise UsageError("partner-down needs the failover peer's name")
        opts.peer_name = positional.pop(0)
    if name != "serve" and positional:
        raise UsageError(f"unexpected argument {positional[0]!r}")
    opts.interfaces = positional
    return opts


def _privileges(opts: Options, *, ids: bool = True, chroot: bool = True) -> bool:
    """-t/-T look -user/-group up and enter -chroot as dhcpd does before it exits; False:
    the error is printed."""
    try:
        if ids:
            resolve(opts.user, opts.group)
        if chroot and opts.chroot:
            enter_chroot(opts.chroot)
    except PrivilegeError as exc:
        give_up(None, str(exc))
        return False
    return True


def test_config(opts: Options) -> int:
    """``-t``: exit 0 when the config is valid; file:line:col errors and exit 1 otherwise."""
    banner(opts)
    if not _privileges(opts, chroot=False):
        return 1
    config = load_config(opts)
    if config is None:
        return 1
    if not _privileges(opts, ids=False):  # dhcpd chroots after the config, as when serving
        return 1
    say(opts, f"Config file: {opts.config}")
    return 0


def test_leases(opts: Options) -> int:
    """``-T``: exit 0 when the lease file parses; errors with file:line:col otherwise."""
    banner(opts)

    def read() -> LeaseFileContents:
        with open(opts.leases, encoding="utf-8", errors="surrogateescape") as fh:
            return parse_leases(fh.read(), opts.leases)

    if not _privileges(opts):  # -chroot: the lease file is a path inside it
        return 1
    contents = read_leases(opts, read)
    if contents is None:
        return 1
    say(opts, f"Database file: {opts.leases}")
    say(opts, f"Read {len(contents.leases)} leases.")
    return 0


def _ask(opts: Options, req: dict[str, object]) -> dict[str, object] | None:
    """One control request; prints a friendly error and returns None when it fails."""
    try:
        answer = request(opts.control_path, req)
    except ControlUnavailable as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return None
    if not answer.get("ok"):
        print(f"tandem: {answer.get('error', 'the server refused the request')}", file=sys.stderr)
        return None
    result = answer.get("result")
    return result if isinstance(result, dict) else {"result": result}


def status(opts: Options) -> int:
    """``tandem status``: failover states, pool counts and counters of a running server."""
    result = _ask(opts, {"command": "status"})
    if result is None:
        return 1
    if opts.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
        return 0
    print(f"tandem {result.get('version')} pid {result.get('pid')} up {result.get('uptime')} s")
    failover = result.get("failover")
    if isinstance(failover, dict):
        for name, info in sorted(failover.items()):
            print(f"failover peer {name}:")
            _print_tree(info, "  ")
    for key in ("dhcp", "server"):
        print(f"{key}:")
        _print_tree(result.get(key), "  ")
    return 0


def _print_tree(value: object, indent: str) -> None:
    if not isinstance(value, dict):
        print(f"{indent}{value}")
        return
    for key, item in sorted(value.items(), key=lambda kv: str(kv[0])):
        if isinstance(item, dict):
            print(f"{indent}{key}:")
            _print_tree(item, indent + "  ")
        else:
            print(f"{indent}{key}: {item}")


def partner_down(opts: Options) -> int:
    """``tandem partner-down NAME``: tell a running server its partner is down."""
    result = _ask(opts, {"command": "partner-down", "name": opts.peer_name})
    if result is None:
        return 1
    state = result.get("my_state", result.get("state", "?"))
    print(f"failover peer {opts.peer_name}: partner-down requested; my state is now {state}")
    return 0


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
        give_up(None, f"tandem: {exc}", USAGE)  # dhcpd's usage() is a log_fatal too
        return 2
    if opts.mode == "test-config":
        return test_config(opts)
    if opts.mode == "test-leases":
        return test_leases(opts)
    if opts.mode == "status":
        return status(opts)
    if opts.mode == "partner-down":
        return partner_down(opts)
    return serve(opts)


if __name__ == "__main__":
    sys.exit(main())
