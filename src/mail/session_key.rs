//! The identity of a pooled mail session (SMTP and IMAP pools key their idle sessions by it).

use super::auth::Authentication;
use super::server::Endpoint;

/// Which kind of login a session made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthKind {
    Simple,
    Oauth2,
    None,
}

/// A pooled session's identity, compared by value: a session is handed out only for exactly
/// the endpoint and login it was opened with. (A 64-bit hash of them, as the pools used
/// before, could collide and give one user's logged-in session to another.)
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    endpoint: Endpoint,
    kind: AuthKind,
    username: Option<String>,
    secret_sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not even the digest: a short password's SHA-256 is easily reversed.
        write!(
            f,
            "SessionKey({}, {:?}, {:?}, {:?}, {})",
            self.endpoint.address(),
            self.endpoint.security,
            self.kind,
            self.username.as_deref().unwrap_or(""),
            if self.secret_sha256.is_some() {
                "***"
            } else {
                "-"
            }
        )
    }
}

/// What a server counts sessions against: its address and the user, whatever the timeout,
/// security or credentials each session was opened with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    host: String,
    port: u16,
    username: Option<String>,
}

impl SessionKey {
    /// The account this session counts against on its server.
    pub fn account(&self) -> AccountKey {
        AccountKey {
            host: self.endpoint.host.to_ascii_lowercase(),
            port: self.endpoint.port,
            username: self.username.clone(),
        }
    }

    /// The key of a session opened on `endpoint` with `authentication`. The password takes
    /// part so that a changed password never reuses a session logged in with the old one; only
    /// its digest is kept.
    pub fn new(endpoint: &Endpoint, authentication: &Authentication) -> SessionKey {
        use secrecy::ExposeSecret;
        let (kind, username, secret) = match authentication {
            Authentication::Simple { username, password } => (
                AuthKind::Simple,
                Some(username),
                Some(password.expose_secret()),
            ),
            Authentication::Oauth2(login) => {
                // The credentials, not the token of the moment: a refreshed token logs in as
                // the same user.
                return SessionKey {
                    endpoint: endpoint.clone(),
                    kind: AuthKind::Oauth2,
                    username: Some(login.username.clone()),
                    secret_sha256: Some(login.credentials_digest()),
                };
            }
            Authentication::None => (AuthKind::None, None, None),
        };
        SessionKey {
            endpoint: endpoint.clone(),
            kind,
            username: username.cloned(),
            secret_sha256: secret.map(|s| {
                let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(digest.as_ref());
                bytes
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mail::server::Security;

    fn key(endpoint: &Endpoint, username: &str, password: &str) -> SessionKey {
        SessionKey::new(
            endpoint,
            &Authentication::Simple {
                username: username.into(),
                password: password.to_string().into(),
            },
        )
    }

    fn endpoint() -> Endpoint {
        Endpoint {
            host: "h".into(),
            port: 25,
            security: Security::None,
            server_certificate: None,
            accept_invalid_certificates: false,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn session_keys_differ_by_every_part_and_are_equal_for_equal_inputs() {
        let e = endpoint();
        assert_eq!(key(&e, "u", "1"), key(&e, "u", "1"));
        assert_ne!(key(&e, "u", "1"), key(&e, "u", "2"));
        assert_ne!(key(&e, "u", "1"), key(&e, "v", "1"));
        let variants = [
            Endpoint {
                port: 26,
                ..e.clone()
            },
            Endpoint {
                host: "g".into(),
                ..e.clone()
            },
            Endpoint {
                security: Security::Tls,
                ..e.clone()
            },
            Endpoint {
                server_certificate: Some("pem".into()),
                ..e.clone()
            },
            Endpoint {
                accept_invalid_certificates: true,
                ..e.clone()
            },
            Endpoint {
                timeout: Duration::from_secs(2),
                ..e.clone()
            },
        ];
        for other in &variants {
            assert_ne!(key(&e, "u", "1"), key(other, "u", "1"), "{other:?}");
        }
        let oauth = serde_json::from_value::<Authentication>(
            serde_json::json!({ "type": "oauth2", "username": "u", "accessToken": "1" }),
        )
        .unwrap();
        assert_ne!(SessionKey::new(&e, &oauth), key(&e, "u", "1"));
        let none = Authentication::None;
        assert_eq!(SessionKey::new(&e, &none), SessionKey::new(&e, &none));
    }

    #[test]
    fn a_session_keys_debug_never_shows_the_secret() {
        let text = format!("{:?}", key(&endpoint(), "user@x", "hunter2-secret"));
        assert!(text.contains("user@x"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let digest = ring::digest::digest(&ring::digest::SHA256, b"hunter2-secret");
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex[..8]), "{text}");
    }
}
