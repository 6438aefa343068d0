//! POP3 AUTH with XOAUTH2 or OAUTHBEARER (RFC 5034, RFC 7628): `AUTH <mechanism>`, then the
//! response on a line of its own after the server's `+` (Exchange Online wants it so, and a
//! long token stays clear of command-line limits). A rejected token draws an error challenge
//! first, which is acknowledged so the server ends the exchange with its `-ERR`.

use secrecy::{ExposeSecret, SecretString};

use super::{Pop3Client, read_line, status, timed};
use crate::mail::auth::OAuth2Login;
use crate::mail::sasl::{Mechanism, describe_challenge};
use crate::mail::server::Endpoint;
use crate::pop3::error::{Pop3Error, ServerReply};

/// A POP3 reply during SASL: `+OK`, `-ERR`, or a continuation with its challenge.
enum Reply {
    Ok,
    Err(ServerReply),
    Continue(String),
}

impl Pop3Client {
    /// SASL XOAUTH2 / OAUTHBEARER (RFC 5034): `AUTH <mechanism>`, then the response on a line
    /// of its own after the server's `+` (Exchange Online wants it so, and a long token stays
    /// clear of command-line limits). A rejected token draws an error challenge first, which
    /// is acknowledged so the server ends the exchange with its `-ERR`.
    pub(super) async fn oauth_login(
        &mut self,
        login: &OAuth2Login,
        token: &SecretString,
        endpoint: &Endpoint,
    ) -> Result<(), Pop3Error> {
        let mechanism = Mechanism::choose(login.mechanism, |m| self.has_sasl(m));
        let user = login.username.as_str();
        let refused = |reply: ServerReply, reason: Option<String>| {
            let text: String = reply.text.chars().take(500).collect();
            let message = match reason {
                Some(reason) => format!(
                    "login as {user} with {} refused: {reason}; {text}",
                    mechanism.name()
                ),
                None => format!("login as {user} with {} refused: {text}", mechanism.name()),
            };
            Pop3Error::new(reply.login_kind(), message).with_source(reply)
        };
        self.sent.push("AUTH");
        self.write(&format!("AUTH {}", mechanism.name())).await?;
        match self.read_reply().await? {
            Reply::Continue(_) => {}
            Reply::Ok => return Ok(()),
            Reply::Err(reply) => return Err(refused(reply, None)),
        }
        self.write(&mechanism.encoded_initial_response(
            user,
            token.expose_secret(),
            &endpoint.host,
            endpoint.port,
        ))
        .await?;
        match self.read_reply().await? {
            Reply::Ok => Ok(()),
            Reply::Err(reply) => Err(refused(reply, None)),
            Reply::Continue(challenge) => {
                let reason = describe_challenge(challenge.as_bytes());
                self.write(&mechanism.encoded_error_acknowledgement())
                    .await?;
                match self.read_reply().await? {
                    Reply::Ok => Ok(()),
                    Reply::Err(reply) => Err(refused(reply, Some(reason))),
                    Reply::Continue(text) => Err(refused(ServerReply::new(text), Some(reason))),
                }
            }
        }
    }

    /// A status line, or a SASL continuation (`+ <base64>`).
    async fn read_reply(&mut self) -> Result<Reply, Pop3Error> {
        let mut line = std::mem::take(&mut self.line);
        let result = timed(self.timeout, "reading a response", async {
            match self.reader.as_mut() {
                Some(reader) => read_line(reader, &mut line).await,
                None => Err(std::io::ErrorKind::NotConnected.into()),
            }
        })
        .await;
        let continuation = (line == b"+" || line.starts_with(b"+ "))
            .then(|| String::from_utf8_lossy(&line[1..]).trim().to_string());
        let parsed = result.and_then(|_| status(&line));
        self.line = line;
        if let Some(challenge) = continuation {
            return Ok(Reply::Continue(challenge));
        }
        Ok(match parsed? {
            Ok(_) => Reply::Ok,
            Err(reply) => Reply::Err(reply),
        })
    }
}
