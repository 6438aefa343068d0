//! Folder paths as a process writes them, and the names a server knows the folders by.
//!
//! One rule for every folder input (`folder`, `sourceFolder`, `targetFolder`, a watcher's
//! `folder` and `moveTo`): a path is a list of segments, from a string split at `.` and at
//! the server's own separator, or given as a list (for names that contain dots). It is
//! relative to the user's personal namespace (RFC 2342): where a server keeps personal
//! folders under `INBOX.` (Cyrus and Courier by default), `Archive` is `INBOX.Archive`. INBOX,
//! and a path that already starts with a namespace's prefix, are taken as they are.
//!
//! One rule back: a folder is shown to the process without the personal namespace's prefix,
//! with the server's separator, so what the worker returns is where the user sees the mail.
//!
//! See the README's "Servers" section for how the common servers differ.

use super::error::{ImapError, ImapErrorKind};
use crate::imap::wire::decode_mailbox;
use crate::mail::inputs::FolderPath;

/// The user's personal namespace and the prefixes of the others, as the server announced them
/// (names decoded from modified UTF-7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// The personal namespace's prefix: `""` (Dovecot, Gmail, Exchange) or `INBOX.` (Cyrus
    /// and Courier as Debian ships them).
    pub prefix: String,
    /// The hierarchy separator; `None` on a server without folder levels.
    pub delimiter: Option<String>,
    /// The non-empty prefixes of other users' and shared namespaces (`user.`, `Shared/`).
    pub others: Vec<String>,
}

/// A folder resolved for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The server's name (decoded; commands encode it).
    pub name: String,
    /// Each level a CREATE may have to make, outermost first, this folder last. The
    /// namespace's own levels and INBOX are never among them.
    pub levels: Vec<String>,
    /// The folder in the process's terms: the path as given when it was a string, else the
    /// server's name without the personal prefix.
    pub shown: String,
}

impl Namespace {
    /// No NAMESPACE capability: every folder is the user's, under the LIST separator.
    pub fn flat(delimiter: Option<String>) -> Namespace {
        Namespace {
            delimiter,
            ..Namespace::default()
        }
    }

    /// Reads the data of a NAMESPACE response (after `* NAMESPACE `): three groups, each
    /// `NIL` or a list of `(prefix delimiter *extension)`. `None` when it does not read.
    pub fn parse(data: &[u8]) -> Option<Namespace> {
        let tokens = tokens(data)?;
        let mut tokens = tokens.into_iter();
        let mut groups: Vec<Vec<(String, Option<String>)>> = Vec::new();
        while let Some(token) = tokens.next() {
            let mut group = Vec::new();
            match token {
                Token::Nil => {}
                Token::Open => loop {
                    match tokens.next()? {
                        Token::Close => break,
                        Token::Open => {
                            let Token::Text(prefix) = tokens.next()? else {
                                return None;
                            };
                            let delimiter = match tokens.next()? {
                                Token::Text(d) if d.chars().count() == 1 => Some(d),
                                Token::Nil => None,
                                _ => return None,
                            };
                            // Extensions (RFC 2342 section 5) up to the descriptor's end.
                            let mut depth = 1;
                            while depth > 0 {
                                match tokens.next()? {
                                    Token::Open => depth += 1,
                                    Token::Close => depth -= 1,
                                    _ => {}
                                }
                            }
                            group.push((decode_mailbox(&prefix), delimiter));
                        }
                        _ => return None,
                    }
                },
                _ => return None,
            }
            groups.push(group);
        }
        let (personal, others) = groups.split_first()?;
        let (prefix, delimiter) = personal.first().cloned().unwrap_or_default();
        Some(Namespace {
            prefix,
            delimiter,
            others: others
                .iter()
                .flatten()
                .map(|(prefix, _)| prefix.clone())
                .filter(|prefix| !prefix.is_empty())
                .collect(),
        })
    }

    /// A prefix as segments (`INBOX.` → `["INBOX"]`, `""` → `[]`).
    fn segments(&self, prefix: &str) -> Vec<String> {
        match self.delimiter.as_deref() {
            Some(d) => prefix
                .strip_suffix(d)
                .unwrap_or(prefix)
                .split(d)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None if prefix.is_empty() => Vec::new(),
            None => vec![prefix.to_string()],
        }
    }
}

/// The server's folder for `path`; `pointer` names the input in messages.
pub fn resolve(
    path: &FolderPath,
    namespace: &Namespace,
    pointer: &str,
) -> Result<Mailbox, ImapError> {
    let delimiter = namespace.delimiter.as_deref();
    let mut segments: Vec<String> = match delimiter {
        // A string may use the server's separator as well as dots.
        Some(d) if !path.is_list() && d != "." => path
            .segments
            .iter()
            .flat_map(|s| s.split(d).map(str::to_string))
            .collect(),
        _ => path.segments.clone(),
    };
    for (index, segment) in segments.iter().enumerate() {
        let at = if path.is_list() {
            format!("{pointer}/{index}")
        } else {
            pointer.to_string()
        };
        if segment.trim().is_empty() {
            return Err(ImapError::new(
                ImapErrorKind::Input,
                format!("{at}: empty folder name in the path"),
            ));
        }
        if let Some(d) = delimiter
            && segment.contains(d)
        {
            return Err(ImapError::new(
                ImapErrorKind::Input,
                format!(
                    "{at}: folder name '{segment}' contains '{d}', which this server uses to separate folder levels"
                ),
            ));
        }
    }
    if delimiter.is_none() && segments.len() > 1 {
        return Err(ImapError::new(
            ImapErrorKind::Input,
            format!("{pointer}: this server has no folder hierarchy; give one folder name"),
        ));
    }
    let Some(first) = segments.first_mut() else {
        return Err(ImapError::new(
            ImapErrorKind::Input,
            format!("{pointer}: must be a dot-separated path or a list of folder names"),
        ));
    };
    let inbox = first.eq_ignore_ascii_case("INBOX");
    if inbox {
        *first = "INBOX".into();
    }
    let personal = namespace.segments(&namespace.prefix);
    let absolute = std::iter::once(&namespace.prefix)
        .chain(&namespace.others)
        .map(|prefix| namespace.segments(prefix))
        .find(|prefix| !prefix.is_empty() && segments.starts_with(prefix));
    let (full, fixed) = if inbox {
        (segments, 1)
    } else if let Some(prefix) = absolute {
        let fixed = prefix.len();
        (segments, fixed)
    } else {
        let fixed = personal.len();
        (
            personal.into_iter().chain(segments).collect::<Vec<_>>(),
            fixed,
        )
    };
    let d = delimiter.unwrap_or_default();
    let name = full.join(d);
    let levels = (fixed + 1..=full.len())
        .map(|end| full[..end].join(d))
        .collect();
    let shown = path
        .given
        .clone()
        .unwrap_or_else(|| user_terms(&name, namespace));
    Ok(Mailbox {
        name,
        levels,
        shown,
    })
}

/// A server's folder name as the user sees it: without the personal namespace's prefix.
pub fn user_terms(name: &str, namespace: &Namespace) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".into();
    }
    match name.strip_prefix(namespace.prefix.as_str()) {
        Some(rest) if !namespace.prefix.is_empty() && !rest.is_empty() => rest.to_string(),
        _ => name.to_string(),
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Nil,
    Text(String),
}

/// The tokens of a NAMESPACE response: parentheses, NIL, quoted strings and literals.
fn tokens(data: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        match b {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push(Token::Open);
                i += 1;
            }
            b')' => {
                out.push(Token::Close);
                i += 1;
            }
            b'"' => {
                let mut text = Vec::new();
                i += 1;
                loop {
                    match *data.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            i += 1;
                            text.push(*data.get(i)?);
                        }
                        c => text.push(c),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Token::Text(String::from_utf8(text).ok()?));
            }
            b'{' => {
                let close = i + data[i..].iter().position(|&c| c == b'}')?;
                let length: usize = std::str::from_utf8(&data[i + 1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start =
                    close + 1 + data.get(close + 1..)?.iter().position(|&c| c == b'\n')? + 1;
                let text = data.get(start..start.checked_add(length)?)?;
                out.push(Token::Text(String::from_utf8(text.to_vec()).ok()?));
                i = start + length;
            }
            _ => {
                let end = data[i..]
                    .iter()
                    .position(|c| b" ()\r\n".contains(c))
                    .map_or(data.len(), |p| i + p);
                if !data[i..end].eq_ignore_ascii_case(b"NIL") {
                    return None;
                }
                out.push(Token::Nil);
                i = end;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
