//! Which mail an operation acts on. A Message-ID is the sender's choice and any sender can
//! reuse it, so it names a mail only when exactly one in the folder carries it; a UID (under
//! its folder's UIDVALIDITY) is the server's and names one mail for good. With both, both must
//! match. See README "IMAP" for what a model gives and gets.

use mail_parser::MessageParser;
use serde_json::{Map, Value, json};

use super::common::{find_by_message_id, uid_sets};
use super::session::ImapSession;
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::mail::inputs::{ImapMail, ambiguous, bare_message_id};
use crate::mail::message::message_id;

/// What the folder holds of the mail an input names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// That one mail: its UID and its Message-ID as found (`None` when it has none).
    Found {
        uid: u32,
        message_id: Option<String>,
    },
    /// No such mail; the text says why (for `EMAIL_NOT_FOUND`, or a delete's `false`).
    Missing(String),
    /// The UID names a mail whose Message-ID is not the one given: not the mail the process
    /// means, so it is treated as missing, and no retry may take it for one done before.
    Other(String),
}

/// Finds the mail `wanted` names in the selected `folder`, whose UIDVALIDITY is `validity`.
/// A `uidValidity` other than the folder's is `EMAIL_NOT_FOUND`: the folder was recreated
/// and the UID may now name another mail. A Message-ID alone that several mails carry is
/// `EMAIL_AMBIGUOUS`, naming their UIDs.
pub async fn resolve(
    session: &mut ImapSession,
    folder: &str,
    validity: u32,
    wanted: &ImapMail,
) -> Result<Lookup> {
    if let Some(given) = wanted.uid_validity
        && given != validity
    {
        return Err(ImapError::new(
            ImapErrorKind::MessageMissing,
            format!(
                "folder '{folder}' has UIDVALIDITY {validity}, not {given} as given: it was \
                 recreated since, so UID {} may name another mail there now; list or search \
                 the folder again",
                wanted
                    .uid
                    .map_or_else(|| "…".to_string(), |u| u.to_string())
            ),
        )
        .into());
    }
    let Some(uid) = wanted.uid else {
        let id = wanted
            .message_id
            .as_ref()
            .map(|m| m.as_given().to_string())
            .unwrap_or_default();
        let (uids, as_found) = find_by_message_id(session, &id).await?;
        return match uids.as_slice() {
            [] => Ok(Lookup::Missing(format!(
                "no message {id} in folder '{folder}'"
            ))),
            [uid] => Ok(Lookup::Found {
                uid: *uid,
                message_id: as_found,
            }),
            several => Err(ambiguous(
                &id,
                &format!("in folder '{folder}'"),
                &several
                    .iter()
                    .map(|u| format!("UID {u}"))
                    .collect::<Vec<_>>(),
                "uid and uidValidity",
            )),
        };
    };
    let found = message_ids(session, &uid.to_string())
        .await?
        .into_iter()
        .find(|(u, _)| *u == uid);
    let Some((_, found_id)) = found else {
        return Ok(Lookup::Missing(format!(
            "no message with UID {uid} in folder '{folder}'"
        )));
    };
    if let Some(wanted_id) = &wanted.message_id
        && found_id.as_deref().map(bare_message_id) != Some(wanted_id.bare())
    {
        return Ok(Lookup::Other(format!(
            "UID {uid} in folder '{folder}' carries Message-ID {}, not {wanted_id}",
            found_id.as_deref().unwrap_or("(none)")
        )));
    }
    Ok(Lookup::Found {
        uid,
        message_id: found_id,
    })
}

/// [`resolve`] for an operation that needs the mail: its UID and Message-ID as found, or
/// `EMAIL_NOT_FOUND` saying why there is none.
pub async fn found(
    session: &mut ImapSession,
    folder: &str,
    validity: u32,
    wanted: &ImapMail,
) -> Result<(u32, Option<String>)> {
    match resolve(session, folder, validity, wanted).await? {
        Lookup::Found { uid, message_id } => Ok((uid, message_id)),
        Lookup::Missing(why) | Lookup::Other(why) => {
            Err(ImapError::new(ImapErrorKind::MessageMissing, why).into())
        }
    }
}

/// UID and Message-ID (as found; `None` when the mail has none) of each mail in `set` (a UID
/// set), in the order the server answers. Only the Message-ID header is fetched.
pub async fn message_ids(
    session: &mut ImapSession,
    set: &str,
) -> Result<Vec<(u32, Option<String>)>> {
    let fetch = Command::new("UID FETCH")
        .raw(set.to_string())
        // A Message-ID is at most 998 characters (RFC 5322): the field's first 4 KiB hold it,
        // and a server cannot send more.
        .raw("(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]<0.4096>)");
    Ok(session
        .execute(&fetch, ImapErrorKind::Refused)
        .await?
        .fetches()
        .filter_map(|item| {
            let uid = item.uid?;
            let id = item
                .body
                .as_deref()
                .and_then(|header| MessageParser::default().parse_headers(header))
                .as_ref()
                .and_then(message_id);
            Some((uid, id))
        })
        .collect())
}

/// UIDs (ascending) of `candidates` whose Message-ID is `bare` (without angle brackets), with
/// the first one's Message-ID as found.
pub async fn matching(
    session: &mut ImapSession,
    candidates: &[u32],
    bare: &str,
) -> Result<(Vec<u32>, Option<String>)> {
    let mut found = Vec::new();
    let mut as_found = None;
    for set in uid_sets(candidates) {
        for (uid, id) in message_ids(session, &set).await? {
            if let Some(id) = id
                && bare_message_id(&id) == bare
            {
                found.push(uid);
                as_found.get_or_insert(id);
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok((found, as_found))
}

/// `uid` and `uidValidity`, the fields that name a mail for good, as responses carry them.
pub fn fields(uid: impl Into<Option<u32>>, validity: u32) -> Map<String, Value> {
    let uid: Option<u32> = uid.into();
    let mut map = Map::new();
    map.insert("uid".into(), json!(uid));
    map.insert("uidValidity".into(), json!(validity));
    map
}
