"""The local control socket: line-delimited JSON over a Unix stream socket.

Why a Unix socket and not dhcpd's OMAPI port: only local root needs to ask "what state is
the pair in?" or to say "the partner is down", and a filesystem socket with mode 0600 gets its
access control from the kernel. One request per line, one JSON answer per line::

    {"command": "status"}
    {"command": "partner-down", "name": "failover-example"}

The same socket answers the command layer's Kea-style commands (tandem.io.commands:
``{"command": "status-get"}``, ``lease4-get``, ``failover-get``, ...) in Kea's envelope; the two
original commands above keep their ``{"ok": ..., "result": ...}`` answers for scripts. Only
root can reach the socket, so every command, writes included, is allowed here.

Hostile input is cheap to refuse: a request line is at most ``MAX_REQUEST`` bytes (longer
input gets an error and the connection is closed), nesting deeper than ``MAX_DEPTH`` is
refused by a linear pre-scan *before* ``json.loads`` runs (CVE-2026-3608 class: a deeply
nested document must never reach a recursive parser and end in RecursionError), and at most
``MAX_CLIENTS`` connections are served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

__all__ = [
    "MAX_DEPTH",
    "MAX_REQUEST",
    "AsyncHandler",
    "ControlError",
    "ControlServer",
    "ControlUnavailable",
    "control_path_for",
    "json_depth",
    "parse_request",
    "request",
]

DEFAULT_CONTROL: Final = "/run/tandem.ctl"
MAX_REQUEST: Final = 4096
MAX_DEPTH: Final = 8
MAX_CLIENTS: Final = 8
MAX_RESPONSE: Final = 16 << 20  # what the client accepts back (status of a big server)

Handler = Callable[[dict[str, object]], object]
#: A command of the command layer: answers (later) with a whole Kea envelope.
AsyncHandler = Callable[[dict[str, object]], Awaitable[dict[str, object]]]
Answer = dict[str, object] | Awaitable[dict[str, object]]


class ControlError(Exception):
    """A request that cannot be served; the text goes back to the client."""


class ControlUnavailable(Exception):
    """The client side could not reach a server (friendly text for the command line)."""


def control_path_for(pid_path: str | None) -> str:
    """The control socket lives next to the pid file: ``X.pid`` -> ``X.ctl``."""
    if not pid_path:
        return DEFAULT_CONTROL
    root, ext = os.path.splitext(pid_path)
    return (root if ext == ".pid" else pid_path) + ".ctl"


def json_depth(text: str, limit: int) -> int:
    """Deepest ``[``/``{`` nesting in ``text`` (strings skipped), stopping past ``limit``.

    Linear and iterative; it does not validate JSON (``json.loads`` does that afterwards).
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def json_object(data: bytes, limit: int, example: str) -> dict[str, object]:
    """Untrusted bytes -> a JSON object: size cap, UTF-8, the nesting pre-scan, then
    ``json.loads``; ControlError naming what is wrong otherwise (the control socket's lines
    and the command layer's bodies, tandem.io.commands, go through here)."""
    if len(data) > limit:
        raise ControlError(f"request longer than {limit} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ControlError("request is not UTF-8") from exc
    if json_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise ControlError(f"request nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ControlError(f"request is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ControlError(f'request must be a JSON object like {{"command": "{example}"}}')
    return obj


def parse_request(line: bytes) -> dict[str, object]:
    """One request line -> a JSON object with a string ``command``; ControlError otherwise."""
    obj = json_object(line, MAX_REQUEST, "status")
    command = obj.get("command")
    if not isinstance(command, str):
        raise ControlError('request needs a string "command"')
    return obj


def _encode(obj: object) -> bytes:
    return json.dumps(obj, default=str, sort_keys=True).encode("utf-8") + b"\n"


class _ControlConn(asyncio.Protocol):
    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy: asyncio.Future[dict[str, object]] | None = None  # an answer in progress

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if len(self.server.clients) >= MAX_CLIENTS:
            self.server.refused += 1
            transport.write(_encode({"ok": False, "error": "too many control clients"}))
            transport.close()
            return
        self.server.clients.add(self)

    def data_received(self, data: bytes) -> None:
        """Answer each complete line; a line longer than MAX_REQUEST ends the connection.

        The newline is looked for only within the first MAX_REQUEST + 1 bytes, so the buffer
        never holds more than that plus one read, however long the line the client sends.
        """
        self.buf += data
        self._pump()

    def _pump(self) -> None:
        """Answer the complete lines buffered, in order; one pending answer at a time."""
        transport = self.transport
        assert transport is not None
        while not transport.is_closing() and self.busy is None:
            end = self.buf.find(b"\n", 0, MAX_REQUEST + 1)
            if end < 0:
                if len(self.buf) > MAX_REQUEST:
                    self.buf.clear()
                    self.server.errors += 1
                    transport.write(
                        _encode({"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"})
                    )
                    transport.close()
                return
            line = bytes(self.buf[:end])
            del self.buf[: end + 1]
            answer = self.server.dispatch(line)
            if isinstance(answer, dict):
                transport.write(_encode(answer))
                continue
            # A command that waits (lease4-del: for its commit): read nothing more until it
            # has answered, so answers keep the order of the requests.
            self.busy = asyncio.ensure_future(answer)
            transport.pause_reading()
            self.busy.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Future[dict[str, object]]) -> None:
        self.busy = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if task.cancelled():
            answer: dict[str, object] = {"result": 1, "text": "cancelled (server stopping)"}
        elif task.exception() is not None:
            exc = task.exception()
            answer = {"result": 1, "text": f"internal error: {type(exc).__name__}: {exc}"}
        else:
            answer = task.result()
        transport.write(_encode(answer))
        transport.resume_reading()
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.clients.discard(self)


class ControlServer:
    """Serves the control socket at ``path`` with ``handlers`` (command name -> callable)."""

    def __init__(
        self,
        path: str,
        handlers: Mapping[str, Handler],
        commands: Mapping[str, AsyncHandler] | None = None,
    ) -> None:
        self.path = path
        self.handlers = dict(handlers)
        self.commands = dict(commands or {})
        self.clients: set[_ControlConn] = set()
        self.refused = 0
        self.requests = 0
        self.errors = 0
        self._server: asyncio.AbstractServer | None = None
        self._inode: tuple[int, int] | None = None

    def dispatch(self, line: bytes) -> Answer:
        """Answer one request line (never raises); a command-layer command answers later."""
        self.requests += 1
        try:
            req = parse_request(line.rstrip(b"\r"))
            command = str(req["command"])
            handler = self.handlers.get(command)
            if handler is None:
                later = self.commands.get(command)
                if later is not None:
                    return later(req)
                known = ", ".join(sorted([*self.handlers, *self.commands]))
                raise ControlError(f"unknown command {command!r} (known: {known})")
            return {"ok": True, "result": handler(req)}
        except ControlError as exc:
            self.errors += 1
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug in a handler costs one answer, never the server
            self.errors += 1
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}

    async def start(self) -> None:
        """Bind the socket (replacing a stale one, refusing a live one), mode 0600."""
        _remove_stale(self.path)
        loop = asyncio.get_running_loop()
        old_umask = os.umask(0o177)
        try:
            self._server = await loop.create_unix_server(lambda: _ControlConn(self), self.path)
        finally:
            os.umask(old_umask)
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.abort()
        # Remove the socket file only if it is still ours (a successor may have replaced it).
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self.path)


def _remove_stale(path: str) -> None:
    """Unlink a socket file nobody answers on; raise OSError(EADDRINUSE) if someone does."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(98, f"another server answers on {path}")


def request(path: str, req: Mapping[str, object], timeout: float = 10.0) -> dict[str, object]:
    """Client side: send one request, return the decoded answer.

    Raises ControlUnavailable with a friendly message when no server listens on ``path``.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError as exc:
            raise ControlUnavailable(
                f"no Tandem server is running here ({path} does not exist)"
            ) from exc
        except ConnectionRefusedError as exc:
            raise ControlUnavailable(
                f"no Tandem server is running here (nobody answers on {path})"
            ) from exc
        except PermissionError as exc:
            raise ControlUnavailable(f"permission denied on {path} (run as root)") from exc
        except OSError as exc:
            raise ControlUnavailable(f"cannot reach {path}: {exc.strerror or exc}") from exc
        sock.sendall(_encode(dict(req)))
        buf = bytearray()
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_RESPONSE:
                raise ControlUnavailable("answer too large")
    except TimeoutError as exc:
        raise ControlUnavailable(f"the server did not answer on {path} within {timeout} s") from exc
    finally:
        sock.close()
    line = bytes(buf).split(b"\n", 1)[0]
    if not line:
        raise ControlUnavailable(f"the server closed {path} without answering")
    try:
        answer = json.loads(line)
    except ValueError as exc:
        raise ControlUnavailable(f"garbled answer from the server: {exc}") from exc
    if not isinstance(answer, dict):
        raise ControlUnavailable("garbled answer from the server (not an object)")
    return answer
