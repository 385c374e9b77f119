"""Load balancing between failover peers: RFC 3074 hash plus ISC's HBA rules.

ISC dhcpd decides per DHCPDISCOVER (and dynamic BOOTP request) whether it or its peer
answers (server/failover.c ``load_balance_mine``; reference/failover-isc.md §10):

* the key is the whole payload of option 61 if the client sent one, else the ``hlen``
  bytes of ``chaddr`` (no htype);
* the bucket is RFC 3074's Pearson hash of the key, 0..255;
* the 32-byte hash-bucket-assignment (HBA) holds one bit per bucket, bucket ``b`` being
  bit ``b & 7`` of byte ``b >> 3``. **In ISC a set bit means the primary serves it** (the
  draft says the opposite; interop needs ISC's meaning);
* ``load balance max seconds`` 0 (dhcpd 4.4's default) disables balancing, and a client
  whose ``secs`` exceeds it is answered by both.

DHCPREQUEST is never balanced by ISC, so :func:`should_serve` answers True for it.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["primary", "secondary"]

#: RFC 3074 §6 mixing table (a permutation of 0..255; identical in ISC and Kea).
MIXING_TABLE = bytes(
    (
        251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0, 232,
        31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57, 223,
        59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179, 197, 65,
        180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23, 97, 16,
        40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108, 244, 67,
        207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193, 200, 121, 5,
        20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75, 27, 41, 245,
        230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115, 241, 73, 88, 105,
        39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221, 148, 154, 122, 12, 84,
        82, 163, 44, 139, 228, 236, 205, 242, 217, 11, 187, 146, 159, 64, 86, 239,
        195, 42, 106, 198, 118, 112, 184, 172, 87, 2, 173, 117, 176, 229, 247, 253,
        137, 185, 99, 164, 102, 147, 45, 66, 231, 52, 141, 211, 194, 206, 246, 238,
        56, 110, 78, 248, 63, 240, 189, 93, 92, 51, 53, 183, 19, 171, 72, 50,
        33, 104, 101, 69, 8, 252, 83, 120, 76, 135, 85, 54, 202, 125, 188, 213,
        96, 235, 136, 208, 162, 129, 190, 132, 156, 38, 47, 1, 7, 254, 24, 4,
        216, 131, 89, 21, 28, 133, 37, 153, 149, 80, 170, 68, 6, 169, 234, 151,
    )
)  # fmt: skip

HBA_SIZE = 32
BUCKETS = 256

DHCPDISCOVER = 1  # RFC 2132 §9.6; None stands for a BOOTP request (no option 53)


def lb_hash(key: bytes) -> int:
    """RFC 3074 bucket of ``key``: start from len & 0xFF, mix bytes last to first."""
    h = len(key) & 0xFF
    for byte in reversed(key):
        h = MIXING_TABLE[h ^ byte]
    return h


def client_key(client_identifier: bytes | None, chaddr: bytes) -> bytes:
    """What ISC hashes: option 61's payload if present, else chaddr (``hlen`` bytes).

    ``chaddr`` must already be cut to ``hlen``; the htype byte is not part of it.
    """
    return client_identifier if client_identifier is not None else chaddr


def hba_from_split(split: int) -> bytes:
    """The HBA dhcpd builds for ``split N``: buckets 0..N-1 set (primary serves them)."""
    if not 0 <= split <= BUCKETS:
        raise ValueError(f"split {split} outside 0..256")
    full, rest = divmod(split, 8)
    tail = bytes([(1 << rest) - 1]) if rest else b""
    return (b"\xff" * full + tail).ljust(HBA_SIZE, b"\x00")


def primary_serves(bucket: int, hba: bytes) -> bool:
    """True when the HBA's bit for ``bucket`` is set (ISC: the primary answers)."""
    if len(hba) != HBA_SIZE:
        raise ValueError(f"HBA must be {HBA_SIZE} bytes, got {len(hba)}")
    return bool(hba[(bucket >> 3) & 0x1F] & (1 << (bucket & 7)))


def bucket_is_mine(bucket: int, hba: bytes | None, role: Role) -> bool:
    """Whether this server owns ``bucket``; with no HBA yet ISC assumes it does not."""
    if hba is None:
        return False
    return primary_serves(bucket, hba) == (role == "primary")


def should_serve(  # noqa: PLR0917 - positional order fixed by the failover brief
    role: Role,
    hba: bytes | None,
    client_key: bytes,
    secs: int,
    load_balance_max_seconds: int,
    message_type: int | None,
    *,
    check_secs_byte_order: bool = False,
) -> bool:
    """ISC's decision for a packet while cooperating (NORMAL); call it only then.

    ``message_type`` is the DHCP message type, or None for a BOOTP request. Only
    DHCPDISCOVER and BOOTP are balanced. ``check_secs_byte_order`` mirrors the dhcpd.conf
    option of that name: a ``secs`` of the form 0xNN00 is taken as byte-swapped.
    """
    if message_type is not None and message_type != DHCPDISCOVER:
        return True
    if check_secs_byte_order and secs > 0xFF and secs & 0xFF == 0:
        secs = ((secs >> 8) | (secs << 8)) & 0xFFFF
    if load_balance_max_seconds == 0 or secs > load_balance_max_seconds:
        return True
    if hba in (_EVERY_BUCKET, _NO_BUCKET):  # split 256 / split 0: no hash needed
        return (hba == _EVERY_BUCKET) == (role == "primary")
    return bucket_is_mine(lb_hash(client_key), hba, role)


_EVERY_BUCKET = b"\xff" * HBA_SIZE
_NO_BUCKET = bytes(HBA_SIZE)
