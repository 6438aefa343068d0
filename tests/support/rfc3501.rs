//! A checker for what an IMAP client sends, by RFC 3501's grammar (section 9) and the
//! extensions the worker uses: LITERAL+ (RFC 7888), SASL-IR (RFC 4959), IDLE (RFC 2177),
//! NAMESPACE (RFC 2342), UIDPLUS's UID EXPUNGE (RFC 4315), MOVE (RFC 6851), SORT (RFC 5256),
//! ESORT's `RETURN (PARTIAL m:n)` (RFC 5267, RFC 9394).
//! Strict where servers are lenient (Dovecot takes `( SUBJECT "x" )`, Cyrus answers BAD), so
//! no lenient server hides a malformed command. Written from the ABNF, independently of the
//! code under test.

/// Every client command in `stream` (the bytes one connection sent, literals included) that
/// does not follow the grammar, with the reason. Continuation data (the line after IDLE, the
/// SASL responses after AUTHENTICATE) is read as such; after STARTTLS the bytes are TLS and
/// are not read.
pub fn violations(stream: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = stream;
    let mut after = After::Command;
    while !rest.is_empty() {
        match after {
            After::Idle => {
                let Some(line) = line_at(rest) else {
                    break; // DONE not sent yet
                };
                if !line.eq_ignore_ascii_case(b"DONE\r\n") {
                    found.push(format!("expected DONE after IDLE, got {}", show(line)));
                }
                rest = &rest[line.len()..];
                after = After::Command;
                continue;
            }
            After::Sasl => {
                if let Some(line) = line_at(rest)
                    && !line.contains(&b' ')
                {
                    let body = &line[..line.len() - 2];
                    if body != b"*" && !body.iter().all(|b| is_base64(*b)) {
                        found.push(format!("a SASL response is not base64: {}", show(line)));
                    }
                    rest = &rest[line.len()..];
                    continue;
                }
                after = After::Command;
            }
            After::Command | After::Tls => {}
        }
        let mut parser = Parser::new(rest);
        match parser.command() {
            Ok(next) => {
                after = next;
                rest = &rest[parser.at..];
                if after == After::Tls {
                    break;
                }
            }
            Err(Error::Incomplete) => break,
            Err(Error::Invalid(reason)) => {
                let end = rest
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(rest.len(), |p| p + 2);
                found.push(format!(
                    "{reason} at byte {} of {}",
                    parser.at,
                    show(&rest[..end])
                ));
                rest = &rest[end..];
            }
        }
    }
    found
}

/// The reasons `command` (one complete command, CRLF included) breaks the grammar.
pub fn check(command: &[u8]) -> Result<(), String> {
    let mut parser = Parser::new(command);
    match parser.command() {
        Ok(_) if parser.at == command.len() => Ok(()),
        Ok(_) => Err(format!(
            "bytes after the command's end: {}",
            show(&command[parser.at..])
        )),
        Err(Error::Incomplete) => Err("the command ends early".into()),
        Err(Error::Invalid(reason)) => Err(format!("{reason} at byte {}", parser.at)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Command,
    Idle,
    Sasl,
    Tls,
}

#[derive(Debug)]
enum Error {
    /// The stream ends inside a command (the client has not sent the rest yet).
    Incomplete,
    Invalid(String),
}

type Parsed<T = ()> = Result<T, Error>;

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cut: String = text.chars().take(300).collect();
    format!("{cut:?}")
}

fn line_at(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| &bytes[..p + 2])
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

/// CHAR: 7-bit, not NUL.
fn is_char(b: u8) -> bool {
    (0x01..=0x7f).contains(&b)
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// ATOM-CHAR: any CHAR except atom-specials `( ) { SP CTL % * " \ ]`.
fn is_atom_char(b: u8) -> bool {
    is_char(b) && !is_ctl(b) && !b"(){ %*\"\\]".contains(&b)
}

/// ASTRING-CHAR: ATOM-CHAR or `]`.
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// list-char: ATOM-CHAR, list-wildcards or resp-specials.
fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || b == b'%' || b == b'*' || b == b']'
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a [u8]) -> Self {
        Parser { s, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn invalid<T>(&self, what: impl Into<String>) -> Parsed<T> {
        if self.at >= self.s.len() {
            Err(Error::Incomplete)
        } else {
            Err(Error::Invalid(what.into()))
        }
    }

    fn byte(&mut self, want: u8) -> Parsed {
        match self.peek() {
            Some(b) if b == want => {
                self.at += 1;
                Ok(())
            }
            _ => self.invalid(format!("expected {:?}", want as char)),
        }
    }

    fn sp(&mut self) -> Parsed {
        self.byte(b' ').or_else(|e| match e {
            Error::Incomplete => Err(e),
            Error::Invalid(_) => self.invalid("expected one space"),
        })
    }

    fn crlf(&mut self) -> Parsed {
        if self.s[self.at..].starts_with(b"\r\n") {
            self.at += 2;
            Ok(())
        } else if self.s.len() - self.at < 2 && b"\r\n".starts_with(&self.s[self.at..]) {
            Err(Error::Incomplete)
        } else {
            self.invalid("expected CRLF")
        }
    }

    /// A keyword, case-insensitive, not followed by more atom characters.
    fn keyword(&mut self, word: &str) -> bool {
        let end = self.at + word.len();
        if end <= self.s.len()
            && self.s[self.at..end].eq_ignore_ascii_case(word.as_bytes())
            && !self
                .s
                .get(end)
                .is_some_and(|b| is_atom_char(*b) && *b != b'[' && *b != b'<')
        {
            self.at = end;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Parsed {
        if self.keyword(word) {
            Ok(())
        } else {
            self.invalid(format!("expected {word}"))
        }
    }

    /// One or more bytes that `allowed` takes; `what` names them in a refusal.
    fn run(&mut self, allowed: fn(u8) -> bool, what: &str) -> Parsed {
        let start = self.at;
        while self.peek().is_some_and(allowed) {
            self.at += 1;
        }
        if self.at == start {
            self.invalid(format!("expected {what}"))
        } else {
            Ok(())
        }
    }

    fn atom(&mut self) -> Parsed<String> {
        let start = self.at;
        self.run(is_atom_char, "an atom")?;
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).to_uppercase())
    }

    fn number(&mut self) -> Parsed<u64> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == start {
            return self.invalid("expected a number");
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .map(u64::from)
            .ok_or_else(|| Error::Invalid("a number beyond 32 bits".into()))
    }

    fn nz_number(&mut self) -> Parsed<u64> {
        if self.peek() == Some(b'0') {
            return self.invalid("a number with a leading zero");
        }
        self.number()
    }

    fn quoted(&mut self) -> Parsed {
        self.byte(b'"')?;
        loop {
            match self.peek() {
                None => return Err(Error::Incomplete),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\') => self.at += 1,
                        _ => return self.invalid("a backslash escapes only \" or \\"),
                    }
                }
                Some(b) if is_char(b) && b != b'\r' && b != b'\n' => self.at += 1,
                Some(_) => {
                    return self.invalid("a quoted string holds 7-bit text without CR, LF or NUL");
                }
            }
        }
    }

    /// `{n}` CRLF n bytes, or LITERAL+'s `{n+}`.
    fn literal(&mut self) -> Parsed {
        self.byte(b'{')?;
        let n = self.number()? as usize;
        if self.peek() == Some(b'+') {
            self.at += 1;
        }
        self.byte(b'}')?;
        self.crlf()?;
        if self.s.len() - self.at < n {
            return Err(Error::Incomplete);
        }
        if self.s[self.at..self.at + n].contains(&0) {
            return Err(Error::Invalid("a NUL in a literal".into()));
        }
        self.at += n;
        Ok(())
    }

    fn string(&mut self) -> Parsed {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => self.invalid("expected a quoted string or a literal"),
        }
    }

    fn astring(&mut self) -> Parsed {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => self.run(is_astring_char, "an atom, a quoted string or a literal"),
        }
    }

    fn mailbox(&mut self) -> Parsed {
        self.astring()
    }

    fn list_mailbox(&mut self) -> Parsed {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => self.run(is_list_char, "a list pattern"),
        }
    }

    fn seq_number(&mut self) -> Parsed {
        if self.peek() == Some(b'*') {
            self.at += 1;
            Ok(())
        } else {
            self.nz_number().map(drop)
        }
    }

    fn sequence_set(&mut self) -> Parsed {
        loop {
            self.seq_number()?;
            if self.peek() == Some(b':') {
                self.at += 1;
                self.seq_number()?;
            }
            if self.peek() == Some(b',') {
                self.at += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn date(&mut self) -> Parsed {
        let quoted = self.peek() == Some(b'"');
        if quoted {
            self.at += 1;
        }
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if !(1..=2).contains(&(self.at - start)) {
            return self.invalid("a date's day is 1 or 2 digits");
        }
        self.byte(b'-')?;
        let month = self.s.get(self.at..self.at + 3).unwrap_or_default();
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        if !MONTHS
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(month))
        {
            return self.invalid("a date's month is Jan..Dec");
        }
        self.at += 3;
        self.byte(b'-')?;
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at - start != 4 {
            return self.invalid("a date's year is 4 digits");
        }
        if quoted {
            self.byte(b'"')?;
        }
        Ok(())
    }

    /// `"(" x *(SP x) ")"`: no space after the opening or before the closing parenthesis.
    fn parenthesized(&mut self, mut item: impl FnMut(&mut Self) -> Parsed) -> Parsed {
        self.byte(b'(')?;
        if self.peek() == Some(b' ') {
            return self.invalid("a space after '('");
        }
        item(self)?;
        loop {
            match self.peek() {
                Some(b')') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b' ') => {
                    self.at += 1;
                    if self.peek() == Some(b')') {
                        return self.invalid("a space before ')'");
                    }
                    item(self)?;
                }
                _ => return self.invalid("expected a space or ')'"),
            }
        }
    }

    fn search_key(&mut self) -> Parsed {
        match self.peek() {
            Some(b'(') => return self.parenthesized(Self::search_key),
            Some(b'*' | b'1'..=b'9') => return self.sequence_set(),
            _ => {}
        }
        let key = self.atom()?;
        match key.as_str() {
            "ALL" | "ANSWERED" | "DELETED" | "FLAGGED" | "NEW" | "OLD" | "RECENT" | "SEEN"
            | "UNANSWERED" | "UNDELETED" | "UNFLAGGED" | "UNSEEN" | "DRAFT" | "UNDRAFT" => Ok(()),
            "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
                self.sp()?;
                self.astring()
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                self.sp()?;
                self.date()
            }
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                self.atom().map(drop)
            }
            "HEADER" => {
                self.sp()?;
                self.astring()?;
                self.sp()?;
                self.astring()
            }
            "LARGER" | "SMALLER" => {
                self.sp()?;
                self.number().map(drop)
            }
            "NOT" => {
                self.sp()?;
                self.search_key()
            }
            "OR" => {
                self.sp()?;
                self.search_key()?;
                self.sp()?;
                self.search_key()
            }
            "UID" => {
                self.sp()?;
                self.sequence_set()
            }
            other => Err(Error::Invalid(format!("unknown search key {other}"))),
        }
    }

    /// `"SEARCH" [SP "CHARSET" SP astring] 1*(SP search-key)`, after the verb.
    fn search(&mut self) -> Parsed {
        self.sp()?;
        if self.keyword("CHARSET") {
            self.sp()?;
            self.astring()?;
            self.sp()?;
        }
        self.search_keys()
    }

    /// `search-key *(SP search-key)`.
    fn search_keys(&mut self) -> Parsed {
        self.search_key()?;
        while self.peek() == Some(b' ') {
            self.at += 1;
            self.search_key()?;
        }
        Ok(())
    }

    /// `"SORT" [search-return-opts] SP sort-criteria SP search-charset 1*(SP search-key)`
    /// (RFC 5256; the return options of RFC 5267, of which the worker sends only PARTIAL:
    /// `SP "RETURN" SP "(" "PARTIAL" SP nz-number ":" nz-number ")"`, RFC 9394).
    fn sort(&mut self) -> Parsed {
        self.sp()?;
        if self.keyword("RETURN") {
            self.sp()?;
            self.parenthesized(|p| {
                p.expect_keyword("PARTIAL")?;
                p.sp()?;
                p.nz_number()?;
                p.byte(b':')?;
                p.nz_number()?;
                Ok(())
            })?;
            self.sp()?;
        }
        self.parenthesized(|p| {
            if p.keyword("REVERSE") {
                p.sp()?;
            }
            let key = p.atom()?;
            match key.as_str() {
                "ARRIVAL" | "CC" | "DATE" | "FROM" | "SIZE" | "SUBJECT" | "TO" => Ok(()),
                other => Err(Error::Invalid(format!("unknown sort key {other}"))),
            }
        })?;
        self.sp()?;
        self.astring()?;
        self.sp()?;
        self.search_keys()
    }

    /// `section = "[" [section-spec] "]"`.
    fn section(&mut self) -> Parsed {
        self.byte(b'[')?;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut part = false;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.nz_number()?;
            part = true;
            if self.peek() == Some(b'.') {
                self.at += 1;
            } else {
                return self.byte(b']');
            }
        }
        if part && self.keyword("MIME") {
            return self.byte(b']');
        }
        if self.keyword("HEADER.FIELDS.NOT") || self.keyword("HEADER.FIELDS") {
            self.sp()?;
            self.parenthesized(Self::astring)?;
        } else if !(self.keyword("HEADER") || self.keyword("TEXT")) {
            return self.invalid("expected a section: HEADER, HEADER.FIELDS, TEXT or MIME");
        }
        self.byte(b']')
    }

    fn partial(&mut self) -> Parsed {
        if self.peek() == Some(b'<') {
            self.at += 1;
            self.number()?;
            self.byte(b'.')?;
            self.nz_number()?;
            self.byte(b'>')?;
        }
        Ok(())
    }

    fn fetch_att(&mut self) -> Parsed {
        for plain in [
            "ENVELOPE",
            "FLAGS",
            "INTERNALDATE",
            "RFC822.HEADER",
            "RFC822.SIZE",
            "RFC822.TEXT",
            "RFC822",
            "BODYSTRUCTURE",
            "UID",
        ] {
            if self.keyword(plain) {
                return Ok(());
            }
        }
        if self.keyword("BODY.PEEK") {
            self.section()?;
            return self.partial();
        }
        if self.keyword("BODY") {
            if self.peek() == Some(b'[') {
                self.section()?;
                return self.partial();
            }
            return Ok(());
        }
        self.invalid("unknown fetch attribute")
    }

    fn fetch(&mut self) -> Parsed {
        self.sp()?;
        self.sequence_set()?;
        self.sp()?;
        if self.keyword("ALL") || self.keyword("FULL") || self.keyword("FAST") {
            return Ok(());
        }
        if self.peek() == Some(b'(') {
            self.parenthesized(Self::fetch_att)
        } else {
            self.fetch_att()
        }
    }

    fn flag(&mut self) -> Parsed {
        if self.peek() == Some(b'\\') {
            self.at += 1;
        }
        self.atom().map(drop)
    }

    /// `"STORE" SP sequence-set SP store-att-flags`.
    fn store(&mut self) -> Parsed {
        self.sp()?;
        self.sequence_set()?;
        self.sp()?;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.at += 1;
        }
        if !(self.keyword("FLAGS.SILENT") || self.keyword("FLAGS")) {
            return self.invalid("expected FLAGS or FLAGS.SILENT");
        }
        self.sp()?;
        if self.peek() == Some(b'(') {
            if self.s.get(self.at + 1) == Some(&b')') {
                self.at += 2;
                return Ok(());
            }
            self.parenthesized(Self::flag)
        } else {
            self.flag()?;
            while self.peek() == Some(b' ') {
                self.at += 1;
                self.flag()?;
            }
            Ok(())
        }
    }

    /// COPY and MOVE: `SP sequence-set SP mailbox`.
    fn copy(&mut self) -> Parsed {
        self.sp()?;
        self.sequence_set()?;
        self.sp()?;
        self.mailbox()
    }

    /// `"APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal`; the date-time is taken
    /// as a quoted string (the worker sends none).
    fn append(&mut self) -> Parsed {
        self.sp()?;
        self.mailbox()?;
        self.sp()?;
        if self.peek() == Some(b'(') {
            if self.s.get(self.at + 1) == Some(&b')') {
                self.at += 2;
            } else {
                self.parenthesized(Self::flag)?;
            }
            self.sp()?;
        }
        if self.peek() == Some(b'"') {
            self.quoted()?;
            self.sp()?;
        }
        if self.peek() != Some(b'{') {
            return self.invalid("APPEND's message is a literal");
        }
        self.literal()
    }

    fn tag(&mut self) -> Parsed {
        self.run(|b| is_astring_char(b) && b != b'+', "a tag")
    }

    /// `tag SP command CRLF`; says what the next bytes of the stream are.
    fn command(&mut self) -> Parsed<After> {
        self.tag()?;
        self.sp()?;
        let verb = self.atom()?;
        let mut next = After::Command;
        match verb.as_str() {
            "CAPABILITY" | "NOOP" | "LOGOUT" | "NAMESPACE" | "CHECK" | "CLOSE" | "EXPUNGE"
            | "UNSELECT" => {}
            "STARTTLS" => next = After::Tls,
            "IDLE" => next = After::Idle,
            "LOGIN" => {
                self.sp()?;
                self.astring()?;
                self.sp()?;
                self.astring()?;
            }
            "AUTHENTICATE" => {
                self.sp()?;
                self.atom()?;
                if self.peek() == Some(b' ') {
                    self.at += 1;
                    self.run(is_base64, "an initial response (base64 or '=')")?;
                }
                next = After::Sasl;
            }
            "SELECT" | "EXAMINE" | "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
                self.sp()?;
                self.mailbox()?;
            }
            "RENAME" => {
                self.sp()?;
                self.mailbox()?;
                self.sp()?;
                self.mailbox()?;
            }
            "APPEND" => self.append()?,
            "LIST" | "LSUB" => {
                self.sp()?;
                self.mailbox()?;
                self.sp()?;
                self.list_mailbox()?;
            }
            "ENABLE" => {
                self.sp()?;
                self.atom()?;
                while self.peek() == Some(b' ') {
                    self.at += 1;
                    self.atom()?;
                }
            }
            "SEARCH" => self.search()?,
            "FETCH" => self.fetch()?,
            "STORE" => self.store()?,
            "COPY" | "MOVE" => self.copy()?,
            "SORT" => self.sort()?,
            "UID" => {
                self.sp()?;
                match self.atom()?.as_str() {
                    "SEARCH" => self.search()?,
                    "FETCH" => self.fetch()?,
                    "STORE" => self.store()?,
                    "COPY" | "MOVE" => self.copy()?,
                    "SORT" => self.sort()?,
                    "EXPUNGE" => {
                        self.sp()?;
                        self.sequence_set()?;
                    }
                    other => return Err(Error::Invalid(format!("UID {other} is no command"))),
                }
            }
            other => return Err(Error::Invalid(format!("unknown command {other}"))),
        }
        self.crlf()?;
        Ok(next)
    }
}
