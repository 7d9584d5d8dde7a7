#!/usr/bin/env bash
# The default DAG on Dagster's multiprocess executor (docs/scale_out.md): installs the dagster extra
# if needed, then runs the job `<env>__default` of the environment given (default: local, as
# `kedro run`). Steps without a dependency run at once; each step's torch gets the cores divided
# among them (DDFORGE_STEP_THREADS overrides); the run ends as one MLflow run in mlflow.db.
#   bash scripts/run_dagster.sh            # conf/base + conf/local
#   bash scripts/run_dagster.sh ci         # another environment
set -euo pipefail
cd "$(dirname "$0")/.."
DDFORGE_EXTRAS="dagster${DDFORGE_EXTRAS:+,$DDFORGE_EXTRAS}" bash scripts/setup.sh
source scripts/allocator.sh
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=true KEDRO_ENV="${1:-local}"
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster}"      # Dagster's run history and logs
mkdir -p "$DAGSTER_HOME" && touch "$DAGSTER_HOME/dagster.yaml"
exec .venv/bin/dagster job execute -m ddforge.definitions -j "${KEDRO_ENV}__default"
