"""The architecture, checked from the source: docs/ARCHITECTURE.md is a contract, not a wish.

Five checks over every module under src/tandem/: no import cycle between modules, none between
packages, no package edge that the "Allowed imports" block of docs/ARCHITECTURE.md does not
list, every module named in that doc by its path, and no source file over 600 lines.

Imports are read with ``ast``, never by importing, and every one counts: ``import x``,
``from x import y``, relative imports, those under ``if TYPE_CHECKING:`` and those inside
functions, because each is a dependency a reader has to follow (and a deferred import is how a
cycle hides). ``from tandem.core import flows`` is an edge to the module ``tandem.core.flows``;
``import tandem.core.flows`` is not counted as an import of the package ``tandem.core`` too.

The checkers are plain functions over ``{path: source}`` and the doc's text, so the tests at the
end feed them small synthetic trees and docs to show that each check can fail.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "tandem"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
MAX_LINES = 600
HEADING = "## Allowed imports"

#: path under src/tandem/ ("core/flows.py") -> source text
Sources = Mapping[str, str]
#: module -> {module it imports: line of the first such import}
Graph = Mapping[str, Mapping[str, int]]


def read_sources(root: Path = PKG) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in root.rglob("*.py")}


def module_name(path: str) -> str:
    """``core/failover/engine.py`` -> ``tandem.core.failover.engine``; ``__init__.py`` ->
    ``tandem``; ``core/__init__.py`` -> ``tandem.core``."""
    parts = ["tandem", *path.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """The module a dotted name refers to: itself, else its longest prefix that is a module
    (``tandem.core.server.DhcpServer`` -> ``tandem.core.server``); None outside tandem."""
    known = set(modules)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(path: str, node: ast.Import | ast.ImportFrom, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        found = [_resolve(alias.name, modules) for alias in node.names]
        return [m for m in found if m is not None]
    base = node.module or ""
    if node.level:
        # The package a relative import starts from: the module's own package, one level up
        # per extra dot.
        package = module_name(path).split(".")
        if not path.endswith("__init__.py"):
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    out: list[str] = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        target = sub if sub in modules else _resolve(base, modules)
        if target is not None:
            out.append(target)
    return out


def module_graph(sources: Sources) -> dict[str, dict[str, int]]:
    modules = {module_name(path) for path in sources}
    graph: dict[str, dict[str, int]] = {}
    for path, text in sorted(sources.items()):
        me = module_name(path)
        edges = graph.setdefault(me, {})
        for node in ast.walk(ast.parse(text, filename=path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(path, node, modules):
                    if target != me:
                        edges[target] = min(edges.get(target, node.lineno), node.lineno)
    return graph


def _shortest_cycle(start: str, succ: Mapping[str, list[str]], members: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:  # breadth first from start, back to start, inside its component
        v = queue.popleft()
        if start in succ[v]:
            if v == start:
                return [start, start]
            chain = [start, v]
            while chain[-1] != start:
                chain.append(came_from[chain[-1]])
            return chain[::-1]
        for w in succ[v]:
            if w in members and w not in came_from and w != start:
                came_from[w] = v
                queue.append(w)
    raise AssertionError(f"{start} is in no cycle")


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Import cycles as chains ``[a, b, a]``: per strongly connected component, a shortest
    cycle through each of its modules that no chain before it went through."""
    succ = {n: sorted(set(e)) for n, e in graph.items()}
    for targets in list(succ.values()):
        for t in targets:
            succ.setdefault(t, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graphs here are a few hundred nodes at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    chains = []
    for component in components:
        members = set(component)
        covered: set[str] = set()
        for start in component:  # a shortest cycle through each module not yet in one
            if start in covered or (len(component) == 1 and start not in succ[start]):
                continue
            chain = _shortest_cycle(start, succ, members)
            covered.update(chain)
            chains.append(chain)
    return sorted(chains)


def package_of(module: str) -> str:
    """``tandem.core.failover.engine`` -> ``core``; a top-level module is a package of its own
    (``tandem.cli`` -> ``cli``); ``tandem/__init__.py`` is ``tandem``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tandem"


def package_edges(graph: Graph) -> dict[tuple[str, str], str]:
    """(from package, to package) -> one import that makes the edge, for the message."""
    edges: dict[tuple[str, str], str] = {}
    for module, targets in sorted(graph.items()):
        for target, line in sorted(targets.items()):
            key = (package_of(module), package_of(target))
            if key[0] != key[1] and key not in edges:
                edges[key] = f"{module} imports {target} (line {line})"
    return edges


def parse_allowed(doc: str) -> dict[str, frozenset[str]]:
    """The fenced block under ``## Allowed imports``: ``pkg -> a, b`` or ``pkg -> (none)``."""
    _, found, after = doc.partition(f"\n{HEADING}\n")
    block = re.search(r"^```[^\n]*\n(.*?)^```", after, re.M | re.S)
    if not found or block is None:
        raise ValueError(f"no fenced block under {HEADING!r}")
    allowed: dict[str, frozenset[str]] = {}
    for raw in block.group(1).splitlines():
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"(\w+)\s*->\s*(\(none\)|\w+(?:\s*,\s*\w+)*)", line)
        if match is None:
            raise ValueError(f"{HEADING}: cannot read {raw!r}")
        package, targets = match.groups()
        if package in allowed:
            raise ValueError(f"{HEADING}: {package} has two lines")
        names = [] if targets == "(none)" else re.split(r"\s*,\s*", targets)
        allowed[package] = frozenset(names)
    return allowed


def forbidden(
    edges: Mapping[tuple[str, str], str], allowed: Mapping[str, Iterable[str]]
) -> list[str]:
    problems = []
    for package in sorted({p for edge in edges for p in edge} - set(allowed)):
        problems.append(f"package {package} has no line in the Allowed imports block")
    for (src, dst), example in sorted(edges.items()):
        if src in allowed and dst not in allowed[src]:
            problems.append(f"{src} -> {dst} is not allowed: {example}")
    return problems


def _holds_logic(text: str) -> bool:
    """Whether an ``__init__.py`` does more than a docstring, imports and ``__all__``."""
    for stmt in ast.parse(text).body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.Assign) and [ast.unparse(t) for t in stmt.targets] == ["__all__"]:
            continue
        return True
    return False


def undocumented(sources: Sources, doc: str) -> list[str]:
    """Modules whose path under src/tandem/ does not appear in the doc in backticks."""
    missing = []
    for path, text in sorted(sources.items()):
        if path.endswith("__init__.py") and not _holds_logic(text):
            continue
        if f"`{path}`" not in doc:
            missing.append(f"{path} is not named in docs/ARCHITECTURE.md (as `{path}`)")
    return missing


def too_long(sources: Sources, limit: int = MAX_LINES) -> list[str]:
    counts = {path: len(text.splitlines()) for path, text in sources.items()}
    return [f"{p}: {n} lines (limit {limit})" for p, n in sorted(counts.items()) if n > limit]


def _chains(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(chain) for chain in cycles)


# The tree as it is.


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return read_sources()


@pytest.fixture(scope="module")
def graph(sources: dict[str, str]) -> dict[str, dict[str, int]]:
    return module_graph(sources)


def test_no_import_cycle_between_modules(graph: Graph) -> None:
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + _chains(cycles)


def test_no_import_cycle_between_packages(graph: Graph) -> None:
    edges = package_edges(graph)
    cycles = find_cycles({p: [d for s, d in edges if s == p] for p, _ in edges})
    assert not cycles, "package cycles:\n" + _chains(cycles)


def test_every_package_edge_is_allowed(graph: Graph) -> None:
    problems = forbidden(package_edges(graph), parse_allowed(DOC.read_text("utf-8")))
    assert not problems, "\n".join(problems)


def test_the_allowed_imports_have_no_cycle() -> None:
    allowed = parse_allowed(DOC.read_text("utf-8"))
    cycles = find_cycles(allowed)
    assert not cycles, "the Allowed imports block has a cycle:\n" + _chains(cycles)


def test_every_module_is_named_in_the_doc(sources: dict[str, str]) -> None:
    missing = undocumented(sources, DOC.read_text("utf-8"))
    assert not missing, "\n".join(missing)


def test_no_source_file_is_over_600_lines(sources: dict[str, str]) -> None:
    long = too_long(sources)
    assert not long, "split these:\n" + "\n".join(long)


# The checkers can fail: small synthetic trees and docs.

DOC_HEAD = "# Architecture\n\n## Allowed imports\n\n```text\n"


def test_every_form_of_import_is_an_edge() -> None:
    sources = {
        "__init__.py": "",
        "a.py": "import tandem.b\n",
        "b.py": "from tandem.pkg import mod, name\n",
        "pkg/__init__.py": "name = 1\n",
        "pkg/mod.py": "from . import other\nfrom .. import a\nfrom ..b import thing\n",
        "pkg/other.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from tandem.pkg.mod import Mod\n"
            "def f() -> None:\n    import tandem.a.missing\n"
            "import os, json\n"
        ),
    }
    assert module_graph(sources) == {
        "tandem": {},
        "tandem.a": {"tandem.b": 1},
        "tandem.b": {"tandem.pkg.mod": 1, "tandem.pkg": 1},
        "tandem.pkg": {},
        "tandem.pkg.mod": {"tandem.pkg.other": 1, "tandem.a": 2, "tandem.b": 3},
        "tandem.pkg.other": {"tandem.pkg.mod": 3, "tandem.a": 5},
    }


def test_a_module_cycle_is_reported_as_a_chain() -> None:
    sources = {
        "core/a.py": "from tandem.core import b\n",
        "core/b.py": "def f() -> None:\n    from tandem.core.c import x\n",
        "core/c.py": "import tandem.core.a\n",
        "core/d.py": "import tandem.core.a\n",
        "wire/e.py": "from tandem.wire.e import itself\n",
    }
    cycles = find_cycles(module_graph(sources))
    assert _chains(cycles) == "tandem.core.a -> tandem.core.b -> tandem.core.c -> tandem.core.a"
    assert find_cycles({"x": ["x"], "y": ["z"], "z": ["y"]}) == [["x", "x"], ["y", "z", "y"]]
    # Two cycles through one hub: each module in a cycle is named in some chain.
    hub = {"world": ["client", "node", "faults"], "client": ["world"], "node": ["world"]}
    assert find_cycles(hub) == [["client", "world", "client"], ["node", "world", "node"]]


def test_a_package_cycle_is_reported() -> None:
    sources = {
        "wire/codec.py": "from tandem.config.model import Config\n",
        "config/model.py": "from tandem.wire import codec\n",
        "core/server.py": "import tandem.wire.codec\n",
    }
    edges = package_edges(module_graph(sources))
    assert edges == {
        ("config", "wire"): "tandem.config.model imports tandem.wire.codec (line 1)",
        ("core", "wire"): "tandem.core.server imports tandem.wire.codec (line 1)",
        ("wire", "config"): "tandem.wire.codec imports tandem.config.model (line 1)",
    }
    graph = {p: [d for s, d in edges if s == p] for p, _ in edges}
    assert find_cycles(graph) == [["config", "wire", "config"]]


def test_a_forbidden_edge_and_an_unlisted_package_are_reported() -> None:
    doc = DOC_HEAD + "wire -> (none)  # codecs\ncore -> wire, config\nconfig -> wire\n```\n"
    allowed = parse_allowed(doc)
    assert allowed == {"wire": set(), "core": {"wire", "config"}, "config": {"wire"}}
    sources = {
        "core/server.py": "from tandem.wire.dhcp import Packet\nfrom tandem.io import udp\n",
        "wire/dhcp.py": "from tandem.core.server import DhcpServer\n",
        "io/udp.py": "",
    }
    assert forbidden(package_edges(module_graph(sources)), allowed) == [
        "package io has no line in the Allowed imports block",
        "core -> io is not allowed: tandem.core.server imports tandem.io.udp (line 2)",
        "wire -> core is not allowed: tandem.wire.dhcp imports tandem.core.server (line 1)",
    ]


def test_a_malformed_allowed_block_is_refused() -> None:
    with pytest.raises(ValueError, match="no fenced block"):
        parse_allowed("# Architecture\n\ncore -> wire\n")
    with pytest.raises(ValueError, match="cannot read"):
        parse_allowed(DOC_HEAD + "core => wire\n```\n")
    with pytest.raises(ValueError, match="two lines"):
        parse_allowed(DOC_HEAD + "core -> wire\ncore -> config\n```\n")


def test_a_module_missing_from_the_doc_is_reported() -> None:
    sources = {
        "__init__.py": "BUILD = 'pure'\n",
        "core/__init__.py": '"""The core."""\n',
        "sim/__init__.py": "from tandem.sim.run import go\n__all__ = ['go']\n",
        "core/server.py": "",
        "core/failover/engine.py": "",
    }
    doc = "- `core/server.py`: the server; engine.py and `failover/engine.py` do not count\n"
    assert undocumented(sources, doc) == [
        "__init__.py is not named in docs/ARCHITECTURE.md (as `__init__.py`)",
        "core/failover/engine.py is not named in docs/ARCHITECTURE.md "
        "(as `core/failover/engine.py`)",
    ]


def test_a_long_file_is_reported() -> None:
    sources = {"core/big.py": "x = 1\n" * 601, "core/ok.py": "x = 1\n" * 600}
    assert too_long(sources) == ["core/big.py: 601 lines (limit 600)"]
