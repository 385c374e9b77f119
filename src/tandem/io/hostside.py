"""This host's side of each ``failover peer`` block (tandem.config.sides), at start-up and on
reload: the pure choice fed with this host's addresses (tandem.io.netif), its errors printed
or turned into a refused reload."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Container
from ipaddress import IPv4Address

from tandem.config import ConfigError
from tandem.config.model import Config
from tandem.config.sides import Role, choose_sides
from tandem.io.reload import ReloadResult


def take_sides(
    config: Config,
    local: Container[IPv4Address],
    role: Role | None,
    say: Callable[[str], None],
    *,
    checking: bool = False,
) -> Config | None:
    """Each peer as this host runs it, the side said through ``say``; None: the error printed
    (``checking``, for ``-t``: as a warning, since the file itself is valid, as dhcpd -t says)."""
    try:
        config, sides = choose_sides(config, local, role)
    except ConfigError as exc:
        for diag in exc.diagnostics:
            shown = dataclasses.replace(diag, severity="warning") if checking else diag
            print(str(shown), file=sys.stderr)
        return None
    for side in sides:
        say(side.describe())
    return config


def reload_sides(
    config: Config, local: Container[IPv4Address], role: Role | None, path: str
) -> Config | ReloadResult:
    """A reloaded config's peers as this host runs them (the start-up addresses), or refused."""
    try:
        return choose_sides(config, local, role)[0]
    except ConfigError as exc:
        return ReloadResult(False, path, [str(d) for d in exc.diagnostics])
