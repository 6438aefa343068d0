//! What the POP3 operations share: input, schema, finding a message by UIDL or by Message-ID
//! from its headers, and summaries.

use std::collections::HashMap;

use mail_parser::MessageParser;
use serde_json::Value;

use super::client::{HEADER_BATCH, Pop3Client};
use crate::error::Result;
use crate::mail::inputs::{
    Connection, Login, Pop3, Pop3Mail, Server, ambiguous, bare_message_id, decode,
};
use crate::mail::message::message_id;
use crate::mail::server::Target;
use crate::mail::summary::Listing;
use crate::services::Services;

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

    pub async fn connect(&self, services: &Services) -> Result<Pop3Client> {
        Pop3Client::connect(services, &self.0.endpoint, &self.0.authentication).await
    }
}

/// A message of the maildrop: number, size (LIST), headers (TOP n 0, see
/// [`MAX_HEADER_BYTES`](super::client::MAX_HEADER_BYTES)) and unique id (UIDL).
pub struct Listed {
    pub number: u32,
    pub size: u64,
    pub headers: Vec<u8>,
    pub uidl: Option<String>,
}

impl Listed {
    /// Its Message-ID as found, if it has one.
    pub fn message_id(&self) -> Option<String> {
        MessageParser::default()
            .parse_headers(&self.headers)
            .as_ref()
            .and_then(message_id)
    }
}

/// The messages of `batch` (number and size, as LIST gave them) with their headers and UIDLs
/// (from `uidls`). Never RETR: only TOP n 0, pipelined. Callers go through a maildrop a batch
/// at a time ([`HEADER_BATCH`]), so that what they hold of headers is one batch, whatever the
/// maildrop.
pub async fn with_headers(
    client: &mut Pop3Client,
    batch: &[(u32, u64)],
    uidls: &HashMap<u32, String>,
) -> Result<Vec<Listed>> {
    let headers = client.headers(batch).await?;
    Ok(batch
        .iter()
        .zip(headers)
        .map(|(&(number, size), headers)| Listed {
            number,
            size,
            headers,
            uidl: uidls.get(&number).cloned(),
        })
        .collect())
}

/// Message number → UIDL.
pub async fn uidls(client: &mut Pop3Client) -> Result<HashMap<u32, String>> {
    Ok(client.uidl().await?.into_iter().collect())
}

/// The message `wanted` names, or why there is none. By UIDL, only that message's headers are
/// read; by Message-ID alone, the maildrop's headers are read a batch at a time and only the
/// matches kept; a Message-ID several messages carry is `EMAIL_AMBIGUOUS` (any sender can reuse
/// one), naming their UIDLs.
pub async fn resolve(
    client: &mut Pop3Client,
    wanted: &Pop3Mail,
) -> Result<std::result::Result<Listed, String>> {
    let uidls = uidls(client).await?;
    let Some(uidl) = &wanted.uidl else {
        let wanted_bare = wanted.message_id.as_ref().map(|m| m.bare());
        let id = wanted
            .message_id
            .as_ref()
            .map(|m| m.as_given().to_string())
            .unwrap_or_default();
        let mut found: Vec<Listed> = Vec::new();
        for batch in client.list().await?.chunks(HEADER_BATCH) {
            found.extend(
                with_headers(client, batch, &uidls)
                    .await?
                    .into_iter()
                    .filter(|l| l.message_id().map(|f| bare_message_id(&f)) == wanted_bare),
            );
        }
        return match found.len() {
            0 => Ok(Err(format!("no message {id} in the maildrop"))),
            1 => Ok(Ok(found.remove(0))),
            _ => Err(ambiguous(
                &id,
                "in the maildrop",
                &found
                    .iter()
                    .map(|l| format!("UIDL {}", l.uidl.as_deref().unwrap_or("?")))
                    .collect::<Vec<_>>(),
                "uidl",
            )),
        };
    };
    let Some(number) = uidls
        .into_iter()
        .find_map(|(number, u)| (u == *uidl).then_some(number))
    else {
        return Ok(Err(format!("no message with UIDL {uidl} in the maildrop")));
    };
    let size = client
        .list()
        .await?
        .into_iter()
        .find_map(|(n, size)| (n == number).then_some(size))
        .unwrap_or(0);
    let headers = client
        .headers(&[(number, size)])
        .await?
        .pop()
        .unwrap_or_default();
    let listed = Listed {
        number,
        size,
        headers,
        uidl: Some(uidl.clone()),
    };
    if let Some(given) = &wanted.message_id
        && listed.message_id().map(|f| bare_message_id(&f)) != Some(given.bare())
    {
        return Ok(Err(format!(
            "UIDL {uidl} carries Message-ID {}, not {given}",
            listed.message_id().as_deref().unwrap_or("(none)"),
        )));
    }
    Ok(Ok(listed))
}

/// The summaries of `chosen` (number and size), in order, as many as fit `max_bytes` of
/// JSON: headers are read a batch at a time, and none past the budget.
pub async fn summaries(
    client: &mut Pop3Client,
    chosen: &[(u32, u64)],
    uidls: &HashMap<u32, String>,
    max_bytes: usize,
) -> Result<Vec<Value>> {
    let mut listing = Listing::new(max_bytes);
    for batch in chosen.chunks(HEADER_BATCH) {
        for listed in with_headers(client, batch, uidls).await? {
            if !listing.push(summary(&listed)) {
                return Ok(listing.finish(chosen.len()));
            }
        }
    }
    Ok(listing.finish(chosen.len()))
}

/// The summary of a listed message (POP3 knows no arrival time), with the `uidl` that names
/// its message for good.
pub fn summary(listed: &Listed) -> Value {
    let mut entry = crate::mail::summary::summary(&listed.headers, Some(listed.size), None);
    entry
        .identity
        .insert("uidl".into(), identity(listed.uidl.as_deref()));
    crate::mail::response::to_json(&entry)
}

/// The `uidl` field of a response.
pub fn identity(uidl: Option<&str>) -> Value {
    uidl.map_or(Value::Null, |u| Value::String(u.to_string()))
}

/// Connects step by step and describes each step, for the `check` subcommand.
pub async fn check(services: &Services, variables: &Value) -> Result<Vec<String>> {
    let input: Connection<Pop3> = decode(variables.clone())?;
    let maildrop = Maildrop(input.target());
    let mut steps = Vec::new();
    let mut client = Pop3Client::connect_noting(
        services,
        &maildrop.0.endpoint,
        &maildrop.0.authentication,
        &mut steps,
    )
    .await?;
    let count = client.list().await?.len();
    steps.push(format!("pop3: the maildrop holds {count} message(s)"));
    client.quit().await?;
    Ok(steps)
}
