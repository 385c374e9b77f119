"""Token stream with dhcpd's notion of "where the error is".

dhcpd reports a problem at the last token it *consumed*, not at the token it merely
peeked at. ``Cursor.error()`` does the same so that ``dhcpd -t`` and Tandem blame the same
``line:col``; ``Cursor.error_at(tok, ...)`` is for the few places where dhcpd consumed the
offending token first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tandem.config.errors import ConfigError
from tandem.config.lexer import Kind, Lexer, Token

#: Maximum nesting of braces and parentheses. dhcpd has no limit (and would overflow its
#: C stack); a real configuration rarely nests more than five levels.
MAX_DEPTH = 64


class Cursor:
    def __init__(self, text: str, filename: str) -> None:
        self._lexer = Lexer(text, filename)
        self._ahead: list[Token] = []
        self.filename = filename
        first = self.peek()
        self.last: Token = first  # before anything is consumed, blame the first token
        self.depth = 0

    def peek(self, n: int = 0) -> Token:
        """The token ``n`` places ahead without consuming anything."""
        while len(self._ahead) <= n:
            self._ahead.append(self._lexer.next())
        return self._ahead[n]

    def next(self) -> Token:
        tok = self.peek()
        del self._ahead[0]
        if tok.kind is not Kind.EOF:
            self.last = tok
        return tok

    # --- errors -------------------------------------------------------------------------

    def error(self, message: str) -> ConfigError:
        """An error blamed on the last consumed token (dhcpd's convention)."""
        return ConfigError.at(self.last.loc, message)

    @staticmethod
    def error_at(tok: Token, message: str) -> ConfigError:
        return ConfigError.at(tok.loc, message)

    # --- small expectations ---------------------------------------------------------------

    def at_punct(self, char: str) -> bool:
        return self.peek().is_punct(char)

    def at_word(self, *words: str) -> bool:
        return self.peek().word in words

    def take_punct(self, char: str) -> bool:
        if self.at_punct(char):
            self.next()
            return True
        return False

    def take_word(self, word: str) -> bool:
        if self.peek().word == word:
            self.next()
            return True
        return False

    def expect_punct(self, char: str, message: str) -> Token:
        tok = self.next()
        if not tok.is_punct(char):
            raise self._unexpected(tok, message)
        return tok

    def expect_word(self, word: str, message: str) -> Token:
        tok = self.next()
        if tok.word != word:
            raise self._unexpected(tok, message)
        return tok

    def semi(self) -> None:
        """``;`` must come next (dhcpd: "semicolon expected.")."""
        tok = self.next()
        if not tok.is_punct(";"):
            raise self._unexpected(
                tok, f"semicolon expected before {tok.describe()}: end the statement with ';'"
            )

    def lbrace(self) -> None:
        tok = self.next()
        if not tok.is_punct("{"):
            raise self._unexpected(tok, "expecting left brace '{'")

    def _unexpected(self, tok: Token, message: str) -> ConfigError:
        if tok.kind is Kind.EOF:
            return self.error(f"unexpected end of file: {message}")
        return self.error_at(tok, message)

    def eof_error(self, what: str) -> ConfigError:
        return self.error(f"unexpected end of file: {what} is not closed with '}}'")

    # --- nesting ----------------------------------------------------------------------------

    @contextmanager
    def nested(self) -> Iterator[None]:
        """Count one level of nesting; refuse to go deeper than MAX_DEPTH."""
        if self.depth >= MAX_DEPTH:
            raise self.error(
                f"nesting deeper than {MAX_DEPTH} levels of braces or parentheses: "
                "flatten the configuration"
            )
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    # --- skipping (for statements Tandem parses but does not implement) -------------------

    def skip_statement(self) -> None:
        """Consume up to and including the ``;`` that ends a statement, or its ``{ }`` body.

        Like dhcpd's skip_to_semi: a ``;`` at brace level 0 ends it, as does the ``}`` that
        closes the first ``{``. Braces in between are balanced (iteratively, so depth is no
        problem). Running into the enclosing block's ``}`` or the end of file is an error.
        """
        level = 0
        while True:
            tok = self.peek()
            if tok.kind is Kind.EOF:
                raise self.error("unexpected end of file in the middle of a statement")
            if tok.is_punct("}"):
                if level == 0:
                    raise self.error_at(tok, "semicolon expected: end the statement with ';'")
                level -= 1
                self.next()
                if level == 0:
                    return
                continue
            self.next()
            if tok.is_punct("{"):
                level += 1
            elif tok.is_punct(";") and level == 0:
                return
