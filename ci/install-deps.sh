#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine (as root):
# the Debian packages in ci/apt-packages.txt and a venv in .venv with the three
# distributions installed editable. Re-running is cheap: each step is skipped
# when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp_dir=.venv/.stamps
packages=$(grep -v '^\s*#' ci/apt-packages.txt | grep -v '^\s*$' | tr '\n' ' ')

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing Debian packages:$missing (run as root to install them)" >&2
        exit 2
    fi
    echo "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
mkdir -p "$stamp_dir"
want=$(cat requirements-dev.txt artifact_tool/reader/pyproject.toml artifact_tool/host/pyproject.toml agent/pyproject.toml server/pyproject.toml testing/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp_dir/pip" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -r requirements-dev.txt
    echo "$want" > "$stamp_dir/pip"
fi
