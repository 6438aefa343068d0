//! Transfer-encoding decoders that work a line at a time, for the spool: base64 in groups of
//! four characters, quoted-printable one line (without its break) at a time. Lenient, as mail
//! in the wild needs, and unable to panic on any input.

pub(super) fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

fn base64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64 groups leniently (mail in the wild has stray padding): each group of four
/// gives as many bytes as it has data characters for.
pub(super) fn decode_base64(input: &[u8], out: &mut Vec<u8>) {
    for group in input.chunks(4) {
        let values: Vec<u32> = group.iter().filter_map(|b| base64_value(*b)).collect();
        let mut n = 0u32;
        for (i, v) in values.iter().enumerate() {
            n |= v << (18 - 6 * i as u32);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let count = match values.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&bytes[..count]);
    }
}

pub(super) fn decode_quoted_printable(text: &[u8], out: &mut Vec<u8>) {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'='
            && let (Some(h), Some(l)) = (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_groups_and_stray_padding() {
        let mut out = Vec::new();
        decode_base64(b"aGVsbG8=", &mut out);
        assert_eq!(out, b"hello");
        out.clear();
        decode_base64(b"QQ==QkM=", &mut out);
        assert_eq!(out, b"ABC");
    }

    #[test]
    fn quoted_printable_escapes_and_broken_ones() {
        let mut out = Vec::new();
        decode_quoted_printable(b"Gr=C3=BC=C3=9Fe =ZZ =4", &mut out);
        assert_eq!(out, "Grüße =ZZ =4".as_bytes());
    }
}
