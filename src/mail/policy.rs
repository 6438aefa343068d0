//! The operator's host policy (docs/configuration.md; docs/design.md, "Host policy"): which
//! mail servers a job may make the worker connect to, and whether it may do so without
//! verified TLS.
//!
//! `server.host` comes from a process model, and a model can be deployed by people who must not
//! reach everything the worker's network reaches: the cloud metadata service (credentials of
//! the node), link-local services, internal hosts. The policy is fixed at start (flags or
//! `EMAIL_ALLOWED_HOSTS`, `EMAIL_DENIED_HOSTS`, `EMAIL_ALLOW_INSECURE`), held by the process's
//! [`crate::services::Services`] so that it cannot change under running jobs, and applied by
//! [`crate::mail::net::open_stream`] to every outbound mail connection.
//!
//! Semantics, exactly:
//! - A host is compared in a normal form: trimmed, without `[...]` around an IPv6 literal,
//!   lower case, without one trailing dot. An address compares as its canonical form, so the
//!   IPv4-mapped `::ffff:169.254.169.254` is `169.254.169.254`; a denied IPv4 network is also
//!   denied inside NAT64 (`64:ff9b::a9fe:a9fe`) and IPv4-compatible (`::169.254.169.254`)
//!   addresses.
//! - Entries are `*` (everything), a name (`mail.example.com`, exact), a name pattern
//!   (`*.example.com`: any name below `example.com`, not `example.com` itself), an address
//!   (`10.1.2.3`, the same as `/32` or `/128`) or a CIDR (`10.0.0.0/8`, `fd00::/8`). Names match
//!   names only, addresses and CIDRs match addresses only.
//! - Denied wins: a host is refused when its name matches a denied name, or when its address
//!   (for an IP literal) or any address it resolves to lies in a denied CIDR.
//! - Allowed: `*` allows everything not denied. Otherwise a name host is allowed when its name
//!   matches an allowed name or pattern (then whatever it resolves to is fine unless denied).
//!   A name no name entry allows is refused by its name, before any lookup, even when the list
//!   has CIDRs: a lookup is itself traffic a job chose, and a name made up by a process model
//!   (`{{secrets.PW}}.exfil.test`) would carry whatever it holds to a DNS server. Only when the
//!   operator opts in (`EMAIL_ALLOW_NAMES_BY_ADDRESS=true`) is such a name looked up, and
//!   allowed when every address it resolves to lies in an allowed CIDR. An IP literal is
//!   allowed when its address lies in an allowed CIDR: for a literal, the name check is the
//!   address check.
//! - Refusals echo the host as it was typed (trimmed), never a normalized form: the secret
//!   mask must find in a message what the job's variables held.
//! - The worker connects only to the addresses it checked (no second lookup that a DNS server
//!   could answer differently); TLS still verifies the certificate against the host name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{EmailError, Result};
use crate::mail::server::{Endpoint, Security};

/// `EMAIL_ALLOWED_HOSTS` when unset.
pub const DEFAULT_ALLOWED: &str = "*";
/// `EMAIL_DENIED_HOSTS` when unset: link-local (where cloud metadata services answer) and
/// Google's metadata name.
pub const DEFAULT_DENIED: &str = "169.254.0.0/16,fe80::/10,metadata.google.internal";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Any,
    Name(String),
    /// The suffix with its leading dot (`.example.com`).
    Below(String),
    Network(IpAddr, u8),
}

/// A parsed, comma-separated list of host entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostRules(Vec<Rule>);

/// The form hosts and rules are compared in.
fn normal_name(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/n`, n >= 96) is the IPv4 network it maps.
fn canonical_network(address: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match address {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (address, prefix),
        },
        _ => (address, prefix),
    }
}

/// The IPv4 address inside an IPv6 address that reaches it: the NAT64 well-known prefix
/// (`64:ff9b::/96`) and the deprecated IPv4-compatible form (`::a.b.c.d`). A denied IPv4
/// network is denied in these forms too; IPv4-mapped addresses are handled by `to_canonical`.
fn embedded_ipv4(address: IpAddr) -> Option<IpAddr> {
    let IpAddr::V6(v6) = address else {
        return None;
    };
    let [a, b, c, d, e, f, _, _] = v6.segments();
    let nat64 = [a, b, c, d, e, f] == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible = [a, b, c, d, e, f] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
    let [.., w, x, y, z] = v6.octets();
    (nat64 || compatible).then(|| IpAddr::V4(Ipv4Addr::new(w, x, y, z)))
}

fn in_network(address: IpAddr, base: IpAddr, prefix: u8) -> bool {
    match (address.to_canonical(), base) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(entry: &str) -> std::result::Result<Rule, String> {
        if entry == "*" {
            return Ok(Rule::Any);
        }
        if let Some((address, prefix)) = entry.split_once('/') {
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("'{entry}': '{address}' is not an IP address"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{entry}': the prefix length must be 0 to {max}"))?;
            let (address, prefix) = canonical_network(address, prefix);
            return Ok(Rule::Network(address, prefix));
        }
        if let Ok(address) = normal_name(entry).parse::<IpAddr>() {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            let (address, prefix) = canonical_network(address, prefix);
            return Ok(Rule::Network(address, prefix));
        }
        let name = normal_name(entry);
        match name.strip_prefix("*.") {
            Some(suffix) if is_valid_name(suffix) => Ok(Rule::Below(format!(".{suffix}"))),
            None if is_valid_name(&name) => Ok(Rule::Name(name)),
            _ => Err(format!(
                "'{entry}' is not a host name, '*.' pattern, IP address or CIDR"
            )),
        }
    }
}

impl FromStr for HostRules {
    type Err = String;

    /// Comma-separated entries; blanks between commas are ignored, so an empty text is an
    /// empty list.
    fn from_str(text: &str) -> std::result::Result<HostRules, String> {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Rule::from_str)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(HostRules)
    }
}

impl HostRules {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn matches_name(&self, name: &str) -> bool {
        self.0.iter().any(|rule| match rule {
            Rule::Any => true,
            Rule::Name(n) => n == name,
            Rule::Below(suffix) => name.ends_with(suffix.as_str()),
            Rule::Network(..) => false,
        })
    }

    fn matches_address(&self, address: IpAddr) -> bool {
        self.0.iter().any(|rule| match rule {
            Rule::Any => true,
            Rule::Network(base, prefix) => in_network(address, *base, *prefix),
            Rule::Name(_) | Rule::Below(_) => false,
        })
    }

    /// Whether the address, or the IPv4 address it carries, is in one of these networks.
    fn holds_address(&self, address: IpAddr) -> bool {
        self.matches_address(address)
            || embedded_ipv4(address).is_some_and(|v4| self.matches_address(v4))
    }

    fn has_networks(&self) -> bool {
        self.0
            .iter()
            .any(|rule| matches!(rule, Rule::Any | Rule::Network(..)))
    }
}

/// The operator's settings for outbound mail connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    allowed: HostRules,
    denied: HostRules,
    allow_insecure: bool,
    names_by_address: bool,
}

impl Default for HostPolicy {
    fn default() -> Self {
        HostPolicy {
            allowed: HostRules(vec![Rule::Any]),
            denied: HostRules(vec![
                Rule::Network(IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
                Rule::Network(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
                Rule::Name("metadata.google.internal".into()),
            ]),
            allow_insecure: true,
            names_by_address: false,
        }
    }
}

/// What [`HostPolicy::check_name`] found out before any lookup.
pub enum NameVerdict {
    /// An IP literal, allowed: connect to it, no lookup.
    Address(IpAddr),
    /// A name allowed by a name rule: look it up; only the denied networks still apply.
    NameAllowed,
    /// A name no name rule allows, with the operator's opt-in to allow names by address: look
    /// it up; every address needs an allowed network.
    AddressesDecide,
}

fn refused(message: String) -> EmailError {
    EmailError::invalid_input(format!("/server/host: {message}"))
}

impl HostPolicy {
    /// An empty allow list would refuse every job; that is a mistake, not a policy.
    pub fn new(
        allowed: HostRules,
        denied: HostRules,
        allow_insecure: bool,
    ) -> std::result::Result<HostPolicy, String> {
        if allowed.is_empty() {
            return Err(
                "EMAIL_ALLOWED_HOSTS is empty, which would refuse every server; use '*' to allow all"
                    .into(),
            );
        }
        Ok(HostPolicy {
            allowed,
            denied,
            allow_insecure,
            names_by_address: false,
        })
    }

    /// Lets a name that no name entry allows be looked up and allowed when every address it
    /// resolves to lies in an allowed CIDR (`EMAIL_ALLOW_NAMES_BY_ADDRESS`).
    pub fn allowing_names_by_address(mut self, allow: bool) -> HostPolicy {
        self.names_by_address = allow;
        self
    }

    /// Refuses clear text and unverified certificates when the operator turned them off.
    pub fn check_settings(&self, endpoint: &Endpoint) -> Result<()> {
        if self.allow_insecure {
            return Ok(());
        }
        if endpoint.security == Security::None {
            return Err(EmailError::invalid_input(
                "/server/security: 'none' (clear text) is not allowed on this worker (EMAIL_ALLOW_INSECURE=false)",
            ));
        }
        if endpoint.accept_invalid_certificates {
            return Err(EmailError::invalid_input(
                "/server/acceptInvalidCertificates: not allowed on this worker (EMAIL_ALLOW_INSECURE=false)",
            ));
        }
        Ok(())
    }

    /// The checks that need no lookup: a denied name, an IP literal, a name that no rule
    /// could allow.
    pub fn check_name(&self, host: &str) -> Result<NameVerdict> {
        let name = normal_name(host);
        let typed = host.trim();
        if let Ok(address) = name.parse::<IpAddr>() {
            let address = address.to_canonical();
            if self.denied.holds_address(address) {
                return Err(refused(format!(
                    "{typed} is refused on this worker (EMAIL_DENIED_HOSTS)"
                )));
            }
            if !self.allowed.matches_address(address) {
                return Err(refused(format!(
                    "{typed} is not allowed on this worker (EMAIL_ALLOWED_HOSTS)"
                )));
            }
            return Ok(NameVerdict::Address(address));
        }
        if self.denied.matches_name(&name) {
            return Err(refused(format!(
                "'{typed}' is refused on this worker (EMAIL_DENIED_HOSTS)"
            )));
        }
        if self.allowed.matches_name(&name) {
            Ok(NameVerdict::NameAllowed)
        } else if self.names_by_address && self.allowed.has_networks() {
            Ok(NameVerdict::AddressesDecide)
        } else if self.allowed.has_networks() {
            Err(refused(format!(
                "'{typed}' matches no name in EMAIL_ALLOWED_HOSTS and is not looked up to be \
                 checked against its addresses (EMAIL_ALLOW_NAMES_BY_ADDRESS is off)"
            )))
        } else {
            Err(refused(format!(
                "'{typed}' is not allowed on this worker (EMAIL_ALLOWED_HOSTS)"
            )))
        }
    }

    /// The checks on what a name resolved to: every address, none denied, and (unless the name
    /// itself is allowed) each in an allowed network.
    pub fn check_addresses(
        &self,
        host: &str,
        verdict: &NameVerdict,
        addresses: &[IpAddr],
    ) -> Result<()> {
        let typed = host.trim();
        for address in addresses.iter().map(|a| a.to_canonical()) {
            if self.denied.holds_address(address) {
                return Err(refused(format!(
                    "'{typed}' resolves to {address}, which is refused on this worker (EMAIL_DENIED_HOSTS)"
                )));
            }
            if matches!(verdict, NameVerdict::AddressesDecide)
                && !self.allowed.matches_address(address)
            {
                return Err(refused(format!(
                    "'{typed}' resolves to {address}, which is not allowed on this worker (EMAIL_ALLOWED_HOSTS)"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
