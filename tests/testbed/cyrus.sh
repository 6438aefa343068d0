#!/usr/bin/env bash
# A second IMAP/POP3 implementation beside the Dovecot testbed: Cyrus IMAP from Debian's
# packages, in its two common layouts, on 127.0.0.1 only (plaintext, loopback).
#
#   cyrus.sh up      download and extract what is missing, write the configuration, start, wait
#   cyrus.sh stop    stop both instances
#   cyrus.sh status  print the endpoints and whether the instances run
#   cyrus.sh env     print the settings tests read (ports per layout)
#
# The layouts, as two instances of their own:
#   debian    Debian's defaults: hierarchy separator '.', personal namespace "INBOX."
#   upstream  upstream 3.x defaults: separator '/', no namespace prefix
# Each also listens on 127.0.0.2 (same ports) as an older server: no MOVE, UIDPLUS, SORT or
# LITERAL+, and POP3 logins at most once a minute (Debian's own popminpoll), so the client's
# fallbacks and its handling of [LOGIN-DELAY] run against Cyrus too.
#
# Installing Debian's cyrus-imapd would remove Dovecot (both provide imap-server), so the
# packages are fetched with `apt-get download` and unpacked into this testbed's own directory.
# Idempotent and serialised with a lock, so parallel test processes may all call `up`.
# Users are <name>@example.test with password <name>-pw, as on the Dovecot testbed.
set -euo pipefail

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
USERS=(srv1 srv2 srv3 srv4 srv5 srv6 srv7 srv8 srv9 srv10 srv11 srv12 srv13 srv14 srv15 srv16
       popsrv1 popsrv2 popsrv3 popsrv4 popsrv5 popsrv6)
PACKAGES=(cyrus-common cyrus-imapd cyrus-pop3d sasl2-bin libical3 libpcre3 libxapian30)
LAYOUTS=(debian upstream)

OFFSET=${TESTBED_PORT_OFFSET:-0}
if [ "$OFFSET" = 0 ]; then CYRUS_DIR=${CYRUS_DIR:-/tmp/email-connector-cyrus}
else CYRUS_DIR=${CYRUS_DIR:-/tmp/email-connector-cyrus-$OFFSET}; fi
ROOT=$CYRUS_DIR/root
LIBS=$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu
BIN=$ROOT/usr/lib/cyrus/bin
SERVERNAME=mail.example.test

imap_port() { case $1 in debian) echo $((12643 + OFFSET)) ;; upstream) echo $((12743 + OFFSET)) ;; esac; }
pop3_port() { case $1 in debian) echo $((12610 + OFFSET)) ;; upstream) echo $((12710 + OFFSET)) ;; esac; }

log() { printf 'cyrus testbed: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The binaries, unpacked once; the marker names the package set, so a changed list unpacks again.
install_packages() {
    local marker="${PACKAGES[*]}"
    if [ -x "$BIN/master" ] && [ "$(cat "$ROOT/.packages" 2>/dev/null)" = "$marker" ]; then
        return 0
    fi
    local multiarch
    multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    # The sasldb plugin comes from the system's SASL library (it does not conflict with Dovecot).
    if ! ls /usr/lib/"$multiarch"/sasl2/libsasldb.so* >/dev/null 2>&1; then
        log "installing libsasl2-modules-db"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libsasl2-modules libsasl2-modules-db >/dev/null
    fi
    log "downloading ${PACKAGES[*]}"
    rm -rf "$CYRUS_DIR/packages" "$ROOT"
    mkdir -p "$CYRUS_DIR/packages" "$ROOT"
    # apt drops privileges to _apt for downloads: give it a directory it may write.
    chown _apt "$CYRUS_DIR/packages" 2>/dev/null || true
    if ! (cd "$CYRUS_DIR/packages" && apt-get download -q "${PACKAGES[@]}" >/dev/null 2>&1); then
        apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed; trying the download anyway"
        (cd "$CYRUS_DIR/packages" && apt-get download -q "${PACKAGES[@]}" >/dev/null) \
            || die "apt-get download ${PACKAGES[*]} failed"
    fi
    local deb
    for deb in "$CYRUS_DIR"/packages/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
    [ -x "$BIN/master" ] || die "no Cyrus master binary after unpacking"
    echo "$marker" > "$ROOT/.packages"
}

# imapd.conf of one layout; $3 adds the older server's settings.
write_imapd_conf() {
    local layout=$1 file=$2 older=${3:-} d=$CYRUS_DIR/$1
    local alt=no unixsep=no
    [ "$layout" = upstream ] && alt=yes unixsep=yes
    cat > "$file" <<CONF
configdirectory: $d/config
defaultpartition: default
partition-default: $d/spool
proc_path: $d/run/proc
mboxname_lockpath: $d/run/lock
lmtpsocket: $d/run/socket/lmtp
idlesocket: $d/run/socket/idle
notifysocket: $d/run/socket/notify
servername: $SERVERNAME
syslog_prefix: cyrus-testbed-$layout
cyrus_user: nobody
cyrus_group: nogroup
admins: cyrus
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $d/sasldb2
sasl_mech_list: PLAIN LOGIN
virtdomains: userid
altnamespace: $alt
unixhierarchysep: $unixsep
autocreate_quota: 0
hashimapspool: true
umask: 077
CONF
    if [ -n "$older" ]; then
        cat >> "$file" <<CONF
suppress_capabilities: MOVE UIDPLUS SORT SORT=DISPLAY ESORT LITERAL+ LITERAL-
popminpoll: 1
CONF
    else
        echo "popminpoll: 0" >> "$file"
    fi
}

write_instance() {
    local layout=$1 d=$CYRUS_DIR/$1 imap pop3 sub
    imap=$(imap_port "$layout") pop3=$(pop3_port "$layout")
    rm -rf "$d"
    mkdir -p "$d/run/proc" "$d/run/lock" "$d/run/socket" "$d/spool"
    for sub in db socket log msg user quota ptclient sync backup lock proc; do
        mkdir -p "$d/config/$sub"
    done
    write_imapd_conf "$layout" "$d/imapd.conf"
    write_imapd_conf "$layout" "$d/imapd-older.conf" older
    cat > "$d/cyrus.conf" <<CONF
START {
  recover cmd="$BIN/ctl_cyrusdb -C $d/imapd.conf -r"
}
SERVICES {
  imap cmd="$BIN/imapd -C $d/imapd.conf -U 30" listen="127.0.0.1:$imap" prefork=0 maxchild=100
  pop3 cmd="$BIN/pop3d -C $d/imapd.conf -U 30" listen="127.0.0.1:$pop3" prefork=0 maxchild=50
  imapolder cmd="$BIN/imapd -C $d/imapd-older.conf -U 30" listen="127.0.0.2:$imap" prefork=0 maxchild=50
  pop3older cmd="$BIN/pop3d -C $d/imapd-older.conf -U 30" listen="127.0.0.2:$pop3" prefork=0 maxchild=20
}
EVENTS {
  checkpoint cmd="$BIN/ctl_cyrusdb -C $d/imapd.conf -c" period=30
}
DAEMON {
  idled cmd="$BIN/idled -C $d/imapd.conf"
}
CONF
    local user
    for user in "${USERS[@]}" cyrus; do
        printf '%s' "$user-pw" | LD_LIBRARY_PATH=$LIBS "$ROOT/usr/sbin/saslpasswd2" -p -c \
            -u example.test -f "$d/sasldb2" "$user"
    done
    chown -R nobody:nogroup "$d"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1" | tr -d ' ')" 2>/dev/null; }
running() { pid_alive "$CYRUS_DIR/$1/master.pid"; }

start() {
    local layout=$1 d=$CYRUS_DIR/$1
    running "$layout" && return 0
    log "starting the $layout instance"
    # Daemons must not inherit the lock or the caller's pipes, or `up` never returns.
    LD_LIBRARY_PATH=$LIBS setsid "$BIN/master" -C "$d/imapd.conf" -M "$d/cyrus.conf" \
        -p "$d/master.pid" -L "$d/master.log" -d 9>&- </dev/null >/dev/null 2>&1
}

stop() {
    local layout pid deadline
    for layout in "${LAYOUTS[@]}"; do
        if running "$layout"; then
            pid=$(head -n1 "$CYRUS_DIR/$layout/master.pid" | tr -d ' ')
            kill -TERM "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 15))
            while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        fi
    done
    return 0
}

# Ready when each plaintext service greets on both addresses and a login works.
wait_ready() {
    local layout=$1 deadline=$((SECONDS + 60)) address port
    for address in 127.0.0.1 127.0.0.2; do
        for port in $(imap_port "$layout") $(pop3_port "$layout"); do
            until timeout 5 bash -c "exec 3<>/dev/tcp/$address/$port; head -c 3 <&3" 2>/dev/null | grep -qE '^(\* O|\+OK)'; do
                [ $SECONDS -lt $deadline ] || die "no greeting on $address:$port; see $CYRUS_DIR/$layout/master.log"
                sleep 0.1
            done
        done
    done
    until printf 'a LOGIN srv1@example.test srv1-pw\r\nb LOGOUT\r\n' \
        | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(imap_port "$layout"); cat >&3; cat <&3" 2>/dev/null \
        | grep -q '^a OK'; do
        [ $SECONDS -lt $deadline ] || die "the $layout instance accepts no login"
        sleep 0.2
    done
}

up() {
    [ "$(id -u)" -eq 0 ] || die "the Cyrus testbed needs root (it runs as nobody after binding)"
    mkdir -p "$CYRUS_DIR"
    install_packages
    local version layout
    version=$(sha256sum "$SCRIPT_PATH" | cut -c1-16)
    if [ "$(cat "$CYRUS_DIR/.version" 2>/dev/null)" != "$version" ]; then
        log "writing configuration in $CYRUS_DIR"
        stop
        for layout in "${LAYOUTS[@]}"; do write_instance "$layout"; done
        echo "$version" > "$CYRUS_DIR/.version"
    fi
    for layout in "${LAYOUTS[@]}"; do start "$layout"; done
    for layout in "${LAYOUTS[@]}"; do wait_ready "$layout"; done
}

print_env() {
    cat <<ENV
CYRUS_DIR=$CYRUS_DIR
CYRUS_DEBIAN_IMAP=$(imap_port debian)
CYRUS_DEBIAN_POP3=$(pop3_port debian)
CYRUS_UPSTREAM_IMAP=$(imap_port upstream)
CYRUS_UPSTREAM_POP3=$(pop3_port upstream)
ENV
}

case "${1:-up}" in
    up)
        mkdir -p "$(dirname "$CYRUS_DIR")"
        exec 9>"$CYRUS_DIR.lock"
        flock 9
        up
        print_env
        ;;
    stop) stop ;;
    status)
        for layout in "${LAYOUTS[@]}"; do
            running "$layout" && echo "$layout: running" || echo "$layout: stopped"
        done
        print_env
        ;;
    env) print_env ;;
    *) die "usage: $0 up|stop|status|env" ;;
esac
