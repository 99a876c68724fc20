#!/usr/bin/env bash
# Creates (or refreshes) the virtual environment from requirements.lock, with this checkout
# installed in editable mode. Fast when nothing changed: the lock's sha256 is stamped in the venv.
#   deploy/setup-venv.sh [VENV_DIR]      (default: .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" - <<'PY' || { echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  echo "installing uv (fast, lock-exact installer) with pip" >&2
  "$PYTHON" -m pip install -q --disable-pip-version-check uv
fi
UV=("$PYTHON" -m uv)

lock_sha=$(sha256sum requirements.lock | cut -d' ' -f1)
stamp="$VENV/.requirements-sha256"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]; then
  echo "building $VENV from requirements.lock (first time: downloads about 3 GB, torch included)" >&2
  start=$(date +%s)
  [ -x "$VENV/bin/python" ] || "${UV[@]}" venv -q --python "$PYTHON" "$VENV"
  "${UV[@]}" pip sync -q --python "$VENV/bin/python" requirements.lock
  echo "$lock_sha" > "$stamp"
  echo "venv ready in $(( $(date +%s) - start ))s" >&2
fi

# The editable install must point at this checkout (a cached venv may have served another)
# and match its pyproject.toml (entry points move when the package does). -I: without it
# the check imported ./stream_detector from the working directory and always passed, so a
# cached venv kept serving the clone that built it (its scripts, and
# `python benchmarks/...`, ran that clone's code).
here=$(pwd -P)
project_sha=$(sha256sum pyproject.toml | cut -d' ' -f1)
project_stamp="$VENV/.pyproject-sha256"
if ! "$VENV/bin/python" -I -c "import stream_detector, sys; sys.exit(0 if stream_detector.__file__.startswith('$here/') else 1)" 2>/dev/null \
   || [ ! -x "$VENV/bin/stream-detector" ] || [ "$(cat "$project_stamp" 2>/dev/null)" != "$project_sha" ]; then
  "${UV[@]}" pip install -q --python "$VENV/bin/python" --no-deps -e .
  echo "$project_sha" > "$project_stamp"
fi
