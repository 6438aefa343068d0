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

pub use connection::{Connection, Imap, Login, Pop3, ProtocolKind, SECURITY_CHOICES, Server, Smtp};
pub use fields::{
    Criteria, Folder, FolderPath, MaxResults, MaxToBeRead, MessageId, SortOrder, bare_message_id,
};

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{EmailError, Result};

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

/// Reads validated variables into an operation's input type. Validation came first, so what
/// can still be refused here is what a schema cannot say (a port of 25.0, a Message-ID with a
/// line break); such a refusal names its field.
pub fn decode<T: DeserializeOwned>(variables: Value) -> Result<T> {
    serde_json::from_value(variables).map_err(|error| {
        let text = error.to_string();
        if text.starts_with('/') {
            EmailError::invalid_input(text)
        } else {
            crate::schema::input_error(error)
        }
    })
}
