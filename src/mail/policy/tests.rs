use std::time::Duration;

use super::*;
use crate::error::ErrorCode;

fn policy(allowed: &str, denied: &str) -> HostPolicy {
    HostPolicy::new(allowed.parse().unwrap(), denied.parse().unwrap(), true).unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Whether `host`, resolving to `addresses`, may be connected to.
fn permits(policy: &HostPolicy, host: &str, addresses: &[&str]) -> bool {
    let addresses: Vec<IpAddr> = addresses.iter().map(|a| ip(a)).collect();
    match policy.check_name(host) {
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidInput);
            assert!(e.message.starts_with("/server/host: "), "{}", e.message);
            false
        }
        Ok(NameVerdict::Address(_)) => true,
        Ok(verdict) => policy.check_addresses(host, &verdict, &addresses).is_ok(),
    }
}

#[test]
fn the_default_denied_text_is_the_default_policy() {
    assert_eq!(
        policy(DEFAULT_ALLOWED, DEFAULT_DENIED),
        HostPolicy::default()
    );
}

#[test]
fn entries_parse_and_bad_ones_are_named() {
    let rules: HostRules = " *.Example.COM., mail.x.org ,10.0.0.0/8,::1, ::ffff:169.254.0.0/112,,"
        .parse()
        .unwrap();
    assert_eq!(
        rules.0,
        vec![
            Rule::Below(".example.com".into()),
            Rule::Name("mail.x.org".into()),
            Rule::Network(ip("10.0.0.0"), 8),
            Rule::Network(ip("::1"), 128),
            Rule::Network(ip("169.254.0.0"), 16),
        ]
    );
    assert!("".parse::<HostRules>().unwrap().is_empty());
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0/8",
        "a..b",
        "mail.*.com",
        "x y",
        "10.0.0.0/",
        "*.",
    ] {
        let e = bad.parse::<HostRules>().unwrap_err();
        assert!(e.contains(bad), "{bad}: {e}");
    }
    assert!(HostPolicy::new(HostRules::default(), HostRules::default(), true).is_err());
}

#[test]
fn star_allows_everything_not_denied() {
    let p = HostPolicy::default();
    assert!(permits(&p, "mail.example.com", &["192.0.2.1"]));
    assert!(permits(&p, "127.0.0.1", &[]));
    assert!(permits(&p, "::1", &[]));
    assert!(!permits(&p, "169.254.169.254", &[]));
    assert!(!permits(&p, "fe80::1", &[]));
    assert!(!permits(&p, "[fe80::1]", &[]));
    assert!(!permits(&p, "::ffff:169.254.169.254", &[]));
    assert!(!permits(&p, "64:ff9b::169.254.169.254", &[]));
    assert!(!permits(&p, "::169.254.169.254", &[]));
    assert!(!permits(
        &p,
        "innocent.example.com",
        &["64:ff9b::a9fe:a9fe"]
    ));
    assert!(permits(&p, "64:ff9b::192.0.2.1", &[]));
    assert!(permits(&p, "::", &[]));
    assert!(!permits(&p, "metadata.google.internal", &[]));
    assert!(!permits(&p, "Metadata.Google.Internal.", &[]));
    // A harmless name that resolves into a denied network (DNS rebinding, /etc/hosts).
    assert!(!permits(&p, "innocent.example.com", &["169.254.169.254"]));
    assert!(!permits(
        &p,
        "innocent.example.com",
        &["192.0.2.1", "::ffff:169.254.1.1"]
    ));
    assert!(!permits(&p, "innocent.example.com", &["fe80::abcd"]));
}

#[test]
fn names_and_patterns_allow_names_only() {
    let p = policy("*.example.com, mail.example.org", "");
    assert!(permits(&p, "smtp.example.com", &["10.9.9.9"]));
    assert!(permits(&p, "a.b.EXAMPLE.com.", &["10.9.9.9"]));
    assert!(!permits(&p, "example.com", &["10.9.9.9"]));
    assert!(!permits(&p, "evilexample.com", &["10.9.9.9"]));
    assert!(permits(&p, "mail.example.org", &["10.9.9.9"]));
    assert!(!permits(&p, "smtp.example.org", &["10.9.9.9"]));
    // No network is allowed, so no address literal is.
    assert!(!permits(&p, "10.9.9.9", &[]));
}

/// Issue 21: with any CIDR allowed, every name was looked up before it was checked, so a
/// host such as `{{secrets.PW}}.exfil.test` carried the password to a DNS server. A name no
/// name entry allows is refused by its name unless the operator opted in.
#[test]
fn names_no_name_entry_allows_are_refused_before_any_lookup() {
    let p = policy("10.0.0.0/8, *.example.com", "");
    for host in ["hunter2.exfil.test", "localhost", "example.com"] {
        let e = p.check_name(host).err().expect(host);
        assert!(e.message.contains("EMAIL_ALLOWED_HOSTS"), "{}", e.message);
        assert!(
            e.message.contains("EMAIL_ALLOW_NAMES_BY_ADDRESS"),
            "{}",
            e.message
        );
    }
    assert!(matches!(
        p.check_name("mail.example.com"),
        Ok(NameVerdict::NameAllowed)
    ));
    assert!(matches!(
        p.check_name("10.1.1.1"),
        Ok(NameVerdict::Address(_))
    ));
    let opted_in = p.allowing_names_by_address(true);
    assert!(matches!(
        opted_in.check_name("localhost"),
        Ok(NameVerdict::AddressesDecide)
    ));
    // Without CIDRs there is nothing an address could allow: refused by name either way.
    let names_only = policy("*.example.com", "").allowing_names_by_address(true);
    assert!(names_only.check_name("other.test").is_err());
}

#[test]
fn cidrs_allow_addresses_and_names_whose_every_address_they_hold() {
    let p = policy("127.0.0.0/8, ::1, 10.0.0.0/8", "").allowing_names_by_address(true);
    assert!(permits(&p, "127.0.0.2", &[]));
    assert!(permits(&p, "::1", &[]));
    assert!(permits(&p, "::ffff:127.0.0.1", &[]));
    assert!(!permits(&p, "::2", &[]));
    assert!(!permits(&p, "192.168.1.1", &[]));
    assert!(permits(&p, "localhost", &["127.0.0.1", "::1"]));
    assert!(!permits(&p, "somewhere", &["127.0.0.1", "192.168.1.1"]));
    assert!(permits(&p, "x", &["10.255.255.255"]));
    assert!(!permits(&p, "x", &["11.0.0.0"]));
    let all_v6 = policy("::/0", "");
    assert!(permits(&all_v6, "2001:db8::1", &[]));
    assert!(!permits(&all_v6, "10.0.0.1", &[]));
    let all_v4 = policy("0.0.0.0/0", "");
    assert!(permits(&all_v4, "::ffff:10.0.0.1", &[]));
}

#[test]
fn denied_wins_over_allowed() {
    let p = policy("*.example.com, 10.0.0.0/8", "10.1.0.0/16, bad.example.com");
    assert!(permits(&p, "good.example.com", &["10.2.0.1"]));
    assert!(!permits(&p, "good.example.com", &["10.1.0.1"]));
    assert!(!permits(&p, "bad.example.com", &["10.2.0.1"]));
    assert!(!permits(&p, "10.1.2.3", &[]));
    assert!(permits(&p, "10.2.2.3", &[]));
    let nothing = policy("*", "*");
    assert!(!permits(&nothing, "127.0.0.1", &[]));
    assert!(!permits(&nothing, "localhost", &["127.0.0.1"]));
}

#[test]
fn refusals_name_the_field_and_the_setting() {
    let p = HostPolicy::default();
    let e = p.check_name("169.254.169.254").err().unwrap();
    assert_eq!(
        e.message,
        "/server/host: 169.254.169.254 is refused on this worker (EMAIL_DENIED_HOSTS)"
    );
    let strict = policy("10.0.0.0/8", "");
    let e = strict.check_name("127.0.0.1").err().unwrap();
    assert!(e.message.contains("EMAIL_ALLOWED_HOSTS"), "{}", e.message);
}

/// Issue 21: refusals echoed the host lower-cased, so a secret used in the host slipped past
/// the mask (which matched its exact case). The host is echoed as typed.
#[test]
fn refusals_echo_the_host_as_typed() {
    let strict = policy("*.example.org", "");
    let e = strict
        .check_name(" Secret-Host.EXAMPLE.com. ")
        .err()
        .unwrap();
    assert!(
        e.message.contains("'Secret-Host.EXAMPLE.com.'"),
        "{}",
        e.message
    );
    let denied = policy("*", "*.Example.COM");
    let e = denied.check_name("Mail.Example.com").err().unwrap();
    assert!(e.message.contains("'Mail.Example.com'"), "{}", e.message);
    let rebound = policy("*", "10.0.0.0/8");
    let e = rebound
        .check_addresses(
            "Mail.Example.net",
            &NameVerdict::NameAllowed,
            &[ip("10.0.0.1")],
        )
        .err()
        .unwrap();
    assert!(
        e.message
            .contains("'Mail.Example.net' resolves to 10.0.0.1"),
        "{}",
        e.message
    );
}

#[test]
fn insecure_settings_are_refused_only_when_turned_off() {
    let endpoint = Endpoint {
        host: "h".into(),
        port: 25,
        security: Security::Tls,
        server_certificate: None,
        accept_invalid_certificates: false,
        timeout: Duration::from_secs(1),
    };
    let strict = HostPolicy::new("*".parse().unwrap(), HostRules::default(), false).unwrap();
    assert!(strict.check_settings(&endpoint).is_ok());
    let clear = Endpoint {
        security: Security::None,
        ..endpoint.clone()
    };
    let e = strict.check_settings(&clear).unwrap_err();
    assert!(e.message.starts_with("/server/security: "), "{}", e.message);
    let unverified = Endpoint {
        accept_invalid_certificates: true,
        ..endpoint.clone()
    };
    let e = strict.check_settings(&unverified).unwrap_err();
    assert!(
        e.message.starts_with("/server/acceptInvalidCertificates: "),
        "{}",
        e.message
    );
    assert!(HostPolicy::default().check_settings(&clear).is_ok());
    assert!(HostPolicy::default().check_settings(&unverified).is_ok());
}
