//! Logging in with a password: SASL PLAIN when the server offers it (one command, and the
//! credentials never sit on a USER/PASS line of their own), USER and PASS otherwise; OAuth2
//! logins go on to `client_oauth.rs`. A refusal is coded by its RFC 2449 / RFC 3206 response
//! code, so a locked maildrop is retried and a wrong password is not.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::Pop3Client;
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::auth::Authentication;
use crate::mail::server::Endpoint;

/// What a refused login means, by the response code in its `-ERR` text (RFC 2449, RFC 3206).
/// A maildrop locked by another session (`[IN-USE]`), a passing server problem (`[SYS/TEMP]`)
/// or logging in too often (`[LOGIN-DELAY]`) is worth another try later; a wrong password is
/// not, and retrying it only risks locking the account.
pub(super) fn login_refusal_code(text: &str) -> ErrorCode {
    let code = text
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map(|(code, _)| code.to_ascii_uppercase());
    match code.as_deref() {
        Some("IN-USE" | "SYS/TEMP" | "LOGIN-DELAY") => ErrorCode::TemporaryFailure,
        _ => ErrorCode::AuthenticationFailed,
    }
}

/// Whether a refusal is `[LOGIN-DELAY]` (RFC 2449): the server allows a login only so often.
fn is_login_delay(text: &str) -> bool {
    text.get(..13)
        .is_some_and(|code| code.eq_ignore_ascii_case("[LOGIN-DELAY]"))
}

/// The seconds of a `LOGIN-DELAY n` capability line.
fn login_delay_seconds(capability: &str) -> Option<u64> {
    let mut words = capability.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("LOGIN-DELAY") {
        return None;
    }
    words.next()?.parse().ok()
}

impl Pop3Client {
    /// The minimum time between logins the server announced (CAPA `LOGIN-DELAY n`), if any:
    /// a refused login waits that long before its retry.
    fn login_delay(&self) -> Option<Duration> {
        self.capabilities
            .iter()
            .find_map(|c| login_delay_seconds(c))
            .filter(|seconds| *seconds > 0)
            .map(Duration::from_secs)
    }

    pub(super) async fn login(
        &mut self,
        auth: &Authentication,
        token: Option<&SecretString>,
        endpoint: &Endpoint,
    ) -> Result<()> {
        let delay = self.login_delay();
        let refused = |who: &str, text: String| {
            let error = EmailError::new(
                login_refusal_code(&text),
                format!("login as {who} refused: {text}"),
            );
            match delay {
                Some(wait) if is_login_delay(&text) => error.retry_after(wait),
                _ => error,
            }
        };
        match auth {
            Authentication::Simple { username, password } => {
                if self.has_sasl("PLAIN") {
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("\0{username}\0{}", password.expose_secret()));
                    match self
                        .exchange(&format!("AUTH PLAIN {token}"), "AUTH")
                        .await?
                    {
                        Ok(_) => Ok(()),
                        Err(text) => Err(refused(username, text)),
                    }
                } else {
                    // Checked when the variables are read; again here because USER and PASS
                    // put them on a command line as they are.
                    for (field, value) in [
                        ("username", username.as_str()),
                        ("password", password.expose_secret()),
                    ] {
                        if value.contains(['\r', '\n']) {
                            return Err(EmailError::invalid_input(format!(
                                "/authentication/{field}: contains CR or LF"
                            )));
                        }
                    }
                    if let Err(text) = self.exchange(&format!("USER {username}"), "USER").await? {
                        return Err(refused(username, text));
                    }
                    match self
                        .exchange(&format!("PASS {}", password.expose_secret()), "PASS")
                        .await?
                    {
                        Ok(_) => Ok(()),
                        Err(text) => Err(refused(username, text)),
                    }
                }
            }
            Authentication::Oauth2(login) => match token {
                Some(token) => self.oauth_login(login, token, endpoint).await,
                None => Err(EmailError::internal("an OAuth2 login without a token")),
            },
            Authentication::None => Err(EmailError::invalid_input(
                "/authentication/type: POP3 needs a login; 'none' is for SMTP only",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_refusals_by_response_code() {
        for (text, code) in [
            (
                "[IN-USE] Mailbox is locked by another POP3 session",
                ErrorCode::TemporaryFailure,
            ),
            ("[SYS/TEMP] Try again later", ErrorCode::TemporaryFailure),
            ("[in-use] lower case", ErrorCode::TemporaryFailure),
            ("[LOGIN-DELAY] Wait 5 minutes", ErrorCode::TemporaryFailure),
            (
                "[AUTH] Authentication failed.",
                ErrorCode::AuthenticationFailed,
            ),
            (
                "[SYS/PERM] Mailbox is broken",
                ErrorCode::AuthenticationFailed,
            ),
            ("Authentication failed.", ErrorCode::AuthenticationFailed),
            ("[IN-USE", ErrorCode::AuthenticationFailed),
            ("", ErrorCode::AuthenticationFailed),
        ] {
            assert_eq!(login_refusal_code(text), code, "{text}");
        }
    }

    #[test]
    fn the_login_delay_is_read_from_the_capability() {
        assert_eq!(login_delay_seconds("LOGIN-DELAY 60"), Some(60));
        assert_eq!(login_delay_seconds("login-delay 900 USER"), Some(900));
        assert_eq!(login_delay_seconds("LOGIN-DELAY"), None);
        assert_eq!(login_delay_seconds("LOGIN-DELAY soon"), None);
        assert_eq!(login_delay_seconds("EXPIRE 60"), None);
        assert!(is_login_delay(
            "[login-delay] Logins must be at least 1 minute apart"
        ));
        assert!(!is_login_delay("[IN-USE] locked"));
        assert!(!is_login_delay("é"));
    }
}
