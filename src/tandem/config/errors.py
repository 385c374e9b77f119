"""The one exception ``tandem.config`` raises."""

from __future__ import annotations

from tandem.config.model import Diagnostic, Location


class ConfigError(Exception):
    """The configuration cannot be used. ``diagnostics`` say where and why.

    ``str()`` gives one ``file:line:col: error: message`` line per diagnostic, which is what
    the CLI prints. Line and column count like ``dhcpd -t`` does, so both point at the same
    spot.
    """

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(str(d) for d in diagnostics))
        self.diagnostics = diagnostics

    @classmethod
    def at(cls, loc: Location, message: str) -> ConfigError:
        return cls([Diagnostic(loc, message)])

    @property
    def loc(self) -> Location:
        """Where the first problem is."""
        return self.diagnostics[0].loc
