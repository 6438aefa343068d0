//! `imap:flags`: adds and removes flags on one mail (found as read finds it) and returns the
//! flags it has afterwards.
//!
//! A flag is a system flag (`\Seen`, `\Flagged`, `\Answered`, `\Draft`) or a keyword
//! (`$Important`). `\Deleted` is refused: with it a later expunge by anyone removes the mail,
//! which is what `imap:delete` does deliberately. A flag goes into a STORE command's list, so
//! it is checked to be one IMAP atom: a CR, LF, space or parenthesis could end the list and
//! append a command of the sender's choosing.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

use super::identity::{fields, found};
use super::pool::ImapPool;
use super::session::ImapSession;
use super::wire::Command;
use crate::error::{EmailError, Result};
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::mail::inputs::{Folder, Imap, ImapMailInput, Login, Server};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// The system flags a process may set, as RFC 3501 spells them.
const SYSTEM_FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"];

/// One flag, checked to be a system flag we allow or a keyword atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag(String);

impl Flag {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a flag as a process writes it; system flags in any case come out as RFC 3501
    /// spells them.
    pub fn parse(text: &str) -> std::result::Result<Flag, String> {
        if let Some(name) = text.strip_prefix('\\') {
            if name.eq_ignore_ascii_case("Deleted") {
                return Err("\\Deleted is not set here: imap:delete removes a mail".into());
            }
            return SYSTEM_FLAGS
                .iter()
                .find(|known| known[1..].eq_ignore_ascii_case(name))
                .map(|known| Flag(known.to_string()))
                .ok_or_else(|| {
                    format!(
                        "'{}' is no flag a process may set (one of {} or a keyword)",
                        shown(text),
                        SYSTEM_FLAGS.join(", ")
                    )
                });
        }
        if text.is_empty() || text.len() > MAX_KEYWORD || !text.bytes().all(atom_char) {
            return Err(format!(
                "'{}' is not a keyword: 1 to {MAX_KEYWORD} printable ASCII characters without \
                 spaces, parentheses, braces, quotes, backslashes, ']', '%' or '*'",
                shown(text)
            ));
        }
        Ok(Flag(text.to_string()))
    }
}

/// Longer keywords than any client uses; the bound keeps a STORE line short.
const MAX_KEYWORD: usize = 100;

/// An `ATOM-CHAR` of RFC 3501: printable ASCII but none of `(){ %*"\]`.
fn atom_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// A refused flag for a message: control characters escaped, at most 40 characters.
fn shown(text: &str) -> String {
    text.chars().take(40).flat_map(char::escape_debug).collect()
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Flag::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Flag {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Flag".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Flag",
            "description": "\\Seen, \\Flagged, \\Answered, \\Draft or a keyword such as $Important.",
            "type": "string", "minLength": 1, "maxLength": 100
        })
    }
}

/// A list of flags, as a FEEL list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Flags(pub Vec<Flag>);

impl JsonSchema for Flags {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Flags".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<Flag>();
        json_schema!({
            "type": "array", "items": item, "maxItems": 50,
            "examples": ["=[\"\\\\Flagged\", \"$Important\"]"],
            "x-template": { "feel": "required" }
        })
    }
}

impl Flags {
    /// The list as an IMAP flag list: `(\Seen $Important)`.
    pub fn list(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(Flag::as_str).collect();
        format!("({})", names.join(" "))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `\Answered` alone, as a reply sets it.
    pub fn answered() -> Flags {
        Flags(vec![Flag("\\Answered".into())])
    }
}

/// What `imap:flags` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Set flags",
    description = "Adds and removes flags (\\Seen, \\Flagged, \\Answered, \\Draft, keywords) on one message."
)]
pub struct FlagsInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(default)]
    #[schemars(
        title = "Add flags",
        description = "Flags to set, e.g. [\"\\\\Seen\"]."
    )]
    pub add: Flags,
    #[serde(default)]
    #[schemars(
        title = "Remove flags",
        description = "Flags to clear, e.g. [\"\\\\Seen\"] to mark the message unread."
    )]
    pub remove: Flags,
}

/// What `imap:flags` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagsResult {
    /// The message's Message-ID as found, or the one asked for.
    pub message_id: Option<String>,
    /// The message's flags after the change, as the server reports them.
    pub flags: Vec<String>,
    /// `uid` and `uidValidity` of the message.
    #[serde(flatten)]
    pub identity: serde_json::Map<String, serde_json::Value>,
}

pub struct FlagsOperation {
    pub pool: Arc<ImapPool>,
}

/// Adds `add` and removes `remove` on `uid` of the selected (writable) folder and returns its
/// flags afterwards.
pub async fn store_flags(
    session: &mut ImapSession,
    uid: u32,
    add: &Flags,
    remove: &Flags,
) -> Result<Vec<String>> {
    for (sign, flags) in [('+', add), ('-', remove)] {
        if flags.is_empty() {
            continue;
        }
        session
            .execute(
                &Command::new("UID STORE")
                    .raw(uid.to_string())
                    .raw(format!("{sign}FLAGS.SILENT"))
                    .raw(flags.list()),
                ImapErrorKind::Refused,
            )
            .await?;
    }
    let fetched = session
        .execute(
            &Command::new("UID FETCH")
                .raw(uid.to_string())
                .raw("(UID FLAGS)"),
            ImapErrorKind::Refused,
        )
        .await?;
    fetched
        .fetches()
        .find(|item| item.uid == Some(uid))
        .map(|item| item.flags.unwrap_or_default())
        .ok_or_else(|| {
            ImapError::new(
                ImapErrorKind::MessageMissing,
                format!("UID {uid} was expunged while its flags were set"),
            )
            .into()
        })
}

impl MailOperation for FlagsOperation {
    type Input = FlagsInput;
    const NAME: &'static str = "imap:flags";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: FlagsInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            if input.add.is_empty() && input.remove.is_empty() {
                return Err(EmailError::invalid_input(
                    "/: add or remove is required (a list of flags)",
                ));
            }
            let wanted = input.mail.named()?;
            let given = wanted.message_id.as_ref().map(|m| m.as_given().to_string());
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let (validity, _) = session.open(&input.folder, true).await?;
            let (uid, as_found) =
                found(&mut session, input.folder.name(), validity, &wanted).await?;
            let flags = store_flags(&mut session, uid, &input.add, &input.remove).await?;
            Ok(Outcome::respond(to_json(&FlagsResult {
                message_id: as_found.or(given),
                flags,
                identity: fields(uid, validity),
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_system_flags_or_atoms() {
        assert_eq!(Flag::parse("\\seen").unwrap().as_str(), "\\Seen");
        assert_eq!(Flag::parse("$Important").unwrap().as_str(), "$Important");
        assert!(
            Flag::parse("\\Deleted")
                .unwrap_err()
                .contains("imap:delete")
        );
        assert!(Flag::parse("\\DELETED").is_err());
        assert!(Flag::parse("\\Recent").is_err());
        for hostile in [
            "a\r\nA1 DELETE INBOX",
            "x) (y",
            "a b",
            "",
            "{5}",
            "a]",
            "%",
            "*",
            "\"q\"",
            "ü",
        ] {
            assert!(Flag::parse(hostile).is_err(), "{hostile:?} accepted");
        }
        let flags = Flags(vec![
            Flag::parse("\\Flagged").unwrap(),
            Flag::parse("$Work").unwrap(),
        ]);
        assert_eq!(flags.list(), "(\\Flagged $Work)");
    }

    #[test]
    fn a_refused_flag_is_named_with_its_pointer() {
        let input = serde_json::json!({
            "authentication": { "type": "simple", "username": "u", "password": "p" },
            "server": { "host": "localhost" },
            "messageId": "a@b",
            "add": ["\\Seen", "a\r\nb"]
        });
        let error = crate::mail::inputs::decode::<FlagsInput>(input).unwrap_err();
        assert!(error.message.contains("/add/1"), "{}", error.message);
        assert!(error.message.contains("a\\r\\nb"), "{}", error.message);
    }
}
