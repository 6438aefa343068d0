//! Fitting a read response into `EMAIL_MAX_RESPONSE_BYTES` of serialized JSON (docs/
//! configuration.md), so a completion stays below the gateway's message limit.
//!
//! In order: headers beyond a quarter of the budget go (a prefix stays), attachment contents
//! go (largest first, each keeping its metadata and getting `truncated: true`), then
//! `htmlBody` and `plainTextBody` are cut to prefixes. Sizes are measured as serde_json
//! writes them, each field once, so the cost stays linear in the response.

use serde::Serialize;

use super::response::ReadMessage;

/// Room kept for the `"truncated":true` member the caller adds.
const RESERVE: usize = 32;

/// Counts the bytes serde_json would write, without writing them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serialized size of a value, in bytes.
pub fn json_len(value: &impl Serialize) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and the response's types always serialize.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Serialized size of one char inside a JSON string, as serde_json escapes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `text` whose JSON string (quotes included) takes at most `max`.
pub fn cut_to(text: &str, max: usize) -> &str {
    let mut used = 2;
    for (index, c) in text.char_indices() {
        used += escaped_len(c);
        if used > max {
            return &text[..index];
        }
    }
    text
}

/// Shrinks `response` until it serializes within `budget` bytes. Returns whether anything
/// was cut; the caller then sets `truncated`.
pub fn fit(response: &mut ReadMessage, budget: usize) -> bool {
    let budget = budget.saturating_sub(RESERVE);
    let mut total = json_len(response);
    if total <= budget {
        return false;
    }
    cap_headers(response, budget / 4, &mut total);
    if total > budget {
        drop_contents(response, budget, &mut total);
    }
    if total > budget {
        cut_bodies(response, budget, &mut total);
    }
    if total > budget {
        last_resort(response, budget);
    }
    true
}

/// Keeps the longest prefix of headers that fits `cap`.
fn cap_headers(response: &mut ReadMessage, cap: usize, total: &mut usize) {
    let headers = &mut response.headers;
    let mut used = 2;
    let mut keep = headers.len();
    for (index, header) in headers.iter().enumerate() {
        used += json_len(header) + 1;
        if used > cap {
            keep = index;
            break;
        }
    }
    if keep < headers.len() {
        let removed: usize = headers[keep..].iter().map(|h| json_len(h) + 1).sum();
        headers.truncate(keep);
        *total = total.saturating_sub(removed);
    }
}

fn drop_contents(response: &mut ReadMessage, budget: usize, total: &mut usize) {
    let attachments = &mut response.attachments;
    let mut sized: Vec<(usize, usize)> = attachments
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some((i, json_len(&a.content.as_deref()?))))
        .collect();
    sized.sort_by_key(|s| std::cmp::Reverse(s.1));
    for (index, content_len) in sized {
        if *total <= budget {
            break;
        }
        let attachment = &mut attachments[index];
        attachment.content = None;
        attachment.truncated = true;
        // `,"content":<content>` out, `,"truncated":true` in.
        *total = (*total + 17).saturating_sub(content_len + 11);
    }
}

fn cut_bodies(response: &mut ReadMessage, budget: usize, total: &mut usize) {
    let (plain, html) = (
        json_len(&response.plain_text_body),
        json_len(&response.html_body),
    );
    let others = total.saturating_sub(plain + html);
    let room = budget.saturating_sub(others);
    // The shorter body keeps what it has when it fits in half; the other gets the rest.
    let (plain_max, html_max) = if plain <= room / 2 {
        (plain, room - plain)
    } else if html <= room / 2 {
        (room - html, html)
    } else {
        (room / 2, room - room / 2)
    };
    for (body, max, had) in [
        (&mut response.plain_text_body, plain_max, plain),
        (&mut response.html_body, html_max, html),
    ] {
        if had <= max {
            continue;
        }
        if let Some(text) = body {
            let keep = cut_to(text, max).len();
            text.truncate(keep);
            *total = total.saturating_sub(had) + json_len(text);
        }
    }
}

/// Metadata alone is over the budget (a huge subject, thousands of attachments): trim those
/// too, measuring once more.
fn last_resort(response: &mut ReadMessage, budget: usize) {
    for text in [
        &mut response.subject,
        &mut response.message_id,
        &mut response.from_address,
    ]
    .into_iter()
    .flatten()
    {
        let keep = cut_to(text, 1024).len();
        text.truncate(keep);
    }
    let mut total = json_len(response);
    while total > budget {
        let Some(last) = response.attachments.pop() else {
            break;
        };
        total = total.saturating_sub(json_len(&last) + 1);
    }
    while total > budget {
        let Some(last) = response.headers.pop() else {
            break;
        };
        total = total.saturating_sub(json_len(&last) + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::response::{Attachment, Header};

    fn attachment(name: &str, content: Option<String>) -> Attachment {
        Attachment {
            file_name: name.into(),
            content,
            ..Attachment::default()
        }
    }

    #[test]
    fn cuts_respect_escaping_and_char_boundaries() {
        assert_eq!(cut_to("abc", 5), "abc");
        assert_eq!(cut_to("abc", 4), "ab");
        assert_eq!(cut_to("a\"b", 4), "a");
        assert_eq!(cut_to("a\u{1}b", 8), "a");
        assert_eq!(cut_to("a\u{1}b", 9), "a\u{1}");
        assert_eq!(cut_to("€€", 5), "€");
        assert_eq!(cut_to("€€", 4), "");
        assert_eq!(cut_to("", 0), "");
    }

    #[test]
    fn small_responses_are_left_alone() {
        let mut v = ReadMessage {
            plain_text_body: Some("hi".into()),
            ..ReadMessage::default()
        };
        let before = v.clone();
        assert!(!fit(&mut v, 1000));
        assert_eq!(v, before);
    }

    #[test]
    fn attachment_contents_go_first_then_bodies() {
        let big = "Q".repeat(4000);
        let mut v = ReadMessage {
            plain_text_body: Some("p".repeat(500)),
            html_body: Some("h".repeat(500)),
            attachments: vec![
                attachment("a", Some(big.clone())),
                attachment("b", Some("QUJD".into())),
            ],
            ..ReadMessage::default()
        };
        assert!(fit(&mut v, 2000));
        assert!(json_len(&v) <= 2000 - RESERVE);
        assert!(v.attachments[0].truncated);
        assert_eq!(v.attachments[0].content, None);
        assert_eq!(v.attachments[0].file_name, "a");
        // The small one still fits, and the bodies are untouched.
        assert_eq!(v.attachments[1].content.as_deref(), Some("QUJD"));
        assert_eq!(v.plain_text_body.as_deref().map(str::len), Some(500));

        let plain = "p\n".repeat(3000);
        let html = "<b>\"x\"</b>".repeat(300);
        let mut v = ReadMessage {
            plain_text_body: Some(plain.clone()),
            html_body: Some(html.clone()),
            attachments: vec![attachment("a", Some("QUJD".repeat(100)))],
            ..ReadMessage::default()
        };
        assert!(fit(&mut v, 3000));
        assert!(json_len(&v) <= 3000 - RESERVE, "{}", json_len(&v));
        assert_eq!(v.attachments[0].content, None);
        let p = v.plain_text_body.as_deref().unwrap();
        let h = v.html_body.as_deref().unwrap();
        assert!(plain.starts_with(p) && html.starts_with(h));
        assert!(!p.is_empty() && !h.is_empty());
    }

    #[test]
    fn a_short_body_keeps_all_and_the_long_one_takes_the_rest() {
        let mut v = ReadMessage {
            plain_text_body: Some("short".into()),
            html_body: Some("x".repeat(10_000)),
            ..ReadMessage::default()
        };
        assert!(fit(&mut v, 1000));
        assert_eq!(v.plain_text_body.as_deref(), Some("short"));
        let used = json_len(&v);
        assert!(used <= 1000 - RESERVE, "{used}");
        // The long body fills what is left, to within one escaped character.
        assert!(used + 6 >= 1000 - RESERVE, "{used}");
    }

    #[test]
    fn headers_and_metadata_are_capped_too() {
        let headers = (0..100_000)
            .map(|i| Header {
                header: format!("X-H{i}"),
                value: "v".into(),
            })
            .collect();
        let mut v = ReadMessage {
            subject: Some("s".repeat(50_000)),
            headers,
            attachments: (0..10_000)
                .map(|i| attachment(&format!("f{i}"), None))
                .collect(),
            ..ReadMessage::default()
        };
        assert!(fit(&mut v, 10_000));
        assert!(json_len(&v) <= 10_000, "{}", json_len(&v));
        assert!(!v.headers.is_empty());
        assert_eq!(v.headers[0].header, "X-H0");
    }
}
