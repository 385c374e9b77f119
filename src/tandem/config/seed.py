"""The founding blog post's configurations, verbatim: Tandem's first acceptance test.

"Simple DHCP failover with ISC-DHCP" (tspi.at, 2022) gives a primary and a secondary, each a
``failover peer`` block plus the same subnet. They must work unchanged, typos included: the
``255.255.255.00`` subnet mask and the commented-out range. ``SEED_SUBNET`` is the subnet with
the pool's ``failover peer`` line left out, for a standalone server. The same texts are in
``tests/configs/seed-*.conf`` for the dhcpd -t corpus; a test keeps the copies identical.
"""

from __future__ import annotations

SEED_FAILOVER_NAME = "failover-example"

_SUBNET = """\
subnet 192.0.2.0 netmask 255.255.255.0 {
        # range 192.0.2.100 192.0.2.200;
        option routers 192.0.2.5;
        option subnet-mask 255.255.255.00;
        option ntp-servers 192.0.2.6;
        option time-offset 2;
        option broadcast-address 192.0.2.255;

        pool {
                failover peer "failover-example";
                range 192.0.2.100 192.0.2.200;
        }
}
"""

SEED_PRIMARY = (
    """\
failover peer "failover-example" {
        primary;
        address 192.0.2.1;
        port 519;
        peer address 192.0.2.2;
        peer port 520;
        max-response-delay 60;
        max-unacked-updates 10;
        mclt 3600;
        split 256;
        load balance max seconds 3;
}

"""
    + _SUBNET
)

SEED_SECONDARY = (
    """\
failover peer "failover-example" {
        secondary;
        address 192.0.2.2;
        port 520;
        peer address 192.0.2.1;
        peer port 519;
        max-response-delay 60;
        max-unacked-updates 10;
        load balance max seconds 3;
}

"""
    + _SUBNET
)

#: The subnet declaration alone, for one standalone server: the pool's failover line removed.
SEED_SUBNET = _SUBNET.replace('                failover peer "failover-example";\n', "")
