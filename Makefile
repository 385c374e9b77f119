# Two commands on a fresh Debian machine (as root):
#   make demo   -- a lab in network namespaces where Tandem serves real DHCP clients
#   make test   -- installs what the tests need, then ruff, mypy --strict and pytest
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: deps lint test test-fast demo bench soak fuzz docs pure clean

deps:
	bash scripts/install-deps.sh

lint: deps
	$(VENV)/bin/ruff check src tests bench scripts fuzz
	$(VENV)/bin/ruff format --check src tests bench scripts fuzz
	$(VENV)/bin/mypy --strict

# The whole suite runs the build that ships (compiled hot path, scripts/build_native.py); then
# the unit tests of the compiled modules run once more on their pure-Python source.
test: lint
	$(PY) -m pytest -q
	TANDEM_PURE=1 $(PY) -m pytest -q -m "not lab" tests/wire tests/core tests/store tests/io tests/sim tests/test_build.py --ignore=tests/core/failover

test-fast: deps
	$(PY) -m pytest -q -m "not lab"

demo: deps
	$(PY) -m tandem.demo

bench: deps
	$(PY) bench/perf.py
	$(PY) bench/failover_bench.py

# Long fuzzing run: every atheris harness for FUZZ_SECONDS (default 600) each; exits non-zero
# on a crash, with the input saved in fuzz/crashes/. atheris comes as a wheel only (no compiler).
fuzz: deps
	$(VENV)/bin/pip install -q --only-binary=atheris 'atheris>=2.3'
	$(PY) fuzz/run_all.py

# Deterministic failover simulator, 10,000 seeds (tests run 300), every one with Tandem's
# auto-partner-down (docs/AUTO-PARTNER-DOWN.md), then dhcpd's timer rule for contrast; a violation prints the
# seed and a shrunk fault schedule: rerun it with  python -m tandem.sim --seed N -v
# Then the crash soak: a real Tandem failover pair under perfdhcp load, kill -9 100 times;
# every DHCPACK captured on the wire must be in its server's lease file (tests run 20 kills).
soak: deps
	$(PY) -m tandem.sim --seeds 10000 --jobs $$(nproc)
	@echo "dhcpd's blind auto-partner-down on the same schedules (the contrast, violations expected):"
	-$(PY) -m tandem.sim --seeds 10000 --jobs $$(nproc) --no-shrink --blind-auto-partner-down | tail -n 2
	$(PY) bench/crash_soak.py --kills 100

docs: deps
	$(PY) scripts/render_tables.py

# Remove the mypyc-compiled hot path (scripts/build_native.py): Tandem runs as pure Python until
# the next `make deps`. For one run only, set TANDEM_PURE=1 instead.
pure:
	$(PY) scripts/build_native.py --clean

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete; rm -f src/tandem/_native.json
