//! The syntax check of the stream guard ([`super::guard::Guarded`]), on the bytes an IMAP
//! server sends, ahead of async-imap: a response whose
//! parentheses nest deeper than [`MAX_PARENS`] ends the connection with an error before
//! imap-proto parses it. imap-proto parses a BODYSTRUCTURE recursively, one stack frame set
//! per level; a hostile server nesting it a few hundred deep overflows a thread's stack, and
//! a stack overflow aborts the whole process, every job in flight with it.
//!
//! It also refuses a non-ASCII byte right after the `]` of a response code (`OK [COPYUID
//! ...]\xb8...`): imap-proto slices the text after a code one byte in, and a multi-byte
//! character there makes it panic (found by fuzzing, `fuzz/regressions/imap_response/`).
//!
//! And it refuses a literal larger than the command can use ([`Nesting::limit_literals`]):
//! async-imap makes room for a literal's announced size before its bytes arrive, so a
//! greeting announcing `{536000000}` took half a gigabyte.
//!
//! The guard follows the syntax just enough to count only real list parentheses: quoted
//! strings (with `\` escapes) and literals (`{n}` or `{n+}`, then CRLF and n bytes) are
//! skipped, and a line end outside them ends a response and resets the count.

use std::io;

/// Deepest parenthesis nesting accepted in one response. Dovecot describes at most 100
/// nested MIME parts (`max_nested_mime_parts`), each a level, plus a few levels of parameter
/// and disposition lists; 500 levels overflowed a 2 MiB stack (imap-proto and our walkers).
pub const MAX_PARENS: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Quoted,
    Escaped,
    /// Inside `{...}`: the literal's length so far.
    Count(u64),
    /// After `}`: the CR and LF before the literal's bytes.
    BeforeLiteral(u64),
    Literal(u64),
    /// Just after a `]` outside strings and literals.
    AfterBracket,
}

/// Counts parenthesis nesting across reads; see the module documentation.
#[derive(Debug, Clone)]
pub struct Nesting {
    state: State,
    depth: usize,
    max_literal: u64,
}

impl Default for Nesting {
    fn default() -> Self {
        Nesting {
            state: State::Normal,
            depth: 0,
            max_literal: u64::MAX,
        }
    }
}

impl Nesting {
    /// Literals announced from now on may hold at most `max` bytes.
    pub fn limit_literals(&mut self, max: u64) {
        self.max_literal = max;
    }

    /// Reads `bytes` on from where the last call stopped; an error once nesting passes the cap.
    pub fn scan(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while let Some(end) = self.scan_to_end(rest)? {
            rest = rest.get(end..).unwrap_or_default();
        }
        Ok(())
    }

    /// Like [`Nesting::scan`], stopping just after the first line end that ends a response
    /// (one outside quoted strings and literals): its offset in `bytes`, or None when `bytes`
    /// hold none. The next call goes on from there.
    pub fn scan_to_end(&mut self, bytes: &[u8]) -> io::Result<Option<usize>> {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            i += 1;
            self.state = match self.state {
                State::Normal => match b {
                    b'(' => {
                        self.depth += 1;
                        if self.depth > MAX_PARENS {
                            return Err(refusal());
                        }
                        State::Normal
                    }
                    b')' => {
                        self.depth = self.depth.saturating_sub(1);
                        State::Normal
                    }
                    b'"' => State::Quoted,
                    b'{' => State::Count(0),
                    b']' => State::AfterBracket,
                    b'\n' => {
                        self.depth = 0;
                        self.state = State::Normal;
                        return Ok(Some(i));
                    }
                    _ => State::Normal,
                },
                State::AfterBracket => {
                    if b >= 0x80 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the server sent a non-ASCII byte right after a response code",
                        ));
                    }
                    i -= 1;
                    State::Normal
                }
                State::Quoted => match b {
                    b'\\' => State::Escaped,
                    b'"' => State::Normal,
                    // A quoted string cannot span lines: the response ended.
                    b'\n' => {
                        self.depth = 0;
                        self.state = State::Normal;
                        return Ok(Some(i));
                    }
                    _ => State::Quoted,
                },
                State::Escaped => State::Quoted,
                State::Count(n) => match b {
                    b'0'..=b'9' => {
                        State::Count(n.saturating_mul(10).saturating_add(u64::from(b - b'0')))
                    }
                    b'+' => State::Count(n),
                    b'}' => State::BeforeLiteral(n),
                    // Not a literal after all (text in a response line): read it as such.
                    _ => {
                        i -= 1;
                        State::Normal
                    }
                },
                State::BeforeLiteral(n) => match b {
                    b'\r' => State::BeforeLiteral(n),
                    // Refused once it is surely a literal, before anyone makes room for it.
                    b'\n' if n > self.max_literal => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the server announced a literal of {n} bytes where at most {} can be used",
                                self.max_literal
                            ),
                        ));
                    }
                    b'\n' if n == 0 => State::Normal,
                    b'\n' => State::Literal(n),
                    _ => {
                        i -= 1;
                        State::Normal
                    }
                },
                State::Literal(n) => {
                    // Skip the rest of the literal at once (this byte is its first).
                    let rest = usize::try_from(n - 1).unwrap_or(usize::MAX);
                    let skip = rest.min(bytes.len() - i);
                    i += skip;
                    let left = n - 1 - skip as u64;
                    if left == 0 {
                        State::Normal
                    } else {
                        State::Literal(left)
                    }
                }
            };
        }
        Ok(None)
    }
}

fn refusal() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server sent a response nested deeper than {MAX_PARENS} levels"),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_non_ascii_byte_right_after_a_response_code_is_refused() {
        // The fuzzer's find: imap-proto panicked on this.
        let found = b"aW4 OK [COPYUID 38505 30419:320 3956:3958]\xb8Done\r\n";
        assert!(Nesting::default().scan(found).is_err());
        // In two reads, the `]` ending the first.
        let mut split = Nesting::default();
        split.scan(b"a1 OK [READ-ONLY]").expect("so far fine");
        assert!(split.scan(b"\xc3\xa9t\xc3\xa9\r\n").is_err());
        // Text after the usual space, a `]` inside a quoted string or a literal: fine.
        for ok in [
            "a2 OK [READ-ONLY] Gr\u{fc}\u{df}e\r\n".as_bytes(),
            "* LIST () \"/\" \"a]\u{e9}\"\r\n".as_bytes(),
            b"* 1 FETCH (BODY[] {3}\r\n]\xe9x)\r\n",
        ] {
            Nesting::default().scan(ok).expect("legal bytes pass");
        }
    }

    fn scan_in_pieces(bytes: &[u8], piece: usize) -> io::Result<()> {
        let mut nesting = Nesting::default();
        for chunk in bytes.chunks(piece) {
            nesting.scan(chunk)?;
        }
        Ok(())
    }

    /// A FETCH response whose BODYSTRUCTURE nests `depth` parentheses deep.
    pub(crate) fn deep(depth: usize) -> Vec<u8> {
        let mut line = b"* 1 FETCH (UID 7 BODYSTRUCTURE ".to_vec();
        line.extend(std::iter::repeat_n(b'(', depth));
        line.extend_from_slice(b"\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1");
        line.extend(std::iter::repeat_n(b')', depth));
        line.extend_from_slice(b")\r\n");
        line
    }

    #[test]
    fn deep_nesting_is_refused_in_any_pieces() {
        for piece in [1, 7, 4096] {
            assert!(scan_in_pieces(&deep(500), piece).is_err());
            assert!(scan_in_pieces(&deep(MAX_PARENS - 1), piece).is_ok());
        }
    }

    #[test]
    fn parentheses_in_strings_and_literals_and_on_earlier_lines_do_not_count() {
        let mut text = Vec::new();
        // Unbalanced opening parentheses on many lines: each line is a response of its own.
        for _ in 0..10 {
            text.extend(std::iter::repeat_n(b'(', MAX_PARENS - 10));
            text.extend_from_slice(b"\r\n");
        }
        let body = "(".repeat(10_000);
        text.extend_from_slice(
            format!(
                "* 2 FETCH (UID 9 BODY[] {{{}}}\r\n{body} ENVELOPE (\"a (((( \\\" ((((\" NIL))\r\n",
                body.len()
            )
            .as_bytes(),
        );
        text.extend_from_slice(b"* OK {not a literal} (fine)\r\n");
        for piece in [1, 3, 100, text.len()] {
            assert!(scan_in_pieces(&text, piece).is_ok(), "piece {piece}");
        }
        // The count carries on after a literal.
        let mut after = b"* 3 FETCH (BODY[] {3}\r\nabc ".to_vec();
        after.extend(std::iter::repeat_n(b'(', MAX_PARENS + 1));
        assert!(scan_in_pieces(&after, 2).is_err());
    }

    #[test]
    fn a_literal_over_the_limit_is_refused_once_announced_in_any_pieces() {
        let limited = |max| {
            let mut nesting = Nesting::default();
            nesting.limit_literals(max);
            nesting
        };
        let greeting = b"* 1 FETCH (BODY[] {536000000}\r\n";
        for piece in [1, 2, 5, greeting.len()] {
            let mut nesting = limited(1 << 20);
            let refused = greeting.chunks(piece).any(|c| nesting.scan(c).is_err());
            assert!(refused, "piece {piece}");
        }
        // Exactly the limit passes; braces that are not followed by a line end are text.
        let mut at = limited(3);
        at.scan(b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n")
            .expect("at the limit");
        at.scan(b"* OK {99999} is text (no line end after it)\r\n")
            .expect("not a literal");
        // The limit holds for literals announced after it was set, whatever came before.
        let mut later = Nesting::default();
        later
            .scan(b"* 1 FETCH (BODY[] {10}\r\n01234")
            .expect("no limit yet");
        later.limit_literals(4);
        later.scan(b"56789)\r\n").expect("the literal begun before");
        assert!(later.scan(b"* 2 FETCH (BODY[] {5}\r\n").is_err());
    }
}
