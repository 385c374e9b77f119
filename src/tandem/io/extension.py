"""The Tandem extension channel's I/O side: ``--peer-secret FILE`` and the nonces.

``extension_setup`` builds the ``ExtSetup`` every failover engine shares
(tandem.core.failover.ext): the features riding the channel, the shared secret read from
``--peer-secret`` (the dhcpd.conf stays valid for ``dhcpd -t``: the secret is not in it),
and ``os.urandom`` for the per-connection nonces, which the pure core cannot draw itself.
A feature that sends outside a receive (after an API command) has its bytes flushed by
``FailoverLinks.after_batch()``, as lease4-del's BNDUPD is.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence

from tandem.core.failover.ext import ExtFeature, ExtSetup

__all__ = ["MIN_SECRET", "SecretError", "extension_setup", "read_peer_secret"]

log = logging.getLogger("tandem")

MIN_SECRET = 16  #: bytes
NONCE_SIZE = 16


class SecretError(Exception):
    """``--peer-secret FILE`` cannot be used; the text says why and what to do."""


def read_peer_secret(path: str) -> bytes:
    """The secret: the file's first line, stripped, at least ``MIN_SECRET`` bytes."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read(4096)
    except OSError as exc:
        raise SecretError(f"--peer-secret {path}: {exc.strerror or exc}") from exc
    lines = data.splitlines()
    secret = lines[0].strip() if lines else b""
    if len(secret) < MIN_SECRET:
        raise SecretError(
            f"--peer-secret {path}: the secret must be at least {MIN_SECRET} bytes on its "
            "first line (e.g. `openssl rand -hex 32 > FILE`, the same file on both peers)"
        )
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("--peer-secret %s is readable by others: chmod 600 it", path)
    return secret


def _nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def extension_setup(secret_file: str | None, features: Sequence[ExtFeature] = ()) -> ExtSetup:
    """The channel's setup for ``serve``; raises SecretError for an unusable secret file."""
    secret = read_peer_secret(secret_file) if secret_file else None
    return ExtSetup(features=tuple(features), secret=secret, nonce=_nonce)
