//! The fields that name one stored mail besides its Message-ID: IMAP's `uid` and `uidValidity`,
//! POP3's `uidl`. A Message-ID is chosen by the sender, and anyone can send a second mail with
//! the same one; these are chosen by the server, so a model that read them from a list, search
//! or read (or from the mail a watcher handed over) acts on exactly that mail.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use super::fields::{MessageId, whole_number};
use crate::error::{EmailError, Result};

/// A 32-bit IMAP number (RFC 3501 `nz-number`), also when JSON writes it `42.0`.
fn nz_number<'de, D: Deserializer<'de>>(deserializer: D, pointer: &str) -> Result<u32, D::Error> {
    whole_number(deserializer)?
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{pointer}: must be a whole number from 1 to 4294967295"
            ))
        })
}

macro_rules! imap_number {
    ($name:ident, $pointer:expr, $title:expr, $description:expr, $example:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub u32);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                nz_number(deserializer, $pointer).map($name)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "title": $title,
                    "description": $description,
                    "examples": [$example],
                    "type": "integer", "minimum": 1, "maximum": 4294967295u32,
                    "x-template": { "feel": "optional" }
                })
            }
        }
    };
}

imap_number!(
    Uid,
    "/uid",
    "UID",
    "The mail's IMAP UID, as list, search and read return it, and a watcher hands it over \
     (=mail.uid). Names exactly one mail, where any sender can reuse a Message-ID.",
    "=mail.uid"
);
imap_number!(
    UidValidity,
    "/uidValidity",
    "UID validity",
    "The folder's UIDVALIDITY returned with the UID (=mail.uidValidity). When the folder's is \
     another now (it was recreated), the UID may name another mail, and the operation fails \
     with EMAIL_NOT_FOUND.",
    "=mail.uidValidity"
);

/// A POP3 unique-id (RFC 1939 UIDL): 1 to 70 characters from 0x21 to 0x7E.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uidl(pub String);

impl<'de> Deserialize<'de> for Uidl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let uidl = String::deserialize(deserializer)?;
        if uidl.is_empty() || uidl.len() > 70 || !uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(serde::de::Error::custom(
                "/uidl: a UIDL is 1 to 70 visible ASCII characters (RFC 1939)",
            ));
        }
        Ok(Uidl(uidl))
    }
}

impl JsonSchema for Uidl {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Uidl".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "UIDL",
            "description": "The mail's POP3 unique id, as list, search and read return it (and a \
                            watcher hands it over). Names exactly one mail, where a Message-ID \
                            may be reused by any sender.",
            "examples": ["=mail.uidl"],
            "type": "string", "minLength": 1, "maxLength": 70,
            "x-template": { "feel": "optional" }
        })
    }
}

/// The fields of an IMAP operation's input that name its mail (flattened into the input).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImapMailInput {
    #[serde(default)]
    pub message_id: Option<MessageId>,
    #[serde(default)]
    pub uid: Option<Uid>,
    #[serde(default)]
    pub uid_validity: Option<UidValidity>,
}

impl ImapMailInput {
    /// The mail the input names; `INVALID_INPUT` when it names none.
    pub fn named(self) -> Result<ImapMail> {
        if self.message_id.is_none() && self.uid.is_none() {
            return Err(EmailError::invalid_input(
                "/: messageId or uid is required (uid with uidValidity names the mail exactly)",
            ));
        }
        Ok(ImapMail {
            message_id: self.message_id,
            uid: self.uid.map(|u| u.0),
            uid_validity: self.uid_validity.map(|v| v.0),
        })
    }
}

/// Which IMAP mail an operation acts on: a Message-ID, a UID (with its folder's UIDVALIDITY),
/// or both, which must then both match.
#[derive(Debug, Clone)]
pub struct ImapMail {
    pub message_id: Option<MessageId>,
    pub uid: Option<u32>,
    pub uid_validity: Option<u32>,
}

impl ImapMail {
    /// The mail as the input names it, for messages: `UID 42`, `<a@b>`, `UID 42 (<a@b>)`.
    pub fn describe(&self) -> String {
        match (&self.uid, &self.message_id) {
            (Some(uid), Some(id)) => format!("UID {uid} ({id})"),
            (Some(uid), None) => format!("UID {uid}"),
            (None, Some(id)) => id.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// The fields of a POP3 operation's input that name its mail (flattened into the input).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pop3MailInput {
    #[serde(default)]
    pub message_id: Option<MessageId>,
    #[serde(default)]
    pub uidl: Option<Uidl>,
}

impl Pop3MailInput {
    /// The mail the input names; `INVALID_INPUT` when it names none.
    pub fn named(self) -> Result<Pop3Mail> {
        if self.message_id.is_none() && self.uidl.is_none() {
            return Err(EmailError::invalid_input(
                "/: messageId or uidl is required (the uidl names the mail exactly)",
            ));
        }
        Ok(Pop3Mail {
            message_id: self.message_id,
            uidl: self.uidl.map(|u| u.0),
        })
    }
}

/// Which POP3 mail an operation acts on: a Message-ID, a UIDL, or both.
#[derive(Debug, Clone)]
pub struct Pop3Mail {
    pub message_id: Option<MessageId>,
    pub uidl: Option<String>,
}

impl Pop3Mail {
    /// The mail as the input names it, for messages.
    pub fn describe(&self) -> String {
        match (&self.uidl, &self.message_id) {
            (Some(uidl), Some(id)) => format!("UIDL {uidl} ({id})"),
            (Some(uidl), None) => format!("UIDL {uidl}"),
            (None, Some(id)) => id.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// The message of `EMAIL_AMBIGUOUS`: how many mails carry `id` and which (the first 20).
pub fn ambiguous(id: &str, place: &str, names: &[String], how: &str) -> EmailError {
    const SHOWN: usize = 20;
    let mut listed = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        listed.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    EmailError::new(
        crate::error::ErrorCode::EmailAmbiguous,
        format!(
            "{} mails {place} carry the Message-ID {id} ({listed}); any sender can reuse a \
             Message-ID, so none was touched: name the mail by {how}, as list, search and read \
             return it",
            names.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uids_are_positive_32_bit_whole_numbers() {
        let uid = |v| serde_json::from_value::<Uid>(v).map(|u| u.0);
        assert_eq!(uid(json!(42)).unwrap(), 42);
        assert_eq!(uid(json!(42.0)).unwrap(), 42);
        assert_eq!(uid(json!(4294967295u64)).unwrap(), u32::MAX);
        for bad in [
            json!(0),
            json!(-1),
            json!(4294967296u64),
            json!(1.5),
            json!("42"),
        ] {
            assert!(uid(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn uidls_are_visible_ascii() {
        let uidl = |v| serde_json::from_value::<Uidl>(v).map(|u| u.0);
        assert_eq!(uidl(json!("AbC12.x")).unwrap(), "AbC12.x");
        for bad in [
            json!(""),
            json!("a b"),
            json!("a\r\nDELE 1"),
            json!("x".repeat(71)),
        ] {
            assert!(uidl(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mail_must_be_named() {
        let input = |v| serde_json::from_value::<ImapMailInput>(v).unwrap();
        let e = input(json!({ "uidValidity": 7 })).named().unwrap_err();
        assert!(
            e.message.starts_with("/: messageId or uid is required"),
            "{}",
            e.message
        );
        let named = input(json!({ "uid": 42.0, "messageId": "<a@b>" }))
            .named()
            .unwrap();
        assert_eq!(
            (named.uid, named.describe().as_str()),
            (Some(42), "UID 42 (<a@b>)")
        );
        let pop = serde_json::from_value::<Pop3MailInput>(json!({})).unwrap();
        assert!(pop.named().is_err());
        let e = ambiguous(
            "<a@b>",
            "in folder 'INBOX'",
            &["UID 3".into(), "UID 9".into()],
            "uid",
        );
        assert_eq!(e.code, crate::error::ErrorCode::EmailAmbiguous);
        assert!(
            e.message
                .starts_with("2 mails in folder 'INBOX' carry the Message-ID <a@b> (UID 3, UID 9)"),
            "{}",
            e.message
        );
    }
}
