"""Conditionals, classes, subclasses and pool permits, evaluated per packet."""

from __future__ import annotations

from ipaddress import IPv4Network

from corekit import AUTHORITATIVE, SEED_BLOCK, A, FakeClient, config, mac, opt

from tandem.config.model import (
    ClientClass,
    Conditional,
    Expr,
    Param,
    Permit,
    Pool,
    Range,
    Subclass,
    Subnet,
)
from tandem.core.server import DhcpServer

T0 = 1_000_000


def vendor_is(prefix: bytes) -> Expr:
    """substring(option vendor-class-identifier, 0, len) = "prefix"."""
    return Expr(
        "equal",
        (
            Expr(
                "substring",
                (
                    Expr("option", value="dhcp.vendor-class-identifier"),
                    Expr("const-int", value=0),
                    Expr("const-int", value=len(prefix)),
                ),
            ),
            Expr("const-data", value=prefix),
        ),
    )


def test_if_elsif_else_in_subnet_scope() -> None:
    cond = Conditional(
        (
            (vendor_is(b"PXEClient"), (Param("filename", "pxelinux.0"),)),
            (vendor_is(b"MSFT"), (opt("domain-name", 15, b"ms.example"),)),
        ),
        otherwise=(opt("domain-name", 15, b"other.example"),),
    )
    block = (*SEED_BLOCK, cond)
    sub = Subnet(
        IPv4Network("192.0.2.0/24"),
        (Pool((Range(A("192.0.2.100"), A("192.0.2.200")),), chain=(block,)),),
        None,
        (block,),
    )
    srv = DhcpServer(config(sub))
    pxe = FakeClient(srv, mac(1)).send(1, T0, extra={60: b"PXEClient:Arch:00000"})
    assert pxe.reply is not None and pxe.reply.packet.file.rstrip(b"\0") == b"pxelinux.0"
    ms = FakeClient(srv, mac(2)).send(1, T0, extra={60: b"MSFT 5.0"}, prl=bytes([15]))
    assert ms.reply is not None and ms.reply.packet.options[15] == b"ms.example"
    plain = FakeClient(srv, mac(3)).send(1, T0, prl=bytes([15]))
    assert plain.reply is not None and plain.reply.packet.options[15] == b"other.example"
    assert plain.reply.packet.file == bytes(128)


def test_class_members_pool_and_class_options() -> None:
    voip = ClientClass(
        "voip",
        match_if=vendor_is(b"VOIP"),
        chain=((opt("tftp-server-name", 66, b"voip.example"),),),
    )
    by_mac = ClientClass(
        "listed",
        match=Expr("hardware"),
        subclasses=(
            Subclass(
                "listed",
                b"\x01" + mac(7),
                chain=((opt("domain-name", 15, b"listed.example"),),),
            ),
        ),
    )
    phones = Pool(
        (Range(A("192.0.2.10"), A("192.0.2.19")),),
        permits=(Permit(True, "members", "voip"),),
        chain=(SEED_BLOCK,),
    )
    others = Pool(
        (Range(A("192.0.2.100"), A("192.0.2.109")),),
        permits=(Permit(False, "members", "voip"),),
        chain=(SEED_BLOCK,),
    )
    sub = Subnet(IPv4Network("192.0.2.0/24"), (phones, others), None, (SEED_BLOCK,))
    srv = DhcpServer(config(sub, classes=(voip, by_mac)))  # type: ignore[arg-type]
    phone = FakeClient(srv, mac(1)).send(1, T0, extra={60: b"VOIP-v1"}, prl=bytes([66]))
    assert phone.reply is not None
    assert str(phone.reply.packet.yiaddr).startswith("192.0.2.1")
    assert phone.reply.packet.yiaddr <= A("192.0.2.19")
    assert phone.reply.packet.options[66] == b"voip.example"
    pc = FakeClient(srv, mac(2)).send(1, T0, prl=bytes([66]))
    assert pc.reply is not None and pc.reply.packet.yiaddr >= A("192.0.2.100")
    assert 66 not in pc.reply.packet.options
    listed = FakeClient(srv, mac(7)).send(1, T0, prl=bytes([15]))
    assert listed.reply is not None and listed.reply.packet.options[15] == b"listed.example"


def test_unknown_clients_deny_and_ignore() -> None:
    for word, logged in (("deny", True), ("ignore", False)):
        srv = DhcpServer(config(statements=(*AUTHORITATIVE, Param("unknown-clients", word))))
        out = FakeClient(srv, mac(1)).send(1, T0)
        assert out.reply is None and out.drop == "unknown client"
        assert any("unknown client" in x for x in out.log) is logged
        # the address was given back: nothing is held
        assert srv.stats()["offers.held"] == 0


def test_known_expression_and_binary_to_ascii() -> None:
    hexmac = Expr(
        "binary-to-ascii",
        (
            Expr("const-int", value=16),
            Expr("const-int", value=8),
            Expr("const-data", value=b":"),
            Expr("suffix", (Expr("hardware"), Expr("const-int", value=6))),
        ),
    )
    block = (
        *SEED_BLOCK,
        Conditional(((Expr("not", (Expr("known"),)), (Param("filename", hexmac),)),)),
    )
    sub = Subnet(
        IPv4Network("192.0.2.0/24"),
        (Pool((Range(A("192.0.2.100"), A("192.0.2.200")),), chain=(block,)),),
        None,
        (block,),
    )
    srv = DhcpServer(config(sub))
    out = FakeClient(srv, bytes([0x52, 0x54, 0, 0x0A, 0xBB, 1])).send(1, T0)
    assert out.reply is not None
    assert out.reply.packet.file.rstrip(b"\0") == b"52:54:0:a:bb:1"
