"""The HTTP listener (aiohttp): Kea's control-agent API at ``POST /`` and ``GET /metrics``.

``POST /`` takes one command in Kea's envelope (tandem.io.commands) and answers with one; a
request that names ``"service": ["dhcp4"]`` gets the answer in a list, as Kea's control agent
returns it. ``GET /metrics`` is Prometheus' text format (tandem.io.metrics).

``GET /`` is the live page: plain files from ``tandem/io/page/`` (its chart library, uPlot,
installed by ``make deps`` into ``page/vendor/``), which poll ``GET /page.json``
(tandem.io.page_feed) every 2 s and search leases with ``GET /page/search?q=``. The files hold
no data and are served to anyone who may connect; the two JSON endpoints follow the read-only
commands' rules below (the page asks for the token once and sends it as the bearer header).

Who may ask (``check_access``):

* without a token file the listener serves loopback clients only, and only the read-only
  commands: a write (``lease4-del``, ``failover-partner-down``) gets HTTP 403. Tandem refuses
  to start with a non-loopback ``--http`` address and no token (``check_listen``);
* with ``--http-token-file FILE`` every request, ``/metrics`` included, needs
  ``Authorization: Bearer TOKEN``, compared in constant time (``hmac.compare_digest``); a
  missing or wrong one gets HTTP 401.

Every refusal is a Kea answer with result 1 and a message. Bodies are capped at
``MAX_BODY`` (aiohttp's ``client_max_size``: HTTP 413), and JSON is parsed by the command
layer's bounded parser, so no input ends in a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import stat
from importlib import resources
from ipaddress import AddressValueError, IPv4Address, ip_address

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tandem.io.commands import (
    MAX_BODY,
    RESULT_ERROR,
    WRITE_COMMANDS,
    CommandError,
    Commands,
    parse_command,
    reply,
)
from tandem.io.metrics import registry_for
from tandem.io.page_feed import PageFeed, search

__all__ = ["HttpApi", "HttpError", "check_access", "check_listen", "read_token"]

log = logging.getLogger("tandem")

#: The page's files (``GET /page/NAME``), by name -> content type; vendor/ is ``make deps``'s.
PAGE_FILES = {
    "app.js": "text/javascript",
    "page.css": "text/css",
    "vendor/uPlot.iife.min.js": "text/javascript",
    "vendor/uPlot.min.css": "text/css",
}
MISSING_VENDOR = (
    "the page's chart library is missing: run `make deps` (scripts/install-deps.sh installs "
    "uPlot into src/tandem/io/page/vendor/)"
)


class HttpError(Exception):
    """A start-up problem of the listener (bad address, token file); the text says the fix."""


def read_token(path: str) -> str:
    """The bearer token: the file's first line, stripped; HttpError if unusable."""
    try:
        with open(path, encoding="utf-8") as fh:
            st = os.fstat(fh.fileno())
            text = fh.read(4096)
    except OSError as exc:
        raise HttpError(f"--http-token-file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HttpError(f"--http-token-file {path}: not UTF-8 text") from exc
    token = text.splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise HttpError(
            f"--http-token-file {path}: the token must be at least 16 characters "
            "(e.g. `openssl rand -hex 32 > FILE`)"
        )
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("--http-token-file %s is readable by others: chmod 600 it", path)
    return token


def check_listen(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (HttpError saying why)."""
    if token is None and not IPv4Address(host).is_loopback:
        raise HttpError(
            f"--http {host}: listening beyond loopback needs --http-token-file FILE (every "
            "request must then carry Authorization: Bearer TOKEN); without a token the API "
            "serves only 127.0.0.1"
        )


def _loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ip_address(remote).is_loopback
    except (ValueError, AddressValueError):
        return False


def check_access(
    *, remote: str | None, authorization: str | None, token: str | None, writes: bool
) -> tuple[int, str] | None:
    """None if the request may go on, else (HTTP status, why)."""
    if token is None:
        if not _loopback(remote):
            return 403, "this listener serves loopback clients only (no --http-token-file)"
        if writes:
            return 403, (
                "this command changes the server: the listener is read-only without "
                "--http-token-file"
            )
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401, "this listener needs Authorization: Bearer TOKEN"
    if not hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
        return 401, "wrong bearer token"
    return None


def _json(body: object, status: int = 200) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="tandem"'} if status == 401 else None
    return web.Response(
        text=json.dumps(body, default=str),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class HttpApi:
    """The listener: an aiohttp application on ``host:port`` over one server's commands."""

    def __init__(
        self,
        commands: Commands,
        host: str,
        port: int,
        *,
        token: str | None = None,
        registry: CollectorRegistry | None = None,
        feed: PageFeed | None = None,
    ) -> None:
        check_listen(host, token)
        self.commands = commands
        self.host = host
        self.port = port
        self.token = token
        self.registry = registry if registry is not None else registry_for(commands)
        self.feed = feed if feed is not None else PageFeed(commands)
        self.requests = 0
        self.refused = 0
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_post("/", self._post)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/page.json", self._page_json)
        self.app.router.add_get("/page/search", self._page_search)
        self.app.router.add_get("/page/{name:.+}", self._page_file)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        """Bind and listen (OSError if the address is taken)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site

    @property
    def bound_port(self) -> int:
        """The port actually bound (``port`` 0 picks a free one)."""
        runner = self._runner
        if runner is None:
            return self.port
        for addr in runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                return int(addr[1])
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _refuse(self, request: web.Request, *, writes: bool) -> web.Response | None:
        problem = check_access(
            remote=request.remote,
            authorization=request.headers.get("Authorization"),
            token=self.token,
            writes=writes,
        )
        if problem is None:
            return None
        self.refused += 1
        status, text = problem
        return _json(reply(RESULT_ERROR, text), status)

    async def _post(self, request: web.Request) -> web.Response:
        self.requests += 1
        refused = self._refuse(request, writes=False)
        if refused is not None:
            return refused
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.refused += 1
            return _json(reply(RESULT_ERROR, f"request longer than {MAX_BODY} bytes"), 413)
        try:
            req = parse_command(body)
        except CommandError as exc:
            return _json(reply(exc.result, exc.text), 400)
        if req.command in WRITE_COMMANDS:
            refused = self._refuse(request, writes=True)
            if refused is not None:
                return refused
        answer = await self.commands.execute(req, may_write=True)
        return _json([answer] if req.service is not None else answer)

    async def _metrics(self, request: web.Request) -> web.Response:
        self.requests += 1
        refused = self._refuse(request, writes=False)
        if refused is not None:
            return refused
        data = generate_latest(self.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- the live page ----------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return _page_asset("index.html", "text/html")

    async def _page_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = PAGE_FILES.get(name)
        if kind is None:
            return web.Response(status=404, text=f"no page file {name!r}")
        return _page_asset(name, kind)

    async def _page_json(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, writes=False)
        if refused is not None:
            return refused
        return _json(self.feed.snapshot())

    async def _page_search(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, writes=False)
        if refused is not None:
            return refused
        query = request.query.get("q", "")
        if len(query) > 256:
            return _json(reply(RESULT_ERROR, "search text longer than 256 characters"), 400)
        return _json(search(self.commands, query))


def _page_asset(name: str, kind: str) -> web.Response:
    """One of the page's files from the package (vendor/ missing: a 404 saying the fix)."""
    try:
        data = resources.files("tandem.io").joinpath("page", *name.split("/")).read_bytes()
    except OSError:
        return web.Response(status=404, text=MISSING_VENDOR)
    return web.Response(body=data, headers={"Content-Type": f"{kind}; charset=utf-8"})
