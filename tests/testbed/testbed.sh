#!/usr/bin/env bash
# The mail testbed: Dovecot (IMAP, POP3, LMTP) and Postfix (SMTP) on 127.0.0.1 only, with a
# private CA, run from configuration of their own (nothing under /etc is used or changed).
#
#   testbed.sh up      install what is missing, write the configuration, start, wait until ready
#   testbed.sh stop    stop both servers (by their own stop commands)
#   testbed.sh status  print the endpoints and whether the servers run
#   testbed.sh env     print the settings tests read (TESTBED_DIR, ports, CA file)
#
# Idempotent and serialised with a lock, so parallel test processes may all call `up`.
# Mail to @discard.test is accepted and dropped; any other outside domain is refused, so no
# message ever leaves the machine. Users are <name>@example.test with password <name>-pw.
set -euo pipefail

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
USERS=(alice bob carol dave erin frank grace heidi ivan judy mallory bench popbench pop1 pop2 pop3 pop4 move1 move2 hostile1 hostile2 hostile3 budget1 budget2 budget3 budget4 net1 net2 net3 net4
       fault1 fault2 fault3 fault4 fault5 fault6 fault7 fault8 restart1 restart2 soak1 soak2
       inbound1 inbound2 inbound3 inbound4 inbound5 inbound6 inbound7 inbound8 inbound9 inbound10 inbound11 inbound12 inbench
       oauth1 oauth2 oauth3 oauth4 docs1 docs2 docs3 docs4 tenant1 tenant2
       inbound13 inbound14 inbound15 inbound16 inbound17 pop5 feel1 feel2 dropin1 dropin2 dropin3 dropin4 dropin5
       dropin6 dropin7 dropin8 dropin9 dropin10 dropin11 dropin12 ops1 ops2 ops3 ops4 ops5 ops6 ops7 ops8
       model1 model2 model3 model4 model5 model6 model7 model8 model9 model10 model11 model12 model13 model14 model15 model16)
# The server-independent tests (tests/protocols/servers.rs) use the same names on Cyrus (cyrus.sh).
USERS+=(srv1 srv2 srv3 srv4 srv5 srv6 srv7 srv8 srv9 srv10 srv11 srv12 srv13 srv14 srv15 srv16
        popsrv1 popsrv2 popsrv3 popsrv4 popsrv5 popsrv6)

# TESTBED_PORT_OFFSET (with its own TESTBED_DIR) runs a second, private instance beside the
# shared one, for tests that stop and start the servers under load.
OFFSET=${TESTBED_PORT_OFFSET:-0}
if [ "$OFFSET" = 0 ]; then TESTBED_DIR=${TESTBED_DIR:-/tmp/email-connector-testbed}
else TESTBED_DIR=${TESTBED_DIR:-/tmp/email-connector-testbed-$OFFSET}; fi
PORT_IMAP=$((10143 + OFFSET)) PORT_IMAPS=$((10993 + OFFSET)) PORT_POP3=$((10110 + OFFSET))
PORT_POP3S=$((10995 + OFFSET)) PORT_LMTP=$((10024 + OFFSET)) PORT_SMTP=$((10025 + OFFSET))
PORT_SUBMISSION=$((10587 + OFFSET)) PORT_SUBMISSIONS=$((10465 + OFFSET))
# The OAuth testbed (oauth.sh) keeps fixed ports; an offset that lands on one of them would
# make Dovecot fail to start with a bind error far from its cause.
for port in $PORT_IMAP $PORT_IMAPS $PORT_POP3 $PORT_POP3S $PORT_LMTP $PORT_SMTP $PORT_SUBMISSION \
            $PORT_SUBMISSIONS; do
    case $port in 12024|12025|12080|12110|12143)
        printf 'testbed: ERROR: TESTBED_PORT_OFFSET=%s puts port %s on the OAuth testbed'"'"'s fixed ports (oauth.sh); use another offset (1000, 4000, 5000, ...)\n' "$OFFSET" "$port" >&2
        exit 1 ;;
    esac
done

DOVECOT_CONF=$TESTBED_DIR/dovecot/dovecot.conf
POSTFIX_DIR=$TESTBED_DIR/postfix/etc

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install_packages() {
    local missing=()
    command -v dovecot >/dev/null || missing+=(dovecot-imapd dovecot-pop3d dovecot-lmtpd)
    [ -x /usr/sbin/postfix ] || missing+=(postfix)
    command -v openssl >/dev/null || missing+=(openssl)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root: install them or run as root"
    log "installing ${missing[*]}"
    # Keep the packages' own service scripts from starting system-wide daemons on 0.0.0.0.
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

make_certs() {
    local d=$TESTBED_DIR/certs
    mkdir -p "$d"
    cat > "$d/leaf.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,DNS:mail.example.test,IP:127.0.0.1,IP:::1
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
CNF
    openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Email Connector Test CA" \
        -config "$d/leaf.cnf" -extensions ca -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -config "$d/leaf.cnf" \
        -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -extfile "$d/leaf.cnf" -extensions leaf -out "$d/server.crt" 2>/dev/null
    cat "$d/server.crt" "$d/ca.crt" > "$d/server-chain.crt"
    # A second, unrelated CA: a certificate from it must be refused (TLS_ERROR tests).
    openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Some Other CA" \
        -config "$d/leaf.cnf" -extensions ca -keyout "$d/other-ca.key" -out "$d/other-ca.crt" 2>/dev/null
    chmod 644 "$d"/*.crt
    chmod 600 "$d"/*.key
}

write_dovecot() {
    local d=$TESTBED_DIR/dovecot uid gid
    uid=$(id -u vmail) gid=$(id -g vmail)
    mkdir -p "$d/run" "$d/state" "$TESTBED_DIR/mail"
    chown vmail:vmail "$TESTBED_DIR/mail"
    : > "$d/users"
    for u in "${USERS[@]}"; do
        echo "$u@example.test:{PLAIN}$u-pw::::::" >> "$d/users"
    done
    # A user whose folders nest with '/' (LAYOUT=fs) rather than Maildir++ dots.
    echo "fsuser@example.test:{PLAIN}fsuser-pw::::::userdb_mail=maildir:~/Maildir:LAYOUT=fs" >> "$d/users"
    chmod 644 "$d/users"
    cat > "$DOVECOT_CONF" <<CONF
instance_name = email-connector-testbed-$OFFSET
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1, 127.0.0.2
first_valid_uid = $uid
last_valid_uid = $uid
ssl = yes
ssl_cert = <$TESTBED_DIR/certs/server-chain.crt
ssl_key = <$TESTBED_DIR/certs/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
hostname = mail.example.test
mail_max_userip_connections = 500
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $d/users
  default_fields = uid=$uid gid=$gid home=$TESTBED_DIR/mail/%d/%n
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
  }
  mailbox Trash {
    special_use = \\Trash
  }
}
service imap-login {
  inet_listener imap {
    port = $PORT_IMAP
  }
  inet_listener imaps {
    port = $PORT_IMAPS
    ssl = yes
  }
  process_min_avail = 2
}
service pop3-login {
  inet_listener pop3 {
    port = $PORT_POP3
  }
  inet_listener pop3s {
    port = $PORT_POP3S
    ssl = yes
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
# 127.0.0.2 plays an older server: no SORT, MOVE, UIDPLUS or LITERAL+, so the fallback paths
# of the client run against real Dovecot too.
local 127.0.0.2 {
  protocol imap {
    imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE CHILDREN
  }
}
CONF
}

write_postfix() {
    local p=$TESTBED_DIR/postfix
    mkdir -p "$POSTFIX_DIR" "$p/spool" "$p/data"
    chown postfix "$p/data"
    : > "$POSTFIX_DIR/vmailbox"
    for u in "${USERS[@]}" fsuser; do
        echo "$u@example.test $u" >> "$POSTFIX_DIR/vmailbox"
    done
    echo "discard.test discard:" > "$POSTFIX_DIR/transport"
    cat > "$POSTFIX_DIR/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/data
maillog_file_prefixes = $TESTBED_DIR
maillog_file = $p/maillog
myhostname = mail.example.test
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
virtual_mailbox_maps = texthash:$POSTFIX_DIR/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$PORT_LMTP
relay_domains = discard.test
transport_maps = texthash:$POSTFIX_DIR/transport
message_size_limit = 52428800
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_tls_chain_files = $TESTBED_DIR/certs/server.key, $TESTBED_DIR/certs/server-chain.crt
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = $TESTBED_DIR/dovecot/run/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
CONF
    cat > "$POSTFIX_DIR/master.cf" <<CONF
127.0.0.1:$PORT_SMTP inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes
127.0.0.1:$PORT_SUBMISSION inet n - n - - smtpd -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$PORT_SUBMISSIONS inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
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
    # Creates the queue directories with the right owners.
    postfix -c "$POSTFIX_DIR" check >/dev/null 2>&1 || postfix -c "$POSTFIX_DIR" check
}

pid_alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1" | tr -d ' ')" 2>/dev/null; }
dovecot_running() { pid_alive "$TESTBED_DIR/dovecot/run/master.pid"; }
postfix_running() { pid_alive "$TESTBED_DIR/postfix/spool/pid/master.pid"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ready() {
    local deadline=$((SECONDS + 60)) port
    for port in $PORT_IMAP $PORT_IMAPS $PORT_POP3 $PORT_POP3S $PORT_LMTP $PORT_SMTP $PORT_SUBMISSION $PORT_SUBMISSIONS; do
        until port_open "$port"; do
            [ $SECONDS -lt $deadline ] || die "port $port did not open; see $TESTBED_DIR/dovecot/dovecot.log and $TESTBED_DIR/postfix/maillog"
            sleep 0.1
        done
    done
    # The ports open before authentication is ready: wait for a real login.
    until doveadm -c "$DOVECOT_CONF" auth test alice@example.test alice-pw >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "dovecot authentication never became ready"
        sleep 0.1
    done
    # And for a greeting from each plaintext service.
    for port in $PORT_IMAP $PORT_POP3 $PORT_SMTP; do
        until timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; head -c 3 <&3" 2>/dev/null | grep -qE '^(\* O|\+OK|220)'; do
            [ $SECONDS -lt $deadline ] || die "no greeting on port $port"
            sleep 0.1
        done
    done
}

start() {
    if ! dovecot_running; then
        log "starting dovecot"
        # Daemons must not inherit the lock or the caller's pipes, or `up` never returns.
        dovecot -c "$DOVECOT_CONF" 3>&- 9>&- </dev/null >/dev/null 2>&1
    fi
    if ! postfix_running; then
        log "starting postfix"
        if ! script -qec "postfix -c $POSTFIX_DIR start" /dev/null 3>&- 9>&- </dev/null >"$TESTBED_DIR/postfix-start.log" 2>&1; then
            cat "$TESTBED_DIR/postfix-start.log" >&2
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
    [ "$(id -u)" -eq 0 ] || die "the testbed needs root (Postfix runs only as root)"
    install_packages
    mkdir -p "$TESTBED_DIR"
    local version
    version=$(sha256sum "$SCRIPT_PATH" | cut -c1-16)
    if [ "$(cat "$TESTBED_DIR/.version" 2>/dev/null)" != "$version" ]; then
        log "writing configuration in $TESTBED_DIR"
        stop
        rm -rf "$TESTBED_DIR/certs" "$TESTBED_DIR/dovecot" "$TESTBED_DIR/postfix" "$TESTBED_DIR/mail"
        id vmail >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin vmail
        make_certs
        write_dovecot
        write_postfix
        echo "$version" > "$TESTBED_DIR/.version"
    fi
    start
    wait_ready
}

print_env() {
    cat <<ENV
TESTBED_DIR=$TESTBED_DIR
TESTBED_CA=$TESTBED_DIR/certs/ca.crt
TESTBED_OTHER_CA=$TESTBED_DIR/certs/other-ca.crt
PORT_IMAP=$PORT_IMAP
PORT_IMAPS=$PORT_IMAPS
PORT_POP3=$PORT_POP3
PORT_POP3S=$PORT_POP3S
PORT_LMTP=$PORT_LMTP
PORT_SMTP=$PORT_SMTP
PORT_SUBMISSION=$PORT_SUBMISSION
PORT_SUBMISSIONS=$PORT_SUBMISSIONS
ENV
}

case "${1:-up}" in
    up)
        mkdir -p "$(dirname "$TESTBED_DIR")"
        exec 9>"$TESTBED_DIR.lock"
        flock 9
        up
        print_env
        ;;
    stop) stop ;;
    status)
        dovecot_running && echo "dovecot: running" || echo "dovecot: stopped"
        postfix_running && echo "postfix: running" || echo "postfix: stopped"
        print_env
        ;;
    env) print_env ;;
    *) die "usage: $0 up|stop|status|env" ;;
esac
