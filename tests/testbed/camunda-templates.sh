#!/usr/bin/env bash
# Camunda's own Email connector element templates, for the drop-in tests: they come from
# Camunda's npm package @camunda/connectors-element-templates, pinned below. The package is
# Camunda's (Camunda License 1.0), so it is downloaded when the tests run, never kept in this
# repository.
#
#   camunda-templates.sh dir    download and extract what is missing; print the package folder
#                               (its src/element-templates/ holds one JSON array per template,
#                               every version of it)
#
# CAMUNDA_EMAIL_FIXTURES names a folder that already holds the extracted package (the folder
# itself or its parent with package/ in it): nothing is downloaded then.
# The download is `npm pack` (the registry's own client), cached under the system's temporary
# folder, checked against the digest below, and serialised with a lock, so parallel test
# processes may all call it.
set -euo pipefail

PACKAGE=@camunda/connectors-element-templates
VERSION=1.0.29
SHA512=955c98ee3e7bee7f969f7cfe4d3893bef9b366a11cbc2fe32063925fd54c3f2e98f9eb3b7bde0a35834e0d81ae2b7284fe8544e9e0f4aff65c9d9c5de54c744e

log() { printf 'camunda templates: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

templates_in() { [ -f "$1/src/element-templates/email-outbound-connector.json" ]; }

if [ -n "${CAMUNDA_EMAIL_FIXTURES:-}" ]; then
    for candidate in "$CAMUNDA_EMAIL_FIXTURES" "$CAMUNDA_EMAIL_FIXTURES/package"; do
        if templates_in "$candidate"; then echo "$candidate"; exit 0; fi
    done
    die "CAMUNDA_EMAIL_FIXTURES=$CAMUNDA_EMAIL_FIXTURES holds no extracted $PACKAGE"
fi

DIR=${CAMUNDA_TEMPLATES_DIR:-${TMPDIR:-/tmp}/email-connector-camunda-templates-$VERSION}

fetch() {
    templates_in "$DIR/package" && return 0
    command -v npm >/dev/null || die "npm is needed to download $PACKAGE@$VERSION"
    log "downloading $PACKAGE@$VERSION"
    local work=$DIR.part
    rm -rf "$work"
    mkdir -p "$work"
    (cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null) \
        || die "npm pack $PACKAGE@$VERSION failed"
    local tarball
    tarball=$(ls "$work"/*.tgz)
    [ "$(sha512sum "$tarball" | cut -d' ' -f1)" = "$SHA512" ] \
        || die "$PACKAGE@$VERSION is not the package these tests were written against"
    tar -xzf "$tarball" -C "$work"
    templates_in "$work/package" || die "$PACKAGE@$VERSION holds no Email outbound template"
    rm -rf "$DIR"
    mv "$work" "$DIR"
}

case "${1:-dir}" in
    dir)
        mkdir -p "$(dirname "$DIR")"
        exec 9>"$DIR.lock"
        flock 9
        fetch
        echo "$DIR/package"
        ;;
    *) die "usage: $0 dir" ;;
esac
