"""Golden replay of the DHCP core: old and new trees must give identical transcripts."""
