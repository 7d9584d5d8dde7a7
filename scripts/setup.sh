#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages (as root), a virtual environment in
# .venv with the pinned dependencies, and the Fashion-MNIST Debian package (the default dataset).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_needed=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || apt_needed+=(dataset-fashion-mnist)
command -v python3 >/dev/null || apt_needed+=(python3)
python3 -c "import ensurepip, venv" 2>/dev/null || apt_needed+=(python3-venv)
command -v git >/dev/null || apt_needed+=(git)
# tcmalloc (scripts/allocator.sh): optional, so only installed where apt-get may run
if [ ! -f "/usr/lib/$(uname -m)-linux-gnu/libtcmalloc_minimal.so.4" ] && [ "$(id -u)" -eq 0 ]; then
  apt_needed+=(libtcmalloc-minimal4)
fi
if [ ${#apt_needed[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${apt_needed[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_needed[@]}" >/dev/null
  else
    echo "setup: please install as root: apt-get install -y ${apt_needed[*]}" >&2
    exit 1
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# Optional extras on top of `test`: DDFORGE_EXTRAS=dagster (comma-separated) installs the Dagster
# scale-out packages (docs/scale_out.md); scripts/test.sh asks for them, scripts/run.sh does not.
# The stamp records pyproject.toml's hash and the extras installed: nothing is reinstalled while both
# still cover the request.
stamp=.venv/.ddforge-installed
hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
read -r stamped_hash stamped_extras < "$stamp" 2>/dev/null || true
extras=$(echo "test,${stamped_extras:-},${DDFORGE_EXTRAS:-}" | tr ',' '\n' | grep -v '^$' | sort -u | paste -sd, -)
if [ "${stamped_hash:-}" != "$hash" ] || [ "${stamped_extras:-}" != "$extras" ]; then
  echo "setup: installing Python packages into .venv (torch, kedro, mlflow, ...; extras: $extras)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  echo "$hash $extras" > "$stamp"
fi
