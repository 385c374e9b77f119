"""Shared strategies and helpers for the lease-store tests (imported by name, not a conftest)."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

from hypothesis import strategies as st

from tandem.core.lease import BindingState, Lease
from tandem.lab.shared import VECTORS as SHARED_VECTORS
from tandem.store.leasefile import NEVER

VECTORS = SHARED_VECTORS

_times = st.one_of(st.none(), st.integers(min_value=1, max_value=4_000_000_000), st.just(NEVER))
_states = st.sampled_from(list(BindingState))
_var_names = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True).filter(
    lambda n: n != "vendor-class-identifier"
)
_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def leases(draw: st.DrawFn) -> Lease:
    """Any lease the model can hold, within the file format's documented bounds."""
    return Lease(
        address=IPv4Address(draw(st.integers(0, 2**32 - 1))),
        binding_state=draw(_states),
        next_binding_state=draw(st.none() | _states),
        rewind_binding_state=draw(st.none() | _states),
        starts=draw(_times),
        ends=draw(_times),
        tstp=draw(_times),
        tsfp=draw(_times),
        atsfp=draw(_times),
        cltt=draw(_times),
        hardware=draw(
            st.none() | st.tuples(st.integers(0, 255), st.binary(min_size=0, max_size=16))
        ),
        uid=draw(st.none() | st.binary(min_size=1, max_size=64)),
        client_hostname=draw(st.none() | _printable | st.text(max_size=20)),
        vendor_class_identifier=draw(st.none() | st.text(max_size=30)),
        bootp=draw(st.booleans()),
        variables=draw(st.dictionaries(_var_names, st.text(max_size=30), max_size=3)),
    )


def _printable_ascii(text: str) -> bool:
    return all(0x20 <= ord(c) < 0x7F and c not in '"\\' for c in text)


def normalized(lease: Lease) -> Lease:
    """What a lease means once written: the distinctions the format does not keep removed.

    dhcpd writes no line for a zero time or for a next/rewind state equal to the current
    one, spells an infinite ACTIVE lease ``ends never;`` and drops a client-hostname that
    is not printable ASCII. An ACTIVE lease without ``ends`` reads back as ended (0).
    """
    out = lease.copy()
    for name in ("starts", "tstp", "tsfp", "atsfp", "cltt"):
        if getattr(out, name) == 0:
            setattr(out, name, None)
    active = out.binding_state is BindingState.ACTIVE
    if active and out.ends == NEVER:
        out.ends = None
    if not active and out.ends == 0:
        out.ends = None
    if out.next_binding_state is out.binding_state:
        out.next_binding_state = None
    if out.rewind_binding_state is out.binding_state:
        out.rewind_binding_state = None
    if out.client_hostname is not None and not _printable_ascii(out.client_hostname):
        out.client_hostname = None
    if out.uid == b"":
        out.uid = None
    return dataclasses.replace(out)
