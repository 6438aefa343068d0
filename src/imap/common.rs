//! What the IMAP operations share: their common input, finding a message by Message-ID, and
//! fetching the few headers a summary needs.

use std::collections::HashMap;

use serde_json::Value;

use super::guard::Allowance;
use super::session::ImapSession;
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::mail::inputs::{Connection, Imap, bare_message_id, decode};
use crate::mail::message::iso_utc;
use crate::mail::summary::{Listing, summary};
use crate::services::Services;

/// Connects step by step and describes each step, for the `check` subcommand.
pub async fn check(services: &Services, variables: &Value) -> Result<Vec<String>> {
    let input: Connection<Imap> = decode(variables.clone())?;
    let mailbox = input.target();
    let mut steps = Vec::new();
    let mut session = ImapSession::connect_noting(
        services,
        &mailbox.endpoint,
        &mailbox.authentication,
        &mut steps,
    )
    .await?;
    let namespace = session.namespace().await?;
    steps.push(format!(
        "imap: folder hierarchy delimiter {}, personal namespace prefix '{}'",
        namespace
            .delimiter
            .as_deref()
            .map_or("none".into(), |d| format!("'{d}'")),
        namespace.prefix
    ));
    let mailbox = session.mailbox(input.folder.path(), "/folder").await?;
    let (_, exists) = session.select_mailbox(&mailbox, false).await?;
    steps.push(format!(
        "imap: folder '{}' ('{}' on the server) holds {exists} message(s)",
        mailbox.shown, mailbox.name
    ));
    session.logout().await;
    Ok(steps)
}

/// The longest UID set we put on one command line. Servers cap a command line (Dovecot at
/// 64 KiB, others lower); 8 KiB leaves room for the rest of the command everywhere.
pub const MAX_SET_BYTES: usize = 8 * 1024;

/// `uids` as IMAP sequence sets (runs written `a:b`), split so that no set passes
/// [`MAX_SET_BYTES`]. Order and duplicates do not matter to the server, so the UIDs are sorted
/// and deduplicated first.
pub fn uid_sets(uids: &[u32]) -> Vec<String> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut sets = Vec::new();
    let mut current = String::new();
    let mut index = 0;
    while index < sorted.len() {
        let first = sorted[index];
        let mut last = first;
        while index + 1 < sorted.len() && sorted[index + 1] == last.saturating_add(1) {
            index += 1;
            last = sorted[index];
        }
        index += 1;
        let run = if first == last {
            first.to_string()
        } else {
            format!("{first}:{last}")
        };
        if !current.is_empty() && current.len() + 1 + run.len() > MAX_SET_BYTES {
            sets.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&run);
    }
    if !current.is_empty() {
        sets.push(current);
    }
    sets
}

/// UIDs (ascending) of the messages in the selected folder whose Message-ID is exactly `id`,
/// with the Message-ID as found in the first of them. The server's HEADER search matches
/// substrings, so each hit is checked.
pub async fn find_by_message_id(
    session: &mut ImapSession,
    id: &str,
) -> Result<(Vec<u32>, Option<String>)> {
    let bare = bare_message_id(id);
    let search = Command::new(if bare.is_ascii() {
        "UID SEARCH"
    } else {
        "UID SEARCH CHARSET UTF-8"
    })
    .raw("HEADER")
    .value("Message-ID")
    .value(bare.clone());
    let candidates = session
        .execute(&search, ImapErrorKind::Refused)
        .await?
        .ids();
    if candidates.is_empty() {
        return Ok((Vec::new(), None));
    }
    super::identity::matching(session, &candidates, &bare).await
}

/// `01-Feb-2024 10:00:00 +0100` (INTERNALDATE) as `2024-02-01T09:00:00Z`.
pub fn internal_date_iso(text: &str) -> Option<String> {
    internal_date_timestamp(text).and_then(iso_utc)
}

/// INTERNALDATE (`date-time` of RFC 3501: `" 1-Feb-2024 10:00:00 +0100"`, the day padded with a
/// space) as seconds since the epoch.
pub fn internal_date_timestamp(text: &str) -> Option<i64> {
    jiff::fmt::strtime::parse("%d-%b-%Y %H:%M:%S %z", text.trim())
        .and_then(|parsed| parsed.to_timestamp())
        .ok()
        .map(|timestamp| timestamp.as_second())
}

/// Messages whose summaries one FETCH asks for: with [`SUMMARY_HEADER_BYTES`] each, a reply
/// stays within a few MiB whatever the messages hold.
const SUMMARIES_PER_FETCH: usize = 100;

/// Header bytes a summary reads of a message (the fields it shows, as a partial fetch): a
/// subject or sender is kept to 1,000 characters, which even encoded and folded take far
/// less. A mail with a 5 MB subject lists with the first part of it.
pub const SUMMARY_HEADER_BYTES: u32 = 64 * 1024;

/// Summaries of `uids` of the selected folder (whose UIDVALIDITY is `validity`), in the order
/// given, each with the `uid` and `uidValidity` that name its mail for good, as many as fit
/// `max_bytes` of JSON (the listing is cut where the response budget ends, and nothing past it
/// is fetched). Only the headers a summary shows are fetched.
pub async fn summaries(
    session: &mut ImapSession,
    uids: &[u32],
    validity: u32,
    max_bytes: usize,
) -> Result<Vec<Value>> {
    let mut listing = Listing::new(max_bytes);
    for chunk in uids.chunks(SUMMARIES_PER_FETCH) {
        let mut by_uid: HashMap<u32, Value> = HashMap::new();
        for set in uid_sets(chunk) {
            let fetch = Command::new("UID FETCH").raw(set).raw(format!(
                "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT DATE)]<0.{SUMMARY_HEADER_BYTES}>)"
            ));
            let allowance =
                Allowance::fetching(chunk.len() as u64, u64::from(SUMMARY_HEADER_BYTES));
            for item in session
                .execute_within(&fetch, ImapErrorKind::Refused, allowance)
                .await?
                .fetches()
            {
                if let Some(uid) = item.uid.filter(|uid| chunk.contains(uid)) {
                    let received = item.internal_date.as_deref().and_then(internal_date_iso);
                    let headers = item.body.as_deref().unwrap_or_default();
                    let mut entry = summary(headers, item.size.map(u64::from), received);
                    entry.identity = super::identity::fields(uid, validity);
                    by_uid.insert(uid, crate::mail::response::to_json(&entry));
                }
            }
        }
        // A message expunged meanwhile by another client simply drops out.
        for uid in chunk {
            if let Some(entry) = by_uid.remove(uid)
                && !listing.push(entry)
            {
                return Ok(listing.finish(uids.len()));
            }
        }
    }
    Ok(listing.finish(uids.len()))
}

/// Whether EXPUNGE would remove only `ours`: used when the server lacks UIDPLUS.
pub async fn only_ours_deleted(session: &mut ImapSession, ours: &[u32]) -> Result<bool> {
    let flagged = session
        .execute(&Command::new("UID SEARCH DELETED"), ImapErrorKind::Refused)
        .await?
        .ids();
    Ok(flagged.iter().all(|uid| ours.contains(uid)))
}

/// Flags `uids` \Deleted and expunges exactly them. With UIDPLUS that is UID EXPUNGE; without,
/// a plain EXPUNGE is used only when no other message carries \Deleted, since it would remove
/// those too.
pub async fn expunge_only(session: &mut ImapSession, uids: &[u32]) -> Result<()> {
    if !session.has("UIDPLUS") && !only_ours_deleted(session, uids).await? {
        return Err(ImapError::new(
            ImapErrorKind::Busy,
            "the server lacks UIDPLUS and other messages in the folder are flagged \\Deleted; expunging now would remove them too",
        ).into());
    }
    let sets = uid_sets(uids);
    for set in &sets {
        session
            .execute(
                &Command::new("UID STORE")
                    .raw(set.clone())
                    .raw("+FLAGS.SILENT (\\Deleted)"),
                ImapErrorKind::Refused,
            )
            .await?;
    }
    if session.has("UIDPLUS") {
        for set in sets {
            session
                .execute(
                    &Command::new("UID EXPUNGE").raw(set),
                    ImapErrorKind::Refused,
                )
                .await?;
        }
    } else {
        session
            .execute(&Command::new("EXPUNGE"), ImapErrorKind::Refused)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_use_ranges_and_stay_under_the_line_limit() {
        assert_eq!(uid_sets(&[5, 1, 2, 3, 9, 10, 3]), ["1:3,5,9:10"]);
        assert!(uid_sets(&[]).is_empty());
        assert_eq!(
            uid_sets(&[u32::MAX - 1, u32::MAX]),
            [format!("{}:{}", u32::MAX - 1, u32::MAX)]
        );
        // maxToBeRead's ceiling of 10,000, every other UID of a large folder: no runs at all.
        let scattered: Vec<u32> = (0..10_000).map(|i| 1_000_000 + 2 * i).collect();
        let sets = uid_sets(&scattered);
        assert!(sets.len() > 1, "one set of {} bytes", sets[0].len());
        for set in &sets {
            assert!(set.len() <= MAX_SET_BYTES, "{} bytes", set.len());
        }
        let back: Vec<u32> = sets
            .iter()
            .flat_map(|s| s.split(','))
            .map(|n| n.parse().expect("a single UID"))
            .collect();
        assert_eq!(back, scattered, "every UID once, in order");
        // A contiguous 10,000 is one short range.
        let run: Vec<u32> = (1..=10_000).collect();
        assert_eq!(uid_sets(&run), ["1:10000"]);
    }

    #[test]
    fn internal_dates_become_utc() {
        assert_eq!(
            internal_date_iso("01-Feb-2024 10:00:00 +0100").as_deref(),
            Some("2024-02-01T09:00:00Z")
        );
        assert_eq!(
            internal_date_iso(" 1-Jan-1970 00:00:00 +0000").as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            internal_date_iso("29-Feb-2000 23:30:00 -0130").as_deref(),
            Some("2000-03-01T01:00:00Z")
        );
        assert_eq!(internal_date_iso("garbage"), None);
        assert_eq!(
            internal_date_iso("21-Nov-2026 23:12:49 +0000").as_deref(),
            Some("2026-11-21T23:12:49Z")
        );
    }
}
