"""The command line takes dhcpd's flags as dhcpd does, and friendly subcommands."""

from __future__ import annotations

import pytest

from tandem.cli import UsageError, main, parse_args


def test_dhcpd_flags() -> None:
    opts = parse_args(
        ["-4", "-f", "-d", "-cf", "a.conf", "-lf", "a.leases", "-pf", "a.pid", "eth0"]
    )
    assert (opts.mode, opts.config, opts.leases, opts.pid) == (
        "serve",
        "a.conf",
        "a.leases",
        "a.pid",
    )
    assert opts.foreground and opts.debug
    assert opts.interfaces == ["eth0"]


def test_test_modes_and_port() -> None:
    assert parse_args(["-t", "-cf", "x"]).mode == "test-config"
    assert parse_args(["-T", "-lf", "y"]).mode == "test-leases"
    opts = parse_args(["-p", "1067", "-q", "--no-pid"])
    assert (opts.port, opts.quiet, opts.pid) == (1067, True, None)


def test_subcommands() -> None:
    opts = parse_args(["serve", "--config", "c", "--leases", "l", "-d", "eth1", "eth2"])
    assert (opts.mode, opts.config, opts.leases, opts.interfaces) == (
        "serve",
        "c",
        "l",
        ["eth1", "eth2"],
    )
    assert parse_args(["check", "my.conf"]).config == "my.conf"
    assert parse_args(["check-leases", "my.leases"]).leases == "my.leases"


@pytest.mark.parametrize(
    "argv", [["-cf"], ["-6"], ["--bogus"], ["-p", "0"], ["-p", "x"], ["check", "a", "b"]]
)
def test_bad_usage(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)


def test_main_reports_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bogus"]) == 2
    assert "unknown option --bogus" in capsys.readouterr().err


def test_new_lease_reserve_flags() -> None:
    opts = parse_args(["-f", "--reserve", "10", "--reserve-rate", "2.5"])
    limit = opts.new_lease_limit
    assert (limit.reserve_percent, limit.rate, limit.burst) == (10, 2.5, 2)
    default = parse_args([]).new_lease_limit
    assert (default.reserve_percent, default.rate) == (5, 10)
    assert parse_args(["serve", "--reserve", "0"]).new_lease_limit.enabled is False
    for bad in (["--reserve", "101"], ["--reserve", "x"], ["--reserve-rate", "0"]):
        with pytest.raises(UsageError):
            parse_args(bad)


def test_event_timeout_flag() -> None:
    """--event-timeout SECONDS: how long a lease event's execute() may run (io/events.py)."""
    assert parse_args([]).event_timeout == 30
    assert parse_args(["-f", "--event-timeout", "2.5"]).event_timeout == 2.5
    assert parse_args(["serve", "--event-timeout", "8"]).event_timeout == 8
    for bad in (["--event-timeout", "0"], ["--event-timeout", "x"], ["--event-timeout"],
                ["serve", "--event-timeout"]):  # fmt: skip
        with pytest.raises(UsageError):
            parse_args(bad)


def test_user_group_chroot_flags() -> None:
    """dhcpd's -user, -group and -chroot, and the RHEL/Fedora unit line with --no-pid."""
    opts = parse_args(["-user", "dhcpd", "-group", "dhcpd", "-chroot", "/var/lib/dhcpd/root"])
    assert (opts.user, opts.group, opts.chroot) == ("dhcpd", "dhcpd", "/var/lib/dhcpd/root")
    unit = ["-f", "-cf", "/etc/dhcp/dhcpd.conf", "-user", "dhcpd", "-group", "dhcpd", "--no-pid"]
    opts = parse_args(unit)
    assert (opts.foreground, opts.config, opts.pid) == (True, "/etc/dhcp/dhcpd.conf", None)
    assert (opts.user, opts.group, opts.chroot, opts.interfaces) == ("dhcpd", "dhcpd", None, [])
    assert (parse_args([]).user, parse_args([]).group, parse_args([]).chroot) == (None,) * 3
    for flag in ("-user", "-group", "-chroot"):
        with pytest.raises(UsageError, match=f"{flag} needs an argument"):
            parse_args([flag])


def test_unknown_user_fails_config_test(capsys: pytest.CaptureFixture[str]) -> None:
    """``-t -user U`` looks U up as dhcpd does (as root: "no such user"; else "must be root")."""
    assert main(["-t", "-q", "-user", "no-such-user-tandem-test", "-cf", "/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert "no such user: no-such-user-tandem-test" in err or "you must be root" in err
