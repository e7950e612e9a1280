#!/usr/bin/env bash
# Browser dependencies of tests/test_browser_frontend.py: Debian chromium and npm playwright-core.
#
# Idempotent and cached: chromium is apt-installed only when /usr/bin/chromium is missing, and
# playwright-core goes to $VIDEOCRAFTER_SUITE_CACHE/node (default ~/.cache/videocrafter-suite/node)
# only when that exact version is not already there. A second run takes well under a second.
#
# It never fails the caller: when something cannot be installed (no root, no apt, no network) it
# says so on stderr and exits 0; the browser test then skips with that reason. Exit codes are
# only non-zero when called with --strict.
set -uo pipefail

PLAYWRIGHT_CORE_VERSION="1.65.1"
CHROMIUM="${VIDEOCRAFTER_CHROMIUM:-/usr/bin/chromium}"
CACHE="${VIDEOCRAFTER_SUITE_CACHE:-$HOME/.cache/videocrafter-suite}"
NODE_DIR="$CACHE/node"
STRICT=0
[ "${1:-}" = "--strict" ] && STRICT=1

status=0
warn() { echo "install_browser_deps: $*" >&2; status=1; }

# ---- chromium (apt) ----------------------------------------------------------------------------
if [ ! -x "$CHROMIUM" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        warn "no $CHROMIUM and no apt-get: install chromium yourself (browser tests will skip)"
    else
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then
            if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
        fi
        if [ "$SUDO" = "none" ]; then
            warn "chromium missing and not root (no passwordless sudo): browser tests will skip"
        else
            echo "install_browser_deps: installing chromium (apt)..." >&2
            export DEBIAN_FRONTEND=noninteractive
            if ! { $SUDO apt-get update -qq >/dev/null \
                   && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
                warn "apt-get install chromium failed (browser tests will skip)"
            fi
        fi
    fi
fi

# ---- playwright-core (npm, pinned, into the cache) ---------------------------------------------
installed_version() {
    node -e "process.stdout.write(require('$NODE_DIR/node_modules/playwright-core/package.json').version)" 2>/dev/null
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    warn "node/npm not found: browser tests will skip"
elif [ "$(installed_version)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
    echo "install_browser_deps: installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $NODE_DIR..." >&2
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"name": "videocrafter-suite-browser-deps", "private": true}' > "$NODE_DIR/package.json"
    if ! npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error \
            "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null; then
        warn "npm install playwright-core failed (browser tests will skip)"
    fi
fi

if [ "$STRICT" -eq 1 ]; then exit "$status"; fi
exit 0
