//! What the POP3 operations share: input, schema, finding a message by Message-ID from its
//! headers, and summaries.

use mail_parser::MessageParser;
use serde_json::Value;

use super::client::{HEADER_BATCH, Pop3Client};
use crate::error::Result;
use crate::mail::inputs::{Connection, Login, Pop3, Server, bare_message_id, decode};
use crate::mail::message::message_id;
use crate::mail::server::Target;
use crate::mail::summary::Listing;

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

/// A message of the maildrop: number, size (LIST) and headers (TOP n 0, see
/// [`MAX_HEADER_BYTES`](super::client::MAX_HEADER_BYTES)).
pub struct Listed {
    pub number: u32,
    pub size: u64,
    pub headers: Vec<u8>,
}

/// The messages of `batch` (number and size, as LIST gave them) with their headers. Never
/// RETR: only TOP n 0, pipelined. Callers go through a maildrop a batch at a time
/// ([`HEADER_BATCH`]), so that what they hold of headers is one batch, whatever the maildrop.
pub async fn with_headers(client: &mut Pop3Client, batch: &[(u32, u64)]) -> Result<Vec<Listed>> {
    let headers = client.headers(batch).await?;
    Ok(batch
        .iter()
        .zip(headers)
        .map(|(&(number, size), headers)| Listed {
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
    for batch in client.list().await?.chunks(HEADER_BATCH) {
        for listed in with_headers(client, batch).await? {
            if let Some(found) = MessageParser::default()
                .parse_headers(&listed.headers)
                .as_ref()
                .and_then(message_id)
                && bare_message_id(&found) == bare
            {
                return Ok(Some((listed, found)));
            }
        }
    }
    Ok(None)
}

/// The summaries of `chosen` (number and size), in order, as many as fit `max_bytes` of
/// JSON: headers are read a batch at a time, and none past the budget.
pub async fn summaries(
    client: &mut Pop3Client,
    chosen: &[(u32, u64)],
    max_bytes: usize,
) -> Result<Vec<Value>> {
    let mut listing = Listing::new(max_bytes);
    for batch in chosen.chunks(HEADER_BATCH) {
        for listed in with_headers(client, batch).await? {
            if !listing.push(summary(&listed)) {
                return Ok(listing.finish(chosen.len()));
            }
        }
    }
    Ok(listing.finish(chosen.len()))
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
