//! Masking: every form in which a secret value can show up in text the worker writes (an error,
//! a response, a log line) is replaced by `***`.
//!
//! A value is found as it is, in any ASCII case (host names are compared and echoed in lower
//! case, and a server may upper-case what it quotes), with any of its bytes percent-encoded in
//! either hex case and a space as `+` (URLs and form bodies), as JSON and Rust's debug
//! formatting escape it (validation and parse errors quote values that way), in upper and
//! lower case for non-ASCII letters, and in its IDNA form (`xn--…`, how a URL writes a
//! non-ASCII host). Every mask alive in the process is also applied to every log line (see
//! [`mask_live`]): a library or a line of ours that logs a value cannot know which job's
//! secret it holds.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// The forms of a set of secret values, and which bytes can start one.
struct Forms {
    /// Longest first, so that a secret containing another is masked whole.
    forms: Vec<SecretString>,
    /// Which two bytes a form may begin with, so that a scan skips almost every position
    /// at the cost of a lookup (see [`Starts`]).
    starts: Starts,
    /// The forms in ASCII lower case, and whether one holds a space (which a form body writes
    /// `+`), for [`Forms::may_hold`].
    lower: Vec<SecretString>,
    plus: bool,
}

/// The pairs of bytes a form may begin with: its first two bytes in either ASCII case, or its
/// first byte followed by `%` (the second one encoded). A form's first byte may itself be
/// encoded (`%`) or a space written `+`; those, and one-byte forms, are `single` bytes that
/// begin a candidate whatever follows.
struct Starts {
    pairs: Box<[u64; 1024]>,
    single: [bool; 256],
}

impl Starts {
    fn new<'a>(forms: impl Iterator<Item = &'a [u8]>) -> Starts {
        let mut starts = Starts {
            pairs: Box::new([0; 1024]),
            single: [false; 256],
        };
        starts.single[usize::from(b'%')] = true;
        for form in forms {
            let first = [form[0].to_ascii_lowercase(), form[0].to_ascii_uppercase()];
            if form[0] == b' ' {
                starts.single[usize::from(b'+')] = true;
            }
            let Some(&second) = form.get(1) else {
                for b in first {
                    starts.single[usize::from(b)] = true;
                }
                continue;
            };
            for a in first {
                for b in [
                    second.to_ascii_lowercase(),
                    second.to_ascii_uppercase(),
                    b'%',
                ] {
                    let pair = usize::from(a) << 8 | usize::from(b);
                    starts.pairs[pair / 64] |= 1 << (pair % 64);
                }
                if second == b' ' {
                    let pair = usize::from(a) << 8 | usize::from(b'+');
                    starts.pairs[pair / 64] |= 1 << (pair % 64);
                }
            }
        }
        starts
    }

    fn at(&self, text: &[u8], at: usize) -> bool {
        let first = text[at];
        if self.single[usize::from(first)] {
            return true;
        }
        let Some(&second) = text.get(at + 1) else {
            return false;
        };
        let pair = usize::from(first) << 8 | usize::from(second);
        self.pairs[pair / 64] & (1 << (pair % 64)) != 0
    }
}

/// The secret values a job used, to be replaced by `***` in every message it reports.
/// Cheap to clone; clones share the forms.
#[derive(Default, Clone)]
pub struct SecretMask {
    forms: Option<Arc<Forms>>,
}

/// The forms of one value other than the byte-wise variants the matcher sees by itself.
fn forms_of(value: &str, out: &mut Vec<String>) {
    out.push(value.to_string());
    for quoted in [
        serde_json::to_string(value).unwrap_or_default(),
        format!("{value:?}"),
    ] {
        if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'))
            && inner != value
        {
            out.push(inner.to_string());
        }
    }
    if !value.is_ascii() {
        out.push(value.to_lowercase());
        out.push(value.to_uppercase());
        // What a URL makes of a host name holding the value, or a piece of it when the value
        // is a whole URL (lower case, mapped, punycode).
        let pieces = value.split(|c: char| c.is_whitespace() || "/:?#@[]\\%<>|^".contains(c));
        for piece in std::iter::once(value).chain(pieces) {
            if !piece.is_ascii()
                && let Ok(ascii) = idna::domain_to_ascii(piece)
                && !ascii.is_empty()
            {
                out.push(ascii);
            }
        }
    }
}

impl SecretMask {
    pub fn new(values: Vec<SecretString>) -> SecretMask {
        let mut forms: Vec<String> = Vec::new();
        for value in values.iter().map(|v| v.expose_secret()) {
            if !value.is_empty() {
                forms_of(value, &mut forms);
            }
        }
        if forms.is_empty() {
            return SecretMask::default();
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        let starts = Starts::new(forms.iter().map(String::as_bytes));
        let forms = Arc::new(Forms {
            lower: forms
                .iter()
                .map(|f| SecretString::from(f.to_ascii_lowercase()))
                .collect(),
            plus: forms.iter().any(|f| f.contains(' ')),
            forms: forms.into_iter().map(SecretString::from).collect(),
            starts,
        });
        live().register(&forms);
        SecretMask { forms: Some(forms) }
    }

    /// `text` with every form of every secret replaced by `***`, or None when it holds none.
    fn masked(&self, text: &str) -> Option<String> {
        self.forms.as_ref()?.masked(text)
    }

    /// Masks every known secret value in `text` (see [`SecretMask::new`] for the forms).
    pub fn apply(&self, text: &str) -> String {
        self.masked(text).unwrap_or_else(|| text.to_string())
    }

    /// Masks every string of a response in place, so that a secret value that reached the
    /// response by any path (a server echoing it, a mail quoting it) is not handed to Zeebe.
    pub fn apply_to_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        // serde_json bounds nesting on input, but an operation builds its own responses:
        // an explicit stack keeps this safe for any shape.
        let mut pending = vec![value];
        while let Some(value) = pending.pop() {
            match value {
                Value::String(text) => {
                    if let Some(masked) = self.masked(text) {
                        *text = masked;
                    }
                }
                Value::Array(items) => pending.extend(items.iter_mut()),
                Value::Object(map) => pending.extend(map.values_mut()),
                _ => {}
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.forms.is_none()
    }

    /// Keeps this mask applied to the log for the rest of the process (the operator's own
    /// secrets, which every log line may meet).
    pub fn keep_for_process(self) {
        static KEPT: Mutex<Vec<SecretMask>> = Mutex::new(Vec::new());
        KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(self);
    }
}

impl std::fmt::Debug for SecretMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.forms.as_ref().map_or(0, |f| f.forms.len());
        write!(f, "SecretMask({count} forms)")
    }
}

impl Forms {
    /// Whether `text` may hold a form at all, decided at the speed of a substring search: a
    /// form written as it is shows up in the lower-cased text; any other way needs a `%HH` (or
    /// a `+` for a space). A response's bodies are megabytes of text that almost never hold a
    /// secret, and the exact scan costs ten times as much.
    fn may_hold(&self, text: &str) -> bool {
        let escaped = text.match_indices('%').any(|(at, _)| {
            text.as_bytes()
                .get(at + 1..at + 3)
                .is_some_and(|hh| hh.iter().all(u8::is_ascii_hexdigit))
        });
        if escaped || (self.plus && text.contains('+')) {
            return true;
        }
        let lower = text.to_ascii_lowercase();
        self.lower
            .iter()
            .any(|form| lower.contains(form.expose_secret()))
    }

    fn masked(&self, text: &str) -> Option<String> {
        if !self.may_hold(text) {
            return None;
        }
        let bytes = text.as_bytes();
        let mut scratch = Scratch::default();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut at = 0;
        while at < bytes.len() {
            if self.starts.at(bytes, at)
                && text.is_char_boundary(at)
                && let Some(end) = self.longest_at(bytes, at, &mut scratch)
                && text.is_char_boundary(end)
            {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied..at]);
                out.push_str("***");
                copied = end;
                at = end;
            } else {
                at += 1;
            }
        }
        out.map(|mut out| {
            out.push_str(&text[copied..]);
            out
        })
    }

    /// Where the longest form found at `at` ends, if any.
    fn longest_at(&self, text: &[u8], at: usize, scratch: &mut Scratch) -> Option<usize> {
        let seen = text[at];
        self.forms
            .iter()
            .map(|form| form.expose_secret().as_bytes())
            .filter(|form| {
                form[0].eq_ignore_ascii_case(&seen)
                    || seen == b'%'
                    || (seen == b'+' && form[0] == b' ')
            })
            .find_map(|form| scratch.match_at(text, at, form))
    }
}

/// The positions a match may have reached: a form's byte may be written as itself or as three
/// (`%HH`), so after n bytes of a form there may be more than one place the text has got to.
#[derive(Default)]
struct Scratch {
    here: Vec<usize>,
    next: Vec<usize>,
}

impl Scratch {
    /// Where `form` ends when it starts at `start` of `text`: the furthest end when there are
    /// several.
    fn match_at(&mut self, text: &[u8], start: usize, form: &[u8]) -> Option<usize> {
        // The form as it is, in any ASCII case: how it almost always appears, and how almost
        // every candidate fails within its first bytes. Another way through needs a `%` or a
        // `+` in the text before the first difference.
        let same = form
            .iter()
            .zip(&text[start.min(text.len())..])
            .take_while(|(f, t)| f.eq_ignore_ascii_case(t))
            .count();
        if same == form.len() {
            return Some(start + same);
        }
        let seen = &text[start..text.len().min(start + same + 1)];
        if !seen.iter().any(|b| matches!(b, b'%' | b'+')) {
            return None;
        }
        self.here.clear();
        self.here.push(start);
        for &byte in form {
            self.next.clear();
            for &at in &self.here {
                let Some(&seen) = text.get(at) else {
                    continue;
                };
                if seen.eq_ignore_ascii_case(&byte) || (byte == b' ' && seen == b'+') {
                    self.next.push(at + 1);
                }
                if seen == b'%'
                    && let Some(&[high, low]) = text.get(at + 1..at + 3)
                    && let (Some(high), Some(low)) = (hex(high), hex(low))
                    && high << 4 | low == byte
                {
                    self.next.push(at + 3);
                }
            }
            if self.next.is_empty() {
                return None;
            }
            self.next.sort_unstable();
            self.next.dedup();
            std::mem::swap(&mut self.here, &mut self.next);
        }
        self.here.last().copied()
    }
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The forms of every mask alive in the process, for the log.
#[derive(Default)]
struct Live {
    masks: Mutex<Vec<Weak<Forms>>>,
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(Live::default)
}

impl Live {
    fn register(&self, forms: &Arc<Forms>) {
        let mut masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        // Masks end with the job or watcher that made them: those gone are dropped here.
        masks.retain(|weak| weak.strong_count() > 0);
        masks.push(Arc::downgrade(forms));
    }

    fn alive(&self) -> Vec<Arc<Forms>> {
        let masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        masks.iter().filter_map(Weak::upgrade).collect()
    }
}

/// `text` with the secrets of every mask still in use anywhere in the process replaced, or
/// None when it holds none: the log writer's last line of defence.
pub fn mask_live(text: &str) -> Option<String> {
    let mut masked: Option<String> = None;
    for forms in live().alive() {
        if let Some(done) = forms.masked(masked.as_deref().unwrap_or(text)) {
            masked = Some(done);
        }
    }
    masked
}

#[cfg(test)]
mod tests;
