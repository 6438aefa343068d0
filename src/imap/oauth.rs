//! IMAP AUTHENTICATE with XOAUTH2 or OAUTHBEARER on async-imap, which sends no initial
//! response: the first (empty) challenge gets the token; a second one is the server's error
//! JSON, kept for the error message and acknowledged so the server ends with its tagged NO.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_imap::{Authenticator, Client};
use secrecy::{ExposeSecret, SecretString};

use super::error::{ImapError, ImapErrorKind, ReplyCode, ServerReply};
use super::session::Wire;
use crate::mail::auth::OAuth2Login;
use crate::mail::sasl::{Mechanism, describe_challenge};
use crate::mail::server::Endpoint;

/// The server's error challenge, when it sent one (at most 4 KiB of it).
#[derive(Clone, Default)]
pub struct ErrorChallenge(Arc<Mutex<Option<Vec<u8>>>>);

impl ErrorChallenge {
    fn described(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|kept| kept.as_deref().map(describe_challenge))
    }
}

pub struct OAuthExchange {
    mechanism: Mechanism,
    payload: Vec<u8>,
    rounds: usize,
    error_challenge: ErrorChallenge,
}

impl OAuthExchange {
    /// Picks the mechanism (asking for the capabilities only when the login names none) and
    /// prepares the client's message.
    pub async fn prepare(
        client: &mut Client<Wire>,
        login: &OAuth2Login,
        token: &SecretString,
        endpoint: &Endpoint,
        error_challenge: &ErrorChallenge,
    ) -> Result<OAuthExchange, ImapError> {
        let advertised = if login.mechanism.is_none() {
            pre_login_capabilities(client, endpoint.timeout).await?
        } else {
            HashSet::new()
        };
        let mechanism = Mechanism::choose(login.mechanism, |m| {
            advertised.contains(&format!("AUTH={m}"))
        });
        let payload = mechanism
            .initial_response(
                &login.username,
                token.expose_secret(),
                &endpoint.host,
                endpoint.port,
            )
            .into_bytes();
        Ok(OAuthExchange {
            mechanism,
            payload,
            rounds: 0,
            error_challenge: error_challenge.clone(),
        })
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
}

impl Authenticator for OAuthExchange {
    type Response = Vec<u8>;
    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        self.rounds += 1;
        if self.rounds == 1 {
            std::mem::take(&mut self.payload)
        } else {
            if let Ok(mut kept) = self.error_challenge.0.lock() {
                kept.get_or_insert_with(|| challenge.iter().copied().take(4096).collect());
            }
            self.mechanism.error_acknowledgement().to_vec()
        }
    }
}

/// A refused login as an error: the server's words, and for OAuth the mechanism and the
/// decoded error challenge. `[UNAVAILABLE]` (RFC 5530) means the server could not check the
/// credentials just now (Dovecot when its token check failed), which another try may pass.
pub fn refusal(
    user: &str,
    reply: ServerReply,
    mechanism: Option<Mechanism>,
    challenge: &ErrorChallenge,
) -> ImapError {
    let kind = if reply.code == Some(ReplyCode::Unavailable) {
        ImapErrorKind::LoginUnavailable
    } else {
        ImapErrorKind::LoginRefused
    };
    let text = &reply.text;
    let message = match (mechanism, challenge.described()) {
        (Some(m), Some(reason)) => {
            format!(
                "login as {user} with {} refused: {reason}; {text}",
                m.name()
            )
        }
        (Some(m), None) => format!("login as {user} with {} refused: {text}", m.name()),
        _ => format!("login as {user} refused: {text}"),
    };
    ImapError::new(kind, message).with_source(reply)
}

/// The capabilities a server advertises before login (for the OAuth mechanism choice), from
/// an explicit CAPABILITY command.
async fn pre_login_capabilities(
    client: &mut Client<Wire>,
    timeout: Duration,
) -> Result<HashSet<String>, ImapError> {
    let (sender, receiver) = async_channel::bounded(16);
    let asked = tokio::time::timeout(
        timeout,
        client.run_command_and_check_ok("CAPABILITY", Some(sender)),
    )
    .await
    .map_err(|_| ImapError::new(ImapErrorKind::Timeout, "no answer to CAPABILITY"))?;
    if let Err(e) = asked {
        let reply = client.get_mut().take_refusal();
        return Err(ImapError::library(e, "CAPABILITY", reply));
    }
    let mut found = HashSet::new();
    while let Ok(response) = receiver.try_recv() {
        let async_imap::types::UnsolicitedResponse::Other(data) = response else {
            continue;
        };
        if let async_imap::imap_proto::Response::Capabilities(list) = data.parsed() {
            for capability in list {
                found.insert(match capability {
                    async_imap::imap_proto::Capability::Imap4rev1 => "IMAP4REV1".into(),
                    async_imap::imap_proto::Capability::Auth(a) => {
                        format!("AUTH={}", a.to_ascii_uppercase())
                    }
                    async_imap::imap_proto::Capability::Atom(a) => a.to_ascii_uppercase(),
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::error::ServerReply;

    #[test]
    fn an_unavailable_login_may_be_retried_any_other_refusal_not() {
        let refused = |line: &str| {
            let reply = ServerReply::from_line(line.as_bytes()).expect("a refusal");
            refusal("alice", reply, None, &ErrorChallenge::default())
        };
        let later = refused("a1 NO [UNAVAILABLE] Temporary authentication failure\r\n");
        assert_eq!(later.kind(), ImapErrorKind::LoginUnavailable);
        let wrong = refused("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
        assert_eq!(wrong.kind(), ImapErrorKind::LoginRefused);
        assert_eq!(
            wrong.to_string(),
            "login as alice refused: [AUTHENTICATIONFAILED] Authentication failed."
        );
        // The words alone do not make a code: only the response code does.
        let words = refused("a1 NO Authentication failed: server [UNAVAILABLE] says\r\n");
        assert_eq!(words.kind(), ImapErrorKind::LoginRefused);
        assert_eq!(refused("a1 BAD no\r\n").kind(), ImapErrorKind::LoginRefused);
    }
}
