//! What the POP3 operations share: input, schema, finding a message by UIDL or by Message-ID
//! from its headers, and summaries.

use std::collections::HashMap;

use mail_parser::MessageParser;
use serde_json::Value;

use super::client::Pop3Client;
use crate::error::Result;
use crate::mail::inputs::{
    Connection, Login, Pop3, Pop3Mail, Server, ambiguous, bare_message_id, decode,
};
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

/// A message of the maildrop: number, size (LIST), headers (TOP n 0) and unique id (UIDL).
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

/// Every message with its headers and UIDL. Never RETR: only TOP n 0, pipelined.
pub async fn list_with_headers(client: &mut Pop3Client) -> Result<Vec<Listed>> {
    let sizes = client.list().await?;
    let uidls = uidls(client).await?;
    let numbers: Vec<u32> = sizes.iter().map(|(n, _)| *n).collect();
    let headers = client.headers(&numbers).await?;
    Ok(sizes
        .into_iter()
        .zip(headers)
        .map(|((number, size), headers)| Listed {
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
/// read; by Message-ID alone, a Message-ID several messages carry is `EMAIL_AMBIGUOUS` (any
/// sender can reuse one), naming their UIDLs.
pub async fn resolve(
    client: &mut Pop3Client,
    wanted: &Pop3Mail,
) -> Result<std::result::Result<Listed, String>> {
    let Some(uidl) = &wanted.uidl else {
        let wanted_bare = wanted.message_id.as_ref().map(|m| m.bare());
        let id = wanted
            .message_id
            .as_ref()
            .map(|m| m.as_given().to_string())
            .unwrap_or_default();
        let mut found: Vec<Listed> = list_with_headers(client)
            .await?
            .into_iter()
            .filter(|l| l.message_id().map(|f| bare_message_id(&f)) == wanted_bare)
            .collect();
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
    let Some(number) = uidls(client)
        .await?
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
    let headers = client.headers(&[number]).await?.pop().unwrap_or_default();
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

/// The summary of a listed message (POP3 knows no arrival time), with the `uidl` that names
/// its message for good.
pub fn summary(listed: &Listed) -> Value {
    let mut entry = crate::mail::summary::summary(&listed.headers, Some(listed.size), None);
    if let Value::Object(map) = &mut entry {
        map.insert("uidl".into(), identity(listed.uidl.as_deref()));
    }
    entry
}

/// The `uidl` field of a response.
pub fn identity(uidl: Option<&str>) -> Value {
    uidl.map_or(Value::Null, |u| Value::String(u.to_string()))
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
