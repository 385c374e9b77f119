"""``lease limit N;``: per-class billing of leases, as dhcpd 4.4.3 does it (server/class.c,
the billing block of ``ack_lease`` in server/dhcp.c).

A class with a lease limit (and each of its subclasses, explicit or spawned by ``spawn with``,
every one with its own counter and the limit inherited unless the subclass sets its own) is
billed one lease for each address it holds. When a lease is offered or acknowledged, dhcpd:

- drops the lease's billing if the lease's class is no longer one of the packet's classes;
- if the lease has no billing, bills it to the first of the packet's limited classes with room;
  when all of them are full it logs ``no available billing: lease limit reached in all matching
  classes (last: 'NAME')`` and sends nothing (DISCOVER and REQUEST alike are ignored, no NAK);
- on an OFFER of a lease that is not active, takes the billing back at once (the REQUEST bills
  again).

dhcpd unbills a lease when it expires, is released or otherwise leaves ACTIVE. Here a billing
is kept with the address and checked lazily: when a class is full, its billings whose lease is
no longer active (``alive`` is False) are dropped first, which refuses exactly the clients dhcpd
refuses. Leases received from a failover peer (BNDUPD) are not billed: dhcpd's bind update
copies the lease's existing billing and never bills a class for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tandem.config.model import ClientClass, Config
from tandem.core.expr import ExprContext, evaluate_bool, evaluate_data
from tandem.core.lease import BindingState, Lease

#: A billed class: (class name, subclass key), the key None for the class itself.
Key = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class _Limited:
    cls: ClientClass
    limit: int  # the class's own limit (0: not billed)
    sub_limits: dict[bytes, int]  # explicit subclasses: key -> limit (0: not billed)


class Billing:
    """Which leases are billed to which class; built only for configs with a ``lease limit``."""

    def __init__(self, classes: list[_Limited]) -> None:
        self._classes = classes
        self._by_addr: dict[int, Key] = {}
        self._billed: dict[Key, set[int]] = {}

    @classmethod
    def build(cls, config: Config) -> Billing | None:
        """None when no class or subclass has a lease limit (the per-packet path then skips)."""
        out: list[_Limited] = []
        for c in config.classes:
            own = c.lease_limit or 0
            subs = {s.key: (own if s.lease_limit is None else s.lease_limit) for s in c.subclasses}
            if own or any(subs.values()):
                out.append(_Limited(c, own, subs))
        return cls(out) if out else None

    def memberships(self, ctx: ExprContext) -> list[tuple[Key, int, str]]:
        """The packet's billable classes in configuration order: (key, limit, name to log)."""
        out: list[tuple[Key, int, str]] = []
        for lim in self._classes:
            c = lim.cls
            if c.match_if is not None:
                if not evaluate_bool(c.match_if, ctx):
                    continue
                if c.match is None and c.spawn is None:
                    if lim.limit:
                        out.append(((c.name, None), lim.limit, c.name))
                    continue
            expr = c.match if c.match is not None else c.spawn
            if expr is None:
                continue
            key = evaluate_data(expr, ctx)
            if not key:
                continue
            limit = lim.sub_limits.get(key)
            if limit is None:
                if c.spawn is None:
                    continue  # `match` without a subclass for this key: not a member
                limit = lim.limit  # a spawned subclass inherits the class's limit
            if limit:
                out.append(((c.name, key), limit, c.name))
        return out

    def billed_to(self, addr: int) -> Key | None:
        return self._by_addr.get(addr)

    def count(self, key: Key) -> int:
        return len(self._billed.get(key, ()))

    def unbill(self, addr: int) -> None:
        key = self._by_addr.pop(addr, None)
        if key is not None:
            held = self._billed[key]
            held.discard(addr)
            if not held:
                del self._billed[key]

    def _bill(self, addr: int, key: Key, limit: int, alive: Callable[[int], bool]) -> bool:
        held = self._billed.setdefault(key, set())
        if len(held) >= limit:
            for a in [a for a in held if not alive(a)]:
                self.unbill(a)
            held = self._billed.setdefault(key, set())
            if len(held) >= limit:
                return False
        held.add(addr)
        self._by_addr[addr] = key
        return True

    def restore(self, addr: int, key: Key, limit: int) -> bool:
        """Bill a lease loaded at start (dhcpd's ``billing class`` lease-file line); False when
        the class is already full, as dhcpd's ``bill_class`` then leaves the lease unbilled."""
        return self._bill(addr, key, limit, lambda _a: True)

    def limit_of(self, key: Key) -> int:
        """The limit of a billed class as written in the lease file (0: none, or unknown)."""
        name, sub = key
        for lim in self._classes:
            if lim.cls.name == name:
                return lim.limit if sub is None else lim.sub_limits.get(sub, lim.limit)
        return 0

    def restore_all(self, leases: Iterable[Lease]) -> None:
        """At start: bill the loaded ACTIVE leases that the lease file says were billed, in
        file order, as dhcpd's supersede_lease does; one its class has no room for (or whose
        class is gone) is left unbilled."""
        for lease in leases:
            if lease.billing is None or lease.binding_state is not BindingState.ACTIVE:
                continue
            limit = self.limit_of(lease.billing)
            if not (limit and self.restore(int(lease.address), lease.billing, limit)):
                lease.billing = None

    def admit(
        self,
        addr: int,
        ctx: ExprContext,
        *,
        offer: bool,
        active: bool,
        alive: Callable[[int], bool],
    ) -> str | None:
        """Bill ``addr`` for this packet; None when it may be handed out, else the class name
        for dhcpd's refusal line. ``active``: the lease is ACTIVE now; ``alive(a)``: whether
        the lease at ``a`` is still active (a billing of a lease that is not is dropped)."""
        member = self.memberships(ctx)
        current = self._by_addr.get(addr)
        if current is not None and all(key != current for key, _, _ in member):
            self.unbill(addr)
            current = None
        if current is not None or not member:
            return None
        for key, limit, _name in member:
            if self._bill(addr, key, limit, alive):
                if offer and not active:
                    self.unbill(addr)
                return None
        return member[-1][2]

    def check(
        self, leases: Mapping[int, Lease], addr: int, ctx: ExprContext, *, now: int, offer: bool
    ) -> str | None:
        """``admit`` with the lease database's leases by address (``LeaseDB.by_addr``)."""

        def alive(a: int) -> bool:
            lease = leases.get(a)
            return lease is not None and lease.is_active(now)

        return self.admit(addr, ctx, offer=offer, active=alive(addr), alive=alive)


def refusal(msg: str, name: str) -> str:
    """dhcpd's log line for a client refused by every limited class it is in."""
    return (
        f"{msg}: no available billing: lease limit reached in all matching classes (last: '{name}')"
    )
