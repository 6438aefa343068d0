//! One leaf part's body as it streams by: how much of it is kept, and where a cut leaves a
//! prefix that still decodes cleanly.

use crate::mail::cut::{Encoding, decoded_len, safe_prefix};

/// What a leaf part is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Text,
    Attachment,
}

#[derive(Debug)]
pub(super) struct Leaf {
    pub(super) role: Role,
    pub(super) encoding: Encoding,
    /// Where the blank line after the part's header starts in the output.
    pub(super) header_end: usize,
    pub(super) body_start: usize,
    pub(super) allowance: u64,
    /// Decoded bytes kept and seen (base64: in bits, see [`decoded_len`]).
    pub(super) kept: u64,
    pub(super) seen: u64,
    pub(super) last_eol: usize,
    pub(super) cut: bool,
}

/// Encoded bytes a body with `allowance` decoded bytes may keep. Soft line breaks, blank
/// lines and base64 junk decode to nothing, so the decoded count alone would let such a body
/// grow with the message; honest text grows at most 3 to 1 (quoted-printable escapes).
pub(super) fn raw_cap(allowance: u64) -> u64 {
    allowance.saturating_mul(4)
}

/// What a kept body takes from its pool: its decoded bytes, or a quarter of its encoded
/// bytes when that is more, so that bodies decoding to nothing still use the pool up and
/// all of them together stay within four times the pool.
pub(super) fn cost(decoded: u64, encoded: usize) -> u64 {
    decoded.max(encoded as u64 / 4)
}

/// Decoded bytes from a counter (base64 counts bits) less the final line ending, which
/// belongs to the next boundary.
pub(super) fn actual(encoding: Encoding, count: u64, last_eol: usize) -> u64 {
    match encoding {
        Encoding::Base64 => count / 8,
        _ => count.saturating_sub(last_eol as u64),
    }
}

pub(super) fn body_line(
    leaf: &mut Leaf,
    out: &mut Vec<u8>,
    content: &[u8],
    eol: &[u8],
    in_multipart: bool,
) {
    let size = decoded_len(leaf.encoding, content, eol);
    leaf.seen += size;
    leaf.last_eol = eol.len();
    if leaf.cut {
        return;
    }
    let unit = if leaf.encoding == Encoding::Base64 {
        8
    } else {
        1
    };
    let limit = leaf.allowance.saturating_mul(unit);
    let written = out.len().saturating_sub(leaf.body_start) as u64;
    let cap = raw_cap(leaf.allowance);
    let line = (content.len() + eol.len()) as u64;
    if leaf.kept.saturating_add(size) <= limit && written.saturating_add(line) <= cap {
        out.extend_from_slice(content);
        out.extend_from_slice(eol);
        leaf.kept += size;
        return;
    }
    leaf.cut = true;
    if leaf.role == Role::Attachment {
        return;
    }
    // Part of the line still fits: keep a prefix that decodes to a prefix of the text.
    let room = limit.saturating_sub(leaf.kept) / unit;
    let raw_room = usize::try_from(cap.saturating_sub(written)).unwrap_or(usize::MAX);
    let content = content.get(..raw_room).unwrap_or(content);
    let prefix = safe_prefix(
        leaf.encoding,
        content,
        usize::try_from(room).unwrap_or(usize::MAX),
    );
    out.extend_from_slice(prefix);
    leaf.kept += decoded_len(leaf.encoding, prefix, b"");
    tidy_cut(leaf.encoding, out, leaf.body_start);
    if out.ends_with(b"\n") {
        return;
    }
    match leaf.encoding {
        // A soft line break adds nothing to the decoded text.
        Encoding::QuotedPrintable => out.extend_from_slice(b"=\r\n"),
        // The next boundary absorbs this line ending.
        _ if in_multipart => out.extend_from_slice(b"\r\n"),
        _ => {}
    }
}

/// A line that came in pieces may have been cut just after a piece that ended inside a
/// UTF-8 sequence, a QP escape or a base64 quantum: those last bytes go too.
fn tidy_cut(encoding: Encoding, out: &mut Vec<u8>, body_start: usize) {
    let body = &out[body_start.min(out.len())..];
    let keep = match encoding {
        Encoding::Identity => {
            let tail = &body[body.len().saturating_sub(4)..];
            match tail.iter().rposition(|b| *b & 0xC0 != 0x80) {
                Some(lead) => {
                    let need = match tail[lead] {
                        b if b >= 0xF0 => 4,
                        b if b >= 0xE0 => 3,
                        b if b >= 0xC0 => 2,
                        _ => 1,
                    };
                    if tail.len() - lead < need {
                        body.len() - (tail.len() - lead)
                    } else {
                        body.len()
                    }
                }
                None => body.len(),
            }
        }
        Encoding::QuotedPrintable => {
            let tail = &body[body.len().saturating_sub(2)..];
            match tail.iter().position(|b| *b == b'=') {
                Some(at) => body.len() - (tail.len() - at),
                None => body.len(),
            }
        }
        Encoding::Base64 => {
            let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
            let mut extra = body.iter().filter(|b| is_b64(b)).count() % 4;
            let mut end = body.len();
            while extra > 0 && end > 0 {
                end -= 1;
                if is_b64(&body[end]) {
                    extra -= 1;
                }
            }
            end
        }
    };
    out.truncate(body_start.min(out.len()) + keep);
}
