"""Running lease events: the ``execute()`` and ``log()`` actions of ``on commit`` and friends.

The core turns an event into data (``core.types.RunProgram`` / ``LogLine``); the DHCP endpoint
hands them to ``EventRunner.submit`` through the group commit, so an event never runs before
the fsync that makes its lease durable, and never on the packet path: ``submit`` only starts
asyncio tasks.

``execute()`` runs the program directly, as dhcpd's execvp does (no shell; ``argv`` as
evaluated; the program is looked up in ``PATH`` unless it has a ``/``), with stdin from
/dev/null and stdout/stderr inherited, in its own process group. Unlike dhcpd, which forks and
*waits* for the program (a slow script stops its whole server), Tandem runs at most
``max_running`` programs at once (default 4), keeps at most ``max_queued`` more waiting
(default 64) and drops what comes beyond, counting it with a log line. A program still running
after ``timeout`` seconds (default 30, ``--event-timeout``) is killed with its process group.
What dhcpd logs, Tandem logs in the same words: a status other than 0 as
``execute: PROGRAM exit status N`` (N is the wait status, as dhcpd prints it: exit code 1 is
256, death by SIGKILL is 9), and ``Unable to execute PROGRAM: REASON`` when it cannot start
(then ``exit status 32512``, the 127 of dhcpd's child). At shutdown, programs still running are
killed (``close``, or the loop cancelling their tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence

from tandem.core.types import EventAction, LogLine, RunProgram

__all__ = ["DEFAULT_TIMEOUT", "MAX_QUEUED", "MAX_RUNNING", "EventRunner", "log_writer"]

DEFAULT_TIMEOUT = 30.0  #: seconds a program may run before it is killed
MAX_RUNNING = 4  #: programs run at once
MAX_QUEUED = 64  #: programs waiting for a slot; beyond, events are dropped and counted

#: ``log(LEVEL, ...)`` -> logging level. dhcpd's log(fatal, ...) also exits dhcpd; Tandem
#: logs it at CRITICAL and keeps serving.
LEVELS = {
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

#: Writes one line at a level (the runtime's: stderr with -d, else syslog).
Emit = Callable[[int, str], None]

log = logging.getLogger("tandem")


def log_writer(debug: bool) -> Emit:
    """Where the lines go: stderr with ``-d`` (every level, as dhcpd -d), else the log."""
    if debug:
        return lambda _level, text: print(text, file=sys.stderr, flush=True)
    return lambda level, text: log.log(level, "%s", text)


class EventRunner:
    """A bounded pool of event programs on the event loop, and the ``log()`` lines."""

    def __init__(
        self,
        emit: Emit,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_running: int = MAX_RUNNING,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._emit = emit
        self.timeout = timeout
        self.max_running = max_running
        self.max_queued = max_queued
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[RunProgram] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Programs running now, by pid (their process group id too).
        self.running: dict[int, asyncio.subprocess.Process] = {}
        self.started = 0  #: programs started
        self.dropped = 0  #: programs not run: the queue was full
        self.killed = 0  #: programs killed after ``timeout``
        self.peak = 0  #: most programs running at once

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        """Kill the programs still running (with their process groups); drop the queue."""
        self._queue.clear()
        for pid in list(self.running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for task in list(self._tasks):
            with contextlib.suppress(RuntimeError):  # its loop may be closed already
                task.cancel()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """A program is starting, running or waiting."""
        return bool(self._tasks or self._queue)

    def status(self) -> dict[str, int]:
        return {
            "running": len(self.running),
            "queued": len(self._queue),
            "started": self.started,
            "dropped": self.dropped,
            "killed": self.killed,
        }

    # --- submitting --------------------------------------------------------------------

    def submit(self, actions: Sequence[EventAction]) -> None:
        """Log the ``log()`` lines, start (or queue, or drop) the programs; never blocks."""
        for action in actions:
            if isinstance(action, LogLine):
                self._emit(LEVELS.get(action.level, logging.INFO), action.text)
            elif len(self._tasks) < self.max_running:
                self._spawn(action)
            elif len(self._queue) < self.max_queued:
                self._queue.append(action)
            else:
                self.dropped += 1
                self._emit(
                    logging.ERROR,
                    f"execute: {action.argv[0]}: dropped, {self.max_running} running and "
                    f"{self.max_queued} waiting ({self.dropped} dropped so far)",
                )

    def _spawn(self, action: RunProgram) -> None:
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._run(action))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._emit(logging.ERROR, f"execute: internal error: {task.exception()!r}")
        if self._queue and len(self._tasks) < self.max_running:
            self._spawn(self._queue.popleft())

    # --- one program -------------------------------------------------------------------

    async def _run(self, action: RunProgram) -> None:
        program = action.argv[0]
        try:
            proc = await asyncio.create_subprocess_exec(
                *action.argv, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            self._emit(logging.ERROR, f"Unable to execute {program}: {exc.strerror or exc}")
            self._emit(logging.ERROR, f"execute: {program} exit status {127 << 8}")
            return
        self.started += 1
        self.running[proc.pid] = proc
        self.peak = max(self.peak, len(self.running))
        try:
            try:
                code = await asyncio.wait_for(proc.wait(), self.timeout)
            except asyncio.CancelledError:  # the server stops: nobody is left to wait for it
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                code = await proc.wait()
                self.killed += 1
                self._emit(
                    logging.ERROR,
                    f"execute: {program} still running after {self.timeout:g} seconds: "
                    f"killed (process group {proc.pid})",
                )
        finally:
            self.running.pop(proc.pid, None)
        status = code << 8 if code >= 0 else -code  # the wait status, as dhcpd prints it
        if status:
            self._emit(logging.ERROR, f"execute: {program} exit status {status}")
