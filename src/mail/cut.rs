//! What a cut is: the limits that decide it, the marker a cut part carries, and the sizes and
//! safe cut points of transfer-encoded bodies. Shared by the POP3 pruner and the IMAP
//! section fetches.

use std::sync::OnceLock;
/// The response budget and the attachment limit, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Attachments larger than this (decoded) are listed without content.
    pub max_attachment_bytes: usize,
    /// The serialized JSON response may not exceed this.
    pub max_response_bytes: usize,
}

impl Limits {
    /// Decoded bytes one text body may keep: more could never be returned.
    pub fn text_allowance(&self) -> usize {
        self.max_response_bytes
    }

    /// Decoded bytes all text bodies together may keep: a plain and an HTML body of a full
    /// allowance each (the response builder then cuts them to fit).
    pub fn text_pool(&self) -> u64 {
        (self.text_allowance() as u64).saturating_mul(2)
    }

    /// Decoded bytes all kept attachments together may take beside `text` bytes of bodies
    /// (bodies come first in the budget; base64 makes 4 of every 3). The pruner streams and
    /// cannot know the bodies ahead, so it passes 0; the BODYSTRUCTURE plan knows them.
    pub fn attachment_pool(&self, text: u64) -> u64 {
        (self.max_response_bytes as u64).saturating_sub(text) / 4 * 3
    }

    /// Pruned-message bytes that are not body (delimiters, blank lines, part headers,
    /// markers): a part whose listing alone would fill the response is not worth keeping.
    pub fn skeleton_allowance(&self) -> usize {
        self.max_response_bytes
    }

    /// Bytes the top header block may keep.
    pub fn header_allowance(&self) -> usize {
        (self.max_response_bytes / 4).max(1024)
    }
}

/// A part header the sender could not have written: its name carries a number drawn once per
/// process, so a message cannot claim to have been cut, or lie about a size.
pub fn marker_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        format!("X-Email-Connector-Cut-{:016x}", hasher.finish())
    })
}

/// Why a part lost its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Larger than `max_attachment_bytes`: listed without content, as always.
    Limit,
    /// The response budget: the response is marked `truncated`.
    Budget,
}

/// The marker header line for a cut part.
pub fn marker_line(size: u64, reason: CutReason) -> String {
    let reason = match reason {
        CutReason::Limit => "limit",
        CutReason::Budget => "budget",
    };
    format!("{}: {size} {reason}\r\n", marker_name())
}

/// Reads a marker header's value back.
pub fn parse_marker(value: &str) -> Option<(u64, CutReason)> {
    let mut words = value.split_whitespace();
    let size = words.next()?.parse().ok()?;
    let reason = match words.next() {
        Some("limit") => CutReason::Limit,
        _ => CutReason::Budget,
    };
    Some((size, reason))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Base64,
    QuotedPrintable,
}

impl Encoding {
    pub fn from_name(name: &str) -> Encoding {
        match name.trim().to_ascii_lowercase().as_str() {
            "base64" => Encoding::Base64,
            "quoted-printable" => Encoding::QuotedPrintable,
            _ => Encoding::Identity,
        }
    }
}

/// Decoded bytes of one body line (content without its line ending, plus that ending).
pub fn decoded_len(encoding: Encoding, content: &[u8], eol: &[u8]) -> u64 {
    match encoding {
        Encoding::Base64 => {
            // Counted in bits (6 per alphabet character), so that lines add up exactly.
            let chars = content
                .iter()
                .filter(|b| b.is_ascii_alphanumeric() || **b == b'+' || **b == b'/')
                .count() as u64;
            chars * 6
        }
        Encoding::QuotedPrintable => {
            let trimmed = trim_end_ws(content);
            let (text, soft) = match trimmed.strip_suffix(b"=") {
                Some(text) => (text, true),
                None => (trimmed, false),
            };
            let escapes = text.iter().filter(|b| **b == b'=').count() as u64;
            let len = text.len() as u64 - escapes.min(text.len() as u64 / 3) * 2;
            len + if soft { 0 } else { eol.len() as u64 }
        }
        Encoding::Identity => (content.len() + eol.len()) as u64,
    }
}

pub fn trim_end_ws(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |p| p + 1);
    &line[..end]
}

/// The longest prefix of `content` worth at most `room` decoded bytes that still decodes
/// cleanly: whole base64 quanta, no split QP escape, no split UTF-8 sequence.
pub fn safe_prefix(encoding: Encoding, content: &[u8], room: usize) -> &[u8] {
    match encoding {
        Encoding::Base64 => {
            let want = room / 3 * 4;
            let mut chars = 0;
            for (i, b) in content.iter().enumerate() {
                if b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' {
                    if chars == want {
                        return &content[..i];
                    }
                    chars += 1;
                }
            }
            let end = content.len() - content.len() % 4;
            &content[..end.min(content.len())]
        }
        Encoding::QuotedPrintable => {
            let mut end = room.min(content.len());
            if let Some(p) = content[end.saturating_sub(2)..end]
                .iter()
                .position(|b| *b == b'=')
            {
                end = end.saturating_sub(2) + p;
            }
            &content[..end]
        }
        Encoding::Identity => {
            let mut end = room.min(content.len());
            while end > 0 && end < content.len() && content[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            &content[..end]
        }
    }
}

/// A parameter of a structured header value (`boundary`, `name`), unquoted.
pub fn param(value: &str, name: &str) -> Option<String> {
    for piece in value.split(';').skip(1) {
        let Some((key, val)) = piece.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case(name) {
            let val = val.trim();
            let val = val
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(val);
            return Some(val.replace("\\\"", "\"").replace("\\\\", "\\"));
        }
    }
    None
}
