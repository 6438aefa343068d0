//! What the POP3 operations share: input, schema, finding a message by Message-ID from its
//! headers, and summaries.

use mail_parser::MessageParser;
use serde_json::Value;

use super::client::Pop3Client;
use crate::error::Result;
use crate::mail::inputs::{Connection, Login, Pop3, Server, bare_message_id, decode};
use crate::mail::message::message_id;
use crate::mail::server::Target;

/// Server and login of a POP3 operation.
pub struct Maildrop(pub Target);

impl Maildrop {
    /// The maildrop an operation's input names.
    pub fn of(server: &Server<Pop3>, login: &Login<Pop3>) -> Maildrop {
        Maildrop(Target {
            endpoint: server.endpoint(),
            authentication: login.authentication.clone(),
        })
    }

    pub async fn connect(&self) -> Result<Pop3Client> {
        Pop3Client::connect(&self.0.endpoint, &self.0.authentication).await
    }
}

/// A message of the maildrop: number, size (LIST) and headers (TOP n 0).
pub struct Listed {
    pub number: u32,
    pub size: u64,
    pub headers: Vec<u8>,
}

/// Every message with its headers. Never RETR: only TOP n 0, pipelined.
pub async fn list_with_headers(client: &mut Pop3Client) -> Result<Vec<Listed>> {
    let sizes = client.list().await?;
    let numbers: Vec<u32> = sizes.iter().map(|(n, _)| *n).collect();
    let headers = client.headers(&numbers).await?;
    Ok(sizes
        .into_iter()
        .zip(headers)
        .map(|((number, size), headers)| Listed {
            number,
            size,
            headers,
        })
        .collect())
}

/// The first message whose Message-ID is exactly `id`, with the Message-ID as found.
pub async fn find_by_message_id(
    client: &mut Pop3Client,
    id: &str,
) -> Result<Option<(Listed, String)>> {
    let bare = bare_message_id(id);
    for listed in list_with_headers(client).await? {
        if let Some(found) = MessageParser::default()
            .parse_headers(&listed.headers)
            .as_ref()
            .and_then(message_id)
            && bare_message_id(&found) == bare
        {
            return Ok(Some((listed, found)));
        }
    }
    Ok(None)
}

/// The summary of a listed message (POP3 knows no arrival time).
pub fn summary(listed: &Listed) -> Value {
    crate::mail::summary::summary(&listed.headers, Some(listed.size), None)
}

/// Connects step by step and describes each step, for the `check` subcommand.
pub async fn check(variables: &Value) -> Result<Vec<String>> {
    let input: Connection<Pop3> = decode(variables.clone())?;
    let maildrop = Maildrop(input.target());
    let mut steps = Vec::new();
    let mut client =
        Pop3Client::connect_noting(&maildrop.0.endpoint, &maildrop.0.authentication, &mut steps)
            .await?;
    let count = client.list().await?.len();
    steps.push(format!("pop3: the maildrop holds {count} message(s)"));
    client.quit().await?;
    Ok(steps)
}
