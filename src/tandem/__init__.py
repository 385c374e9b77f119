"""Tandem: a dhcpd.conf-compatible DHCPv4 server that runs as a redundant pair."""

__version__ = "0.1.0.dev0"
