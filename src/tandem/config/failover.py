"""``failover peer "NAME" { ... }`` (dhcpd's parse_failover_peer), with dhcpd's defaults.

dhcpd's own defaults (includes/failover.h) are filled in explicitly here rather than left
to the model's field defaults: port 647, max-response-delay 20, max-unacked-updates 100,
max-lease-misbalance 15, max-lease-ownership 10, min-balance 60, max-balance 3600, and
``load balance max seconds`` 0, which dhcpd reads as "load balancing disabled".
"""

from __future__ import annotations

from ipaddress import IPv4Address

from tandem.config.cursor import Cursor
from tandem.config.lexer import Kind
from tandem.config.model import FailoverPeer, HostRef, Location
from tandem.config.values import address_or_host_name, decimal, numeric_aggregate

DEFAULT_PORT = 647
DEFAULTS = {
    "max-response-delay": 20,
    "max-unacked-updates": 100,
    "max-lease-misbalance": 15,
    "max-lease-ownership": 10,
    "min-balance": 60,
    "max-balance": 3600,
    "auto-partner-down": 0,
    "mclt": 0,
}
_NUMBERS = frozenset(DEFAULTS)
#: Unspecified local address: dhcpd then picks one itself; Tandem listens on all.
ANY_ADDRESS = IPv4Address("0.0.0.0")


def split_to_hba(split: int) -> bytes:
    """dhcpd's expansion of ``split N``: the first N hash buckets, LSB first, are ours."""
    hba = bytearray(32)
    for i in range(split):
        hba[i // 8] |= 1 << (i & 7)
    return bytes(hba)


def parse_peer_body(cur: Cursor, name: str, loc: Location) -> tuple[FailoverPeer, list[str]]:
    """The ``{ ... }`` of a peer declaration (the ``{`` is consumed). Returns (peer, notes)."""
    role = "primary"  # dhcpd's zero value of i_am
    role_given = False
    numbers: dict[str, int] = {}
    mine: dict[str, int | IPv4Address | HostRef] = {}
    partner: dict[str, int | IPv4Address | HostRef] = {}
    split: int | None = None
    hba: bytes | None = None
    lb_max: int | None = None
    notes: list[str] = []
    while True:
        tok = cur.next()
        word = tok.word
        if tok.is_punct("}"):
            break
        target = mine
        if word == "peer":
            target = partner
            tok = cur.next()
            word = tok.word
        if word in ("primary", "secondary") and target is mine:
            role, role_given = word, True
            if word == "secondary" and (split is not None or hba is not None):
                raise cur.error("secondary may not define load balance settings")
        elif word == "address":
            # A host name is kept with its place; config.load resolves it (config/resolve.py).
            where = cur.peek().loc
            addr = address_or_host_name(cur)
            target["address"] = addr if isinstance(addr, IPv4Address) else HostRef(addr, where)
        elif word == "port":
            target["port"] = decimal(cur, cur.next(), "the port")
        elif word in ("max-response-delay", "max-unacked-updates"):
            target[word] = decimal(cur, cur.next(), word)
        elif word in _NUMBERS and target is mine:
            numbers[word] = decimal(cur, cur.next(), word)
        elif word == "split" and target is mine:
            split_tok = cur.next()
            if role_given and role == "secondary":
                raise cur.error("secondary may not define load balance settings")
            split = decimal(cur, split_tok, "split")
            if split > 256:
                raise cur.error("split must be between 0 and 256, inclusive")
        elif word == "hba" and target is mine:
            if role_given and role == "secondary":
                raise cur.error("secondary may not define load balance settings")
            buckets = numeric_aggregate(cur, ":", 16, 8, 0)
            if len(buckets) != 32:
                raise cur.error(f"HBA must be exactly 32 bytes, not {len(buckets)}")
            hba = bytes(buckets)
        elif word == "load" and target is mine:
            cur.expect_word("balance", "expecting 'balance'")
            cur.expect_word("max", "expecting 'max'")
            cur.expect_word("seconds", "expecting 'seconds'")
            lb_max = decimal(cur, cur.next(), "load balance max seconds")
        else:
            if tok.kind is Kind.EOF:
                raise cur.error("unexpected end of file in failover peer declaration")
            raise cur.error_at(tok, f"invalid statement in peer declaration: {tok.describe()}")
        cur.semi()
    if "address" not in partner:
        raise cur.error(
            "peer address may not be omitted: add 'peer address A.B.C.D;' (or a host name)"
        )
    mclt = numbers.get("mclt", 0)
    if role == "primary":
        if split is None and hba is None:
            raise cur.error("primary failover server must have hba or split")
        if not mclt:
            raise cur.error("primary failover server must have mclt")
    if "address" not in mine:
        notes.append(f"failover peer {name}: no 'address' given; Tandem listens on all addresses")
    if not lb_max:
        notes.append(
            f"failover peer {name}: load balancing is disabled because "
            "'load balance max seconds' is 0 (dhcpd's default)"
        )

    def number(key: str) -> int:
        return numbers.get(key) or DEFAULTS[key]

    def side(values: dict[str, int | IPv4Address | HostRef], key: str, default: int) -> int:
        value = values.get(key)
        return value if isinstance(value, int) and value else default

    def address(values: dict[str, int | IPv4Address | HostRef]) -> IPv4Address:
        """The address written; ANY_ADDRESS until a host name is resolved (or none given)."""
        value = values.get("address")
        return value if isinstance(value, IPv4Address) else ANY_ADDRESS

    def named(values: dict[str, int | IPv4Address | HostRef]) -> HostRef | None:
        value = values.get("address")
        return value if isinstance(value, HostRef) else None

    peer = FailoverPeer(
        name=name,
        role="secondary" if role == "secondary" else "primary",
        address=address(mine),
        peer_address=address(partner),
        port=side(mine, "port", DEFAULT_PORT),
        peer_port=side(partner, "port", DEFAULT_PORT),
        max_response_delay=side(mine, "max-response-delay", DEFAULTS["max-response-delay"]),
        max_unacked_updates=side(mine, "max-unacked-updates", DEFAULTS["max-unacked-updates"]),
        mclt=mclt or None,
        split=split,
        hba=hba,
        load_balance_max_seconds=lb_max or 0,
        auto_partner_down=numbers.get("auto-partner-down", 0),
        max_lease_misbalance=number("max-lease-misbalance"),
        max_lease_ownership=number("max-lease-ownership"),
        min_balance=number("min-balance"),
        max_balance=number("max-balance"),
        loc=loc,
        address_name=named(mine),
        peer_address_name=named(partner),
    )
    return peer, notes
