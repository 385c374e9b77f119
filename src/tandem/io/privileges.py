"""An unprivileged server: dhcpd's ``-user U``, ``-group G`` and ``-chroot DIR``.

The order is dhcpd's (server/dhcpd.c, PARANOIA build):

1. ``resolve``: the names become ids before the config is read ("no such user: U");
2. ``enter_chroot``: after the config is read and before the lease file, so ``-lf``, ``-pf`` and
   the control socket are paths inside DIR (Tandem lists the interfaces just before it, as
   that runs ``ip``, which the chroot need not hold);
3. everything that needs root is opened: the UDP port 67 sockets, the packet sockets for
   unicast replies to clients without an address (``DhcpEndpoint.open_packet_sockets``), the
   raw ICMP socket of ping-check (``tandem.io.ping``; it must open before the drop, like
   dhcpd's icmp_startup), the failover listeners, the lease file, the pid file and the
   control socket;
   Before any socket is bound, the lease file written at start-up is given to U:G
   (``hand_over_lease_file``, as dhcpd's ``new_lease_file`` fchown()s it, so the hourly rewrite
   can link it to ``PATH~``), and ``check_as`` runs ``lease_file_problem`` with U's and G's
   effective ids: the lease file and its directory must be writable by them (rewrites create
   ``PATH.new`` there and rename it over ``PATH``). If not, the server says so and exits 1,
   before it binds a socket or becomes a daemon;
4. ``drop``: ``setgroups([])`` (no supplementary groups, as dhcpd), ``setgid(G)``, ``setuid(U)``,
   after the last of step 3 and before the event loop first runs, so no packet is answered
   as root either.

Capabilities: none are kept. ``setuid`` from root to another uid clears the permitted and
effective sets (capabilities(7); Tandem sets no SECBIT_KEEP_CAPS), so ``CapEff`` is 0 after
the drop, and nothing needs one later because step 3 opened everything first. One limit: a
failover listener on a port below 1024 that cannot be opened at start-up (its address not yet
configured) is retried as U, which the kernel refuses; give such a listener a port above 1023.
"""

from __future__ import annotations

import grp
import importlib
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Identity",
    "PrivilegeError",
    "check_as",
    "drop",
    "enter_chroot",
    "hand_over_lease_file",
    "lease_file_problem",
    "resolve",
]


#: Modules the server imports lazily after start-up (Python imports a codec on its first use):
#: inside the chroot the interpreter's library is gone, so they are imported before it.
CHROOT_PRELOAD = ("encodings.ascii", "encodings.latin_1", "encodings.idna")


class PrivilegeError(Exception):
    """A ``-user``/``-group``/``-chroot`` step that failed; the text says what to do."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the server becomes: ``None`` keeps the current uid or gid (no ``-user``/``-group``)."""

    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None

    @property
    def changes(self) -> bool:
        return self.uid is not None or self.gid is not None

    def describe(self) -> str:
        who = [f"user {self.user} (uid {self.uid})"] if self.uid is not None else []
        if self.gid is not None:
            who.append(f"group {self.group} (gid {self.gid})")
        return " and ".join(who)


def resolve(
    user: str | None,
    group: str | None,
    *,
    geteuid: Callable[[], int] = os.geteuid,
    getpwnam: Callable[[str], pwd.struct_passwd] = pwd.getpwnam,
    getgrnam: Callable[[str], grp.struct_group] = grp.getgrnam,
) -> Identity:
    """Look ``-user``/``-group`` up as dhcpd does: G defaults to U's primary group."""
    uid = gid = None
    group_name = group
    if user is not None:
        if geteuid() != 0:
            raise PrivilegeError("you must be root to set user")
        try:
            entry = getpwnam(user)
        except KeyError:
            raise PrivilegeError(f"no such user: {user}") from None
        uid = entry.pw_uid
        if group is None:
            gid = entry.pw_gid
            group_name = _group_name(gid)
    if group is not None:
        if geteuid() != 0:
            raise PrivilegeError("you must be root to set group")
        try:
            gid = getgrnam(group).gr_gid
        except KeyError:
            raise PrivilegeError(f"no such group: {group}") from None
    return Identity(uid, gid, user, group_name)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def enter_chroot(
    directory: str,
    *,
    geteuid: Callable[[], int] = os.geteuid,
    chroot: Callable[[str], None] = os.chroot,
    chdir: Callable[[str], None] = os.chdir,
) -> None:
    """dhcpd's ``setup_chroot``: chroot(DIR), then chdir("/") (``CHROOT_PRELOAD`` first)."""
    if geteuid() != 0:
        raise PrivilegeError("you must be root to use chroot")
    for name in CHROOT_PRELOAD:
        importlib.import_module(name)
    try:
        chroot(directory)
    except OSError as exc:
        raise PrivilegeError(f'chroot("{directory}"): {exc.strerror}') from None
    try:
        chdir("/")
    except OSError as exc:
        raise PrivilegeError(f'chdir("/"): {exc.strerror}') from None


def hand_over_lease_file(
    path: str,
    ident: Identity,
    *,
    geteuid: Callable[[], int] = os.geteuid,
    getegid: Callable[[], int] = os.getegid,
    chown: Callable[[str, int, int], None] = os.chown,
) -> None:
    """Give the lease file to U:G, under dhcpd's condition (both set, not 0, we are root)."""
    if not ident.uid or not ident.gid or geteuid() != 0 or getegid() != 0:
        return
    try:
        chown(path, ident.uid, ident.gid)
    except OSError as exc:
        raise PrivilegeError(f"Can't chown new lease file: {exc.strerror}") from None


def drop(
    ident: Identity,
    *,
    setgroups: Callable[[list[int]], None] = os.setgroups,
    setgid: Callable[[int], None] = os.setgid,
    setuid: Callable[[int], None] = os.setuid,
) -> None:
    """dhcpd's drop: no supplementary groups, then the gid, then the uid (order matters:
    after setuid the process may no longer change its groups)."""
    if ident.gid is not None:
        try:
            setgroups([])
        except OSError as exc:
            raise PrivilegeError(f"setgroups: {exc.strerror}") from None
        try:
            setgid(ident.gid)
        except OSError as exc:
            raise PrivilegeError(f"setgid({ident.gid}): {exc.strerror}") from None
    if ident.uid is not None:
        try:
            setuid(ident.uid)
        except OSError as exc:
            raise PrivilegeError(f"setuid({ident.uid}): {exc.strerror}") from None


def check_as(
    ident: Identity,
    check: Callable[[Callable[[str, int], bool]], str | None],
) -> str | None:
    """Run ``check`` with the effective ids of U and G (and no supplementary groups), then
    take root back: it gets an ``access`` that answers for them. Lets the server refuse to
    start, with an exit code, before it binds a socket or becomes a daemon."""
    if ident.uid is None and ident.gid is None:
        return None
    euid, egid = os.geteuid(), os.getegid()
    os.setgroups([])
    try:
        if ident.gid is not None:
            os.setegid(ident.gid)
        if ident.uid is not None:
            os.seteuid(ident.uid)
        return check(_effective_access)
    finally:
        os.seteuid(euid)
        os.setegid(egid)


def _effective_access(path: str, mode: int) -> bool:
    return os.access(path, mode, effective_ids=True)


def lease_file_problem(
    path: str,
    ident: Identity,
    *,
    access: Callable[[str, int], bool] = os.access,
    exists: Callable[[str], bool] = os.path.exists,
) -> str | None:
    """Why the (dropped) server could not rewrite its lease file, with what to do; or None.

    Run after ``drop``: ``access`` then answers for U and G. The directory needs write and
    search permission (``PATH.new`` is created there and renamed over ``PATH``), the file
    read and write permission (it is linked to ``PATH~`` before each rewrite).
    """
    directory = os.path.dirname(os.path.abspath(path)) or "/"
    who = ident.describe()
    owner = f"{ident.user or ''}:{ident.group or ''}".strip(":")
    if not access(directory, os.W_OK | os.X_OK):
        return (
            f"Lease database directory {directory} is not writable by {who}: "
            f"the lease file is rewritten as {path}.new and renamed over {path} there. "
            f"Make the directory writable by that user (e.g. chown {owner} {directory}), "
            f"or use -lf to put the lease file in a directory it can write."
        )
    if exists(path) and not access(path, os.R_OK | os.W_OK):
        return (
            f"Lease database {path} is not writable by {who}. "
            f"Make it writable by that user (e.g. chown {owner} {path})."
        )
    return None
