//! The summary of one message as list and search return it (IMAP and POP3 alike), and the
//! response budget applied to a list of them.
//!
//! A summary carries text a stranger wrote (subject, sender), so each text is capped: one mail
//! with a 5 MB subject must not make every listing that includes it too large to report.

use mail_parser::MessageParser;
use serde_json::{Map, Value};

use super::message::{from_address, message_id, sent_date};
use super::response::MessageSummary;

/// Characters kept of a summary's subject or sender; a longer one ends in `…`.
pub const MAX_TEXT_CHARS: usize = 1000;

/// RFC 5322 §2.1.1: no line may exceed 998 characters, and a Message-ID cannot be folded, so a
/// longer one is not a Message-ID (and could not be found again by it).
const MAX_MESSAGE_ID_CHARS: usize = 998;

fn capped(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The summary of a message from its header block: `size` is the server's size of the whole
/// message, `received` its arrival time where the protocol knows it.
pub fn summary(headers: &[u8], size: Option<u64>, received: Option<String>) -> MessageSummary {
    let ended;
    let headers = if headers.ends_with(b"\n\r\n") || headers.ends_with(b"\n\n") {
        headers
    } else {
        // A header block kept to a cap ends anywhere: the parser drops a field that is cut
        // off, so the block ends at its last whole line, and with the blank line it lacks.
        let whole = headers
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(headers, |at| &headers[..=at]);
        ended = [whole, b"\r\n"].concat();
        &ended
    };
    let parsed = MessageParser::default().parse_headers(headers);
    MessageSummary {
        message_id: parsed
            .as_ref()
            .and_then(message_id)
            .filter(|id| id.chars().count() <= MAX_MESSAGE_ID_CHARS),
        from_address: parsed.as_ref().and_then(from_address).map(|a| capped(&a)),
        subject: parsed.as_ref().and_then(|m| m.subject().map(capped)),
        size,
        received_date_time: received,
        sent_date: parsed.as_ref().and_then(sent_date),
        identity: Map::new(),
    }
}

/// Keeps the leading entries whose serialized array fits `max_bytes` (the response budget of
/// README "Response budget"): a listing stays answerable however long its entries are; the
/// model pages with a smaller `maxToBeRead`. Dropping entries is logged.
pub fn within_budget(entries: Vec<Value>, max_bytes: usize) -> Vec<Value> {
    let total = entries.len();
    let mut listing = Listing::new(max_bytes);
    for entry in entries {
        if !listing.push(entry) {
            break;
        }
    }
    listing.finish(total)
}

/// A listing built entry by entry within the response budget (see [`within_budget`]), so
/// that entries past it are never held: the operations that fetch summaries in chunks stop
/// fetching once it is full.
#[derive(Debug)]
pub struct Listing {
    kept: Vec<Value>,
    /// `[` and `]`, then each entry and its comma.
    used: usize,
    max_bytes: usize,
    full: bool,
}

impl Listing {
    pub fn new(max_bytes: usize) -> Listing {
        Listing {
            kept: Vec::new(),
            used: 2,
            max_bytes,
            full: false,
        }
    }

    /// Adds the next entry if it fits; false once the budget is spent (this entry and every
    /// later one are left out).
    pub fn push(&mut self, entry: Value) -> bool {
        if self.full {
            return false;
        }
        let size = serde_json::to_string(&entry).map_or(usize::MAX, |s| s.len());
        self.used = self.used.saturating_add(size).saturating_add(1);
        if self.used > self.max_bytes {
            self.full = true;
            return false;
        }
        self.kept.push(entry);
        true
    }

    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The entries kept of `total`; the ones left out are logged.
    pub fn finish(self, total: usize) -> Vec<Value> {
        if self.kept.len() < total {
            tracing::warn!(
                kept = self.kept.len(),
                dropped = total - self.kept.len(),
                "the listing was cut to the response budget (EMAIL_MAX_RESPONSE_BYTES)"
            );
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostile_headers_are_capped() {
        let subject = "ü".repeat(5 * MAX_TEXT_CHARS);
        let id = format!("<{}@example.test>", "x".repeat(2000));
        let headers = format!(
            "Message-ID: {id}\r\nFrom: {}@example.test\r\nSubject: {subject}\r\n\r\n",
            "s".repeat(3000)
        );
        let v = summary(headers.as_bytes(), Some(1), None);
        let kept = v.subject.as_deref().unwrap();
        assert_eq!(kept.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(kept.ends_with('…') && subject.starts_with(kept.trim_end_matches('…')));
        assert_eq!(v.message_id, None);
        assert_eq!(
            v.from_address.as_deref().unwrap().chars().count(),
            MAX_TEXT_CHARS + 1
        );
        // A block cut to a cap, in the middle of a folded subject or after a whole line.
        let cut = b"Message-ID: <a@b>\r\nSubject: first\r\n second\r\n thi";
        let subject = |block: &[u8]| summary(block, Some(1), None).subject;
        assert_eq!(subject(cut).as_deref(), Some("first second"));
        assert_eq!(subject(&cut[..44]).as_deref(), Some("first second"));
        let fine = summary(b"Message-ID: <a@b>\r\nSubject: hi\r\n\r\n", Some(1), None);
        assert_eq!(fine.message_id.as_deref(), Some("<a@b>"));
        assert_eq!(
            keys(&crate::mail::response::to_json(&fine)),
            [
                "messageId",
                "fromAddress",
                "subject",
                "size",
                "receivedDateTime",
                "sentDate"
            ]
        );
    }

    fn keys(value: &Value) -> Vec<String> {
        value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_listing_keeps_the_leading_entries_that_fit() {
        let entries: Vec<Value> = (0..100)
            .map(|i| json!({ "n": i, "pad": "x".repeat(90) }))
            .collect();
        let one = serde_json::to_string(&entries[0]).unwrap().len();
        let kept = within_budget(entries.clone(), 2 + 10 * (one + 1));
        assert_eq!(kept.len(), 10);
        assert_eq!(kept[9]["n"], 9);
        assert!(serde_json::to_string(&kept).unwrap().len() <= 2 + 10 * (one + 1));
        assert_eq!(within_budget(entries, usize::MAX).len(), 100);
    }
}
