//! Reading the `PARTIAL` result of an extended SORT (RFC 5267 ESORT, with the PARTIAL return
//! option of RFC 9394): `* ESEARCH (TAG "A7") UID PARTIAL (1:10 1000,999,998)`. The UIDs come
//! in sort order, so a range counts down when it is written high to low (`1000:998`).
//!
//! The server decides how many numbers it writes: only the first `limit` are kept, and a
//! range is walked, never expanded into memory, so `1:4294967295` costs what `limit` costs.

/// The UIDs of the `PARTIAL` item in one ESEARCH response's data (after `* ESEARCH `), in the
/// server's order, at most `limit`. `Some(vec![])` for a `PARTIAL (1:10 NIL)` or a response
/// with no `PARTIAL` item (no message matched); `None` when the data is not ESEARCH as RFC 4731
/// writes it.
pub fn partial_uids(data: &[u8], limit: usize) -> Option<Vec<u32>> {
    let text = std::str::from_utf8(data)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let mut rest = text.trim_start();
    // The correlator, `(TAG "A7")`: which command this answers. Quoted strings cannot hold a
    // parenthesis that matters here, but skip to the quote's end to be sure.
    if let Some(after) = rest.strip_prefix('(') {
        let close = correlator_end(after)?;
        rest = after[close + 1..].trim_start();
    }
    let mut words = rest.split_ascii_whitespace().peekable();
    if words.peek().is_some_and(|w| w.eq_ignore_ascii_case("UID")) {
        words.next();
    }
    while let Some(name) = words.next() {
        if name.eq_ignore_ascii_case("PARTIAL") {
            let range = words.next()?.strip_prefix('(')?;
            if !range.contains(':') {
                return None;
            }
            let set = words.next()?.strip_suffix(')')?;
            if set.eq_ignore_ascii_case("NIL") {
                return Some(Vec::new());
            }
            return uids_in_order(set, limit);
        }
        // Another item (MIN, MAX, COUNT, ALL, MODSEQ) and its one value.
        let value = words.next()?;
        if value.starts_with('(') {
            return None;
        }
    }
    Some(Vec::new())
}

/// How far the correlator `TAG "A7")` runs in `after` (the text after its `(`), up to and
/// including its `)`; `None` when it is not a tag and a quoted string.
fn correlator_end(after: &str) -> Option<usize> {
    let name = after.get(..3)?;
    if !name.eq_ignore_ascii_case("TAG") {
        return None;
    }
    let quoted = after[3..].trim_start();
    let skipped = after.len() - quoted.len();
    let body = quoted.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let close = skipped + 1 + i + 1;
                return (after[close..].starts_with(')')).then_some(close);
            }
            _ => {}
        }
    }
    None
}

/// A sequence set read in its written order: `5,7:9,4:2` is 5, 7, 8, 9, 4, 3, 2.
fn uids_in_order(set: &str, limit: usize) -> Option<Vec<u32>> {
    let mut uids = Vec::with_capacity(limit.min(1024));
    for item in set.split(',') {
        let (from, to) = match item.split_once(':') {
            Some((a, b)) => (uid(a)?, uid(b)?),
            None => (uid(item)?, uid(item)?),
        };
        let mut next = from;
        loop {
            if uids.len() == limit {
                return Some(uids);
            }
            uids.push(next);
            if next == to {
                break;
            }
            next = if from < to { next + 1 } else { next - 1 };
        }
    }
    Some(uids)
}

fn uid(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_result_is_read_in_the_servers_order() {
        let dovecot =
            b"(TAG \"A5\") UID PARTIAL (1:10 1000,999,998,997,996,995,994,993,992,991)\r\n";
        assert_eq!(
            partial_uids(dovecot, 10),
            Some((991..=1000).rev().collect::<Vec<u32>>())
        );
        assert_eq!(
            partial_uids(b"(TAG \"A1\") UID PARTIAL (1:6 5,7:9,4:3)", 10),
            Some(vec![5, 7, 8, 9, 4, 3])
        );
        assert_eq!(
            partial_uids(b"(TAG \"A1\") UID COUNT 3 PARTIAL (1:10 3,2,1)", 10),
            Some(vec![3, 2, 1])
        );
        assert_eq!(
            partial_uids(b"(tag \"A)1\") uid partial (1:10 4)", 10),
            Some(vec![4])
        );
    }

    #[test]
    fn no_match_is_an_empty_list() {
        assert_eq!(
            partial_uids(b"(TAG \"A1\") UID PARTIAL (1:10 NIL)", 10),
            Some(vec![])
        );
        assert_eq!(partial_uids(b"(TAG \"A1\") UID", 10), Some(vec![]));
        assert_eq!(partial_uids(b"(TAG \"A1\") UID COUNT 0", 10), Some(vec![]));
    }

    #[test]
    fn a_server_cannot_make_the_list_longer_than_the_limit() {
        let huge = b"(TAG \"A1\") UID PARTIAL (1:10 1:4294967295)";
        assert_eq!(partial_uids(huge, 3), Some(vec![1, 2, 3]));
        let down = b"(TAG \"A1\") UID PARTIAL (1:10 4294967295:1)";
        assert_eq!(partial_uids(down, 2), Some(vec![4294967295, 4294967294]));
        assert_eq!(
            partial_uids(b"(TAG \"A1\") UID PARTIAL (1:1 7:7)", 5),
            Some(vec![7])
        );
    }

    #[test]
    fn what_is_not_esearch_is_refused() {
        for bad in [
            b"(TAG \"A1\" UID PARTIAL (1:10 1)".as_slice(),
            b"(TAG \"A1\") UID PARTIAL (1:10 0)",
            b"(TAG \"A1\") UID PARTIAL (1:10 *)",
            b"(TAG \"A1\") UID PARTIAL (1:10 1,,2)",
            b"(TAG \"A1\") UID PARTIAL (1:10 -4)",
            b"(TAG \"A1\") UID PARTIAL 1:10 1",
            b"(TAG \"A1\") UID PARTIAL (x 1)",
            b"(TAG \"A1\") UID PARTIAL (1:10 99999999999)",
            b"(TAG \"A1\") UID COUNT",
            b"\xff\xfe",
        ] {
            assert_eq!(
                partial_uids(bad, 10),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
