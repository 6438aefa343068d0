//! A text part's body (`body`, `htmlBody`), encoded in one pass over the text.
//!
//! The encoding follows the rule lettre's `Body::new` applied before: 7bit when the text is
//! ASCII with every line under 76 characters; otherwise quoted-printable, or base64 when more
//! than a third of the bytes would need escaping. Two details differ: line ends are neither
//! counted in a line's length nor as bytes to escape (lettre counted a line's LF in the next
//! line's length and every CR and LF as a byte to escape), and control characters are never
//! 7bit. Line ends become CRLF. lettre's own path walked the text four times (choose, insert
//! each CR, encode char by char, copy), a sixth of a small message's cost; this one reads it
//! once for the choice and once to write the encoded body.
//!
//! Hostile text cannot break the message: a bare CR or a NUL is not 7bit (a bare CR in a 7bit
//! body is the stuff of SMTP smuggling), so such text is encoded and they travel as `=0D`/`=00`.

use base64::Engine;
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// Longest line (without CRLF) that goes as 7bit here, as under lettre's rule.
const SEVEN_BIT_LINE: usize = 75;
/// Quoted-printable and base64 lines are at most 76 characters, a soft break's `=` included
/// (RFC 2045 6.7 and 6.8).
const QP_LINE: usize = 76;
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// What one scan finds out about the text.
struct Shape {
    seven_bit: bool,
    /// Bytes quoted-printable escapes (line ends aside).
    escaped: usize,
    /// Line feeds without a CR before them, each of which gains one.
    bare_lf: usize,
}

fn shape(text: &[u8]) -> Shape {
    // The bytes outside the printable range counted first, in chunks that cannot overflow a
    // byte-wide count (which vectorises), then one walk from line end to line end.
    let outside: usize = text
        .chunks(255)
        .map(|chunk| {
            let count = chunk
                .iter()
                .map(|&b| u8::from(!matches!(b, b'\t' | b' '..=b'~')))
                .fold(0u8, u8::wrapping_add);
            usize::from(count)
        })
        .sum();
    let (mut line_feeds, mut crlf, mut longest) = (0, 0, 0);
    for (line, end) in ended_lines(text) {
        longest = longest.max(line.len());
        match end {
            LineEnd::CrLf => (line_feeds, crlf) = (line_feeds + 1, crlf + 1),
            LineEnd::Lf => line_feeds += 1,
            LineEnd::None => {}
        }
    }
    // The LF and the CR of each line end are not escaped; every other byte outside the
    // printable range (a bare CR or a NUL among them) is.
    let escaped = outside - line_feeds - crlf;
    Shape {
        seven_bit: escaped == 0 && longest <= SEVEN_BIT_LINE,
        escaped,
        bare_lf: line_feeds - crlf,
    }
}

/// Bytes that quoted-printable writes as they are (space and tab only inside a line).
fn is_literal(b: u8) -> bool {
    matches!(b, b' '..=b'<' | b'>'..=b'~' | b'\t')
}

#[derive(Clone, Copy)]
enum LineEnd {
    Lf,
    CrLf,
    /// The text's end.
    None,
}

/// The text's lines without their ends, and how each ended; the last may be empty. A CR is
/// a line end's only before LF: a bare one, even the text's last byte, stays in the line.
fn ended_lines(text: &[u8]) -> impl Iterator<Item = (&[u8], LineEnd)> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(b'\n', current) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(match current[..at].strip_suffix(b"\r") {
                    Some(line) => (line, LineEnd::CrLf),
                    None => (&current[..at], LineEnd::Lf),
                })
            }
            None => {
                rest = None;
                Some((current, LineEnd::None))
            }
        }
    })
}

fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    ended_lines(text).map(|(line, _)| line)
}

/// `text` as a body ready for the message, with its transfer encoding.
pub(super) fn text_body(text: &str) -> Body {
    let bytes = text.as_bytes();
    let shape = shape(bytes);
    if shape.seven_bit {
        let mut out = Vec::with_capacity(bytes.len() + shape.bare_lf);
        write_crlf(bytes, &mut out);
        return Body::dangerous_pre_encoded(out, ContentTransferEncoding::SevenBit);
    }
    if shape.escaped <= bytes.len() / 3 {
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 50 + shape.escaped * 2 + 8);
        write_quoted_printable(bytes, &mut out);
        return Body::dangerous_pre_encoded(out, ContentTransferEncoding::QuotedPrintable);
    }
    let mut normalized = Vec::with_capacity(bytes.len() + shape.bare_lf);
    write_crlf(bytes, &mut normalized);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&normalized);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / QP_LINE * 2 + 2);
    write_lines(encoded.as_bytes().chunks(QP_LINE), &mut out, |line, out| {
        out.extend_from_slice(line)
    });
    Body::dangerous_pre_encoded(out, ContentTransferEncoding::Base64)
}

/// Writes `lines` with CRLF between them, each as `write` has it.
fn write_lines<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    out: &mut Vec<u8>,
    write: impl Fn(&[u8], &mut Vec<u8>),
) {
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        write(line, out);
    }
}

fn write_crlf(text: &[u8], out: &mut Vec<u8>) {
    write_lines(lines(text), out, |line, out| out.extend_from_slice(line));
}

fn write_quoted_printable(text: &[u8], out: &mut Vec<u8>) {
    write_lines(lines(text), out, write_quoted_printable_line);
}

fn write_quoted_printable_line(line: &[u8], out: &mut Vec<u8>) {
    let mut column = 0;
    let mut i = 0;
    while i < line.len() {
        // A run of bytes that go as they are, as long as fits before a soft break; the line's
        // last byte takes the careful path, as its rules differ.
        let fits = (QP_LINE - 1).saturating_sub(column).min(line.len() - 1 - i);
        let chunk = &line[i..i + fits];
        // Checking the whole chunk without stopping vectorises; most chunks pass.
        let run = if chunk.iter().fold(true, |all, &b| all & is_literal(b)) {
            fits
        } else {
            chunk.iter().position(|&b| !is_literal(b)).unwrap_or(fits)
        };
        if run > 0 {
            out.extend_from_slice(&line[i..i + run]);
            column += run;
            i += run;
            continue;
        }
        let b = line[i];
        let last = i + 1 == line.len();
        // Space and tab at a line's end would be lost in transport (RFC 2045 6.7 rule 3).
        let literal = is_literal(b) && !(last && (b == b' ' || b == b'\t'));
        let width = if literal { 1 } else { 3 };
        // The last character may fill the line; any other leaves room for a soft break.
        let room = if last { QP_LINE } else { QP_LINE - 1 };
        if column + width > room {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        column += width;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> (String, String) {
        let body = text_body(text);
        let encoding = format!("{:?}", body.encoding());
        (encoding, String::from_utf8(body.into_vec()).unwrap())
    }

    /// Undoes quoted-printable as a receiver would.
    fn decode_qp(encoded: &str) -> Vec<u8> {
        let joined = encoded.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    fn crlf(text: &str) -> String {
        text.replace("\r\n", "\n").replace('\n', "\r\n")
    }

    #[test]
    fn short_ascii_lines_go_as_7bit_with_crlf_line_ends() {
        assert_eq!(
            encoded("Hello,\nsee you.\r\n"),
            ("SevenBit".into(), "Hello,\r\nsee you.\r\n".into())
        );
        assert_eq!(encoded(""), ("SevenBit".into(), String::new()));
        assert_eq!(encoded(&"a".repeat(75)).0, "SevenBit");
        assert_eq!(encoded(&"a".repeat(76)).0, "QuotedPrintable");
    }

    #[test]
    fn every_quoted_printable_line_fits_and_decodes_to_the_text() {
        let texts = [
            "x".repeat(1000),
            format!("{}\n", "La de da ".repeat(40)),
            format!("{} =\t \nend ", "a".repeat(74)),
            "Grüße aus Köln, see you at the café tomorrow, all the best\n".repeat(20),
            format!("{}=\n{}é", "b".repeat(74), "c".repeat(73)),
            "tail space \ntail tab\t\n".repeat(30) + &"d".repeat(80),
        ];
        for text in texts {
            let (encoding, body) = encoded(&text);
            assert_eq!(encoding, "QuotedPrintable", "{text:?}");
            for line in body.split("\r\n") {
                assert!(line.len() <= 76, "{line:?} is {} long", line.len());
                assert!(!line.ends_with(' ') && !line.ends_with('\t'), "{line:?}");
                assert!(
                    line.bytes()
                        .all(|b| (b' '..=b'~').contains(&b) || b == b'\t')
                );
            }
            assert_eq!(decode_qp(&body), crlf(&text).into_bytes(), "{text:?}");
        }
    }

    #[test]
    fn a_bare_cr_or_a_nul_is_never_sent_raw() {
        for text in ["one\rtwo", "nul\0here", "end\r"] {
            let (encoding, body) = encoded(text);
            assert_eq!(encoding, "QuotedPrintable");
            assert!(!body.contains('\0') && !body.contains('\r'), "{body:?}");
            assert_eq!(decode_qp(&body), text.as_bytes());
        }
    }

    #[test]
    fn mostly_non_ascii_text_goes_as_base64() {
        let text = "東京都の天気は晴れです。\n".repeat(10);
        let (encoding, body) = encoded(&text);
        assert_eq!(encoding, "Base64");
        let joined: String = body.split("\r\n").collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .unwrap();
        assert_eq!(decoded, crlf(&text).into_bytes());
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
    }

    /// Random texts of the bytes that matter (line ends, bare CR, NUL, `=`, trailing
    /// whitespace, multi-byte letters, long runs): whatever encoding is chosen, the body is
    /// valid for it and decodes to the text with CRLF line ends.
    #[test]
    fn random_texts_round_trip_in_whatever_encoding_is_chosen() {
        let pieces = [
            "a",
            " ",
            "\t",
            "\r",
            "\n",
            "\r\n",
            "=",
            "\0",
            "é",
            ".",
            &"x".repeat(70),
        ];
        let mut rng = fastrand::Rng::with_seed(28);
        for _ in 0..3000 {
            let len = rng.usize(0..60);
            let text: String = (0..len)
                .map(|_| pieces[rng.usize(0..pieces.len())])
                .collect();
            let (encoding, body) = encoded(&text);
            let expected = crlf(&text).into_bytes();
            match encoding.as_str() {
                "SevenBit" => {
                    assert_eq!(body.as_bytes(), expected, "{text:?}");
                    assert!(
                        body.split("\r\n")
                            .all(|l| l.len() <= 75 && !l.contains(['\r', '\n', '\0']))
                    );
                    assert!(body.is_ascii());
                }
                "QuotedPrintable" => {
                    for line in body.split("\r\n") {
                        assert!(line.len() <= 76, "{text:?} gave {line:?}");
                        assert!(!line.ends_with([' ', '\t']), "{text:?} gave {line:?}");
                        assert!(
                            line.bytes()
                                .all(|b| (b' '..=b'~').contains(&b) || b == b'\t')
                        );
                    }
                    assert_eq!(decode_qp(&body), expected, "{text:?}");
                }
                "Base64" => {
                    let joined: String = body.split("\r\n").collect();
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(joined)
                        .unwrap();
                    assert_eq!(decoded, expected, "{text:?}");
                }
                other => panic!("{other}"),
            }
        }
    }
}
