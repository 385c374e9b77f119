"""The pure steps of -user/-group/-chroot (tandem.io.privileges), with the system calls passed in.

The lab test (tests/lab/test_unprivileged.py) runs the real drop; these pin dhcpd's rules and
the order of the calls.
"""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from tandem.io.privileges import (
    Identity,
    PrivilegeError,
    drop,
    enter_chroot,
    hand_over_lease_file,
    lease_file_problem,
    resolve,
)


def _pw(uid: int, gid: int) -> pwd.struct_passwd:
    return pwd.struct_passwd(("dhcpd", "x", uid, gid, "", "/", "/bin/false"))


def _gr(gid: int) -> grp.struct_group:
    return grp.struct_group(("dhcpd", "x", gid, []))


def _users(name: str) -> pwd.struct_passwd:
    if name == "dhcpd":
        return _pw(177, 178)
    raise KeyError(name)


def _groups(name: str) -> grp.struct_group:
    if name == "staff":
        return _gr(50)
    raise KeyError(name)


def test_resolve_user_takes_its_primary_group_unless_group_is_given() -> None:
    root = {"geteuid": lambda: 0, "getpwnam": _users, "getgrnam": _groups}
    ident = resolve("dhcpd", None, **root)  # type: ignore[arg-type]
    assert (ident.uid, ident.gid, ident.user) == (177, 178, "dhcpd")
    ident = resolve("dhcpd", "staff", **root)  # type: ignore[arg-type]
    assert (ident.uid, ident.gid, ident.group) == (177, 50, "staff")
    ident = resolve(None, "staff", **root)  # type: ignore[arg-type]
    assert (ident.uid, ident.gid) == (None, 50)
    assert resolve(None, None, **root) == Identity()  # type: ignore[arg-type]
    assert not Identity().changes


@pytest.mark.parametrize(
    ("user", "group", "euid", "message"),
    [
        ("nobody-here", None, 0, "no such user: nobody-here"),
        (None, "nogroup-here", 0, "no such group: nogroup-here"),
        ("dhcpd", None, 1000, "you must be root to set user"),
        (None, "staff", 1000, "you must be root to set group"),
    ],
)
def test_resolve_errors_are_dhcpds(
    user: str | None, group: str | None, euid: int, message: str
) -> None:
    with pytest.raises(PrivilegeError, match=f"^{message}$"):
        resolve(user, group, geteuid=lambda: euid, getpwnam=_users, getgrnam=_groups)


def test_drop_clears_groups_then_gid_then_uid() -> None:
    calls: list[tuple[str, object]] = []
    drop(
        Identity(177, 178, "dhcpd", "dhcpd"),
        setgroups=lambda g: calls.append(("setgroups", g)),
        setgid=lambda g: calls.append(("setgid", g)),
        setuid=lambda u: calls.append(("setuid", u)),
    )
    assert calls == [("setgroups", []), ("setgid", 178), ("setuid", 177)]
    calls.clear()
    drop(Identity(), setgroups=calls.append, setgid=calls.append, setuid=calls.append)  # type: ignore[arg-type]
    assert calls == []


def test_drop_failure_names_the_call() -> None:
    def refuse(_: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    with pytest.raises(PrivilegeError, match=r"^setuid\(177\): Operation not permitted$"):
        drop(Identity(177, None), setuid=refuse)


def test_chroot_then_chdir_root() -> None:
    calls: list[tuple[str, str]] = []
    enter_chroot(
        "/var/lib/dhcpd",
        geteuid=lambda: 0,
        chroot=lambda d: calls.append(("chroot", d)),
        chdir=lambda d: calls.append(("chdir", d)),
    )
    assert calls == [("chroot", "/var/lib/dhcpd"), ("chdir", "/")]
    with pytest.raises(PrivilegeError, match=r"^you must be root to use chroot$"):
        enter_chroot("/x", geteuid=lambda: 1000, chroot=print, chdir=print)

    def missing(d: str) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(PrivilegeError, match=r'^chroot\("/x"\): No such file or directory$'):
        enter_chroot("/x", geteuid=lambda: 0, chroot=missing, chdir=print)


def test_lease_file_handed_over_under_dhcpds_condition() -> None:
    calls: list[tuple[str, int, int]] = []

    def chown(p: str, u: int, g: int) -> None:
        calls.append((p, u, g))

    root = {"geteuid": lambda: 0, "getegid": lambda: 0, "chown": chown}
    hand_over_lease_file("/l", Identity(177, 178), **root)  # type: ignore[arg-type]
    assert calls == [("/l", 177, 178)]
    calls.clear()
    for ident in (Identity(None, 178), Identity(177, None), Identity(0, 0), Identity()):
        hand_over_lease_file("/l", ident, **root)  # type: ignore[arg-type]
    assert calls == []


def test_lease_file_problem_names_the_directory_and_what_to_do() -> None:
    ident = Identity(65534, 65534, "nobody", "nogroup")
    path = "/var/lib/dhcp/dhcpd.leases"

    def dir_denied(p: str, mode: int) -> bool:
        return p != "/var/lib/dhcp"

    problem = lease_file_problem(path, ident, access=dir_denied, exists=lambda p: True)
    assert problem is not None
    assert "/var/lib/dhcp is not writable by user nobody (uid 65534)" in problem
    assert "chown nobody:nogroup /var/lib/dhcp" in problem

    def file_denied(p: str, mode: int) -> bool:
        return p != path

    problem = lease_file_problem(path, ident, access=file_denied, exists=lambda p: True)
    assert problem is not None and f"Lease database {path} is not writable" in problem
    assert lease_file_problem(path, ident, access=file_denied, exists=lambda p: False) is None
    assert lease_file_problem(path, ident, access=lambda p, m: True, exists=os.path.exists) is None
