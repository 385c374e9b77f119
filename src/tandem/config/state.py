"""What the parser carries while it reads (the current file, names seen so far, warnings)."""

from __future__ import annotations

from tandem.config.cursor import Cursor
from tandem.config.model import Diagnostic, Location
from tandem.config.registry import Registry

#: Maximum depth of ``include`` files (dhcpd has none and recurses until it runs out).
MAX_INCLUDE_DEPTH = 16


class State:
    def __init__(self, cur: Cursor, reg: Registry) -> None:
        self.cur = cur
        self.reg = reg
        self.warnings: list[Diagnostic] = []
        self._warned: set[str] = set()
        self.class_names: set[str] = set()
        self.peer_names: set[str] = set()
        self.files: list[str] = [cur.filename]
        self.include_stack: list[str] = [cur.filename]
        #: ``on`` blocks being read: ``execute`` and ``log`` are acted on only inside one.
        self.on_depth = 0

    def warn(self, loc: Location, message: str) -> None:
        self.warnings.append(Diagnostic(loc, message, "warning"))

    def warn_once(self, key: str, loc: Location, message: str) -> None:
        """Warn about ``key`` only the first time it is seen in the whole configuration."""
        if key not in self._warned:
            self._warned.add(key)
            self.warn(loc, message)

    def unimplemented(self, keyword: str, loc: Location) -> None:
        self.warn_once(
            f"unimplemented:{keyword}",
            loc,
            f"'{keyword}' is valid dhcpd syntax but Tandem does not implement it; "
            "it is ignored (this warning is shown once)",
        )
