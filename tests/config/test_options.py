"""Option values in every dhcpd format, option definitions and option spaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.config import ConfigError, load, parse_text
from tandem.config.model import OptionSet

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def one_option(text: str, prefix: str = "") -> OptionSet:
    cfg = parse_text(prefix + text)
    opt = cfg.statements[-1]
    assert isinstance(opt, OptionSet)
    return opt


@pytest.mark.parametrize(
    ("stmt", "payload"),
    [
        ("option ntp-servers 192.0.2.6;", "c0000206"),
        ("option time-offset 2;", "00000002"),
        ("option time-offset -3600;", "fffff1f0"),
        ("option subnet-mask 255.255.255.00;", "ffffff00"),
        ("option routers 10.0.0.1, 10.0.0.2;", "0a0000010a000002"),
        ("option policy-filter 10.0.0.0 255.0.0.0, 192.168.0.0 255.255.0.0;",
         "0a000000ff000000c0a80000ffff0000"),
        ("option interface-mtu 1500;", "05dc"),
        ("option interface-mtu 0x5dc;", "05dc"),
        ("option interface-mtu 01000;", "0200"),  # leading 0: octal, as in dhcpd
        ("option default-ip-ttl 64;", "40"),
        ("option ip-forwarding on;", "01"),
        ("option ip-forwarding false;", "00"),
        ("option dhcp-renewal-time 60;", "0000003c"),
        ('option domain-name "example.com";', "6578616d706c652e636f6d"),
        ("option host-name unquoted;", "756e71756f746564"),
        ("option dhcp-client-identifier 01:00:50:56:aa:bb:cc;", "01005056aabbcc"),
        ('option dhcp-client-identifier "id";', "6964"),
        ('option domain-search "a.example", "example";',
         "0161076578616d706c6500c002"),  # dhcpd's format is "Dc": compressed
        ("option path-mtu-plateau-table 1500, 9000;", "05dc2328"),
        ("option vendor-encapsulated-options 01:04:0a:00:00:05;", "01040a000005"),
        ("option dhcp-parameter-request-list 1, 3, 6;", "010306"),
    ],
)  # fmt: skip
def test_option_encodings(stmt: str, payload: str) -> None:
    assert one_option(stmt).data == bytes.fromhex(payload)


def test_option_codes_and_names() -> None:
    opt = one_option("option ntp-servers 192.0.2.6;")
    assert (opt.space, opt.code, opt.name, opt.expr) == ("dhcp", 42, "ntp-servers", None)


def test_unknown_n_name_uses_code() -> None:
    opt = one_option("option unknown-224 de:ad;")
    assert (opt.code, opt.data) == (224, b"\xde\xad")


def test_option_expression() -> None:
    opt = one_option('option host-name = concat("h-", binary-to-ascii(16, 8, "", hardware));')
    assert opt.data is None and opt.expr is not None
    assert opt.expr.op == "concat"
    assert [a.op for a in opt.expr.args] == ["const-data", "binary-to-ascii"]


def test_host_name_in_address_option_becomes_lookup() -> None:
    cfg = parse_text("option domain-name-servers ns1.example.com, 10.0.0.53;")
    opt = cfg.statements[0]
    assert isinstance(opt, OptionSet) and opt.data is None and opt.expr is not None
    assert opt.expr.op == "concat"
    assert opt.expr.args[0].op == "host-lookup" and opt.expr.args[0].value == "ns1.example.com"
    assert opt.expr.args[1].value == bytes.fromhex("0a000035")


def test_definition_type_words_become_dhcpd_formats() -> None:
    cfg = load(str(CONFIGS / "option-spaces.conf"))
    formats = {(d.space, d.name): d.format for d in cfg.option_definitions}
    assert formats == {
        ("acme", "servers"): "Ia",
        ("acme", "weights"): "Sa",
        ("acme", "route"): "IIB",
        ("acme", "flags"): "ffl",
        ("acme", "name"): "t",
        ("acme", "blob"): "X",
        ("acme", "zone"): "d",
        ("acme", "search"): "D",
        ("acme", "csearch"): "Dc",
        ("acme", "present"): "Z",
        ("acme", "v6"): "6",
        ("acme", "pairs"): "IBA",
        ("acme", "tail"): "BIa",
        ("acmevendor", "config"): "Eacme.",
        ("dhcp", "acme-vivso"): "Eacmevendor.",
        ("dhcp", "rfc3442-classless-static-routes"): "ba",
        ("dhcp", "ms-classless-static-routes"): "ba",
    }
    spaces = {s.name: (s.code_width, s.length_width) for s in cfg.option_spaces}
    assert spaces == {"acme": (2, 2), "acmevendor": (1, 1)}
    data = {s.name: s.data for s in cfg.subnets[0].chain[-1] if isinstance(s, OptionSet)}
    assert data["route"] == bytes.fromhex("0a6f00000a6e000118")
    assert data["flags"] == bytes.fromhex("0100fffffff9")
    assert data["pairs"] == bytes.fromhex("0a6e0002010a6e000302")
    assert data["tail"] == bytes.fromhex("070a6e00040a6e0005")
    assert data["zone"] == b"\x04acme\x07example\x00"
    assert data["csearch"] == b"\x01a\x04acme\x07example\x00\x01b\xc0\x02"
    assert data["present"] == b""
    assert data["v6"] == bytes.fromhex("20010db8000000000000000000000001")
    assert data["rfc3442-classless-static-routes"] == bytes(
        [24, 10, 111, 0, 10, 110, 0, 1, 0, 10, 110, 0, 1]
    )


def test_pxe_vendor_space() -> None:
    cfg = load(str(CONFIGS / "pxe-vendor-space.conf"))
    (pxe,) = cfg.classes
    block = pxe.chain[-1]
    sent = {(s.space, s.name): s.data for s in block if isinstance(s, OptionSet)}
    assert sent[("dhcp", "vendor-class-identifier")] == b"PXEClient"
    assert sent[("PXE", "mtftp-ip")] == bytes(4)
    assert sent[("PXE", "discovery-control")] == b"\x08"
    assert [s.name for s in cfg.option_spaces] == ["PXE"]
    codes = {d.name: (d.code, d.format) for d in cfg.option_definitions}
    assert codes["mtftp-cport"] == (2, "S")


def test_redefinition_replaces_builtin() -> None:
    cfg = parse_text("option my-ttl code 23 = unsigned integer 16;\noption my-ttl 300;")
    opt = cfg.statements[-1]
    assert isinstance(opt, OptionSet)
    assert (opt.code, opt.data) == (23, b"\x01\x2c")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("option foo 1;", "unknown option dhcp.foo"),
        ("option nosuch.thing 1;", "no option space named nosuch"),
        ("option default-ip-ttl 256;", "does not fit in 8 bits"),
        ("option routers 10.0.0.1 10.0.0.2;", "semicolon expected"),
        ("option ip-forwarding maybe;", "expecting boolean"),
        ("option x code 300 = text;", "does not fit the dhcp space"),
        ("option x code 240 = array of text;", "arrays of text strings"),
        ("option x code 240 = { text, ip-address };", "must be at the end of the record"),
        ("option x code 240 = integer 12;", "12 bit precision is not supported"),
        ("option x code 240 = encapsulate nowhere;", "unknown option space nowhere"),
        ("option x code 240 = array of zerolen;", "array incompatible with zerolen"),
        ("option space s code width 3;", "invalid code width"),
        ("option domain-search example.com;", "expecting a domain string"),
        ("option dhcp-lease-time infinite;", "expecting number"),  # "L", not "T", in dhcpd
    ],
)
def test_option_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_text(text)
    assert message in str(info.value)
    assert info.value.loc.line == 1
