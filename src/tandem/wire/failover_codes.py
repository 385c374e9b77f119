"""The numbers of ISC's failover protocol: message types, option codes, reject reasons, states.

Each value is the number ISC dhcpd 4.4 uses on the wire (each class cites its draft-ietf-dhc-
failover-12 section and ISC's name for it), as an ``IntEnum`` or ``IntFlag`` so that a decoded
number prints by name. The codec that reads and writes them is ``tandem.wire.failover``.
"""

from __future__ import annotations

import enum


class MessageType(enum.IntEnum):
    """Message types as ISC numbers them (includes/failover.h; note 7/9 vs older drafts)."""

    POOLREQ = 1  #: draft-12 §7.3.1
    POOLRESP = 2  #: §7.3.2
    BNDUPD = 3  #: §7.1.1
    BNDACK = 4  #: §7.1.2
    CONNECT = 5  #: §7.2.1
    CONNECTACK = 6  #: §7.2.2
    UPDREQALL = 7  #: §7.1.4
    UPDDONE = 8  #: §7.1.5
    UPDREQ = 9  #: §7.1.3
    STATE = 10  #: §7.4.1
    CONTACT = 11  #: §7.5.1
    DISCONNECT = 12  #: §7.2.3


class OptionCode(enum.IntEnum):
    """Option codes (draft-12 §12, ISC FTO_*)."""

    ADDRESSES_TRANSFERRED = 1
    ASSIGNED_IP_ADDRESS = 2
    BINDING_STATUS = 3
    CLIENT_IDENTIFIER = 4
    CLIENT_HARDWARE_ADDRESS = 5
    CLTT = 6  #: client-last-transaction-time
    CLIENT_REPLY_OPTIONS = 7
    CLIENT_REQUEST_OPTIONS = 8
    DDNS = 9
    DELAYED_SERVICE = 10
    HASH_BUCKET_ASSIGNMENT = 11
    IP_FLAGS = 12
    LEASE_EXPIRATION_TIME = 13
    MAX_UNACKED_BNDUPD = 14
    MCLT = 15
    MESSAGE = 16
    MESSAGE_DIGEST = 17
    POTENTIAL_EXPIRATION_TIME = 18
    RECEIVE_TIMER = 19
    PROTOCOL_VERSION = 20
    REJECT_REASON = 21
    RELATIONSHIP_NAME = 22
    SERVER_FLAGS = 23
    SERVER_STATE = 24
    START_TIME_OF_STATE = 25
    TLS_REPLY = 26
    TLS_REQUEST = 27
    VENDOR_CLASS = 28
    VENDOR_OPTIONS = 29


class RejectReason(enum.IntEnum):
    """reject-reason values (draft-12 §12.21, ISC FTR_*)."""

    ILLEGAL_IP_ADDR = 1
    FATAL_CONFLICT = 2
    MISSING_BINDINFO = 3
    TIMEMISMATCH = 4
    INVALID_MCLT = 5
    MISC_REJECT = 6
    DUP_CONNECTION = 7
    INVALID_PARTNER = 8
    TLS_UNSUPPORTED = 9
    TLS_UNCONFIGURED = 10
    TLS_REQUIRED = 11
    DIGEST_UNSUPPORTED = 12
    DIGEST_UNCONFIGURED = 13
    VERSION_MISMATCH = 14
    OUTDATED_BIND_INFO = 15
    LESS_CRIT_BIND_INFO = 16
    NO_TRAFFIC = 17
    HBA_CONFLICT = 18
    IP_NOT_RESERVED = 19
    IP_DIGEST_FAILURE = 20
    IP_MISSING_DIGEST = 21
    UNKNOWN = 254


class ServerState(enum.IntEnum):
    """server-state values (draft-12 §12.24 plus ISC's 0 and 254; reference §7.1)."""

    UNKNOWN = 0  #: ISC internal "unknown-state", accepted on the wire
    STARTUP = 1  #: never sent by ISC (it sends the saved state + flag bit)
    NORMAL = 2
    COMMUNICATIONS_INTERRUPTED = 3
    PARTNER_DOWN = 4
    POTENTIAL_CONFLICT = 5
    RECOVER = 6
    PAUSED = 7
    SHUTDOWN = 8
    RECOVER_DONE = 9
    RESOLUTION_INTERRUPTED = 10
    CONFLICT_DONE = 11
    RECOVER_WAIT = 254  #: [DEVIATION] draft gives no code; ISC sends 254

    @property
    def keyword(self) -> str:
        """The word in the lease file's ``my state WORD`` (``unknown-state`` for 0)."""
        if self is ServerState.UNKNOWN:
            return "unknown-state"
        if self is ServerState.SHUTDOWN:
            return "shutdown"
        return self.name.lower().replace("_", "-")


class BindingState(enum.IntEnum):
    """Binding states (draft-12 §8; binding-status, §12.3): the one vocabulary of them, the wire's
    numbers and the lease file's words (``core.lease`` uses it for ``Lease.binding_state``)."""

    FREE = 1
    ACTIVE = 2
    EXPIRED = 3
    RELEASED = 4
    ABANDONED = 5
    RESET = 6
    BACKUP = 7

    @property
    def keyword(self) -> str:
        """The word dhcpd writes in ``binding state WORD;``."""
        return self.name.lower()

    @classmethod
    def from_keyword(cls, word: str) -> BindingState:
        """Parse the word of ``binding state WORD;`` (raises KeyError on an unknown word)."""
        return cls[word.upper()]


class ServerFlags(enum.IntFlag):
    """server-flags bits (draft-12 §12.23, ISC FTF_SERVER_STARTUP)."""

    NONE = 0
    STARTUP = 0x01


class IPFlags(enum.IntFlag):
    """IP-flags bits; ISC sends a 2-byte field although the draft figure says 1 (§3)."""

    NONE = 0
    RESERVED = 0x0001
    BOOTP = 0x0002
