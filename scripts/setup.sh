#!/usr/bin/env bash
# Create ./.venv and install loopline into it (editable), with what `loopline quickstart` needs: the
# quickstart extra (sample data, its HTTP client, the HTML report's plots) and the postgres extra. --dev adds every
# integration (drivers, brokers, LightGBM) and the test and lint tools, and Chromium from the system packages for the
# dashboard's browser tests (tests/ui/browser; Playwright drives /usr/bin/chromium, never a downloaded browser);
# --bench adds the benchmark peers.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="quickstart,postgres"
dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) extras="$extras,all,dev"; dev=1 ;;
    --bench) extras="$extras,bench" ;;
    *) echo "usage: scripts/setup.sh [--dev] [--bench]" >&2; exit 2 ;;
  esac
done
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[$extras]"
if [ "$dev" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  # the browser tests fail (never skip) without it; Debian/Ubuntu package names
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "setup: /usr/bin/chromium is missing and this user cannot install it: run as root" \
      "\`apt-get install -y chromium chromium-driver\` (the dashboard's browser tests need it)" >&2
    exit 1
  fi
  if ! { "${as_root[@]}" apt-get update -qq && \
         "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } ||
     [ ! -x /usr/bin/chromium ]; then
    echo "setup: could not install Chromium (apt-get install chromium chromium-driver); the dashboard's" \
      "browser tests need /usr/bin/chromium" >&2
    exit 1
  fi
fi
