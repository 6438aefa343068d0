//! The character level of the parser: a cursor over the source that skips FEEL's whitespace
//! and comments and reads names, numbers and strings. FEEL's names may contain spaces
//! (`string length(x)`), so tokens depend on what follows and the parser asks for them.

use crate::FeelError;

/// Words that are never a name (feel-scala's reserved words).
const RESERVED: &[&str] = &[
    "null",
    "true",
    "false",
    "function",
    "in",
    "return",
    "then",
    "else",
    "satisfies",
    "and",
    "or",
];

pub struct Cursor<'s> {
    pub src: &'s str,
    pub pos: usize,
}

/// FEEL's whitespace (DMN 1.5 with feel-scala's additions).
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{D}'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{180E}'
            | '\u{2000}'..='\u{200B}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
            | '\u{FEFF}'
    )
}

fn name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn name_part(c: char) -> bool {
    (c.is_alphanumeric() || c == '_' || c == '$') && !is_space(c)
}

impl<'s> Cursor<'s> {
    pub fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Line and column (1-based, in characters) of a byte offset.
    pub fn line_col(&self, at: usize) -> (usize, usize) {
        let before = &self.src[..at.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    pub fn syntax(&self, at: usize, message: impl Into<String>) -> FeelError {
        let (line, column) = self.line_col(at);
        FeelError::Syntax {
            line,
            column,
            message: message.into(),
        }
    }

    pub fn unsupported(&self, at: usize, what: impl Into<String>) -> FeelError {
        let (line, column) = self.line_col(at);
        FeelError::Unsupported {
            line,
            column,
            what: what.into(),
        }
    }

    /// Skips whitespace and `//`, `/* */` comments.
    pub fn skip(&mut self) -> Result<(), FeelError> {
        loop {
            let rest = self.rest();
            if let Some(c) = rest.chars().next().filter(|c| is_space(*c)) {
                self.pos += c.len_utf8();
            } else if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                let end = body
                    .find("*/")
                    .ok_or_else(|| self.syntax(self.pos, "unterminated comment"))?;
                self.pos += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    /// The symbol `s` next (after whitespace), consumed.
    pub fn eat(&mut self, s: &str) -> Result<bool, FeelError> {
        self.skip()?;
        if self.rest().starts_with(s) {
            self.pos += s.len();
            return Ok(true);
        }
        Ok(false)
    }

    /// The keyword `word` next, as a whole word, consumed.
    pub fn eat_word(&mut self, word: &str) -> Result<bool, FeelError> {
        self.skip()?;
        if self.at_word(word) {
            self.pos += word.len();
            return Ok(true);
        }
        Ok(false)
    }

    pub fn at_word(&self, word: &str) -> bool {
        let rest = self.rest();
        rest.starts_with(word) && !rest[word.len()..].chars().next().is_some_and(name_part)
    }

    pub fn expect(&mut self, s: &str) -> Result<(), FeelError> {
        if self.eat(s)? {
            Ok(())
        } else {
            Err(self.syntax(self.pos, format!("expected `{s}`")))
        }
    }

    pub fn expect_word(&mut self, word: &str) -> Result<(), FeelError> {
        if self.eat_word(word)? {
            Ok(())
        } else {
            Err(self.syntax(self.pos, format!("expected `{word}`")))
        }
    }

    /// A plain name (not a reserved word) at the cursor, not consumed: its byte length.
    fn word_len(&self) -> Option<usize> {
        let rest = self.rest();
        let first = rest.chars().next()?;
        if !name_start(first) {
            return None;
        }
        let len = rest.find(|c: char| !name_part(c)).unwrap_or(rest.len());
        (!RESERVED.contains(&&rest[..len])).then_some(len)
    }

    /// A name: a plain word or a `backquoted name`.
    pub fn name(&mut self) -> Result<Option<String>, FeelError> {
        self.skip()?;
        if let Some(body) = self.rest().strip_prefix('`') {
            let end = body
                .find('`')
                .filter(|e| *e > 0)
                .ok_or_else(|| self.syntax(self.pos, "unterminated `name`"))?;
            let name = body[..end].to_string();
            self.pos += end + 2;
            return Ok(Some(name));
        }
        Ok(self.word_len().map(|len| {
            let name = self.src[self.pos..self.pos + len].to_string();
            self.pos += len;
            name
        }))
    }

    /// Words joined by single spaces (`string length`, `date and time`) when `follow` comes
    /// next; otherwise nothing is consumed.
    pub fn spaced_name(&mut self, follow: char) -> Result<Option<String>, FeelError> {
        self.skip()?;
        let start = self.pos;
        let mut end = None;
        let mut pos = self.pos;
        loop {
            let probe = Cursor { src: self.src, pos };
            let Some(len) = probe.word_len() else { break };
            pos += len;
            let mut after = Cursor { src: self.src, pos };
            after.skip()?;
            if after.peek() == Some(follow) {
                end = Some(pos);
            }
            if !self.src[pos..].starts_with(' ') {
                break;
            }
            pos += self.src[pos..].len() - self.src[pos..].trim_start_matches(' ').len();
        }
        Ok(end.map(|end| {
            self.pos = end;
            self.src[start..end].to_string()
        }))
    }

    /// `123`, `1.5`, `.5`: the literal's text.
    pub fn number(&mut self) -> Option<&'s str> {
        let rest = self.rest();
        let int = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let after = &rest[int..];
        let frac = match after.strip_prefix('.') {
            Some(f) if f.starts_with(|c: char| c.is_ascii_digit()) => {
                1 + f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())
            }
            _ => 0,
        };
        if int + frac == 0 {
            return None;
        }
        self.pos += int + frac;
        Some(&rest[..int + frac])
    }

    /// A `"string"`, with feel-scala's escapes (`\n \r \t \b \f \' \" \\`); any other
    /// backslash stays as written (regex classes such as `\d` pass through).
    pub fn string(&mut self) -> Result<String, FeelError> {
        let start = self.pos;
        let body = &self.rest()[1..];
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += 1 + i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{C}'),
                        '\'' | '"' | '\\' => out.push(e),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.syntax(start, "unterminated string"))
    }

    /// A context key up to its `:`: any text without `" { } : , [ ] \``, trimmed.
    pub fn loose_key(&mut self) -> Option<String> {
        let rest = self.rest();
        let end = rest.find(['"', '{', '}', ':', ',', '[', ']', '`'])?;
        let key = rest[..end].trim_matches(is_space);
        if key.is_empty() || !rest[end..].starts_with(':') {
            return None;
        }
        self.pos += end;
        Some(key.to_string())
    }
}
