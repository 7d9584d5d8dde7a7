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
stamp=.venv/.ddforge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (torch, kedro, mlflow, ...)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi
