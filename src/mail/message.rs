//! A raw RFC 5322 message turned into the read response (docs/operations.md,
//! `email:imap:read:1`), shared by IMAP and POP3.
//!
//! Bodies come out as UTF-8 whatever their charset and transfer encoding; headers keep their
//! order with encoded words decoded; attachments carry their original bytes (base64) up to a
//! size limit. A malformed message gives whatever can be read; nothing here can panic on input.
//! Messages arrive pruned and repaired (see [`super::prune`]); the response is then fitted to
//! the budget (see [`super::budget`]). Memory follows the budget, not the message: mail-parser
//! holds the pruned message and an entry per part, and the pruner keeps that message to a
//! small multiple of the budget and at most [`super::prune::MAX_PARTS`] parts, whatever came in.

use base64::Engine;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Encoding, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde_json::{Map, Value};

use super::budget;
use super::normalize::sanitize_file_name;
use super::prune::{CutReason, Limits, Pruned, marker_name, parse_marker};
use super::response::{Attachment, Header, ReadMessage};

/// What the server knows about a message besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// The server's size of the whole message (IMAP RFC822.SIZE, POP3 LIST).
    pub size: u64,
    /// When the server received it (IMAP INTERNALDATE), as ISO-8601 UTC.
    pub received: Option<String>,
    /// The fields that name the stored mail for good (`uid` and `uidValidity`, or `uidl`),
    /// part of the response and so of its budget.
    pub identity: Map<String, Value>,
}

/// The `messageId` of a message as the contract defines it: the Message-ID header as found,
/// angle brackets included.
pub fn message_id(message: &Message<'_>) -> Option<String> {
    message
        .header_raw("Message-ID")
        .map(|raw| raw.split_whitespace().collect::<Vec<_>>().join(""))
        .filter(|id| !id.is_empty())
}

/// The bare address of the first From mailbox; for `From: foo` (no domain, which
/// mail-parser reads as a name) that word, as Python's `email` would give it.
pub fn from_address(message: &Message<'_>) -> Option<String> {
    message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address().or(a.name()))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`; None outside the years
/// -9999 to 9999 (a forged Date header can claim any number).
pub fn iso_utc(timestamp: i64) -> Option<String> {
    jiff::Timestamp::from_second(timestamp)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The Date header in UTC, if it parses.
pub fn sent_date(message: &Message<'_>) -> Option<String> {
    message
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| iso_utc(d.to_timestamp()))
}

/// A header value with folding removed and encoded words decoded.
pub fn header_text(raw: &str) -> String {
    let mut bytes = raw.as_bytes().to_vec();
    if !bytes.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&bytes).parse_unstructured() {
        HeaderValue::Text(text) => text.trim().to_string(),
        HeaderValue::TextList(list) => list.join(" "),
        _ => raw.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The bytes of a part as they were before transfer encoding: text parts too, so a
/// windows-1252 attachment downloads as windows-1252, not as our UTF-8 rendering of it.
fn original_bytes(raw: &[u8], part: &MessagePart<'_>) -> Vec<u8> {
    if let PartType::Message(nested) = &part.body {
        return nested.raw_message().to_vec();
    }
    let start = part.offset_body as usize;
    let end = (part.offset_end as usize).min(raw.len());
    let Some(body) = raw.get(start..end) else {
        return part.contents().to_vec();
    };
    let decoded = match part.encoding {
        Encoding::Base64 => base64_decode(body),
        Encoding::QuotedPrintable => quoted_printable_decode(body),
        Encoding::None => Some(body.to_vec()),
    };
    decoded.unwrap_or_else(|| part.contents().to_vec())
}

fn content_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None if matches!(part.body, PartType::Message(_)) => "message/rfc822".into(),
        None => "text/plain".into(),
    }
}

/// The marker the pruner left on a part whose body it cut: real size and reason.
fn cut_marker(raw: &[u8], part: &MessagePart<'_>) -> Option<(u64, CutReason)> {
    let header = part
        .headers()
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(marker_name()))?;
    let value = raw.get(header.offset_start as usize..header.offset_end as usize)?;
    parse_marker(&String::from_utf8_lossy(value))
}

fn attachment_of(raw: &[u8], part: &MessagePart<'_>, index: usize, max_bytes: usize) -> Attachment {
    let cut = cut_marker(raw, part);
    // Binary parts are already decoded by the parser; only text parts need their original
    // bytes recovered, and a part too large to return is never decoded a second time.
    let decoded_len = match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.len()),
        _ => None,
    };
    let bytes = match decoded_len {
        _ if cut.is_some() => Vec::new(),
        Some(len) if len > max_bytes => Vec::new(),
        _ => original_bytes(raw, part),
    };
    let size = cut.map_or(decoded_len.unwrap_or(bytes.len()), |(size, _)| {
        size as usize
    });
    let file_name = part
        .attachment_name()
        .map(|name| sanitize_file_name(name, index))
        .unwrap_or_else(|| match &part.body {
            PartType::Message(nested) => sanitize_file_name(
                &format!("{}.eml", nested.subject().unwrap_or("message")),
                index,
            ),
            _ => format!("attachment-{}", index + 1),
        });
    let whole = size <= max_bytes && cut.is_none();
    Attachment {
        file_name,
        content_type: content_type_of(part),
        size: size as u64,
        inline: part.content_disposition().is_some_and(|d| d.is_inline()),
        content_id: part
            .content_id()
            .map(|id| id.trim_matches(['<', '>']).to_string()),
        content: whole.then(|| base64::engine::general_purpose::STANDARD.encode(&bytes)),
        truncated: !whole,
        ..Attachment::default()
    }
}

/// The first text/plain body, or None when the message has only HTML (mail-parser would
/// offer a conversion of the HTML, which is not what the sender wrote).
fn plain_text(message: &Message<'_>) -> Option<String> {
    message
        .text_bodies()
        .find(|part| matches!(part.body, PartType::Text(_)))
        .and_then(|part| part.text_contents().map(str::to_string))
}

fn html_text(message: &Message<'_>) -> Option<String> {
    message
        .html_bodies()
        .find(|part| matches!(part.body, PartType::Html(_)))
        .and_then(|part| part.text_contents().map(str::to_string))
}

/// The read response for `raw` under the default response budget. `max_attachment_bytes`
/// bounds each attachment's content. (The operations prune as they fetch and call [`respond`];
/// this whole-message form serves the tests.)
#[cfg(test)]
pub(crate) fn read_response(raw: &[u8], envelope: &Envelope, max_attachment_bytes: usize) -> Value {
    read_response_within(
        raw,
        envelope,
        Limits {
            max_attachment_bytes,
            max_response_bytes: crate::operation::DEFAULT_MAX_RESPONSE_BYTES,
        },
    )
}

/// The read response for a whole message held in memory, within `limits`.
#[cfg(test)]
pub(crate) fn read_response_within(raw: &[u8], envelope: &Envelope, limits: Limits) -> Value {
    respond(super::prune::prune(raw, limits), envelope, limits)
}

/// The read response for a pruned message (see [`crate::mail::prune`]), fitted to the budget,
/// as JSON.
pub fn respond(pruned: Pruned, envelope: &Envelope, limits: Limits) -> Value {
    super::response::to_json(&read_message(pruned, envelope, limits))
}

/// The read response for a pruned message, fitted to the budget. `truncated` is always
/// present: true when the budget cut anything.
pub fn read_message(pruned: Pruned, envelope: &Envelope, limits: Limits) -> ReadMessage {
    let mut cut = pruned.budget_cut;
    let mut response = build(&pruned.raw, envelope, limits.max_attachment_bytes, &mut cut);
    response.identity = envelope.identity.clone();
    cut |= budget::fit(&mut response, limits.max_response_bytes);
    response.truncated = cut;
    response
}

fn build(
    raw: &[u8],
    envelope: &Envelope,
    max_attachment_bytes: usize,
    cut: &mut bool,
) -> ReadMessage {
    let Some(message) = MessageParser::default().parse(raw) else {
        return ReadMessage {
            size: envelope.size,
            plain_text_body: Some(String::from_utf8_lossy(raw).into_owned()),
            received_date_time: envelope.received.clone(),
            ..ReadMessage::default()
        };
    };
    let marker = marker_name();
    let headers = message
        .headers_raw()
        .filter(|(name, _)| !name.eq_ignore_ascii_case(marker))
        .map(|(name, value)| Header {
            header: name.to_string(),
            value: header_text(value),
        })
        .collect();
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            if let Some((_, CutReason::Budget)) = cut_marker(raw, part) {
                *cut = true;
            }
            attachment_of(raw, part, i, max_attachment_bytes)
        })
        .collect();
    ReadMessage {
        message_id: message_id(&message),
        from_address: from_address(&message),
        subject: message.subject().map(str::to_string),
        size: envelope.size,
        plain_text_body: plain_text(&message),
        html_body: html_text(&message),
        headers,
        received_date_time: envelope.received.clone(),
        sent_date: sent_date(&message),
        attachments,
        identity: Map::new(),
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(raw: &str) -> Value {
        read_response(
            raw.as_bytes(),
            &Envelope {
                size: raw.len() as u64,
                received: None,
                ..Default::default()
            },
            1024,
        )
    }

    #[test]
    fn utc_dates() {
        assert_eq!(iso_utc(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            iso_utc(1_706_781_600).as_deref(),
            Some("2024-02-01T10:00:00Z")
        );
        assert_eq!(
            iso_utc(951_782_400).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(iso_utc(i64::MAX), None);
    }

    #[test]
    fn a_simple_message() {
        let v = read(
            "Message-ID: <abc@example.test>\r\nFrom: =?iso-8859-1?q?J=FCrgen?= <j@example.test>\r\nSubject: =?utf-8?b?R3LDvMOfZQ==?=\r\nDate: Thu, 1 Feb 2024 11:00:00 +0100\r\nX-Folded: one\r\n two\r\n\r\nHello\r\n",
        );
        assert_eq!(v["messageId"], "<abc@example.test>");
        assert_eq!(v["fromAddress"], "j@example.test");
        assert_eq!(v["subject"], "Grüße");
        assert_eq!(v["sentDate"], "2024-02-01T10:00:00Z");
        assert_eq!(v["plainTextBody"].as_str().map(str::trim), Some("Hello"));
        assert_eq!(v["htmlBody"], Value::Null);
        let headers = v["headers"].as_array().unwrap();
        assert_eq!(
            headers[1],
            json!({ "header": "From", "value": "Jürgen <j@example.test>" })
        );
        assert_eq!(
            headers[4],
            json!({ "header": "X-Folded", "value": "one two" })
        );
    }

    #[test]
    fn attachments_keep_their_original_bytes_and_respect_the_limit() {
        let latin1 = base64::engine::general_purpose::STANDARD.encode(b"caf\xe9");
        let big = "A".repeat(2000);
        let raw = format!(
            "From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=\"menu.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{latin1}\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n\r\n{big}\r\n--b--\r\n"
        );
        let v = read(&raw);
        let attachments = v["attachments"].as_array().unwrap();
        assert_eq!(attachments[0]["fileName"], "menu.txt");
        assert_eq!(attachments[0]["size"], 4);
        assert_eq!(attachments[0]["content"], latin1.as_str());
        assert_eq!(attachments[1]["truncated"], true);
        assert!(attachments[1].get("content").is_none());
        assert_eq!(v["messageId"], Value::Null);
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            "",
            "\r\n\r\n",
            "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
            "\u{0}\u{1}From:\r\n\r\n=?utf-8?b?####?=",
        ] {
            let v = read(raw);
            assert!(v.is_object());
        }
    }
}
