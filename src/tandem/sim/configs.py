"""The two servers' configurations: the seed blog post's pair, verbatim, and faster variants.

The seed pair (mclt 3600, max-response-delay 60, dhcpd's 12-hour default lease) is what a
user would deploy; the simulator also runs shortened variants of the *same text* (a shorter
MCLT and response delay, minutes-long leases, a smaller pool, split 128) so that one seed
covers many renewals, expiries, recover-waits and pool exhaustion in little virtual time.
Variants are made by textual substitution, so every config still goes through
``tandem.config.parse_text`` exactly as a file would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Address

from tandem.config import parse_text
from tandem.config.model import Config
from tandem.config.seed import SEED_PRIMARY, SEED_SECONDARY

__all__ = ["AUTO_PARTNER_DOWN", "PRIMARY_IP", "SECONDARY_IP", "VARIANTS", "Variant", "configs"]

PRIMARY_IP = IPv4Address("192.0.2.1")
SECONDARY_IP = IPv4Address("192.0.2.2")


_RANGE = "range 192.0.2.100 192.0.2.200;"
AUTO_PARTNER_DOWN = 30  #: ``auto-partner-down N;`` in every variant


@dataclass(frozen=True, slots=True)
class Variant:
    """A change to the seed text; ``None`` fields keep the seed's value."""

    name: str
    mclt: int = 3600
    mrd: int = 60
    lease_time: int | None = None  # default- and min-lease-time (max-lease-time = 1.5x)
    pool_last: int = 200  # last octet of the range (first is .100)
    split: int = 256

    @property
    def effective_lease_time(self) -> int:
        return self.lease_time or 43200

    @property
    def pool_size(self) -> int:
        return self.pool_last - 100 + 1

    def text(self, role: str) -> str:
        text = SEED_PRIMARY if role == "primary" else SEED_SECONDARY
        # Every variant runs with auto-partner-down on, a short N (the rule may raise it to
        # what the link's max-response-delay needs: AutoPDSettings.n_eff_ms).
        text = text.replace(
            "load balance max seconds 3;",
            f"load balance max seconds 3;\n        auto-partner-down {AUTO_PARTNER_DOWN};",
        )
        if self.name == "seed":
            return text
        text = text.replace("max-response-delay 60;", f"max-response-delay {self.mrd};")
        text = text.replace("mclt 3600;", f"mclt {self.mclt};")
        text = text.replace("split 256;", f"split {self.split};")
        text = text.replace(_RANGE, f"range 192.0.2.100 192.0.2.{self.pool_last};")
        if self.lease_time is not None:
            # min-lease-time too: without it dhcpd's floor (300 s, or max-lease-time if lower)
            # would lengthen the shortest variants' leases.
            head = (
                f"default-lease-time {self.lease_time};\n"
                f"max-lease-time {self.lease_time * 3 // 2};\n"
                f"min-lease-time {self.lease_time};\n"
            )
            text = head + text
        return text


VARIANTS: tuple[Variant, ...] = (
    Variant("seed"),
    Variant("short", mclt=300, mrd=20, lease_time=600),
    Variant("short-split", mclt=300, mrd=20, lease_time=600, split=128),
    Variant("small-pool", mclt=120, mrd=15, lease_time=300, pool_last=111),
    Variant("tiny-mclt", mclt=30, mrd=10, lease_time=240, pool_last=115, split=128),
)


@cache
def configs(variant: Variant) -> tuple[Config, Config]:
    """Both parsed configs (the frozen model is shared by every run of the variant)."""
    return parse_text(variant.text("primary"), "primary.conf"), parse_text(
        variant.text("secondary"), "secondary.conf"
    )
