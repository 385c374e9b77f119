"""Serving: load config and leases, start the DHCP endpoint, the failover links and the control
socket, and run the event loop until SIGTERM/SIGINT.

The command line (``tandem.cli``) only parses flags into ``Options`` and calls ``serve``. What is
printed at start-up follows dhcpd's order, so scripts and the lab can wait for the same lines
("Server starting service." means ready), and a failover relationship's first state line
("failover peer NAME: I move from X to startup") comes before it, as in dhcpd's log.
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
from collections.abc import Awaitable, Callable, Container
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from tandem import BUILD, __version__
from tandem.config.model import Config, Param
from tandem.core.failover.drift import DriftFeature
from tandem.core.failover.engine import FailoverSetup
from tandem.core.server import DhcpServer
from tandem.io import autopd as apd_io
from tandem.io import hostcmds
from tandem.io.commands import CommandError, Commands, reply, request_from
from tandem.io.commit import GroupCommit
from tandem.io.config_check import digest_commands
from tandem.io.control import ControlError, ControlServer
from tandem.io.dhcp_socket import DhcpEndpoint
from tandem.io.events import EventRunner, log_writer
from tandem.io.extension import SecretError, extension_setup
from tandem.io.failover_link import Engine
from tandem.io.failover_listen import FailoverLinks
from tandem.io.hostside import reload_sides, take_sides
from tandem.io.netif import list_interfaces, local_addresses
from tandem.io.page_feed import PageFeed
from tandem.io.ping import Pinger
from tandem.io.privileges import (
    Identity,
    PrivilegeError,
    check_as,
    drop,
    enter_chroot,
    hand_over_lease_file,
    lease_file_problem,
    resolve,
)
from tandem.io.reload import ReloadResult, apply, read_config
from tandem.io.sdnotify import Notifier, status_text
from tandem.io.startup import (
    DEFAULT_HTTP,
    HttpSetup,
    Options,
    banner,
    check_config_file,
    emit_log,
    emit_stderr,
    give_up,
    http_address,
    load_config,
    prepare_http,
    privilege_failure,
    read_leases,
    say,
    setup_logging,
)
from tandem.io.witness_client import listen_address, read_secret_file
from tandem.store.journal import LeaseJournal

if TYPE_CHECKING:
    from tandem.io.http_api import HttpApi

REWRITE_PERIOD = 3600  # seconds between lease-file compactions, as dhcpd
STATS_MAX_AGE = 1.0  # seconds a ``status`` answer may reuse the lease counts (_server_stats)

log = logging.getLogger("tandem")


def serve(opts: Options) -> int:
    """Load config and leases, bind the interfaces, serve until SIGTERM/SIGINT."""
    banner(opts)
    try:
        ident = resolve(opts.user, opts.group)
    except PrivilegeError as exc:
        return privilege_failure(opts, exc)
    config = load_config(opts)
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
    setup_logging(opts, facility)
    try:
        http = prepare_http(opts)
    except Exception as exc:  # HttpError, or the HTTP packages missing (make deps)
        print(f"{exc} -- exiting", file=sys.stderr, flush=True)
        return 1
    all_ifaces = list_interfaces()  # runs ip(8): before the chroot, which need not hold it
    local = local_addresses(all_ifaces)  # the side of each peer block (config/sides.py)
    sided = take_sides(config, local, opts.failover_role, lambda text: say(opts, text))
    if sided is None:
        print("Configuration file errors encountered -- exiting", file=sys.stderr)
        return 1
    config = sided
    # The Tandem extension channel (io/extension.py), before a chroot, and the features
    # riding it: drift detection (core/failover/drift.py) and replicated reservations
    # (io/hostcmds.py; bound to the server below).
    drift = DriftFeature(config, emit_stderr if opts.debug else emit_log)
    hostsync = hostcmds.feature()
    try:
        ext = extension_setup(opts.peer_secret, features=(drift, hostsync))
    except SecretError as exc:
        return give_up(opts, str(exc))
    try:  # before the chroot, which need not hold the file
        witness_secret = read_secret_file(opts.witness_secret) if opts.witness_secret else None
    except ValueError as exc:
        return give_up(opts, str(exc))
    if opts.chroot:
        try:
            enter_chroot(opts.chroot)
        except PrivilegeError as exc:
            return privilege_failure(opts, exc)
    say(opts, f"Config file: {opts.config}")
    say(opts, f"Database file: {opts.leases}")
    if opts.pid:
        say(opts, f"PID file: {opts.pid}")

    journal = LeaseJournal(opts.leases)
    contents = read_leases(opts, journal.load)
    if contents is None:
        return 1

    networks = [s.network for s in config.subnets]
    if opts.interfaces:
        missing = [n for n in opts.interfaces if n not in all_ifaces]
        if missing:
            return give_up(opts, f"Interface {missing[0]} does not exist -- exiting")
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
        return give_up(opts, "Not configured to listen on any interfaces!")

    setup = FailoverSetup(config, contents.failover_states, int(time.time()), ext=ext)
    server = DhcpServer(
        config,
        leases=contents.leases.values(),
        interfaces={i.name: i.addrs for i in chosen},
        new_lease_limit=opts.new_lease_limit,
        failover=setup if config.failover_peers else None,
    )
    engines: dict[str, Engine] = dict(setup.engines)
    journal.rewrite(server.leases(), contents.failover_states.values())
    say(opts, f"Wrote {sum(1 for _ in server.leases())} leases to leases file.")
    try:
        _check_user(journal.path, ident)
    except PrivilegeError as exc:
        return privilege_failure(opts, exc)

    emit = emit_stderr if opts.debug else emit_log
    # One group commit for everything that waits for the lease file: DHCP replies, and the
    # failover links' BNDUPDs and BNDACKs, which leave after their fsync.
    commit = GroupCommit(journal)
    links: FailoverLinks | None = None
    after_commit: Callable[[], None] | None = None
    if engines:
        peers = {p.name: p for p in config.failover_peers}
        links = FailoverLinks(
            [(engine, peers[name]) for name, engine in engines.items()], commit, emit
        )
        after_commit = links.after_batch
    try:
        endpoint = DhcpEndpoint(
            server, commit, chosen, server_port=opts.port, emit=emit, after_commit=after_commit
        )
    except OSError as exc:
        return give_up(
            opts,
            f"Can't bind to dhcp address: {exc.strerror}",
            "Please make sure there is no other dhcp server running.",
        )
    if ident.changes:
        endpoint.open_packet_sockets()  # needs CAP_NET_RAW, gone after the drop
    # auto-partner-down's probe sockets bind port 68: before the drop, like the ones below.
    autopd = apd_io.build(
        lambda: endpoint.server,  # a reload swaps the server in the endpoint
        links,
        probe_addresses=opts.probe_addresses,
        witness=listen_address(opts.witness) if opts.witness else None,
        secret=witness_secret,
        server_port=opts.port,
        emit=emit,
    )
    if autopd is None and (opts.witness or opts.probe_addresses):
        say(opts, "--witness/--probe-address: no failover peer has auto-partner-down; unused")
    if server.ping_enabled:
        # ping-check's raw ICMP socket needs CAP_NET_RAW too: it opens here, before the drop.
        endpoint.attach_pinger(Pinger.open(endpoint.ping_done))
    for iface in chosen:
        net = next(a.network for a in iface.addrs if any(a.ip in n for n in networks))
        say(opts, f"Listening on Socket/{iface.name}/{iface.mac_text}/{net}")
        say(opts, f"Sending on   Socket/{iface.name}/{iface.mac_text}/{net}")
    for engine in engines.values():
        # dhcpd prints "failover peer NAME: I move from X to startup" before it is ready.
        lines = engine.take_log()
        if lines:
            emit(lines)

    if not opts.foreground:
        _daemonize()
    if opts.pid:
        with open(opts.pid, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
    runtime = Runtime(opts, server, commit, endpoint, links, ident=ident, http=http, emit=emit)
    # Lease events (on commit/release/expiry): run once their lease is durable (io/events.py).
    runtime.events = runner = EventRunner(log_writer(opts.debug), timeout=opts.event_timeout)
    endpoint.events = runner.submit

    runtime.local = local  # a reload takes the same sides
    runtime.drift = drift  # a reload recomputes and re-sends the digest
    # Dynamic reservations (reservation-add ...): the lease file's host blocks, served.
    runtime.hosts = hostcmds.start(
        server, contents.hosts.values(), commit, runtime.commands, hostsync, emit=emit
    )
    runtime.autopd = autopd
    try:
        asyncio.run(runtime.run())
    except PrivilegeError as exc:
        return privilege_failure(opts, exc)
    finally:
        runner.close()
        endpoint.close()
        commit.close()
        journal.close()
        if opts.pid:
            with contextlib.suppress(OSError):
                os.unlink(opts.pid)
    return 0


def _check_user(leases: str, ident: Identity) -> None:
    """-user/-group: give U:G the lease file and make sure they can rewrite it (else exit)."""
    if not ident.changes:
        return
    hand_over_lease_file(leases, ident)
    problem = check_as(ident, lambda access: lease_file_problem(leases, ident, access=access))
    if problem is not None:
        raise PrivilegeError(problem)


class Runtime:
    """The running server: the event loop's tasks and the control socket's commands."""

    local: Container[IPv4Address] = frozenset()  # this host's addresses (io/hostside.py)
    drift: DriftFeature | None = None  # drift detection over the extension channel
    hosts: hostcmds.HostService | None = None  # dynamic reservations (serve sets it)
    autopd: apd_io.AutoPd | None = None  # auto-partner-down's probes and witness (io/autopd.py)

    def __init__(
        self,
        opts: Options,
        server: DhcpServer,
        commit: GroupCommit,
        endpoint: DhcpEndpoint,
        links: FailoverLinks | None,
        *,
        ident: Identity | None = None,
        http: HttpSetup | None = None,
        emit: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.opts = opts
        self.http = http
        self.ident = ident or Identity()
        self.server = server
        self.commit = commit
        self.journal = commit.journal
        self.endpoint = endpoint
        self.links = links
        self.events: EventRunner | None = None  # lease events' programs (serve sets it)
        self.started = time.time()
        self._stats: dict[str, int] | None = None
        self._stats_at = 0.0
        self.commands = Commands(
            server,
            commit=commit,
            links=links,
            counters=endpoint.counters,
            emit=emit or emit_log,
            config_path=opts.config,
            check_config=check_config_file,
            started=self.started,
            reload=self.reload,
        )
        self.notifier = Notifier()  # systemd's $NOTIFY_SOCKET (tandem.io.sdnotify)
        self._reloading = asyncio.Lock()
        self._tasks: set[asyncio.Task[ReloadResult]] = set()

        self.feed = PageFeed(self.commands)  # the live page's history and events
        self.commands.add("history-get", self.feed.history_get)
        # config-hash-get / config-digest-get: what `tandem check --peer` compares with.
        for name, handler in digest_commands(lambda: self.server.config).items():
            self.commands.add(name, handler)

        self._handover: asyncio.Task[dict[str, dict[str, object]]] | None = None
        self.stop = asyncio.Event()  #: set: the server exits (after ``handover``)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = self.stop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signalled, sig)
        loop.add_signal_handler(signal.SIGHUP, self._sighup, loop)
        control = ControlServer(
            self.opts.control_path,
            {"status": self.status, "partner-down": self.partner_down},
            {name: self._command for name in self.commands.names},
        )
        try:
            await control.start()
        except OSError as exc:
            log.error("control socket %s: %s (status commands unavailable)", control.path, exc)
        api = await self._start_http()
        self.commit.start(loop)
        self.endpoint.start(loop)
        if self.links is not None:
            self.links.start(loop)
        if self.autopd is not None:
            await self.autopd.start(loop)
        # -user/-group: everything that needs root is open, and the loop has not run since
        # the sockets were added to it, so no packet has been answered yet.
        told_stopping = False
        try:
            drop(self.ident)
            say(self.opts, "Server starting service.")
            self.notifier.ready(self.status_line())
            self.notifier.start_watchdog(loop)
            last_rewrite = time.monotonic()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                self.endpoint.tick()
                if self.notifier.enabled:
                    self.notifier.status(self.status_line())
                self.feed.tick()
                # Compact only between syncs: rewrite() swaps the file under the worker.
                if time.monotonic() - last_rewrite >= REWRITE_PERIOD and not (
                    self.commit.syncing or self.journal.pending
                ):
                    self.journal.rewrite(self.server.leases())
                    last_rewrite = time.monotonic()
            self.notifier.stopping()  # before the handover's wait for the partner
            told_stopping = True
            await self.handover()
        finally:
            if not told_stopping:
                self.notifier.stopping()
            self.notifier.close()
            control.close()
            if api is not None:
                await api.close()
            if self.autopd is not None:
                self.autopd.close()
            if self.links is not None:
                self.links.close()

    async def _start_http(self) -> HttpApi | None:
        """The HTTP listener, if asked for; a taken address is logged, DHCP serves on."""
        setup = self.http
        if setup is None:
            return None
        api = setup.api(self.commands, setup.host, setup.port, token=setup.token, feed=self.feed)
        try:
            await api.start()
        except OSError as exc:
            log.error(
                "HTTP API %s:%d: %s (API and /metrics unavailable)",
                setup.host,
                setup.port,
                exc.strerror or exc,
            )
            return None
        return api

    def _command(self, req: dict[str, object]) -> Awaitable[dict[str, object]]:
        """A command-layer command from the control socket (root only: writes allowed)."""
        try:
            parsed = request_from(req)
        except CommandError as exc:
            return _ready(reply(exc.result, exc.text))
        return self.commands.execute(parsed, may_write=True)

    # --- reload (SIGHUP, and the config-reload command) -----------------------------------

    def _sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> ReloadResult:
        """Re-read the config: a config that fails the ``-t`` check is refused (its errors
        in the result and the log, the running one keeps serving); a valid one is swapped
        in between two batches (tandem.core.reload, tandem.io.reload). One at a time."""
        async with self._reloading:
            self.notifier.reloading()
            path = self.opts.config
            try:
                loaded = await asyncio.to_thread(read_config, path, self.opts.chroot)
                if not isinstance(loaded, ReloadResult):
                    loaded = reload_sides(loaded, self.local, self.opts.failover_role, path)
                result = loaded if isinstance(loaded, ReloadResult) else self._apply(loaded)
            except Exception as exc:  # a bug must not cost the running configuration
                log.exception("Reload of %s failed", path)
                result = ReloadResult(False, path, [f"internal error: {exc!r}"])
            self.notifier.ready(self.status_line())
            for line in result.log_lines():
                (log.info if result.ok else log.error)("%s", line)
            return result

    def _apply(self, config: Config) -> ReloadResult:
        """Swap ``config`` in (synchronous: nothing else runs on the loop meanwhile)."""
        emit = emit_stderr if self.opts.debug else emit_log
        user = self.ident.user if self.ident.changes else None
        swap = apply(
            config,
            self.server,
            links=self.links,
            commit=self.commit,
            emit=emit,
            path=self.opts.config,
            user=user,
        )
        self.server = self.endpoint.server = swap.server
        self._stats = None
        if swap.links is not self.links and swap.links is not None:
            self.links = swap.links
            self.endpoint._after_commit = swap.links.after_batch
        self.commands.rebind(self.server, self.links)
        if self.hosts is not None:
            hostcmds.bind(self.hosts.table, self.server)  # the new server serves them too
        if self.drift is not None and swap.result.ok:
            self.drift.update(config, int(time.time()))  # the new digest to every Tandem peer
            if self.links is not None:
                self.links.after_batch()  # flush what it sent
        return swap.result

    def status_line(self) -> str:
        """systemd's STATUS=: ``serving 3 subnets; failover-example: normal/normal``."""
        states: dict[str, tuple[str, str]] = {}
        for name, link in ({} if self.links is None else self.links.links).items():
            st = link.engine.status()
            states[name] = (str(st.get("my_state")), str(st.get("partner_state")))
        return status_text(len(self.server.config.subnets), states)

    def _signalled(self, sig: int) -> None:
        log.info("Received signal %d, initiating shutdown.", sig)  # dhcpd's words
        self.stop.set()

    async def handover(self) -> dict[str, dict[str, object]]:
        """Hand each failover relationship in NORMAL over to its partner before exiting.

        SHUTDOWN, STATE to the partner, at most ``HANDOVER_SECONDS`` for its answer, the lease
        file made durable, the links closed (tandem.io.failover_listen.FailoverLinks.handover).
        Runs once: SIGTERM/SIGINT call it on the way out, a command may call it first (then
        set ``stop``); a second call returns the first one's result.
        """
        if self.links is None:
            return {}
        if self._handover is None:
            self._handover = asyncio.ensure_future(self.links.handover())
        return await asyncio.shield(self._handover)

    # --- control commands -----------------------------------------------------------------

    def status(self, req: dict[str, object]) -> dict[str, object]:
        counters = self.endpoint.counters
        commit = self.commit
        dropped = dict(counters.drops)
        if commit.failures:
            dropped["journal-error"] = commit.withheld  # replies and link sends withheld
        return {
            "version": __version__,
            "build": BUILD,
            "pid": os.getpid(),
            "uptime": int(time.time() - self.started),
            "leases_file": self.journal.path,
            "dhcp": {
                "received": counters.received,
                "replied": counters.replied,
                "batches": counters.batches,
                "commits": commit.commits,
                "dropped": dropped,
            },
            "server": self._server_stats(),
            "failover": {} if self.links is None else self.links.status(),
            "failover_listeners": [] if self.links is None else self.links.listener_status(),
            "ping": {} if (p := self.endpoint.pinger) is None else dict(p.counters),
            "events": {} if self.events is None else self.events.status(),
        }

    def _server_stats(self) -> dict[str, int]:
        """The core's stats; the lease counts in them at most ``STATS_MAX_AGE`` seconds old.

        Counting leases by state walks every lease: ~20 ms with 60,000, on the event loop.
        The failover bench polls ``status`` five times a second on both peers, which held
        up pool balancing by 10 % of the wall time. The packet counters are always fresh.
        """
        now = time.monotonic()
        if self._stats is None or now - self._stats_at >= STATS_MAX_AGE:
            self._stats = self.server.stats()
            self._stats_at = now
            return dict(self._stats)
        return {**self._stats, **self.server.counters}

    def partner_down(self, req: dict[str, object]) -> dict[str, object]:
        name = req.get("name")
        if not isinstance(name, str):
            raise ControlError('partner-down needs "name": the failover peer\'s name')
        if self.links is None or name not in self.links.links:
            known = [] if self.links is None else sorted(self.links.links)
            raise ControlError(f"no failover peer named {name!r} (configured: {known})")
        link = self.links.partner_down(name)
        return link.status()


async def _ready(answer: dict[str, object]) -> dict[str, object]:
    return answer


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


__all__ = ["DEFAULT_HTTP", "HttpSetup", "Options", "Runtime", "http_address", "serve"]
