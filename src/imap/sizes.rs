//! Exact decoded sizes of base64 parts left on the server. BODYSTRUCTURE gives a part's
//! encoded size only; `octets × 57 / 78` is off by the padding (up to 2 bytes) and by more
//! when lines are not 76 characters long. BINARY.SIZE (RFC 3516) would say it, but
//! imap-proto cannot read that answer, so the size is worked out from the part's first and
//! last KiB (two partial fetches): a mailer writes base64 in lines of one width, so the
//! width, the line ending and the last line give the number of characters, and the padding
//! the bytes. A part whose lines are not regular keeps the estimate.

use super::guard::Allowance;
use super::response::FetchItem;
use super::session::ImapSession;
use super::structure::{Decision, Structure, leaf_sections};
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::ImapErrorKind;
use crate::mail::cut::{Encoding, decoded_len};

/// Bytes read of each end of a part.
const PROBE: u64 = 1024;

/// Parts probed in one command.
const PARTS_PER_FETCH: usize = 50;

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// The decoded size of a base64 body of `octets` bytes from its first bytes (`head`) and its
/// last (`tail`), or None when its lines are not regular enough to tell. A `head` holding the
/// whole body is counted directly.
pub fn base64_size(octets: u64, head: &[u8], tail: &[u8]) -> Option<u64> {
    if head.len() as u64 >= octets {
        return Some(decoded_len(Encoding::Base64, head, b"") / 8);
    }
    let first_end = head.iter().position(|b| *b == b'\n')?;
    let eol = if head[..first_end].ends_with(b"\r") {
        2
    } else {
        1
    };
    let width = first_end + 1 - eol;
    let regular = |line: &[u8]| {
        line.len() == width + eol
            && line[..width].iter().all(|b| is_base64(*b))
            && (eol == 1 || line[width] == b'\r')
    };
    // Every whole line of the head has the first line's width and ending.
    let head_lines = &head[..=head.iter().rposition(|b| *b == b'\n')?];
    if width == 0 || !head_lines.split_inclusive(|b| *b == b'\n').all(regular) {
        return None;
    }
    // The tail: the last line (without the blanks and line ends after it), and whole lines
    // of the same width before it.
    let body_end = tail
        .iter()
        .rposition(|b| !b" \t\r\n".contains(b))
        .map_or(0, |p| p + 1);
    let last_start = tail[..body_end].iter().rposition(|b| *b == b'\n')? + 1;
    let last = &tail[last_start..body_end];
    let padding = last.iter().rev().take_while(|b| **b == b'=').count();
    if last.is_empty()
        || last.len() > width
        || padding > 2
        || !last[..last.len() - padding].iter().all(|b| is_base64(*b))
    {
        return None;
    }
    let first_whole = tail.iter().position(|b| *b == b'\n')? + 1;
    if first_whole < last_start
        && !tail[first_whole..last_start]
            .split_inclusive(|b| *b == b'\n')
            .all(regular)
    {
        return None;
    }
    // What comes before the last line is whole lines, or the lines are not regular.
    let before_last = octets.checked_sub(tail.len() as u64)? + last_start as u64;
    let line = (width + eol) as u64;
    if !before_last.is_multiple_of(line) {
        return None;
    }
    let chars = before_last / line * width as u64 + last.len() as u64;
    if !chars.is_multiple_of(4) {
        return None;
    }
    (chars / 4 * 3).checked_sub(padding as u64)
}

/// Replaces the estimated sizes of base64 parts the plan leaves on the server with exact
/// ones, where their lines allow (see the module documentation).
pub async fn exact_sizes(
    session: &mut ImapSession,
    uid: u32,
    structure: &Structure,
    plan: &mut [(String, Decision)],
) -> Result<()> {
    let leaves = leaf_sections(structure);
    // (index in the plan, section, octets) of each part to probe.
    let probed: Vec<(usize, String, u64)> = plan
        .iter()
        .zip(&leaves)
        .enumerate()
        .filter_map(|(index, ((section, decision), (_, leaf)))| {
            let cut = matches!(decision, Decision::Cut(..));
            (cut && leaf.octets > 0 && Encoding::from_name(&leaf.encoding) == Encoding::Base64)
                .then(|| (index, section.clone(), u64::from(leaf.octets)))
        })
        .collect();
    for chunk in probed.chunks(PARTS_PER_FETCH) {
        let heads: Vec<String> = chunk
            .iter()
            .map(|(_, section, _)| format!("BODY.PEEK[{section}]<0.{}>", 2 * PROBE))
            .collect();
        let tails: Vec<String> = chunk
            .iter()
            .filter(|(_, _, octets)| *octets > 2 * PROBE)
            .map(|(_, section, octets)| format!("BODY.PEEK[{section}]<{}.{PROBE}>", octets - PROBE))
            .collect();
        let heads = sections(session, uid, &heads).await?;
        let tails = sections(session, uid, &tails).await?;
        for (index, section, octets) in chunk {
            let head = find(&heads, section);
            let tail = find(&tails, section);
            if let (Some(size), Some((_, Decision::Cut(estimate, _)))) =
                (base64_size(*octets, head, tail), plan.get_mut(*index))
            {
                *estimate = size;
            }
        }
    }
    Ok(())
}

fn find<'a>(sections: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    sections
        .iter()
        .find(|(section, _)| section == name)
        .map_or(&[][..], |(_, data)| data.as_slice())
}

/// The sections `items` of message `uid`, by name; none when there is nothing to ask.
async fn sections(
    session: &mut ImapSession,
    uid: u32,
    items: &[String],
) -> Result<Vec<(String, Vec<u8>)>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let command = Command::new("UID FETCH")
        .raw(uid.to_string())
        .raw(format!("(UID {})", items.join(" ")));
    let allowance = Allowance::fetching(items.len() as u64, 2 * PROBE);
    let reply = session
        .execute_within(&command, ImapErrorKind::Refused, allowance)
        .await?;
    let mut found = Vec::new();
    for mut item in reply.fetches().filter(|item| item.uid == Some(uid)) {
        let FetchItem {
            body_section, body, ..
        } = &mut item;
        if let (Some(section), Some(body)) = (body_section.take(), body.take()) {
            found.push((section, body));
        }
        found.append(&mut item.sections);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    /// `len` bytes base64-encoded in lines of `width` with `eol`, and `trailer` after.
    fn encoded(len: usize, width: usize, eol: &str, trailer: &str) -> Vec<u8> {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut out = String::new();
        for (i, chunk) in text.as_bytes().chunks(width).enumerate() {
            if i > 0 {
                out.push_str(eol);
            }
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        }
        out.push_str(trailer);
        out.into_bytes()
    }

    fn probe(body: &[u8]) -> Option<u64> {
        let octets = body.len() as u64;
        let head = &body[..body.len().min(2 * PROBE as usize)];
        let tail = &body[body.len().saturating_sub(PROBE as usize)..];
        base64_size(octets, head, tail)
    }

    #[test]
    fn regular_base64_gives_its_exact_size() {
        for len in [
            0, 1, 2, 3, 4, 5, 56, 57, 58, 1000, 2047, 3000, 3001, 3002, 100_000,
        ] {
            for width in [76, 64, 72, 60] {
                for eol in ["\r\n", "\n"] {
                    for trailer in ["", eol, "\r\n\r\n", "  \r\n"] {
                        let body = encoded(len, width, eol, trailer);
                        assert_eq!(
                            probe(&body),
                            Some(len as u64),
                            "{len} bytes, {width} wide, {eol:?}, then {trailer:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn irregular_or_lying_parts_keep_their_estimate() {
        // Lines of two widths.
        let mut body = encoded(10_000, 76, "\r\n", "\r\n");
        body.splice(3000..3000, b"QUJD\r\n".iter().copied());
        assert_eq!(probe(&body), None);
        // A size the server got wrong: the tail is not where the lines say it is.
        let body = encoded(10_000, 76, "\r\n", "\r\n");
        let head = &body[..2048];
        let tail = &body[body.len() - 1024..];
        assert_eq!(base64_size(body.len() as u64 + 5, head, tail), None);
        // Not base64 at all, or nothing fetched.
        assert_eq!(probe(&[b'!'; 5000]), None);
        assert_eq!(base64_size(5000, b"", b""), None);
        // One endless line.
        let line = encoded(10_000, 100_000, "\r\n", "");
        assert_eq!(probe(&line), None);
    }
}
