"""Command line: dhcpd's flags, plus friendly subcommands. Wiring only."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tandem`` command."""
    args = sys.argv[1:] if argv is None else argv
    print("tandem: not implemented yet", args, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
