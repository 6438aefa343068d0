//! The folder inputs: [`FolderPath`] (a path of levels, as a string or a list) and [`Folder`]
//! (a path that defaults to INBOX). How a path becomes the server's name (its separator, the
//! personal namespace) is `imap::folder`'s one rule.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A folder to open (`folder`, `sourceFolder`): a [`FolderPath`]; absent, null or blank means
/// INBOX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    path: FolderPath,
    name: String,
}

impl Folder {
    /// The folder when a model names none.
    pub const DEFAULT: &'static str = "INBOX";

    /// The folder as the process wrote it (a list joined with dots), for messages and logs.
    /// The server's name comes from `ImapSession::open` or `ImapSession::mailbox`, which apply
    /// the server's separator and namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &FolderPath {
        &self.path
    }

    fn of(path: FolderPath) -> Folder {
        let name = path
            .given
            .clone()
            .unwrap_or_else(|| path.segments.join("."));
        Folder { path, name }
    }
}

impl Default for Folder {
    fn default() -> Self {
        Folder::of(FolderPath {
            given: Some(Self::DEFAULT.to_string()),
            segments: vec![Self::DEFAULT.to_string()],
        })
    }
}

impl<'de> Deserialize<'de> for Folder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(PathVisitor { optional: true })
            .map(|path| path.map_or_else(Folder::default, Folder::of))
    }
}

/// What schemars writes as the field's `default`.
impl Serialize for Folder {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl JsonSchema for Folder {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Folder".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A mailbox folder: a path such as Projects.2026 (dots or the server's \
                            own separator between levels), or a FEEL list of names for names \
                            that contain dots. Relative to your personal folders: where the \
                            server keeps them under INBOX, Archive means INBOX.Archive. Empty: \
                            INBOX.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 1 } },
                { "type": "null" }
            ],
            "x-template": { "feel": "optional" }
        })
    }
}

/// A folder path as a process writes it: a string of levels separated by dots
/// (`Projects.2023.January`; the server's own separator works too), or a list of levels for
/// names that contain dots (`["Reports", "v1.2"]`). `imap::folder` turns it into the server's
/// name, relative to the personal namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPath {
    /// The path as given, when it was a string: what a response echoes.
    pub given: Option<String>,
    /// The levels: the string split at dots, or the list.
    pub segments: Vec<String>,
}

impl FolderPath {
    /// Whether the path was given as a list (pointers then name a segment's index).
    pub fn is_list(&self) -> bool {
        self.given.is_none()
    }

    /// Reads a path; `pointer` names the field in messages.
    pub fn parse(value: &Value, pointer: &str) -> Result<FolderPath, String> {
        serde_path_to_error::deserialize::<_, FolderPath>(value)
            .map_err(|e| super::at_pointer(pointer, &e))
    }
}

/// One level of a path given as a list.
struct Segment(String);

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        check_segment(&name).map_err(serde::de::Error::custom)?;
        Ok(Segment(name))
    }
}

fn check_segment(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        Err("empty folder name in the path")
    } else if name.contains(['\r', '\n', '\0']) {
        Err("contains a control character")
    } else {
        Ok(())
    }
}

/// Reads a string or a list of names; `optional` (a [`Folder`]) also takes null and blank.
struct PathVisitor {
    optional: bool,
}

impl<'de> serde::de::Visitor<'de> for PathVisitor {
    type Value = Option<FolderPath>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a dot-separated path or a list of folder names")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        let text = if self.optional { text.trim() } else { text };
        if self.optional && text.is_empty() {
            return Ok(None);
        }
        let segments: Vec<String> = text.split('.').map(str::to_string).collect();
        for segment in &segments {
            check_segment(segment).map_err(E::custom)?;
        }
        Ok(Some(FolderPath {
            given: Some(text.to_string()),
            segments,
        }))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut segments = Vec::new();
        while let Some(Segment(name)) = seq.next_element()? {
            segments.push(name);
        }
        if segments.is_empty() {
            return Err(serde::de::Error::custom(
                "a list of folder names must not be empty",
            ));
        }
        Ok(Some(FolderPath {
            given: None,
            segments,
        }))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(E::custom(
                "must be a dot-separated path or a list of folder names",
            ))
        }
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
}

impl<'de> Deserialize<'de> for FolderPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(PathVisitor { optional: false })?
            .ok_or_else(|| {
                serde::de::Error::custom("must be a dot-separated path or a list of folder names")
            })
    }
}

impl JsonSchema for FolderPath {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FolderPath".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A path such as Archive.2026.Invoices (dots or the server's own \
                            separator between levels), or a FEEL list of names for names that \
                            contain dots. Relative to your personal folders, as the folder \
                            field. Missing folders are created.",
            "examples": ["Archive.Invoices"],
            "anyOf": [
                { "type": "string", "minLength": 1 },
                { "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 1 } }
            ],
            "x-template": { "feel": "optional" }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folders_default_to_inbox() {
        let folder = |v: Value| serde_json::from_value::<Folder>(v).unwrap();
        assert_eq!(folder(json!(null)).name(), "INBOX");
        assert_eq!(folder(json!(" ")).name(), "INBOX");
        assert_eq!(folder(json!(" Archive ")).name(), "Archive");
        let listed = folder(json!(["Reports", "v1.2"]));
        assert_eq!(listed.path().segments, ["Reports", "v1.2"]);
        assert_eq!(listed.name(), "Reports.v1.2");
        assert_eq!(folder(json!("A.B")).path().segments, ["A", "B"]);
        assert!(serde_json::from_value::<Folder>(json!("A..B")).is_err());
    }

    #[test]
    fn folder_paths_from_dots_or_segments() {
        let path = |v: Value| FolderPath::parse(&v, "/targetFolder");
        assert_eq!(
            path(json!("Projects.2023.January")).unwrap().segments,
            ["Projects", "2023", "January"]
        );
        let list = path(json!(["Reports", "v1.2"])).unwrap();
        assert!(list.is_list());
        assert_eq!(list.segments, ["Reports", "v1.2"]);
        assert_eq!(
            path(json!("a..b")).unwrap_err(),
            "/targetFolder: empty folder name in the path"
        );
        assert!(path(json!([])).is_err());
        assert!(path(json!(null)).is_err());
        assert!(
            path(json!(["ok", " "]))
                .unwrap_err()
                .starts_with("/targetFolder/1: empty folder name")
        );
        assert!(
            path(json!(["ok", "a\nb"]))
                .unwrap_err()
                .starts_with("/targetFolder/1: contains a control character")
        );
    }
}
