#!/usr/bin/env bash
# The OAuth2 testbed: a Dovecot whose only mail login is SASL XOAUTH2 / OAUTHBEARER, checked
# against an RFC 7662 introspection endpoint that the test process itself serves on
# 127.0.0.1:$PORT_INTROSPECT, and a Postfix that delegates SMTP AUTH to that Dovecot. Separate
# from the shared mail testbed (own directory, own ports 12xxx, own instance name); nothing
# under /etc is used or changed.
#
#   oauth.sh up      install what is missing, write the configuration, start, wait until ready
#   oauth.sh stop    stop both servers (by their own stop commands)
#   oauth.sh env     print the settings tests read
#
# Any user@example.test exists (the token names the user); mail lives under the testbed
# directory. Auth caching stays off, so a revoked token is refused at once. Postfix keeps its
# default 2048-byte command line, so a long token must go the AUTH-then-334 way.
set -euo pipefail

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
DIR=${OAUTH_TESTBED_DIR:-/tmp/email-connector-oauth-testbed}
PORT_IMAP=12143 PORT_POP3=12110 PORT_LMTP=12024 PORT_SMTP=12025 PORT_INTROSPECT=12080
DOVECOT_CONF=$DIR/dovecot/dovecot.conf
POSTFIX_DIR=$DIR/postfix/etc

log() { printf 'oauth-testbed: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install_packages() {
    local missing=()
    command -v dovecot >/dev/null || missing+=(dovecot-imapd dovecot-pop3d dovecot-lmtpd)
    [ -x /usr/sbin/postfix ] || missing+=(postfix)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root"
    log "installing ${missing[*]}"
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ $made_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

write_dovecot() {
    local d=$DIR/dovecot
    mkdir -p "$d/run" "$d/state" "$DIR/mail"
    chown mail:mail "$DIR/mail"
    cat > "$d/oauth2.conf.ext" <<CONF
introspection_url = http://127.0.0.1:$PORT_INTROSPECT/introspect
introspection_mode = post
client_id = dovecot
client_secret = dovecot-introspection
username_attribute = email
active_attribute = active
active_value = true
timeout_msecs = 3000
CONF
    cat > "$DOVECOT_CONF" <<CONF
instance_name = email-connector-oauth-testbed
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
first_valid_uid = $(id -u mail)
disable_plaintext_auth = no
ssl = no
auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
hostname = oauth.example.test
mail_max_userip_connections = 200
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $d/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$DIR/mail/%d/%n allow_all_users=yes
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT_IMAP
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $PORT_POP3
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $PORT_LMTP
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@example.test
}
CONF
}

write_postfix() {
    local p=$DIR/postfix
    mkdir -p "$POSTFIX_DIR" "$p/spool" "$p/data"
    chown postfix "$p/data"
    cat > "$POSTFIX_DIR/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/data
maillog_file_prefixes = $DIR
maillog_file = $p/maillog
myhostname = oauth.example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
default_transport = error:outbound delivery disabled in testbed
relay_transport = error:outbound delivery disabled in testbed
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
virtual_mailbox_domains = example.test
virtual_mailbox_maps = static:exists
virtual_transport = lmtp:inet:127.0.0.1:$PORT_LMTP
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DIR/dovecot/run/auth-postfix
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
CONF
    cat > "$POSTFIX_DIR/master.cf" <<CONF
127.0.0.1:$PORT_SMTP inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
CONF
    postfix -c "$POSTFIX_DIR" check >/dev/null 2>&1 || postfix -c "$POSTFIX_DIR" check
}

pid_alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1" | tr -d ' ')" 2>/dev/null; }
dovecot_running() { pid_alive "$DIR/dovecot/run/master.pid"; }
postfix_running() { pid_alive "$DIR/postfix/spool/pid/master.pid"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ready() {
    local deadline=$((SECONDS + 60)) port
    for port in $PORT_IMAP $PORT_POP3 $PORT_LMTP $PORT_SMTP; do
        until timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; head -c 3 <&3" 2>/dev/null | grep -qE '^(\* O|\+OK|220)'; do
            [ $SECONDS -lt $deadline ] || die "no greeting on port $port; see $DIR/dovecot/dovecot.log and $DIR/postfix/maillog"
            sleep 0.1
        done
    done
    # The login ports open before the auth process is ready; its Postfix socket shows it.
    until [ -S "$DIR/dovecot/run/auth-postfix" ]; do
        [ $SECONDS -lt $deadline ] || die "dovecot auth never became ready"
        sleep 0.1
    done
}

start() {
    # The daemons outlive this script: they must not inherit a lock descriptor, neither ours
    # (9) nor that of a `flock LOCKFILE cargo test` around the tests (3), which would hold
    # that lock for as long as the testbed runs.
    if ! dovecot_running; then
        log "starting dovecot"
        dovecot -c "$DOVECOT_CONF" 3>&- 9>&- </dev/null >/dev/null 2>&1
    fi
    if ! postfix_running; then
        log "starting postfix"
        if ! script -qec "postfix -c $POSTFIX_DIR start" /dev/null 3>&- 9>&- </dev/null >"$DIR/postfix-start.log" 2>&1; then
            cat "$DIR/postfix-start.log" >&2
            die "postfix did not start"
        fi
    fi
}

stop() {
    if postfix_running; then postfix -c "$POSTFIX_DIR" stop >/dev/null 2>&1 || true; fi
    if dovecot_running; then doveadm -c "$DOVECOT_CONF" stop >/dev/null 2>&1 || true; fi
    local deadline=$((SECONDS + 15))
    while { dovecot_running || postfix_running; } && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
}

up() {
    [ "$(id -u)" -eq 0 ] || die "the OAuth testbed needs root (Postfix runs only as root)"
    install_packages
    mkdir -p "$DIR"
    local version
    version=$(sha256sum "$SCRIPT_PATH" | cut -c1-16)
    if [ "$(cat "$DIR/.version" 2>/dev/null)" != "$version" ]; then
        log "writing configuration in $DIR"
        stop
        rm -rf "$DIR/dovecot" "$DIR/postfix" "$DIR/mail"
        write_dovecot
        write_postfix
        echo "$version" > "$DIR/.version"
    fi
    start
    wait_ready
}

print_env() {
    cat <<ENV
OAUTH_TESTBED_DIR=$DIR
PORT_IMAP=$PORT_IMAP
PORT_POP3=$PORT_POP3
PORT_LMTP=$PORT_LMTP
PORT_SMTP=$PORT_SMTP
PORT_INTROSPECT=$PORT_INTROSPECT
ENV
}

case "${1:-up}" in
    up)
        exec 9>"$DIR.lock"
        flock 9
        up
        print_env
        ;;
    stop) stop ;;
    env) print_env ;;
    *) die "usage: $0 up|stop|env" ;;
esac
