//! Logging in with a password: SASL PLAIN when the server offers it (one command, and the
//! credentials never sit on a USER/PASS line of their own), USER and PASS otherwise; OAuth2
//! logins go on to `client_oauth.rs`. A refusal is coded by its RFC 2449 / RFC 3206 response
//! code, so a locked maildrop is retried and a wrong password is not.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::Pop3Client;
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::server::{Authentication, Endpoint};

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

impl Pop3Client {
    pub(super) async fn login(
        &mut self,
        auth: &Authentication,
        token: Option<&SecretString>,
        endpoint: &Endpoint,
    ) -> Result<()> {
        let refused = |who: &str, text: String| {
            EmailError::new(
                login_refusal_code(&text),
                format!("login as {who} refused: {text}"),
            )
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
}
