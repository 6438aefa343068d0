//! Logging in with a password: SASL PLAIN when the server offers it (one command, and the
//! credentials never sit on a USER/PASS line of their own), USER and PASS otherwise; OAuth2
//! logins go on to `client_oauth.rs`. A refusal is coded by its RFC 2449 / RFC 3206 response
//! code, so a locked maildrop is retried and a wrong password is not.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::Pop3Client;
use crate::mail::auth::Authentication;
use crate::mail::server::Endpoint;
use crate::pop3::error::{Pop3Error, Pop3ErrorKind, ServerReply};

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
    ) -> Result<(), Pop3Error> {
        let delay = self.login_delay();
        let refused = |who: &str, reply: ServerReply| {
            let wait = delay.filter(|_| reply.is_login_delay());
            let error = Pop3Error::new(
                reply.login_kind(),
                format!("login as {who} refused: {reply}"),
            )
            .with_source(reply);
            match wait {
                Some(wait) => error.retry_after(wait),
                None => error,
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
                        Err(reply) => Err(refused(username, reply)),
                    }
                } else {
                    // Checked when the variables are read; again here because USER and PASS
                    // put them on a command line as they are.
                    for (field, value) in [
                        ("username", username.as_str()),
                        ("password", password.expose_secret()),
                    ] {
                        if value.contains(['\r', '\n']) {
                            return Err(Pop3Error::new(
                                Pop3ErrorKind::Input,
                                format!("/authentication/{field}: contains CR or LF"),
                            ));
                        }
                    }
                    if let Err(reply) = self.exchange(&format!("USER {username}"), "USER").await? {
                        return Err(refused(username, reply));
                    }
                    match self
                        .exchange(&format!("PASS {}", password.expose_secret()), "PASS")
                        .await?
                    {
                        Ok(_) => Ok(()),
                        Err(reply) => Err(refused(username, reply)),
                    }
                }
            }
            Authentication::Oauth2(login) => match token {
                Some(token) => self.oauth_login(login, token, endpoint).await,
                None => Err(Pop3Error::new(
                    Pop3ErrorKind::Internal,
                    "an OAuth2 login without a token",
                )),
            },
            Authentication::None => Err(Pop3Error::new(
                Pop3ErrorKind::Input,
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
        use crate::error::ErrorCode;
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
            assert_eq!(
                ServerReply::new(text.into()).login_kind().code(),
                code,
                "{text}"
            );
        }
    }

    #[test]
    fn the_login_delay_is_read_from_the_capability() {
        assert_eq!(login_delay_seconds("LOGIN-DELAY 60"), Some(60));
        assert_eq!(login_delay_seconds("login-delay 900 USER"), Some(900));
        assert_eq!(login_delay_seconds("LOGIN-DELAY"), None);
        assert_eq!(login_delay_seconds("LOGIN-DELAY soon"), None);
        assert_eq!(login_delay_seconds("EXPIRE 60"), None);
        let delay = |text: &str| ServerReply::new(text.into()).is_login_delay();
        assert!(delay(
            "[login-delay] Logins must be at least 1 minute apart"
        ));
        assert!(!delay("[IN-USE] locked"));
        assert!(!delay("[LOGIN-DELAY-X] no"));
        assert!(!delay("é"));
    }
}
