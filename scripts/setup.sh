#!/usr/bin/env bash
# Create ./.venv and install loopline into it (editable), with what `loopline quickstart` needs: the
# quickstart extra (sample data, its HTTP client, the HTML report's plots) and the postgres extra. --dev adds every
# integration (drivers, brokers, LightGBM) and the test and lint tools; --bench adds the benchmark peers.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="quickstart,postgres"
for arg in "$@"; do
  case "$arg" in
    --dev) extras="$extras,all,dev" ;;
    --bench) extras="$extras,bench" ;;
    *) echo "usage: scripts/setup.sh [--dev] [--bench]" >&2; exit 2 ;;
  esac
done
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[$extras]"
