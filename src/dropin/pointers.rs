//! JSON pointers between the two layouts: reading Camunda's blocks with the pointer of the
//! field at fault, and putting Camunda's field names in place of ours in messages.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{EmailError, Result};
use crate::mail::inputs::pointer_of;

/// Reads `value` (found at `pointer`) into `T`, naming the offending field on failure: a
/// missing field as `<pointer>/<field>`.
pub fn read_at<T: DeserializeOwned>(value: &Value, pointer: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let at = match pointer_of(error.path()).as_str() {
            "/" => pointer.to_string(),
            inner => format!("{pointer}{inner}"),
        };
        let text = error.inner().to_string();
        // serde says "missing field `x` at line…": name the field itself.
        if let Some(rest) = text.strip_prefix("missing field `")
            && let Some((field, _)) = rest.split_once('`')
        {
            return EmailError::invalid_input(format!(
                "{at}/{field}: is required by Camunda's Email connector"
            ));
        }
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        EmailError::invalid_input(format!("{}: {text}", if at.is_empty() { "/" } else { &at }))
    })
}

/// Puts Camunda's field names in place of ours in a message: each of our pointers, where it
/// stands as a whole pointer (followed by `/`, `:`, a space, a quote or the end), becomes the
/// Camunda field it was mapped from.
pub fn rename_pointers(message: &str, pointers: &[(String, String)]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        if rest.starts_with('/') {
            for (ours, theirs) in pointers {
                if let Some(after) = rest.strip_prefix(ours.as_str())
                    && after
                        .chars()
                        .next()
                        .is_none_or(|c| matches!(c, '/' | ':' | ' ' | '\'' | '"' | ';' | ',' | ')'))
                    && !out.ends_with(|c: char| c.is_alphanumeric() || c == '/')
                {
                    out.push_str(theirs);
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}
