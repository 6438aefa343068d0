//! SMTP AUTH with XOAUTH2 or OAUTHBEARER (RFC 4954, RFC 7628), on lettre's connection but not
//! its authenticator: lettre knows no OAUTHBEARER and answers a rejected token's error
//! challenge with a client error, leaving the server waiting in the middle of the exchange.

use lettre::transport::smtp::authentication::Mechanism as LettreMechanism;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use secrecy::{ExposeSecret, SecretString};

use super::error::{SmtpError, SmtpErrorKind};
use super::transport::within;
use crate::mail::auth::OAuth2Login;
use crate::mail::sasl::{MAX_INITIAL_RESPONSE_LINE, Mechanism, describe_challenge};
use crate::mail::server::Endpoint;

/// Logs in with `token` by the mechanism asked for; without one, XOAUTH2 unless the server
/// advertises only OAUTHBEARER.
pub async fn authenticate(
    connection: &mut AsyncSmtpConnection,
    endpoint: &Endpoint,
    login: &OAuth2Login,
    token: &SecretString,
) -> Result<Mechanism, SmtpError> {
    let xoauth2 = connection
        .server_info()
        .supports_auth_mechanism(LettreMechanism::Xoauth2);
    // lettre's EHLO reading drops mechanisms it does not know, OAUTHBEARER among them: ask
    // again only when it matters.
    let oauthbearer = login.mechanism.is_none() && !xoauth2 && {
        let hello = ClientId::default();
        let reply = within(endpoint, connection.command(Ehlo::new(hello)))
            .await?
            .map_err(SmtpError::lettre)?;
        reply.message().any(|line| {
            let upper = line.to_ascii_uppercase();
            upper.starts_with("AUTH") && upper.split([' ', '=']).any(|word| word == "OAUTHBEARER")
        })
    };
    let mechanism = Mechanism::choose(login.mechanism, |m| match m {
        "XOAUTH2" => xoauth2,
        "OAUTHBEARER" => oauthbearer,
        _ => false,
    });
    let response = mechanism.encoded_initial_response(
        &login.username,
        token.expose_secret(),
        &endpoint.host,
        endpoint.port,
    );
    let with_initial = format!("AUTH {} {response}\r\n", mechanism.name());
    let reply = if with_initial.len() <= MAX_INITIAL_RESPONSE_LINE {
        within(endpoint, connection.command(with_initial)).await?
    } else {
        match within(
            endpoint,
            connection.command(format!("AUTH {}\r\n", mechanism.name())),
        )
        .await?
        {
            Ok(ready) if ready.has_code(334) => {
                within(endpoint, connection.command(format!("{response}\r\n"))).await?
            }
            other => other,
        }
    };
    let refused = |text: String| {
        SmtpError::new(
            SmtpErrorKind::LoginRefused,
            format!(
                "login as {} with {} refused: {text}",
                login.username,
                mechanism.name()
            ),
        )
    };
    match reply {
        Ok(done) if done.has_code(235) => Ok(mechanism),
        Ok(challenge) if challenge.has_code(334) => {
            let reason = describe_challenge(joined(&challenge).as_bytes());
            let ack = format!("{}\r\n", mechanism.encoded_error_acknowledgement());
            let last = within(endpoint, connection.command(ack)).await?;
            Err(match last {
                Err(e) => {
                    let error = SmtpError::lettre(e);
                    // A server that cannot check the token now says so with a 4xx.
                    let kind = match error.kind() {
                        SmtpErrorKind::Transient => SmtpErrorKind::Transient,
                        _ => SmtpErrorKind::LoginRefused,
                    };
                    let message = format!(
                        "login as {} with {} refused: {reason}; {}",
                        login.username,
                        mechanism.name(),
                        error.message()
                    );
                    SmtpError::new(kind, message).with_source(error)
                }
                Ok(other) => refused(format!("{reason}; {}", joined(&other))),
            })
        }
        Ok(other) => Err(refused(joined(&other))),
        Err(e) => {
            let error = SmtpError::lettre(e);
            Err(match error.kind() {
                SmtpErrorKind::LoginRefused | SmtpErrorKind::MessageRejected => {
                    refused(error.message().to_string()).with_source(error)
                }
                _ => error,
            })
        }
    }
}

fn joined(response: &Response) -> String {
    let text: String = response.message().collect::<Vec<_>>().join(" ");
    text.chars().filter(|c| !c.is_control()).take(500).collect()
}
