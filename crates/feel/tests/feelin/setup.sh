#!/usr/bin/env bash
# Installs feelin (bpmn.io's FEEL interpreter) as package-lock.json pins it, for the differential
# test. Idempotent and serialised with a lock, so parallel test processes may all call it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf 'feelin setup: ERROR: %s\n' "$*" >&2; exit 1; }

exec 9>"${TMPDIR:-/tmp}/feel-feelin-setup.lock"
flock 9

command -v node >/dev/null || die "node is missing (Node.js 20 or newer is needed)"
command -v npm >/dev/null || die "npm is missing"

marker="$here/node_modules/.package-lock.json"
if [ ! -e "$marker" ] || [ "$here/package-lock.json" -nt "$marker" ] || [ "$here/package.json" -nt "$marker" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
fi
