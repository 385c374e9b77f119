"""``tandem check --peer URL``: this file against a running peer's configuration, and the two
commands that serve it (``config-hash-get``, ``config-digest-get``).

The running server answers ``config-hash-get`` (Kea's name: here the SHA-256 digest of the
items that must agree between peers, tandem.config.digest) and ``config-digest-get`` (the same
digest and the items, each with its ``file:line``). ``tandem check --peer URL`` reads the local
file, asks the peer's HTTP API for its items and prints the differences with the file:line of
both sides; exit status 0 when they agree, 1 on drift, 2 when the comparison could not be made.
The peer block is compared from the primary's side, so the same file and its mirror agree.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from tandem.config.digest import Item, compare, config_digest, digest_items
from tandem.config.model import Config
from tandem.io.commands import CommandError

__all__ = ["check_peer", "digest_commands"]

Args = dict[str, object]
Reply = dict[str, object]
TIMEOUT = 10.0  #: seconds for the peer's answer
MAX_ANSWER = 64 << 20  #: bytes read from the peer at most


def digest_commands(
    config: Callable[[], Config],
) -> dict[str, Callable[[Args], Reply]]:
    """The two read-only commands, over the running configuration ``config()``."""

    def _no_args(name: str, args: Args) -> None:
        if args:
            raise CommandError(f"{name}: unknown argument {sorted(args)[0]!r} (accepted: none)")

    def hash_get(args: Args) -> Reply:
        _no_args("config-hash-get", args)
        items = digest_items(config())
        return _reply("the digest of what must agree between failover peers",
                      {"hash": config_digest(items)})  # fmt: skip

    def digest_get(args: Args) -> Reply:
        _no_args("config-digest-get", args)
        items = digest_items(config())
        return _reply(
            f"{len(items)} items that must agree between failover peers",
            {
                "hash": config_digest(items),
                "items": [{"key": i.key, "value": i.value, "loc": i.loc} for i in items],
            },
        )

    return {"config-hash-get": hash_get, "config-digest-get": digest_get}


def _reply(text: str, arguments: dict[str, object]) -> Reply:
    return {"result": 0, "text": text, "arguments": arguments}


def _fetch(url: str, token: str | None) -> list[Item]:
    """The peer's items through its HTTP API; ValueError with the reason."""
    body = json.dumps({"command": "config-digest-get"}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            data = resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"{url}: {reason}") from exc
    try:
        answer = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{url}: the answer is not JSON") from exc
    if isinstance(answer, list) and answer:
        answer = answer[0]
    if not isinstance(answer, dict) or answer.get("result") != 0:
        text = answer.get("text") if isinstance(answer, dict) else answer
        raise ValueError(f"{url}: config-digest-get failed: {text} (is the peer Tandem?)")
    args = answer.get("arguments")
    rows = args.get("items") if isinstance(args, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{url}: config-digest-get answered without items")
    items = []
    for row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{url}: an item is not an object")
        items.append(Item(str(row.get("key")), str(row.get("value")), str(row.get("loc"))))
    return items


def check_peer(config: Config, path: str, url: str, token: str | None) -> int:
    """Compare ``config`` (read from ``path``) with the peer at ``url``; print; exit status."""
    mine = digest_items(config)
    try:
        theirs = _fetch(url, token)
    except ValueError as exc:
        print(f"tandem check: {exc}", file=sys.stderr)
        return 2
    diffs = compare(mine, theirs)
    if not diffs:
        print(f"{path} agrees with the peer at {url} ({len(mine)} items, digest "
              f"{config_digest(mine)[:12]})")  # fmt: skip
        return 0
    print(f"CONFIGURATION DRIFT: {path} differs from the peer at {url} in {len(diffs)} item(s):")
    for d in diffs:
        print(f"  {d.describe()}")
    return 1
