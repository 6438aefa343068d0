//! One attachment of `smtp:send`, in each spelling a process has one (docs/responses.md,
//! `email:smtp:send:1`): inline, a Camunda document reference as forms and user tasks produce
//! it, or a read's entry whose `document` is that reference. The reference is described once,
//! by [`DocumentReference`]: under `document`, and its fields beside the attachment's.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::{Map, Value, json};

use crate::documents::store::DocumentReference;

/// One attachment, in one of three forms: inline (`fileName`, `content` in base64), a Camunda
/// document reference as forms and user tasks produce it (`camunda.document.type`,
/// `documentId`, …), or an entry of a read response with `attachmentsAs: document` (its
/// `document`), so read attachments can be forwarded as they are.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AttachmentInput {
    #[schemars(length(min = 1))]
    pub(super) file_name: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) content: Option<String>,
    // The reference as a form's file picker gives it: its fields beside these.
    #[serde(flatten)]
    pub(super) beside: Beside,
    pub(super) document: Option<DocumentReference>,
    /// Fields of a read response's entry, accepted (so an entry forwards unchanged) and not
    /// used: the document's bytes say it all.
    #[allow(dead_code)]
    pub(super) size: Option<u64>,
    #[allow(dead_code)]
    pub(super) inline: Option<bool>,
    #[allow(dead_code)]
    pub(super) content_id: Option<String>,
    #[allow(dead_code)]
    pub(super) truncated: Option<bool>,
    /// The file a referenced document was downloaded to, before the message is built.
    #[serde(skip)]
    #[schemars(skip)]
    pub(super) downloaded: Option<std::path::PathBuf>,
}

impl AttachmentInput {
    /// How many forms the entry gives: content, a reference beside its fields, a reference
    /// under `document`. Exactly one is an attachment.
    pub(super) fn forms(&self) -> usize {
        usize::from(self.content.is_some())
            + usize::from(self.beside.0.is_some())
            + usize::from(self.document.is_some())
    }

    /// The document this entry refers to, if it is a reference.
    pub(super) fn reference(&self) -> Option<DocumentReference> {
        self.document.clone().or_else(|| self.beside.0.clone())
    }

    /// The file name: as given, else the document's, else none (compose names it).
    pub(super) fn name(&self) -> Option<String> {
        self.file_name.clone().or_else(|| {
            self.reference()
                .and_then(|r| r.metadata.file_name)
                .filter(|n| !n.trim().is_empty())
        })
    }

    pub(super) fn media_type(&self) -> Option<String> {
        self.content_type
            .clone()
            .filter(|c| !c.trim().is_empty())
            .or_else(|| self.reference().and_then(|r| r.metadata.content_type))
    }
}

/// A [`DocumentReference`] spelled with its fields beside the attachment's own. Serde hands a
/// flattened field the entries its struct did not take; this takes those of a reference (the
/// names serde's derive gives [`DocumentReference`]) and reads them as one. Without a
/// `documentId` there is no reference, and a stray `storeId` says nothing; without a
/// `camunda.document.type` it is still one (downloading does not need the type).
#[derive(Debug, Default)]
pub(super) struct Beside(Option<DocumentReference>);

impl<'de> Deserialize<'de> for Beside {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = deserializer.deserialize_struct(
            "DocumentReference",
            field_names::<DocumentReference>(),
            Fields,
        )?;
        // As for the attachment's own fields, null is absent.
        fields.retain(|_, value| !value.is_null());
        if !fields.contains_key("documentId") {
            return Ok(Beside(None));
        }
        fields
            .entry("camunda.document.type")
            .or_insert_with(|| json!(""));
        DocumentReference::deserialize(Value::Object(fields))
            .map(|reference| Beside(Some(reference)))
            .map_err(de::Error::custom)
    }
}

/// Beside the attachment's fields, a reference's are all optional (an inline attachment has
/// none of them), and null, as for the attachment's own, is absent.
impl JsonSchema for Beside {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DocumentReferenceBeside".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = DocumentReference::json_schema(generator);
        for key in ["required", "title", "description"] {
            schema.remove(key);
        }
        if let Some(Value::Object(fields)) = schema.get_mut("properties") {
            for kind in fields
                .values_mut()
                .filter_map(|field| field.get_mut("type"))
            {
                let mut kinds = match kind.take() {
                    Value::Array(kinds) => kinds,
                    one => vec![one],
                };
                if !kinds.contains(&json!("null")) {
                    kinds.push(json!("null"));
                }
                *kind = Value::Array(kinds);
            }
        }
        schema
    }
}

/// Collects the entries a deserializer offers, as JSON.
struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the fields of a document reference")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            fields.insert(name, value);
        }
        Ok(fields)
    }
}

/// The field names serde's derive reads for `T`: what its `Deserialize` asks a deserializer
/// for, caught before anything is read.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(AskFields) {
        Err(Asked(names)) => names,
        Ok(_) => &[],
    }
}

struct AskFields;

#[derive(Debug)]
struct Asked(&'static [&'static str]);

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("not a struct")
    }
}

impl std::error::Error for Asked {}

impl de::Error for Asked {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Asked(&[])
    }
}

impl<'de> Deserializer<'de> for AskFields {
    type Error = Asked;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Asked> {
        Err(Asked(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Asked> {
        Err(Asked(fields))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_of_a_reference_are_serdes() {
        assert_eq!(
            field_names::<DocumentReference>(),
            [
                "camunda.document.type",
                "storeId",
                "documentId",
                "contentHash",
                "metadata"
            ]
        );
        assert!(field_names::<String>().is_empty());
    }
}
