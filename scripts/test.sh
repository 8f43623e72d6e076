#!/usr/bin/env bash
# The full check: services up, lint, layer contracts, types, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
