//! The original a forward carries as an attachment (docs/responses.md, `imap:forward`): a
//! `message/rfc822` part whose body is the original's bytes as they are.
//!
//! RFC 2046 5.2.1 allows only 7bit, 8bit or binary for `message/rfc822`, so it cannot be
//! base64 as every other attachment is. An original that is 7-bit text goes as 7bit; one with
//! bytes beyond ASCII as 8bit, which needs a server offering 8BITMIME (without it the send is
//! refused, `MESSAGE_REJECTED`: the part cannot be made 7-bit without changing the original's
//! bytes, which a forward promises to keep). An original that is neither (a line over 998
//! octets, a NUL, a CR or LF not in a CRLF pair) would need BINARYMIME, which the connector
//! does not speak; it goes base64 as `application/octet-stream` under the same name, still
//! byte for byte, since SMTP would otherwise break its long lines.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, SinglePart};

use super::compose::placeholder_body;
use super::data::Content;
use crate::error::{EmailError, Result};

/// The attachment's file name, whatever its type.
pub(super) const FILE_NAME: &str = "forwarded-message.eml";

/// How an original can travel in a `message/rfc822` part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    SevenBit,
    EightBit,
    /// Not line-based text SMTP carries unchanged: sent as an octet-stream in base64.
    Binary,
}

/// How `raw` can travel: 7bit and 8bit are CRLF lines of at most 998 octets without NUL
/// (RFC 2045 2.7, 2.8), 8bit with bytes beyond ASCII.
pub(super) fn transfer_of(raw: &[u8]) -> Transfer {
    let mut eight_bit = false;
    let mut lines = raw.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        // Every line but the last was ended by a LF, which must follow a CR.
        let text = if lines.peek().is_some() {
            match line.strip_suffix(b"\r") {
                Some(text) => text,
                None => return Transfer::Binary,
            }
        } else {
            line
        };
        if text.len() > 998 || text.iter().any(|b| *b == 0 || *b == b'\r') {
            return Transfer::Binary;
        }
        eight_bit |= !text.is_ascii();
    }
    if eight_bit {
        Transfer::EightBit
    } else {
        Transfer::SevenBit
    }
}

/// The part that carries `original`, the text standing for its content in the formatted
/// message, and the content to put there.
pub(super) fn part(original: Vec<u8>) -> Result<(SinglePart, String, Content)> {
    let attachment = Attachment::new(FILE_NAME.to_string());
    let (encoding, media_type) = match transfer_of(&original) {
        Transfer::SevenBit => (ContentTransferEncoding::SevenBit, "message/rfc822"),
        Transfer::EightBit => (ContentTransferEncoding::EightBit, "message/rfc822"),
        Transfer::Binary => {
            let (body, placeholder) = placeholder_body()?;
            let part = attachment.body(body, media("application/octet-stream")?);
            return Ok((part, placeholder, Content::Memory(original)));
        }
    };
    // Letters and digits only: the same text in the formatted message, whatever the encoding.
    let marker: String = (0..48).map(|_| fastrand::alphanumeric()).collect();
    let body = Body::new_with_encoding(marker.clone(), encoding)
        .map_err(|_| EmailError::internal("the forwarded message's placeholder"))?;
    let part = attachment.body(body, media(media_type)?);
    Ok((part, marker, Content::Verbatim(original)))
}

fn media(name: &str) -> Result<ContentType> {
    ContentType::parse(name).map_err(|_| EmailError::internal("a media type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_go_as_they_are_and_anything_else_as_an_octet_stream() {
        assert_eq!(transfer_of(b"A: b\r\n\r\nbody\r\n"), Transfer::SevenBit);
        assert_eq!(transfer_of(b"A: b\r\n\r\nno line end"), Transfer::SevenBit);
        assert_eq!(transfer_of(b"A: b\r\n\r\nCaf\xe9\r\n"), Transfer::EightBit);
        let longest = [b"A: b\r\n\r\n".as_slice(), &[b'x'; 998], b"\r\n"].concat();
        assert_eq!(transfer_of(&longest), Transfer::SevenBit);
        let too_long = [b"A: b\r\n\r\n".as_slice(), &[b'x'; 999], b"\r\n"].concat();
        assert_eq!(transfer_of(&too_long), Transfer::Binary);
        assert_eq!(transfer_of(b"A: b\r\n\r\na\0b\r\n"), Transfer::Binary);
        assert_eq!(transfer_of(b"A: b\n\nbare line feeds\n"), Transfer::Binary);
        assert_eq!(transfer_of(b"A: b\r\n\r\na\rb\r\n"), Transfer::Binary);
    }
}
