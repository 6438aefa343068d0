//! `imap:list`: the first `maxToBeRead` messages of a folder in the requested order.
//!
//! Sort first, then limit, and let the server do both when it can: with ESORT (RFC 5267) it
//! returns only the first `maxToBeRead` UIDs (`RETURN (PARTIAL 1:n)`), with SORT (RFC 5256)
//! all of them in order; either way only the selected messages' headers cross the network,
//! however large the folder. Without SORT only UIDs and the sort key are fetched for all
//! messages, never bodies.

use std::collections::BinaryHeap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use mail_parser::MessageParser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::common::{internal_date_timestamp, summaries};
use super::esearch;
use super::pool::ImapPool;
use super::response::Reply;
use super::session::{Capture, ImapSession};
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::ImapErrorKind;
use crate::mail::inputs::{Folder, Imap, Login, MaxToBeRead, Server, SortOrder};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:list` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "List emails",
    description = "Lists the first messages of a folder in the chosen order; the server sorts."
)]
pub struct ListInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(default)]
    pub max_to_be_read: MaxToBeRead,
    #[serde(default)]
    pub sort_field: SortField,
    #[serde(default)]
    pub sort_order: SortOrder,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schemars(
    title = "Sort by",
    description = "Received date is when the server got the message, sent date its Date header, \
                   size its size in bytes. The server sorts when it supports IMAP SORT.",
    extend("x-template" = { "choices": {
        "RECEIVED_DATE": "Received date", "SENT_DATE": "Sent date", "SIZE": "Size"
    } })
)]
pub enum SortField {
    #[default]
    ReceivedDate,
    SentDate,
    Size,
}

impl SortField {
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
    /// The response budget (`EMAIL_MAX_RESPONSE_BYTES`): a listing keeps the leading entries
    /// that fit.
    pub max_response_bytes: usize,
}

/// The SORT program's key list: `(REVERSE ARRIVAL)`.
fn sort_criteria(field: SortField, descending: bool) -> String {
    if descending {
        format!("(REVERSE {})", field.sort_key())
    } else {
        format!("({})", field.sort_key())
    }
}

/// Whether the server takes `UID SORT RETURN (PARTIAL ...)`: ESORT with a context extension
/// (RFC 5267 defines PARTIAL there; Dovecot announces CONTEXT=SEARCH and answers it for SORT
/// too) or the PARTIAL extension (RFC 9394).
fn offers_partial_sort(session: &ImapSession) -> bool {
    session.has("ESORT")
        && (session.has("CONTEXT=SORT") || session.has("CONTEXT=SEARCH") || session.has("PARTIAL"))
}

/// The first `limit` UIDs in the requested order, the server sorting and cutting. `None` when
/// the server refused the command or answered in a way that cannot be read: the caller then
/// asks for the whole order, which every SORT server answers.
async fn server_sorted_partial(
    session: &mut ImapSession,
    field: SortField,
    descending: bool,
    limit: usize,
) -> Result<Option<Vec<u32>>> {
    let command = Command::new("UID SORT")
        .raw(format!(
            "RETURN (PARTIAL 1:{})",
            limit.clamp(1, u32::MAX as usize)
        ))
        .raw(sort_criteria(field, descending))
        .raw("UTF-8 ALL");
    let (reply, captured) = session
        .execute_capturing(
            &command,
            Capture::Esearch,
            ImapErrorKind::Refused,
            ImapErrorKind::Refused,
        )
        .await;
    match reply {
        Ok(_) => {}
        Err(e) if !session.reusable() => return Err(e.into()),
        Err(_) => return Ok(None),
    }
    let mut answers = captured
        .iter()
        .map(|data| esearch::partial_uids(data, limit));
    Ok(match (answers.next(), answers.next()) {
        (Some(uids), None) => uids,
        // No ESEARCH at all is "nothing matched" only if the server said it with one; two
        // answers to one command are not to be chosen between.
        _ => None,
    })
}

/// UIDs in the requested order, sorted by the server.
async fn server_sorted(
    session: &mut ImapSession,
    field: SortField,
    descending: bool,
) -> Result<Vec<u32>> {
    let key = sort_criteria(field, descending);
    let reply = session
        .execute(
            &Command::new("UID SORT").raw(key).raw("UTF-8 ALL"),
            ImapErrorKind::Refused,
        )
        .await?;
    Ok(reply.ids())
}

/// Messages one FETCH of sort keys covers, by sequence number: a folder of any size is read
/// in replies of a few hundred KiB, and only the keys are kept (16 bytes a message).
const KEYS_PER_FETCH: u32 = 2_000;

/// The first `limit` UIDs in the requested order, sorted here from the sort key alone. Ties
/// keep mailbox order, as SORT does; descending reverses the whole order, as REVERSE does.
/// `exists` is the folder's message count at SELECT. Only the best `limit` keys are held
/// while the folder is read, so memory follows the limit, not the folder (or what a server
/// claims it holds).
async fn locally_sorted(
    session: &mut ImapSession,
    field: SortField,
    descending: bool,
    exists: u32,
    limit: usize,
) -> Result<Vec<u32>> {
    let items = match field {
        SortField::ReceivedDate => "(UID INTERNALDATE)",
        SortField::Size => "(UID RFC822.SIZE)",
        // A Date header is some 40 bytes: its first KiB is plenty.
        SortField::SentDate => "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE)]<0.1024>)",
    };
    // Keys in ascending order of what is wanted first; `!` reverses an order without overflow.
    let order = |(key, uid): (i64, u32)| {
        let uid = i64::from(uid);
        if descending { (!key, !uid) } else { (key, uid) }
    };
    let mut best: BinaryHeap<(i64, i64)> = BinaryHeap::new();
    let mut first: u32 = 1;
    loop {
        let last = first.saturating_add(KEYS_PER_FETCH - 1);
        // The last range is open-ended: mail that arrived since SELECT is listed too.
        let range = if last >= exists {
            format!("{first}:*")
        } else {
            format!("{first}:{last}")
        };
        let reply = session
            .execute(
                &Command::new("FETCH").raw(range).raw(items),
                ImapErrorKind::Refused,
            )
            .await?;
        for keyed in sort_keys(reply, field) {
            best.push(order(keyed));
            if best.len() > limit {
                best.pop();
            }
        }
        if last >= exists {
            break;
        }
        first = last + 1;
    }
    Ok(best
        .into_sorted_vec()
        .into_iter()
        .filter_map(|(_, uid)| u32::try_from(if descending { !uid } else { uid }).ok())
        .collect())
}

/// The sort key and UID of each message in a FETCH reply.
fn sort_keys(reply: Reply, field: SortField) -> Vec<(i64, u32)> {
    reply
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
        .collect()
}

impl MailOperation for ListOperation {
    type Input = ListInput;
    const NAME: &'static str = "imap:list";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: ListInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let field = input.sort_field;
            let descending = input.sort_order == SortOrder::Desc;
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let (validity, exists) = session.open(&input.folder, false).await?;
            if exists == 0 {
                return Ok(Outcome::respond(json!([])));
            }
            let limit = input.max_to_be_read.0;
            let partial = if offers_partial_sort(&session) {
                server_sorted_partial(&mut session, field, descending, limit).await?
            } else {
                None
            };
            let mut uids = if let Some(uids) = partial {
                uids
            } else if session.has("SORT") {
                server_sorted(&mut session, field, descending).await?
            } else {
                locally_sorted(
                    &mut session,
                    field,
                    descending,
                    exists,
                    input.max_to_be_read.0,
                )
                .await?
            };
            uids.truncate(input.max_to_be_read.0);
            let entries = summaries(&mut session, &uids, validity, self.max_response_bytes).await?;
            Ok(Outcome::respond(Value::Array(entries)))
        })
    }
}
