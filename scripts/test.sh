#!/usr/bin/env bash
# THE test command of the project: bash scripts/test.sh [pytest args...]
#
#   bash scripts/test.sh                                   # the whole suite (what CI runs)
#   bash scripts/test.sh --fast                            # fast lane: no real server, no browser
#   bash scripts/test.sh tests/test_unet_unit.py -x        # any pytest arguments
#
# 1. installs or refreshes the ComfyUI host (idempotent and cached outside the repo, see
#    scripts/host.py; ~3 min the first time, seconds after),
# 2. runs pytest from the repo root with the host venv's python (torch, ComfyUI's requirements,
#    pytest, websocket-client), passing every argument through,
# 3. exits with pytest's exit code; "no tests collected" (5) counts as a failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 scripts/host.py install || { echo "scripts/test.sh: host install failed" >&2; exit 2; }
PYTHON="$(python3 -c 'import json, subprocess, sys; print(json.loads(subprocess.check_output([sys.executable, "scripts/host.py", "paths"]))["python"])')" \
    || { echo "scripts/test.sh: cannot locate the host python" >&2; exit 2; }

# One intra-op thread per process unless the caller says otherwise: the suite runs a ComfyUI server beside the
# test process, and on a loaded 2-core machine two spinning OpenMP threads per process made tiny-model calls
# 20-50x slower (measured: 0.5 s vs 11-29 s per UNet call). Results do not depend on it (tolerances are stated
# from magnitudes, not from one thread count).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

args=()
fast=0
for arg in "$@"; do
    if [ "$arg" = "--fast" ]; then fast=1; else args+=("$arg"); fi
done
if [ "$fast" -eq 1 ]; then
    args=(-m "not server and not browser" "${args[@]}")
else
    bash scripts/install_browser_deps.sh  # chromium + playwright-core for the browser tests; cached, never fails
fi
"$PYTHON" -m pytest -q -ra "${args[@]}"
status=$?
if [ "$status" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
