#!/usr/bin/env bash
# Camunda's own Email connector templates and wire examples, for the drop-in tests: they are
# Camunda's files, so they are not kept in this repository but fetched from camunda/connectors
# on first use (or taken from CAMUNDA_EMAIL_FIXTURES, a folder of the same layout) and cached.
#
#   camunda-fixtures.sh dir    fetch what is missing and print the folder
#
# Layout of the folder (as fetched):
#   element-templates/email-outbound-connector.json            current (v6), at CAMUNDA_CONNECTORS_REF
#   element-templates/versioned/email-outbound-connector-N.json  N = 1..5
#   element-templates/hybrid/email-outbound-connector-hybrid.json
#   element-templates/released/<tag>/email-outbound-connector.json  as shipped in 8.6.27 and 8.7.23
#   test-resources/integration/outbound-*-connector-happy-path.json
set -euo pipefail

if [ -n "${CAMUNDA_EMAIL_FIXTURES:-}" ]; then echo "$CAMUNDA_EMAIL_FIXTURES"; exit 0; fi
REF=${CAMUNDA_CONNECTORS_REF:-main}
DIR=${CAMUNDA_FIXTURES_DIR:-/tmp/email-connector-camunda-fixtures-$REF}
RAW=https://raw.githubusercontent.com/camunda/connectors
EMAIL=connectors/email

get() { # ref, path in the repository, path in DIR
    local target=$DIR/$3
    [ -s "$target" ] && return 0
    mkdir -p "$(dirname "$target")"
    curl -fsSL --retry 3 -o "$target.part" "$RAW/$1/$EMAIL/$2" && mv "$target.part" "$target"
}

exec 9>"$DIR.lock" 2>/dev/null || { mkdir -p "$(dirname "$DIR")"; exec 9>"$DIR.lock"; }
flock 9
get "$REF" element-templates/email-outbound-connector.json element-templates/email-outbound-connector.json
for n in 1 2 3 4 5; do
    get "$REF" "element-templates/versioned/email-outbound-connector-$n.json" \
        "element-templates/versioned/email-outbound-connector-$n.json"
done
get "$REF" element-templates/hybrid/email-outbound-connector-hybrid.json \
    element-templates/hybrid/email-outbound-connector-hybrid.json
for tag in 8.6.27 8.7.23; do
    get "$tag" element-templates/email-outbound-connector.json \
        "element-templates/released/$tag/email-outbound-connector.json"
done
for op in smtp imap-delete imap-list imap-read imap-search pop3-delete pop3-list pop3-read pop3-search; do
    get "$REF" "src/test/resources/integration/outbound-$op-connector-happy-path.json" \
        "test-resources/integration/outbound-$op-connector-happy-path.json"
done
echo "$DIR"
