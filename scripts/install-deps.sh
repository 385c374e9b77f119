#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need on a fresh Debian 12 machine:
# the real DHCP programs (ISC dhcpd/dhclient/dhcrelay, Kea's perfdhcp, busybox udhcpc, dhcpcd,
# dhcpd-pools), the lab tools (iproute2, ethtool, tshark) and a virtualenv at .venv/.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(isc-dhcp-server isc-dhcp-client isc-dhcp-relay kea-dhcp4-server kea-admin
      busybox udhcpc dhcpcd-base dhcpd-pools iproute2 ethtool tshark procps psmisc gcc nftables
      chromium chromium-driver)
# npm fetches the page's chart library; Debian's npm package conflicts with a Node.js that
# brings its own npm (NodeSource's nodejs), so it is installed only when no npm is there.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# mypyc's C output (scripts/build_native.py) needs Python's headers: Debian's python3 has them
# in python3-dev; a Python built from source (pyenv) brings its own.
PY=${PYTHON:-python3}
if [ ! -e "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then
    PKGS+=(python3-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    # Keep Debian's postinst from starting dhcpd/kea as system services.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "${created_policy:-0}" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# The packaged services must not run: the tests start their own copies in namespaces.
for svc in isc-dhcp-server kea-dhcp4-server kea-ctrl-agent kea-dhcp6-server kea-dhcp-ddns; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import tandem, pytest, hypothesis, mypy, ruff' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    touch .venv/.installed
fi
# The live page's chart library (GET /, tandem.io.page): uPlot, pinned, from the npm registry
# into a git-ignored folder that Tandem serves; no code of it is in the repository.
UPLOT_VERSION=1.6.32
VENDOR=src/tandem/io/page/vendor
if [ "$(cat "$VENDOR/VERSION" 2>/dev/null)" != "uplot@$UPLOT_VERSION" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null)
    tar -xzf "$tmp"/uplot-"$UPLOT_VERSION".tgz -C "$tmp" \
        package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
    mkdir -p "$VENDOR"
    cp "$tmp"/package/dist/uPlot.iife.min.js "$tmp"/package/dist/uPlot.min.css "$VENDOR"/
    cp "$tmp"/package/LICENSE "$VENDOR"/LICENSE.uPlot
    echo "uplot@$UPLOT_VERSION" > "$VENDOR/VERSION"
    rm -rf "$tmp"
fi
# The DHCP hot path compiled with mypyc (about 30 s; skipped while up to date). A failed build
# leaves Tandem pure Python and says so (tests/test_build.py then fails in `make test`).
.venv/bin/python scripts/build_native.py
