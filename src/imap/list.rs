//! `imap:list`: the first `maxToBeRead` messages of a folder in the requested order.
//!
//! Sort first, then limit, and let the server do both when it can (UID SORT, RFC 5256): then
//! only the selected messages' headers cross the network, however large the folder. Without
//! SORT only UIDs and the sort key are fetched for all messages, never bodies.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use mail_parser::MessageParser;
use serde_json::{Value, json};

use super::common::{folder, internal_date_timestamp, summaries, target};
use super::pool::ImapPool;
use super::session::ImapSession;
use super::wire::Command;
use crate::error::{ErrorCode, Result};
use crate::mail::inputs::{
    folder_field, max_to_be_read, max_to_be_read_field, operation_schema, sort_order_field,
};
use crate::mail::server::Protocol;
use crate::operations::{JobContext, Operation, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    ReceivedDate,
    SentDate,
    Size,
}

impl SortField {
    fn parse(value: Option<&str>) -> SortField {
        match value {
            Some("SENT_DATE") => SortField::SentDate,
            Some("SIZE") => SortField::Size,
            _ => SortField::ReceivedDate,
        }
    }

    fn sort_key(self) -> &'static str {
        match self {
            SortField::ReceivedDate => "ARRIVAL",
            SortField::SentDate => "DATE",
            SortField::Size => "SIZE",
        }
    }
}

pub struct ListOperation {
    pub pool: Arc<ImapPool>,
}

/// UIDs in the requested order, sorted by the server.
async fn server_sorted(
    session: &mut ImapSession,
    field: SortField,
    descending: bool,
) -> Result<Vec<u32>> {
    let key = if descending {
        format!("(REVERSE {})", field.sort_key())
    } else {
        format!("({})", field.sort_key())
    };
    let reply = session
        .execute(
            &Command::new("UID SORT").raw(key).raw("UTF-8 ALL"),
            ErrorCode::ConnectionFailed,
        )
        .await?;
    Ok(reply.ids())
}

/// UIDs in the requested order, sorted here from the sort key alone. Ties keep mailbox order,
/// as SORT does; descending reverses the whole order, as REVERSE does.
async fn locally_sorted(
    session: &mut ImapSession,
    field: SortField,
    descending: bool,
) -> Result<Vec<u32>> {
    let items = match field {
        SortField::ReceivedDate => "(UID INTERNALDATE)",
        SortField::Size => "(UID RFC822.SIZE)",
        SortField::SentDate => "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE)])",
    };
    let reply = session
        .execute(
            &Command::new("UID FETCH 1:*").raw(items),
            ErrorCode::ConnectionFailed,
        )
        .await?;
    let mut keyed: Vec<(i64, u32)> = reply
        .fetches()
        .filter_map(|item| {
            let uid = item.uid?;
            let arrival = item
                .internal_date
                .as_deref()
                .and_then(internal_date_timestamp)
                .unwrap_or(0);
            let key = match field {
                SortField::ReceivedDate => arrival,
                SortField::Size => i64::from(item.size.unwrap_or(0)),
                // RFC 5256: the Date header, or the arrival time when it has none.
                SortField::SentDate => item
                    .body
                    .as_deref()
                    .and_then(|h| MessageParser::default().parse_headers(h))
                    .and_then(|m| m.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp()))
                    .unwrap_or(arrival),
            };
            Some((key, uid))
        })
        .collect();
    keyed.sort();
    if descending {
        keyed.reverse();
    }
    Ok(keyed.into_iter().map(|(_, uid)| uid).collect())
}

impl Operation for ListOperation {
    fn name(&self) -> &'static str {
        "imap:list"
    }

    fn protocol(&self) -> Protocol {
        Protocol::Imap
    }

    fn schema(&self) -> Value {
        operation_schema(
            Protocol::Imap,
            "List emails",
            "Lists the first messages of a folder in the chosen order; the server sorts.",
            json!({
                "folder": folder_field("Folder"),
                "maxToBeRead": max_to_be_read_field(),
                "sortField": {
                    "title": "Sort by",
                    "description": "Received date is when the server got the message, sent \
                                    date its Date header, size its size in bytes. The server \
                                    sorts when it supports IMAP SORT.",
                    "default": "RECEIVED_DATE",
                    "enum": ["RECEIVED_DATE", "SENT_DATE", "SIZE", null],
                    "x-template": { "choices": {
                        "RECEIVED_DATE": "Received date", "SENT_DATE": "Sent date", "SIZE": "Size"
                    } }
                },
                "sortOrder": sort_order_field()
            }),
            &[],
        )
    }

    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mailbox = target(&variables)?;
            let folder = folder(&variables, "folder");
            let limit = max_to_be_read(&variables);
            let field = SortField::parse(variables["sortField"].as_str());
            let descending = variables["sortOrder"].as_str() == Some("DESC");
            let mut session = self
                .pool
                .acquire(&mailbox.endpoint, &mailbox.authentication)
                .await?;
            let (_, exists) = session.select(&folder, false).await?;
            if exists == 0 {
                return Ok(Outcome::respond(json!([])));
            }
            let mut uids = if session.has("SORT") {
                server_sorted(&mut session, field, descending).await?
            } else {
                locally_sorted(&mut session, field, descending).await?
            };
            uids.truncate(limit);
            Ok(Outcome::respond(Value::Array(
                summaries(&mut session, &uids).await?,
            )))
        })
    }
}
