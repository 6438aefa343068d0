//! The inputs operations take, as types: one type per operation input (beside its operation)
//! and per shared block or field (here). Each type is the single definition of its input: it
//! derives (or, where serde reads more than a derive can say, writes out) its JSON Schema, which
//! the worker validates with and the element templates are generated from, and it is what the
//! operation reads after validation, which therefore cannot fail.
//!
//! Besides what validation needs, a schema carries what a modeler needs: `title` (the label),
//! `description` (the tooltip), `default` (the value a new task starts with), `examples` (the
//! first is the placeholder) and an `x-template` object with what only the element template
//! needs (see [`crate::templates`] for its keys). The validator ignores the annotations.

mod connection;
mod fields;
mod folders;
mod identity;
mod login;

pub use connection::{Connection, Imap, Login, Pop3, ProtocolKind, SECURITY_CHOICES, Server, Smtp};
pub use fields::{
    AttachmentsAs, Criteria, MaxResults, MaxToBeRead, MessageId, SortOrder, bare_message_id,
};
pub use folders::{Folder, FolderPath};
pub use identity::{
    ImapMail, ImapMailInput, Pop3Mail, Pop3MailInput, Uid, UidValidity, Uidl, ambiguous,
};
pub use login::TaggedBlock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{EmailError, Result};
use crate::mail::policy::HostPolicy;

/// Implements [`JsonSchema`] for a type whose schema is always written out where it is used
/// (never a `$ref`), named after the type, as `$schema` (a [`schemars::Schema`] expression).
macro_rules! inline_json_schema {
    ($name:ident, $schema:expr) => {
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $schema
            }
        }
    };
}
pub(crate) use inline_json_schema;

/// Drops `format` (schemars notes the Rust integer width, such as `uint16`, which says nothing
/// a range does not) so a schema says only what the input contract says.
fn drop_formats(schema: &mut schemars::Schema) {
    schema.remove("format");
}

/// The JSON Schema of an operation's input type, every subschema inline (a job's variables are
/// validated as one document, and the template generator walks it as one).
pub fn input_schema<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let mut schema = settings.into_generator().into_root_schema_for::<T>();
    RecursiveTransform(drop_formats).transform(&mut schema);
    schema.to_value()
}

/// Reads validated variables into a type. Validation came first, so what can still be refused
/// here is what a schema cannot say (a port of 25.0, a Message-ID with a line break); such a
/// refusal names its field's JSON pointer.
pub fn decode<T: DeserializeOwned>(variables: Value) -> Result<T> {
    decode_ref(&variables)
}

/// [`decode`] from borrowed variables: what a failed decode is explained from stays at hand
/// without a copy of the variables.
fn decode_ref<T: DeserializeOwned>(variables: &Value) -> Result<T> {
    serde_path_to_error::deserialize(variables).map_err(|error| {
        let pointer = pointer_of(error.path());
        let text = error.inner().to_string();
        if text.starts_with('/') {
            EmailError::invalid_input(text)
        } else {
            EmailError::invalid_input(format!("{pointer}: {text}"))
        }
    })
}

/// [`decode`] for an operation's input: when it fails, every declared field that reads on its
/// own is tried too, so the error lists each field's problem at once (serde stops at the first),
/// as schema violations are listed. An OAuth2 login's token endpoint is checked against
/// `policy` (the process's host policy) with the variables, before any request: its refusal
/// is listed right after the `authentication` block's own problems.
pub fn decode_input<T: DeserializeOwned + JsonSchema>(
    variables: Value,
    policy: &HostPolicy,
) -> Result<T> {
    let refusal = token_endpoint_refusal(&variables, policy);
    let first = match (decode_ref::<T>(&variables), refusal.clone()) {
        (Ok(input), None) => return Ok(input),
        (Ok(_), Some(refusal)) => return Err(EmailError::invalid_input(refusal)),
        (Err(error), _) => error,
    };
    let schema = input_schema::<T>();
    let declared = schema.get("properties").and_then(Value::as_object);
    let mut problems: Vec<String> = Vec::new();
    for (name, check) in FIELD_CHECKS {
        if declared.is_some_and(|d| d.contains_key(*name))
            && let Some(value) = variables.get(*name)
        {
            let refused = refusal.as_ref().filter(|_| *name == "authentication");
            for problem in check(name, value).err().into_iter().chain(refused.cloned()) {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if !problems.contains(&first.message) {
        problems.insert(0, first.message);
    }
    Err(EmailError::invalid_input(problems.join("; ")))
}

/// The host policy's refusal of the token endpoint of the `authentication` variable, when it
/// is an OAuth2 login that reads and has no line break (which is refused before anything else
/// of the block is looked at).
pub(crate) fn token_endpoint_refusal(variables: &Value, policy: &HostPolicy) -> Option<String> {
    let login = crate::mail::auth::oauth2_login_of(variables.get("authentication")?)?;
    crate::oauth::mail::endpoint_refusal(&login, policy)
}

/// The fields whose reading checks more than their schema says, each on its own.
type FieldCheck = fn(&str, &Value) -> std::result::Result<(), String>;
const FIELD_CHECKS: &[(&str, FieldCheck)] = &[
    ("authentication", read_alone::<Login<Smtp>>),
    ("messageId", read_alone::<MessageId>),
    ("uid", read_alone::<Uid>),
    ("uidValidity", read_alone::<UidValidity>),
    ("uidl", read_alone::<Uidl>),
    ("criteria", read_alone::<Criteria>),
    ("folder", read_alone::<Folder>),
    ("sourceFolder", read_alone::<Folder>),
    ("targetFolder", read_alone::<FolderPath>),
];

/// Reads field `name` alone; a refusal names its pointer (`/targetFolder/1: ...`).
fn read_alone<T: DeserializeOwned>(name: &str, value: &Value) -> std::result::Result<(), String> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(drop)
        .map_err(|e| at_pointer(&format!("/{name}"), &e))
}

/// A refusal met reading the value at `pointer`, with the pointer of the offending node
/// inside it; a message that names its own pointer is kept as it is.
fn at_pointer(pointer: &str, error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let text = error.inner().to_string();
    if text.starts_with('/') {
        return text;
    }
    match pointer_of(error.path()).as_str() {
        "/" => format!("{pointer}: {text}"),
        inner => format!("{pointer}{inner}: {text}"),
    }
}

/// A serde path as a JSON pointer (`/server/port`, `/attachments/0/content`); `/` for the
/// root.
pub(crate) fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    if pointer.is_empty() {
        "/".to_string()
    } else {
        pointer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Probe {
        authentication: Login<Imap>,
        server: Server<Imap>,
        message_id: MessageId,
        #[serde(default)]
        max_to_be_read: MaxToBeRead,
    }

    #[test]
    fn every_field_problem_is_listed_with_its_pointer() {
        let e = decode_input::<Probe>(
            json!({
                "authentication": { "username": "u\r\nx", "password": "p" },
                "server": { "host": "h" },
                "messageId": "a\nb",
                "criteria": { "operator": "OR", "criteria": [] }
            }),
            &HostPolicy::default(),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("/authentication/username: contains CR or LF"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("/messageId: contains CR or LF"),
            "{}",
            e.message
        );
        // Not a field of this input: a process variable in scope, never checked.
        assert!(!e.message.contains("criteria"), "{}", e.message);
    }

    #[test]
    fn a_refused_token_endpoint_is_listed_after_the_logins_own_problems() {
        let refused = "/authentication/tokenEndpoint: 169.254.169.254 is refused on this worker \
                       (EMAIL_DENIED_HOSTS)";
        let login = json!({ "type": "oauth2", "username": "u",
            "tokenEndpoint": "https://169.254.169.254/t", "clientId": "c" });
        let variables = json!({ "authentication": login, "server": { "host": "h" },
            "messageId": "<a@b>" });
        let policy = HostPolicy::default();
        let e = decode_input::<Probe>(variables.clone(), &policy).unwrap_err();
        assert_eq!(e.message, refused);
        // The policy is the caller's: one that allows the endpoint lets the input through.
        let open = HostPolicy::new("*".parse().unwrap(), Default::default(), true).unwrap();
        assert!(decode_input::<Probe>(variables, &open).is_ok());
        let mut login = login;
        login.as_object_mut().unwrap().remove("clientId");
        let e = decode_input::<Probe>(
            json!({ "authentication": login, "server": { "host": "h" }, "messageId": "a\nb" }),
            &policy,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "/authentication: \"clientId\" is a required property with tokenEndpoint; \
                 {refused}; /messageId: contains CR or LF"
            )
        );
        // A line break is refused before anything else of the block is looked at.
        login["username"] = json!("u\nv");
        let e = decode_input::<Probe>(
            json!({ "authentication": login, "server": { "host": "h" }, "messageId": "<a@b>" }),
            &policy,
        )
        .unwrap_err();
        assert_eq!(e.message, "/authentication/username: contains CR or LF");
    }

    #[test]
    fn a_serde_refusal_names_the_pointer() {
        let e = decode::<Probe>(json!({
            "authentication": { "username": "u", "password": "p" },
            "server": { "host": "h", "port": 25.5 },
            "messageId": "<a@b>"
        }))
        .unwrap_err();
        assert!(e.message.starts_with("/server/port: "), "{}", e.message);
        let limit = decode::<Probe>(json!({
            "authentication": { "username": "u", "password": "p" },
            "server": { "host": "h" },
            "messageId": "<a@b>",
            "maxToBeRead": 5.0
        }))
        .unwrap();
        assert_eq!(limit.max_to_be_read.0, 5);
    }
}
