"""auto-partner-down's flags and ``tandem witness``'s command line."""

from __future__ import annotations

import pytest

from tandem.cli import UsageError, parse_args


def test_serve_flags_dhcpd_style_and_subcommand() -> None:
    for argv in (
        [
            "-cf",
            "x.conf",
            "--witness",
            "192.0.2.60:5419",
            "--witness-secret",
            "/s",
            "--probe-address",
            "192.0.2.9",
            "--probe-address",
            "other=198.51.100.1",
        ],
        [
            "serve",
            "--config",
            "x.conf",
            "--witness",
            "192.0.2.60:5419",
            "--witness-secret",
            "/s",
            "--probe-address",
            "192.0.2.9",
            "--probe-address",
            "other=198.51.100.1",
        ],
    ):
        opts = parse_args(argv)
        assert opts.witness == "192.0.2.60:5419" and opts.witness_secret == "/s"
        assert opts.probe_addresses == {None: "192.0.2.9", "other": "198.51.100.1"}


def test_witness_subcommand() -> None:
    opts = parse_args(
        ["witness", "--listen", "0.0.0.0:5419", "--state", "/var/w", "--witness-secret", "/s"]
    )
    assert opts.mode == "witness" and opts.witness_listen == "0.0.0.0:5419"
    assert opts.witness_state == "/var/w" and opts.witness_secret == "/s"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--witness", "192.0.2.60"], "ADDR:PORT"),
        (["--probe-address", "nowhere"], "IPv4 address"),
        (["--probe-address", "x=1.2.3"], "IPv4 address"),
        (["witness", "--listen", "0.0.0.0:5419"], "--state"),
        (["witness", "--state", "/w"], "--listen"),
        (["witness", "--listen", "here", "--state", "/w"], "ADDR:PORT"),
        (["witness", "--listen", "0.0.0.0:1", "--state", "/w", "-d"], "unknown option"),
        (["witness", "--listen", "0.0.0.0:1", "--state", "/w", "extra"], "unexpected"),
        (["witness", "--listen"], "needs an argument"),
    ],
)
def test_bad_usage(argv: list[str], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_args(argv)
