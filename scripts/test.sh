#!/usr/bin/env bash
# Set up if needed, then run the test suite (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
# the tests include the Dagster run (tests/pipelines/test_dagster.py): install its extra too
DDFORGE_EXTRAS="dagster${DDFORGE_EXTRAS:+,$DDFORGE_EXTRAS}" bash scripts/setup.sh
source scripts/allocator.sh
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=true
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
