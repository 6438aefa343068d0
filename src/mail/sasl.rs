//! SASL XOAUTH2 (Google's and Microsoft's) and OAUTHBEARER (RFC 7628), shared by SMTP, IMAP
//! and POP3: the client's first message, the answer that ends a failed exchange, and the
//! server's error challenge read into words an operator can act on.
//!
//! A rejected token is not answered with a final NO/-ERR/535 at once: the server first sends a
//! base64 JSON challenge (`{"status":"401","schemes":"bearer","scope":"..."}`) and waits for
//! the client to acknowledge it (an empty line for XOAUTH2, `%x01` for OAUTHBEARER). A client
//! that does not answer leaves the exchange hanging until the server's timeout.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::Deserialize;

/// The OAuth SASL mechanism a login uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
pub enum Mechanism {
    #[serde(rename = "XOAUTH2")]
    Xoauth2,
    #[serde(rename = "OAUTHBEARER")]
    Oauthbearer,
}

/// Above this, an initial response is not sent on the command line but after the server's
/// empty challenge: Postfix cuts command lines at 2048 bytes by default, and real tokens
/// (Microsoft's JWTs) are often longer.
pub const MAX_INITIAL_RESPONSE_LINE: usize = 2000;

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }

    /// The one asked for; otherwise XOAUTH2, unless the server advertises OAUTHBEARER and
    /// not XOAUTH2 (the same on SMTP, IMAP and POP3).
    pub fn choose(requested: Option<Mechanism>, advertises: impl Fn(&str) -> bool) -> Mechanism {
        match requested {
            Some(mechanism) => mechanism,
            None if advertises("OAUTHBEARER") && !advertises("XOAUTH2") => Mechanism::Oauthbearer,
            None => Mechanism::Xoauth2,
        }
    }

    /// The client's first message, not yet base64-encoded. `host` and `port` are the server's
    /// (OAUTHBEARER carries them; RFC 7628 §3.1).
    pub fn initial_response(self, user: &str, token: &str, host: &str, port: u16) -> String {
        match self {
            Mechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
            Mechanism::Oauthbearer => format!(
                "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
                gs2_escape(user)
            ),
        }
    }

    /// The first message, base64-encoded for the wire.
    pub fn encoded_initial_response(
        self,
        user: &str,
        token: &str,
        host: &str,
        port: u16,
    ) -> String {
        STANDARD.encode(self.initial_response(user, token, host, port))
    }

    /// What ends the exchange after an error challenge, before encoding.
    pub fn error_acknowledgement(self) -> &'static [u8] {
        match self {
            Mechanism::Xoauth2 => b"",
            Mechanism::Oauthbearer => b"\x01",
        }
    }

    /// The same, base64-encoded (an empty line for XOAUTH2).
    pub fn encoded_error_acknowledgement(self) -> String {
        STANDARD.encode(self.error_acknowledgement())
    }
}

/// RFC 5801 §4: `,` and `=` in the authorization identity are written `=2C` and `=3D`.
fn gs2_escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The server's error challenge, for the `AUTHENTICATION_FAILED` message: status, scope and
/// schemes when it is the JSON the mechanisms define, else a note that it was not. Accepts the
/// challenge base64-encoded (as on the wire) or already decoded. Only printable characters of
/// the known fields are kept: a hostile server writes what it likes here.
pub fn describe_challenge(challenge: &[u8]) -> String {
    let trimmed = challenge.trim_ascii();
    let decoded = STANDARD
        .decode(trimmed)
        .unwrap_or_else(|_| trimmed.to_vec());
    #[derive(Deserialize)]
    struct ErrorJson {
        status: Option<serde_json::Value>,
        scope: Option<String>,
        schemes: Option<String>,
    }
    let clean =
        |text: &str| -> String { text.chars().filter(|c| !c.is_control()).take(300).collect() };
    match serde_json::from_slice::<ErrorJson>(&decoded) {
        Ok(json) => {
            let mut parts = Vec::new();
            if let Some(status) = json.status {
                let status = match status {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                parts.push(format!("status {}", clean(&status)));
            }
            if let Some(scope) = json.scope {
                parts.push(format!("scope {}", clean(&scope)));
            }
            if let Some(schemes) = json.schemes {
                parts.push(format!("schemes {}", clean(&schemes)));
            }
            if parts.is_empty() {
                "the server gave no reason".into()
            } else {
                format!("the server rejected the token ({})", parts.join(", "))
            }
        }
        Err(_) => "the server rejected the token".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_initial_response_is_googles_format() {
        assert_eq!(
            Mechanism::Xoauth2.initial_response("someuser@example.com", "ya29.vF9dft4", "h", 1),
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4\x01\x01"
        );
        // The example of Google's XOAUTH2 documentation, encoded.
        assert_eq!(
            Mechanism::Xoauth2.encoded_initial_response(
                "someuser@example.com",
                "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
                "h",
                1
            ),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }

    #[test]
    fn oauthbearer_initial_response_follows_rfc_7628() {
        // RFC 7628 §4.1, with the authorization identity of §3.1.
        assert_eq!(
            Mechanism::Oauthbearer.initial_response(
                "user@example.com",
                "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                "server.example.com",
                143
            ),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert!(
            Mechanism::Oauthbearer
                .initial_response("a,b=c", "t", "h", 1)
                .starts_with("n,a=a=2Cb=3Dc,\x01")
        );
    }

    #[test]
    fn the_error_acknowledgements() {
        assert_eq!(Mechanism::Xoauth2.encoded_error_acknowledgement(), "");
        assert_eq!(
            Mechanism::Oauthbearer.encoded_error_acknowledgement(),
            "AQ=="
        );
    }

    #[test]
    fn choice_by_request_and_advertisement() {
        let only_bearer = |m: &str| m == "OAUTHBEARER";
        let both = |_: &str| true;
        let none = |_: &str| false;
        assert_eq!(Mechanism::choose(None, only_bearer), Mechanism::Oauthbearer);
        assert_eq!(Mechanism::choose(None, both), Mechanism::Xoauth2);
        assert_eq!(Mechanism::choose(None, none), Mechanism::Xoauth2);
        assert_eq!(
            Mechanism::choose(Some(Mechanism::Oauthbearer), both),
            Mechanism::Oauthbearer
        );
    }

    #[test]
    fn error_challenges_are_described() {
        assert_eq!(
            describe_challenge(
                b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0="
            ),
            "the server rejected the token (status 401, scope mail, schemes bearer)"
        );
        assert_eq!(
            describe_challenge(br#"{"status":"invalid_token"}"#),
            "the server rejected the token (status invalid_token)"
        );
        assert_eq!(
            describe_challenge(b"\x1b[2J garbage"),
            "the server rejected the token"
        );
        let hostile = format!(r#"{{"status":"4\u0007{}"}}"#, "x".repeat(5000));
        assert!(describe_challenge(hostile.as_bytes()).len() < 400);
    }
}
