#!/usr/bin/env bash
# Set up if needed, then run the pipeline: `bash scripts/run.sh` runs the whole default DAG;
# any arguments go to `kedro run` (e.g. `--pipelines mtt`, `--env paper_fmnist`, `--params ipc=10`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/allocator.sh
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=true
exec .venv/bin/kedro run "$@"
