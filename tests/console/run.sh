#!/usr/bin/env bash
# Browser test of the console: headless Chromium, driven over WebDriver by Selenium, against a
# real `charter serve` (SQLite in a temp dir, free loopback ports) that test_console.py starts
# and seeds through the admin API. Installs Debian's chromium and chromium-driver if missing.
# Screenshots of every page go to $CHARTER_CONSOLE_SHOTS (default target/console-screenshots).
#
# Env: CHARTER_BIN (default target/debug/charter, built if missing),
#      CHARTER_CONSOLE_VENV (default target/console-venv; created and reused).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "console: installing Debian's chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi

venv="${CHARTER_CONSOLE_VENV:-$target_dir/console-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! cmp -s tests/console/requirements.txt "$venv/.charter-console-requirements"; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/console/requirements.txt
    cp tests/console/requirements.txt "$venv/.charter-console-requirements"
fi

bin="${CHARTER_BIN:-$target_dir/debug/charter}"
[ -x "$bin" ] || cargo build -p charter --locked
exec "$venv/bin/python" tests/console/test_console.py --bin "$bin" \
    --shots "${CHARTER_CONSOLE_SHOTS:-$target_dir/console-screenshots}"
