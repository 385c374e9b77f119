"""The one table of what Tandem parses but does not act on, and README's list rendered from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tandem.config import parse_text
from tandem.config.model import Param, Unimplemented
from tandem.config.registry import SERVER_OPTIONS
from tandem.config.statements import _ACTED, _UNIMPLEMENTED, NOT_ACTED_ON, UNIMPLEMENTED_PARAMS

ROOT = Path(__file__).resolve().parents[2]


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_tables", ROOT / "scripts" / "render_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_statement_parsed_and_dropped_is_in_the_table() -> None:
    assert set(_UNIMPLEMENTED) <= set(NOT_ACTED_ON)
    for name in _UNIMPLEMENTED:
        assert NOT_ACTED_ON[name].warned
    assert set(UNIMPLEMENTED_PARAMS) <= set(SERVER_OPTIONS)
    for name in NOT_ACTED_ON:
        # _ACTED: acted on in some forms only (``execute`` inside ``on`` blocks, ...)
        assert name in _UNIMPLEMENTED or name in _ACTED or name in SERVER_OPTIONS, name


def test_warned_parameters_become_unimplemented_the_silent_ones_stay_params() -> None:
    cfg = parse_text("ddns-ttl 60;\nmin-secs 2;\n", "t.conf")
    kinds = {type(s).__name__: s for s in cfg.statements}
    assert isinstance(kinds["Unimplemented"], Unimplemented)
    assert kinds["Unimplemented"].keyword == "ddns-ttl"
    assert isinstance(kinds["Param"], Param) and kinds["Param"].name == "min-secs"
    assert any("ddns-ttl" in str(w) for w in cfg.warnings)
    assert not any("min-secs" in str(w) for w in cfg.warnings)


def test_readme_list_is_rendered_from_the_table() -> None:
    module = _renderer()
    current = module.README.read_text(encoding="utf-8")
    assert module.updated_readme(current) == current, "run scripts/render_tables.py"
    block = module.render_gaps()
    for name in NOT_ACTED_ON:
        assert f"`{name}`" in block
    assert module.main(["--check"]) == 0
