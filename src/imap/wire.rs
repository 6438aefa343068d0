//! IMAP syntax that async-imap leaves to us: mailbox names in modified UTF-7 (RFC 3501
//! §5.1.3) and commands whose arguments travel as quoted strings or literals, so that a value
//! with quotes, backslashes, line breaks or non-ASCII text is sent as data and can never be
//! read as protocol.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};

/// RFC 3501's modified base64: `,` instead of `/`, no padding.
fn modified_base64() -> GeneralPurpose {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .unwrap_or(base64::alphabet::STANDARD);
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}

/// Encodes a mailbox name in modified UTF-7: `Übersicht` → `&ANw-bersicht`.
pub fn encode_mailbox(name: &str) -> String {
    let engine = modified_base64();
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 mailbox name; a malformed one is returned as it came.
pub fn decode_mailbox(encoded: &str) -> String {
    let engine = modified_base64();
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('-') else {
            return encoded.to_string();
        };
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let Ok(bytes) = engine.decode(chunk) else {
                return encoded.to_string();
            };
            if bytes.len() % 2 != 0 {
                return encoded.to_string();
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            match String::from_utf16(&units) {
                Ok(text) => out.push_str(&text),
                Err(_) => return encoded.to_string(),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// One piece of a command.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Protocol text, written as it is (keywords, numbers, UID sets, parentheses).
    Raw(String),
    /// A value: a quoted string when that is safe, otherwise a literal.
    Value(String),
    /// `(` and `)` of a list: RFC 3501 allows no space inside them (`(SUBJECT "x")`), and
    /// strict servers such as Cyrus answer BAD to `( SUBJECT "x" )`.
    Open,
    Close,
}

/// A command built from protocol text and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Command {
    parts: Vec<Part>,
}

impl Command {
    pub fn new(raw: impl Into<String>) -> Self {
        Command {
            parts: vec![Part::Raw(raw.into())],
        }
    }

    /// Appends protocol text, preceded by a space.
    pub fn raw(mut self, raw: impl Into<String>) -> Self {
        self.push_raw(raw);
        self
    }

    /// Appends a value as a string argument, preceded by a space.
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.push_value(value);
        self
    }

    /// [`Command::raw`] on a command being built in place.
    pub fn push_raw(&mut self, raw: impl Into<String>) {
        self.parts.push(Part::Raw(raw.into()));
    }

    /// [`Command::value`] on a command being built in place.
    pub fn push_value(&mut self, value: impl Into<String>) {
        self.parts.push(Part::Value(value.into()));
    }

    /// Opens a parenthesized list in a command being built in place.
    pub fn push_open(&mut self) {
        self.parts.push(Part::Open);
    }

    /// Closes the list [`Command::push_open`] opened.
    pub fn push_close(&mut self) {
        self.parts.push(Part::Close);
    }

    /// Appends a mailbox name (modified UTF-7, then quoted).
    pub fn mailbox(self, name: &str) -> Self {
        let encoded = encode_mailbox(name);
        self.value(encoded)
    }

    /// Appends another command's parts (a search key inside a program).
    pub fn extend(mut self, other: Command) -> Self {
        self.parts.extend(other.parts);
        self
    }

    pub fn needs_utf8(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Value(v) if !v.is_ascii()))
    }

    /// The command as the segments to send. With LITERAL+ (RFC 7888) it is one segment with
    /// non-synchronizing literals; without, it is split after each `{n}`, and the sender must
    /// wait for the server's continuation before sending the next segment.
    pub fn segments(&self, literal_plus: bool) -> Vec<String> {
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut after_open = true;
        for part in &self.parts {
            if !after_open && *part != Part::Close {
                current.push(' ');
            }
            after_open = *part == Part::Open;
            match part {
                Part::Open => current.push('('),
                Part::Close => current.push(')'),
                Part::Raw(raw) => current.push_str(raw),
                Part::Value(value) => match quoted(value) {
                    Some(q) => current.push_str(&q),
                    None if literal_plus => {
                        current.push_str(&format!("{{{}+}}\r\n{value}", value.len()));
                    }
                    None => {
                        current.push_str(&format!("{{{}}}", value.len()));
                        segments.push(std::mem::take(&mut current));
                        current.push_str(value);
                    }
                },
            }
        }
        segments.push(current);
        segments
    }

    /// For logs: values shown as `"…"`, never their content.
    pub fn redacted(&self) -> String {
        let shown = Command {
            parts: self
                .parts
                .iter()
                .map(|p| match p {
                    Part::Value(_) => Part::Raw("\"…\"".into()),
                    other => other.clone(),
                })
                .collect(),
        };
        shown.segments(true).concat()
    }
}

/// A quoted string if the value can be one (7-bit, no CR, LF or NUL), else None.
pub fn quoted(value: &str) -> Option<String> {
    if value
        .bytes()
        .any(|b| b >= 0x80 || b == b'\r' || b == b'\n' || b == 0)
    {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_round_trips() {
        for (plain, encoded) in [
            ("INBOX", "INBOX"),
            ("Übersicht", "&ANw-bersicht"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Emoji 📬", "Emoji &2D3c7A-"),
        ] {
            assert_eq!(encode_mailbox(plain), encoded, "{plain}");
            assert_eq!(decode_mailbox(encoded), plain, "{encoded}");
        }
        assert_eq!(decode_mailbox("broken&AAA"), "broken&AAA");
    }

    #[test]
    fn values_are_quoted_or_literal_never_spliced() {
        let command = Command::new("UID SEARCH")
            .raw("SUBJECT")
            .value(r#"say "hi" \ o/"#);
        assert_eq!(
            command.segments(false),
            [r#"UID SEARCH SUBJECT "say \"hi\" \\ o/""#]
        );

        let injected = Command::new("UID SEARCH")
            .raw("SUBJECT")
            .value("x\r\nA1 DELETE INBOX");
        assert_eq!(
            injected.segments(true),
            ["UID SEARCH SUBJECT {18+}\r\nx\r\nA1 DELETE INBOX"]
        );
        assert_eq!(
            injected.segments(false),
            ["UID SEARCH SUBJECT {18}", "x\r\nA1 DELETE INBOX"]
        );

        let utf8 = Command::new("UID SEARCH CHARSET UTF-8")
            .raw("FROM")
            .value("Jürgen")
            .raw("SUBJECT")
            .value("Köln");
        assert!(utf8.needs_utf8());
        assert_eq!(
            utf8.segments(false),
            [
                "UID SEARCH CHARSET UTF-8 FROM {7}",
                "Jürgen SUBJECT {5}",
                "Köln"
            ]
        );
        assert_eq!(
            utf8.redacted(),
            "UID SEARCH CHARSET UTF-8 FROM \"…\" SUBJECT \"…\""
        );
    }

    #[test]
    fn lists_have_no_space_inside_their_parentheses() {
        let mut command = Command::new("UID SEARCH");
        command.push_raw("OR");
        command.push_open();
        command.push_raw("SUBJECT");
        command.push_value("x");
        command.push_open();
        command.push_raw("SEEN");
        command.push_close();
        command.push_close();
        command.push_raw("ALL");
        assert_eq!(
            command.segments(true),
            [r#"UID SEARCH OR (SUBJECT "x" (SEEN)) ALL"#]
        );
        assert_eq!(
            command.redacted(),
            r#"UID SEARCH OR (SUBJECT "…" (SEEN)) ALL"#
        );
    }

    #[test]
    fn mailbox_names_are_encoded_and_quoted() {
        let command = Command::new("SELECT").mailbox("Übersicht \"2024\"");
        assert_eq!(
            command.segments(true),
            [r#"SELECT "&ANw-bersicht \"2024\"""#]
        );
    }
}
