"""Command line: dhcpd's flags, plus friendly subcommands. Wiring only.

dhcpd style::

    tandem [-4] [-f] [-d] [-q] [-t|-T] [-p PORT] [-cf FILE] [-lf FILE] [-pf FILE]
           [-ctl FILE] [--no-pid] [-user USER] [-group GROUP] [-chroot DIR]
           [--http ADDR:PORT|off] [--http-token-file FILE] [IFACE...]

Subcommands::

    tandem serve [--config FILE] [--leases FILE] [--pid FILE] [--port N] [-d] [IFACE...]
    tandem check [CONFIG]            # like -t
    tandem check --peer URL [--http-token-file F] [-cf FILE]   # drift against a running peer
    tandem check-leases [LEASES]     # like -T
    tandem status [--control FILE] [--json]
    tandem partner-down NAME [--control FILE]
    tandem export-partner-config [-cf FILE] [-o OUT]   # the file a dhcpd partner needs
    tandem witness --listen ADDR:PORT --state FILE [--witness-secret FILE]

auto-partner-down (``auto-partner-down N;`` in a peer block): ``--witness ADDR:PORT`` and
``--witness-secret FILE`` name the witness (io/witness_client.py), ``--probe-address
[NAME=]ADDR`` where the DHCP probes go (default: the peer block's ``peer address``).

``--failover-role primary|secondary`` says which side of each ``failover peer`` block this host
takes when its addresses do not (config/sides.py): the same file serves both peers.
``--peer-secret FILE`` authenticates the extension channel between two Tandem peers
(tandem.core.failover.ext; the same file on both).

The control socket defaults to the pid file's name with ``.ctl`` (``/run/tandem.ctl``); the
``status`` and ``partner-down`` commands accept ``-pf``/``--pid`` to find it the same way. Both
are clients of the command layer (tandem.io.commands): ``status-get`` and ``failover-get``,
``failover-partner-down``. The HTTP API (``--http``, default 127.0.0.1:8067) serves the same
commands (tandem.io.http_api).
"""

from __future__ import annotations

import json
import sys
import time

from tandem import __version__
from tandem.config import ConfigError
from tandem.config.sides import partner_text
from tandem.io.cliflags import (
    APD_OPTIONS,
    HTTP_OPTIONS,
    LIMIT_OPTIONS,
    WITNESS_OPTIONS,
    UsageError,
    event_timeout,
    failover_role,
    port_number,
    set_apd,
    set_http,
    set_limit,
)
from tandem.io.command_views import format_status
from tandem.io.config_check import check_peer
from tandem.io.control import ControlUnavailable, request
from tandem.io.hostside import take_sides
from tandem.io.netif import list_interfaces, local_addresses
from tandem.io.privileges import PrivilegeError, enter_chroot, resolve
from tandem.io.runtime import serve
from tandem.io.startup import (
    Options,
    banner,
    give_up,
    load_config,
    read_leases,
    say,
)
from tandem.io.witness_client import listen_address
from tandem.store.leasefile import LeaseFileContents, parse_leases

__all__ = ["Options", "UsageError", "main", "parse_args"]

USAGE = """\
Usage: tandem [-4] [-f] [-d] [-q] [-t|-T] [-p <port>] [-cf config-file] [-lf lease-file]
              [-pf pid-file] [-ctl control-socket] [--no-pid]
              [-user user] [-group group] [-chroot dir]
              [--http ADDR:PORT|off] [--http-token-file FILE]
              [--failover-role primary|secondary] [--peer-secret FILE]
              [--probe-address [NAME=]ADDR] [--witness ADDR:PORT] [--witness-secret FILE]
              [if0 [...ifN]]
       tandem serve [--config FILE] [--leases FILE] [--pid FILE] [--port N]
                    [--control FILE] [--http ADDR:PORT|off] [--http-token-file FILE]
                    [--failover-role primary|secondary] [--peer-secret FILE]
                    [--probe-address [NAME=]ADDR] [--witness ADDR:PORT]
                    [--witness-secret FILE] [-d] [if0 ...]
       tandem check [CONFIG]
       tandem check --peer URL [--http-token-file FILE] [-cf CONFIG]
       tandem check-leases [LEASES] [--config CONFIG]
       tandem status [--control FILE] [--json]
       tandem partner-down NAME [--control FILE]
       tandem export-partner-config [-cf FILE] [-o OUT]
       tandem witness --listen ADDR:PORT --state FILE [--witness-secret FILE]
       tandem --version"""

_SUBCOMMANDS = (
    "serve",
    "check",
    "check-leases",
    "status",
    "partner-down",
    "export-partner-config",
    "witness",
)


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
            *LIMIT_OPTIONS,
            "--event-timeout",
            "-user",
            "-group",
            "-chroot",
            "-tf",
            "-play",
            *HTTP_OPTIONS,
            "--failover-role",
            "--peer-secret",
            *APD_OPTIONS,
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
                opts.port = port_number(value)
            elif arg in ("-ctl", "--control"):
                opts.control = value
            elif arg in LIMIT_OPTIONS:
                set_limit(opts, arg, value)
            elif arg == "--event-timeout":
                opts.event_timeout = event_timeout(value)
            elif arg == "-user":
                opts.user = value
            elif arg == "-group":
                opts.group = value
            elif arg == "-chroot":
                opts.chroot = value
            elif arg in HTTP_OPTIONS:
                set_http(opts, arg, value)
            elif arg == "--failover-role":
                opts.failover_role = failover_role(value)
            elif arg == "--peer-secret":
                opts.peer_secret = value
            elif arg in APD_OPTIONS:
                set_apd(opts, arg, value)
            else:
                raise UsageError(f"{arg} is a dhcpd option Tandem does not support yet")
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}")
        else:
            opts.interfaces.append(arg)
    return opts


def _parse_subcommand(name: str, args: list[str], opts: Options) -> Options:
    opts.foreground = True
    if name == "check":
        opts.mode = "test-config"
    elif name == "check-leases":
        opts.mode = "test-leases"
    elif name in ("status", "partner-down", "export-partner-config", "witness"):
        opts.mode = name
    it = iter(args)
    positional: list[str] = []
    for arg in it:
        if name == "witness" and arg in WITNESS_OPTIONS:
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            if arg == "--listen":
                opts.witness_listen = value
            elif arg == "--state":
                opts.witness_state = value
            else:
                opts.witness_secret = value
        elif name == "witness" and not arg.startswith("-"):
            raise UsageError(f"unexpected argument {arg!r}")
        elif name == "witness":
            takes = ", ".join(WITNESS_OPTIONS)
            raise UsageError(f"unknown option {arg} (tandem witness takes {takes})")
        elif arg in APD_OPTIONS:
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            set_apd(opts, arg, value)
        elif arg in LIMIT_OPTIONS or arg in HTTP_OPTIONS:
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            if arg in HTTP_OPTIONS:
                set_http(opts, arg, value)
            else:
                set_limit(opts, arg, value)
        elif arg == "--event-timeout":
            opts.event_timeout = event_timeout(next(it, ""))
        elif arg in (
            "--config",
            "-cf",
            "--leases",
            "--pid",
            "--port",
            "--control",
            "-ctl",
            "-pf",
            "--failover-role",
            "--peer-secret",
            "--peer",
            "-o",
        ):
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs an argument")
            if arg in ("--config", "-cf"):
                opts.config = value
            elif arg == "--failover-role":
                opts.failover_role = failover_role(value)
            elif arg == "--peer-secret":
                opts.peer_secret = value
            elif arg == "--peer" and name == "check":
                opts.mode, opts.peer_url = "check-peer", value
            elif arg == "--peer":
                raise UsageError(f"--peer is an option of check, not {name}")
            elif arg == "-o" and name == "export-partner-config":
                opts.output = value
            elif arg == "-o":
                raise UsageError(f"-o is an option of export-partner-config, not {name}")
            elif arg == "--leases":
                opts.leases = value
            elif arg in ("--pid", "-pf"):
                opts.pid = value
            elif arg in ("--control", "-ctl"):
                opts.control = value
            else:
                opts.port = port_number(value)
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
    if name == "check" and positional and opts.mode == "check-peer":
        raise UsageError("check --peer URL: give the file with -cf FILE")
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
    if name == "witness":
        if opts.witness_listen is None or opts.witness_state is None:
            raise UsageError("witness needs --listen ADDR:PORT and --state FILE")
        try:
            listen_address(opts.witness_listen)
        except ValueError as exc:
            raise UsageError(f"--listen {exc}") from exc
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
    local = local_addresses(list_interfaces())
    shown = take_sides(config, local, opts.failover_role, lambda t: say(opts, t), checking=True)
    if shown is None:
        # dhcpd -t accepts the file (it does not look at the host): so does -t, loudly.
        print(
            "The file is valid, but serving it on this host fails on the warning above.",
            file=sys.stderr,
        )
    if not _privileges(opts, ids=False):  # dhcpd chroots after the config, as when serving
        return 1
    say(opts, f"Config file: {opts.config}")
    return 0


def check_peer_cmd(opts: Options) -> int:
    """``tandem check --peer URL``: this file against a running peer's (io/config_check.py)."""
    config = load_config(Options(config=opts.config, quiet=True))
    if config is None:
        return 2
    token = None
    if opts.http_token_file:
        from tandem.io.http_api import HttpError, read_token  # noqa: PLC0415 (aiohttp: only if asked)

        try:
            token = read_token(opts.http_token_file)
        except HttpError as exc:
            print(f"tandem check: {exc}", file=sys.stderr)
            return 2
    assert opts.peer_url is not None
    return check_peer(config, opts.config, opts.peer_url, token)


def export_partner_config(opts: Options) -> int:
    """``tandem export-partner-config``: the file a dhcpd partner needs (config/sides.py)."""
    quiet = Options(config=opts.config, quiet=True)
    config = load_config(quiet)
    if config is None:
        return 1
    if not config.failover_peers:
        print(f"tandem: {opts.config} declares no failover peer", file=sys.stderr)
        return 1
    others = sorted({p.loc.file for p in config.failover_peers if p.loc.file != opts.config})
    if others:
        print(
            f"tandem: failover peer blocks in {', '.join(others)} (included): export cannot "
            "rewrite them; move the blocks into the main file",
            file=sys.stderr,
        )
        return 1
    try:
        with open(opts.config, "rb") as fh:
            text = fh.read().decode("latin-1")
        out = partner_text(text, opts.config, config.failover_peers)
    except OSError as exc:
        print(f"Can't open {opts.config}: {exc.strerror}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        for diag in exc.diagnostics:
            print(str(diag), file=sys.stderr)
        return 1
    data = out.encode("latin-1")
    if opts.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        with open(opts.output, "wb") as fh:
            fh.write(data)
    for peer in config.failover_peers:
        print(
            f'failover peer "{peer.name}": the {peer.role} side written, '
            f"the partner's ({peer.peer_address}) exported",
            file=sys.stderr,
        )
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


def _command(opts: Options, name: str, arguments: dict[str, object] | None = None) -> object:
    """One command-layer request over the control socket: its ``arguments``, or None after
    printing why it failed (result 1 or 2)."""
    req: dict[str, object] = {"command": name}
    if arguments:
        req["arguments"] = arguments
    try:
        answer = request(opts.control_path, req)
    except ControlUnavailable as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return None
    result = answer.get("result")
    if result not in (0, 3):
        text = answer.get("text") or answer.get("error") or "the server refused the request"
        print(f"tandem: {text}", file=sys.stderr)
        return None
    return answer.get("arguments", {})


def status(opts: Options) -> int:
    """``tandem status``: failover states, pool counts and counters of a running server.

    ``--json`` prints the control socket's original ``status`` object (scripts read it).
    """
    if opts.json:
        result = _ask(opts, {"command": "status"})
        if result is None:
            return 1
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
        return 0
    got = _command(opts, "status-get")
    if not isinstance(got, dict):
        return 1
    failover = _command(opts, "failover-get")
    if failover is None:
        return 1
    rels = failover.get("relationships", []) if isinstance(failover, dict) else []
    history = _command(opts, "history-get")
    print(
        format_status(
            got,
            rels if isinstance(rels, list) else [],
            int(time.time()),
            history if isinstance(history, dict) else None,
        )
    )
    return 0


def partner_down(opts: Options) -> int:
    """``tandem partner-down NAME``: tell a running server its partner is down."""
    got = _command(opts, "failover-partner-down", {"name": opts.peer_name})
    if got is None:
        return 1
    local = got.get("local") if isinstance(got, dict) else None
    state = local.get("state", "?") if isinstance(local, dict) else "?"
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
    if opts.mode == "check-peer":
        return check_peer_cmd(opts)
    if opts.mode == "export-partner-config":
        return export_partner_config(opts)
    if opts.mode == "witness":
        assert opts.witness_listen is not None and opts.witness_state is not None
        from tandem.io.witness_server import run_witness  # noqa: PLC0415  (only the witness)

        return run_witness(opts.witness_listen, opts.witness_state, opts.witness_secret)
    return serve(opts)


if __name__ == "__main__":
    sys.exit(main())
