//! Criteria evaluated here, as IMAP SEARCH evaluates them (case-insensitive substring), for
//! protocols that have no search of their own (POP3).

use super::{Criterion, Date, TextField};

/// What local evaluation sees of a message: its headers, and its bodies once downloaded.
pub struct MessageView {
    /// (lower-case name, decoded lower-case value) of every header.
    headers: Vec<(String, String)>,
    subject: String,
    date: Option<Date>,
    /// Text and HTML bodies, lower-cased; None until the message itself is fetched.
    body: Option<String>,
}

impl MessageView {
    /// A view of a message or of its headers alone (`with_body` false).
    pub fn new(raw: &[u8], with_body: bool) -> MessageView {
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let headers = parsed
            .as_ref()
            .map(|m| {
                m.headers_raw()
                    .map(|(n, v)| {
                        (
                            n.to_lowercase(),
                            crate::mail::message::header_text(v).to_lowercase(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let subject = parsed
            .as_ref()
            .and_then(|m| m.subject())
            .unwrap_or("")
            .to_lowercase();
        let date = parsed
            .as_ref()
            .and_then(|m| m.date())
            .filter(|d| d.is_valid())
            .map(|d| Date {
                year: d.year,
                month: d.month,
                day: d.day,
            });
        let body = with_body.then(|| {
            parsed
                .as_ref()
                .map(|m| {
                    let mut text = String::new();
                    for part in m.text_bodies().chain(m.html_bodies()) {
                        if let Some(t) = part.text_contents() {
                            text.push_str(t);
                            text.push('\n');
                        }
                    }
                    text.to_lowercase()
                })
                .unwrap_or_default()
        });
        MessageView {
            headers,
            subject,
            date,
            body,
        }
    }

    fn header_contains(&self, name: &str, needle: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n == name && v.contains(needle))
    }
}

impl Criterion {
    /// Evaluates the criterion the way IMAP SEARCH does (case-insensitive substring).
    /// `None` means undecided: the answer depends on a body the view does not have yet.
    /// POP3 has no flags, so every message counts as unseen; dates compare the Date header.
    pub fn evaluate(&self, view: &MessageView) -> Option<bool> {
        match self {
            Criterion::Text { field, value } => {
                let needle = value.to_lowercase();
                match field {
                    TextField::From => Some(view.header_contains("from", &needle)),
                    TextField::To => Some(view.header_contains("to", &needle)),
                    TextField::Cc => Some(view.header_contains("cc", &needle)),
                    TextField::Subject => Some(view.subject.contains(&needle)),
                    TextField::Body => view.body.as_ref().map(|b| b.contains(&needle)),
                }
            }
            Criterion::Header { name, value } => {
                Some(view.header_contains(&name.to_lowercase(), &value.to_lowercase()))
            }
            Criterion::Since(date) => Some(view.date.is_some_and(|d| d >= *date)),
            Criterion::Before(date) => Some(view.date.is_some_and(|d| d < *date)),
            Criterion::Seen => Some(false),
            Criterion::Unseen => Some(true),
            Criterion::Not(inner) => inner.evaluate(view).map(|b| !b),
            Criterion::And(items) => {
                let mut undecided = false;
                for item in items {
                    match item.evaluate(view) {
                        Some(false) => return Some(false),
                        None => undecided = true,
                        Some(true) => {}
                    }
                }
                if undecided { None } else { Some(true) }
            }
            Criterion::Or(items) => {
                let mut undecided = false;
                for item in items {
                    match item.evaluate(view) {
                        Some(true) => return Some(true),
                        None => undecided = true,
                        Some(false) => {}
                    }
                }
                if undecided { None } else { Some(false) }
            }
        }
    }
}
