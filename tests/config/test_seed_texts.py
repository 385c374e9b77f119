"""The seed's texts exist once in code (tandem.config.seed) and once as corpus files that
`dhcpd -t` reads: they must stay identical, and the blog post's config lines verbatim."""

from __future__ import annotations

from pathlib import Path

from tandem.config.seed import SEED_PRIMARY, SEED_SECONDARY, SEED_SUBNET

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BLOG = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "seed"
    / "simple-dhcp-failover-with-isc-dhcp.txt"
)


def _body(path: Path) -> str:
    """The corpus file without its leading comment lines."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("# "))


def test_corpus_files_match_the_module() -> None:
    assert _body(CONFIGS / "seed-primary.conf") == SEED_PRIMARY
    assert _body(CONFIGS / "seed-secondary.conf") == SEED_SECONDARY


def test_every_config_line_is_in_the_blog_post() -> None:
    blog = BLOG.read_text(encoding="utf-8").splitlines()
    for text in (SEED_PRIMARY, SEED_SECONDARY):
        for line in text.splitlines():
            assert not line.strip() or line in blog, line
    assert 'failover peer "failover-example";' not in SEED_SUBNET
    assert "option subnet-mask 255.255.255.00;" in SEED_SUBNET  # the typo, kept
