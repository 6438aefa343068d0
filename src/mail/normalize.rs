//! Forgiving with malformed mail, the way Python's `email` package is: header fields are
//! repaired before mail-parser sees them, and what it returns is cleaned afterwards.
//!
//! mail-parser 0.11 drops a header whose bytes are not UTF-8 (the Subject with it), keeps NUL
//! bytes in text, reads `Content-Type: text` as no text at all, and loses the body of a header
//! block that runs into text without a blank line. The pruner calls these helpers on every
//! header field of every part; the response builder sanitizes file names.

/// Longest header field kept (folded lines together): beyond this a field is cut.
const MAX_FIELD_BYTES: usize = 256 * 1024;

/// A header field being collected: its first line and continuations, line endings included.
#[derive(Debug, Default)]
pub struct HeaderField {
    bytes: Vec<u8>,
}

impl HeaderField {
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn start(&mut self, content: &[u8], eol: &[u8]) {
        self.bytes.clear();
        self.continue_with(content, eol);
    }

    pub fn continue_with(&mut self, content: &[u8], eol: &[u8]) {
        if self.bytes.len() + content.len() + eol.len() > MAX_FIELD_BYTES {
            return;
        }
        self.bytes.extend_from_slice(content);
        self.bytes.extend_from_slice(eol);
    }
}

/// A repaired header field.
#[derive(Debug)]
pub struct Field {
    pub name_lower: String,
    /// The value unfolded, for the pruner's own reading of the structure.
    pub value: String,
    /// The field as it goes to the parser.
    pub bytes: Vec<u8>,
}

/// `name:` with a name of printable ASCII other than `:` (RFC 5322 §2.2, Python's rule), also
/// with blanks before the colon (RFC 822's obsolete `Subject : x`) and with 8-bit bytes in the
/// name (a broken mailer's header is still a header, not the start of the body).
pub fn is_header_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty() && name.iter().all(|b| *b > 32 && *b != 127)
}

/// NUL bytes go; bytes that are not UTF-8 become U+FFFD (the parser would drop the whole
/// field); `Content-Type: text` becomes `text/plain` (RFC 2045 §5.2 defaults the subtype).
pub fn normalize_field(field: HeaderField) -> Option<Field> {
    if field.bytes.is_empty() {
        return None;
    }
    let mut bytes = field.bytes;
    bytes.retain(|b| *b != 0);
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let (name, value) = text.split_once(':').unwrap_or((text.as_str(), ""));
    let name_lower = name.trim().to_ascii_lowercase();
    let unfolded: String = value
        .split(['\r', '\n'])
        .map(|piece| piece.trim_matches([' ', '\t']))
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name_lower == "content-type" {
        let (mime, rest) = unfolded.split_once(';').unwrap_or((&unfolded, ""));
        if mime.trim().eq_ignore_ascii_case("text") {
            let eol = if text.ends_with("\r\n") { "\r\n" } else { "\n" };
            let params = if rest.is_empty() {
                String::new()
            } else {
                format!(";{rest}")
            };
            let fixed = format!("text/plain{params}");
            return Some(Field {
                name_lower,
                bytes: format!("{name}: {fixed}{eol}").into_bytes(),
                value: fixed,
            });
        }
    }
    Some(Field {
        name_lower,
        value: unfolded,
        bytes: text.into_bytes(),
    })
}

/// An attachment's file name as a plain name: no directories (`/`, `\`), no `.`/`..`
/// segments, no control characters, no leading dots; `attachment-<n>` when nothing is left.
pub fn sanitize_file_name(name: &str, index: usize) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_format_character(*c))
        .collect();
    let joined = cleaned
        .split(['/', '\\'])
        .map(str::trim)
        .filter(|segment| !segment.is_empty() && *segment != "." && *segment != "..")
        .collect::<Vec<_>>()
        .join("_");
    let trimmed = joined.trim_start_matches(['.', ' ']).trim_end();
    if trimmed.is_empty() {
        format!("attachment-{}", index + 1)
    } else {
        let mut end = trimmed.len().min(MAX_FILE_NAME_BYTES);
        while !trimmed.is_char_boundary(end) {
            end -= 1;
        }
        trimmed[..end].to_string()
    }
}

/// Longest file name kept, in bytes: what common file systems allow.
const MAX_FILE_NAME_BYTES: usize = 255;

/// Invisible characters that change how a name reads (Unicode's format characters that matter
/// in names): bidirectional overrides and isolates make `invoice\u{202E}fdp.exe` display as
/// `invoiceexe.pdf`; zero-width characters hide differences between names.
fn is_format_character(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(raw: &[u8]) -> Field {
        let mut f = HeaderField::default();
        f.start(raw, b"\r\n");
        normalize_field(f).unwrap()
    }

    #[test]
    fn header_lines_follow_pythons_rule() {
        assert!(is_header_line(b"Subject: x"));
        assert!(is_header_line(b"X-Empty:"));
        assert!(!is_header_line(b"This is the body"));
        assert!(!is_header_line(b": no name"));
        assert!(!is_header_line(b"Two words: no"));
        assert!(!is_header_line(b""));
        assert!(is_header_line(b"Subject : obsolete"));
        assert!(is_header_line(b"X-\xc3\x9cber: 8-bit name"));
        assert!(!is_header_line(b" : x"));
    }

    #[test]
    fn fields_lose_nul_and_invalid_utf8_but_stay() {
        let f = field(b"Subject: he\x00llo \xff w");
        assert_eq!(f.name_lower, "subject");
        assert_eq!(f.bytes, "Subject: hello \u{fffd} w\r\n".as_bytes());
        let f = field(b"Content-Type: TEXT; charset=utf-8");
        assert_eq!(f.value, "text/plain; charset=utf-8");
        assert_eq!(f.bytes, b"Content-Type: text/plain; charset=utf-8\r\n");
        assert_eq!(field(b"Content-Type: text").value, "text/plain");
        assert_eq!(field(b"Content-Type: text/html").value, "text/html");
    }

    #[test]
    fn file_names_are_plain_names() {
        assert_eq!(sanitize_file_name("../../etc/passwd", 0), "etc_passwd");
        assert_eq!(
            sanitize_file_name("C:\\Users\\x\\a.pdf", 0),
            "C:_Users_x_a.pdf"
        );
        assert_eq!(sanitize_file_name("a\u{0}b\r\nc.txt", 0), "abc.txt");
        assert_eq!(sanitize_file_name("/../..", 2), "attachment-3");
        assert_eq!(sanitize_file_name(".hidden", 0), "hidden");
        assert_eq!(sanitize_file_name("Rechnung ä.pdf", 0), "Rechnung ä.pdf");
        assert_eq!(
            sanitize_file_name("invoice\u{202E}fdp.exe", 0),
            "invoicefdp.exe"
        );
        assert_eq!(sanitize_file_name("a\u{200B}b\u{2066}c.txt", 0), "abc.txt");
        let long = "ä".repeat(300);
        let kept = sanitize_file_name(&long, 0);
        assert!(kept.len() <= 255 && long.starts_with(&kept) && !kept.is_empty());
    }
}
