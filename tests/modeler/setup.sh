#!/usr/bin/env bash
# Installs what the modeler checks need: Debian's Chromium (no browser download by a test tool)
# and the npm packages pinned by package-lock.json. Idempotent and serialised with a lock, so
# parallel test processes may all call it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'modeler setup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

exec 9>"${TMPDIR:-/tmp}/email-connector-modeler-setup.lock"
flock 9

command -v node >/dev/null || die "node is missing (Node.js 20 or newer is needed)"
command -v npm >/dev/null || die "npm is missing"

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    [ "$(id -u)" -eq 0 ] || die "$chromium is missing and not root: apt-get install chromium"
    log "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
        apt-get install -y -qq chromium >/dev/null
    }
    [ -x "$chromium" ] || die "chromium did not install to $chromium"
fi

# npm ci only when node_modules is not already what the lockfile says.
marker="$here/node_modules/.package-lock.json"
if [ ! -e "$marker" ] || [ "$here/package-lock.json" -nt "$marker" ] || [ "$here/package.json" -nt "$marker" ]; then
    log "npm ci"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
fi
