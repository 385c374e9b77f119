"""``key NAME { algorithm A; secret S; }``, checked as dhcpd checks it (common/parse.c).

dhcpd's parse_key reads the algorithm as a host name and the secret with parse_base64, which
glues tokens together (``abc+def/ghi==`` is several tokens to dhcpd's lexer) for as long as the
next token holds only base64 characters, then decodes them. Its complaints (an invalid
character, data after the ``=`` padding, a partial last group) are configuration errors, blamed
on the last token of the secret, as here. Tandem does not sign anything with keys, so nothing is
kept; the block is checked and reported as unimplemented.

Where dhcpd does not fail cleanly, Tandem picks the useful answer: an unknown algorithm is
accepted by ``dhcpd -t`` (it logs "Unable to create tsec structure for NAME") and is a warning
here; a key without a secret or without an algorithm crashes dhcpd 4.4.3 (a segmentation fault,
also under ``-t``) and is an error here; a secret that decodes to nothing makes dhcpd drop the
key silently (skipping to its ``}``), which is a warning here.
"""

from __future__ import annotations

from tandem.config.cursor import Cursor
from tandem.config.lexer import Kind
from tandem.config.state import State
from tandem.config.values import host_name

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_GLUES = frozenset(_ALPHABET + "=")  # what parse_base64 lets continue a secret

#: The algorithms dhcpd can use (omapip/isclib.c isclib_make_dst_key), as dhcpd spells them
#: after adding the ``.SIG-ALG.REG.INT.`` suffix to a name without a dot.
ALGORITHMS = ("hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")
_FULL_NAMES = frozenset(f"{a}.sig-alg.reg.int." for a in ALGORITHMS)

_SECRET_HINT = (
    "a key's secret is base64 (A-Z, a-z, 0-9, '+', '/', '=' padding at the end), "
    "as tsig-keygen or dnssec-keygen print it"
)


class _Empty(Exception):
    """The secret decodes to no bytes: dhcpd drops the key without a word."""


def parse_key(st: State) -> None:
    """After the ``key`` keyword: the key's name and its ``{ ... }`` block."""
    cur = st.cur
    if cur.peek().kind is Kind.STRING:
        name = cur.next().text
    else:
        found = host_name(cur) if cur.peek().is_identifier else None
        if found is None:
            raise cur.error("expecting key name")
        name = found
    if not cur.at_punct("{"):
        raise cur.error("expecting left brace after the key name")
    cur.next()
    start = cur.last.loc
    algorithm: str | None = None
    secret: bytes | None = None
    while True:
        tok = cur.next()
        if tok.word == "algorithm":
            if algorithm is not None:
                raise cur.error(f"key {name}: too many algorithms: give one 'algorithm' line")
            where = cur.peek().loc
            algorithm = host_name(cur)
            if algorithm is None:
                raise cur.error(
                    f"expecting key algorithm name (one of {', '.join(ALGORITHMS)}), "
                    "written without quotes"
                )
            cur.semi()
            if _full_name(algorithm) not in _FULL_NAMES:
                st.warn(
                    where,
                    f'key {name}: unknown algorithm {algorithm} (dhcpd logs "Unable to '
                    f'create tsec structure for {name}" and cannot use the key): use one of '
                    f"{', '.join(ALGORITHMS)}",
                )
        elif tok.word == "secret":
            if secret is not None:
                raise cur.error(f"key {name}: too many secrets: give one 'secret' line")
            try:
                secret = base64_secret(cur)
            except _Empty:
                st.warn(
                    cur.last.loc,
                    f"key {name}: the secret decodes to no bytes, so dhcpd ignores this key: "
                    f"{_SECRET_HINT}",
                )
                _skip_to_rbrace(cur)
                return
            cur.semi()
        else:
            break
    if not tok.is_punct("}"):
        if tok.kind is Kind.EOF:
            raise cur.eof_error(f"key {name}")
        raise cur.error(
            f"expecting right brace: a key block holds only 'algorithm' and 'secret', "
            f"found {tok.describe()}"
        )
    for what, value, example in (
        ("secret", secret, "secret BASE64;"),
        ("algorithm", algorithm, "algorithm hmac-sha256;"),
    ):
        if value is None:
            raise cur.error(
                f"key {name} (from {start}) has no {what}: add '{example}' "
                "(dhcpd 4.4.3 crashes on a key without one)"
            )
    cur.take_punct(";")  # BIND 8 syntax: "};"


def _full_name(algorithm: str) -> str:
    """dhcpd's spelling: ``.SIG-ALG.REG.INT.`` added to a name without a dot, else a final dot."""
    name = algorithm.lower()
    if "." not in name:
        return name + ".sig-alg.reg.int."
    return name if name.endswith(".") else name + "."


def base64_secret(cur: Cursor) -> bytes:
    """dhcpd's parse_base64: tokens while they hold only base64 characters, then decoded."""
    first = cur.next()
    if first.kind is Kind.EOF:
        raise cur.error("unexpected end of file: expecting the key's base64 secret")
    parts = [first.text]
    while True:
        tok = cur.peek()
        if tok.kind is Kind.EOF or not all(c in _GLUES for c in tok.text):
            break
        parts.append(cur.next().text)
    out = bytearray()
    acc = 0
    count = 0
    terminated = False
    for text in parts:
        for i, char in enumerate(text):
            if terminated and char != "=":
                raise cur.error(
                    f"stuff after base64 '=' terminator: {text[i:]}: '=' may only pad "
                    "the end of the secret"
                )
            if char != "=":
                value = _VALUE.get(char)
                if value is None:
                    raise cur.error(
                        f"invalid base64 character {char!r} (code {ord(char)}) in the key's "
                        f"secret: {_SECRET_HINT}"
                    )
                acc = (acc << 6) + value
                step = count % 4
                if step == 1:
                    out.append(acc >> 4)
                    acc &= 0x0F
                elif step == 2:
                    out.append(acc >> 2)
                    acc &= 0x03
                elif step == 3:
                    out.append(acc)
                    acc = 0
            else:
                terminated = True
            count += 1
    if count % 4 and acc:
        raise cur.error(
            f"partial base64 value left over: {acc}: the secret is cut short or mistyped; "
            f"{_SECRET_HINT}"
        )
    if not out:
        raise _Empty
    return bytes(out)


def _skip_to_rbrace(cur: Cursor) -> None:
    """dhcpd's skip_to_rbrace(cfile, 1): up to and including the ``}`` that closes the block."""
    level = 1
    while True:
        tok = cur.next()
        if tok.kind is Kind.EOF:
            return
        if tok.is_punct("{"):
            level += 1
        elif tok.is_punct("}"):
            level -= 1
            if level == 0:
                return
