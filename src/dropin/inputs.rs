//! Camunda's Email connector layout (`io.camunda:email:1`) as input types, with Camunda's
//! field names and the leniency its object mapper has (docs/camunda-dropin.md): unknown
//! fields are ignored, enum values match in any case, ports and `maxToBeRead` may come as
//! numeric strings (the templates shipped with 8.6 and 8.7 send them so), and an empty
//! optional field counts as absent.
//!
//! Only what every job carries is typed at the top: the action of the chosen protocol is read
//! by its discriminator afterwards ([`SmtpAction`], [`ImapAction`], [`Pop3Action`]), so a
//! problem in it names its pointer under `/data/<protocol>Action`.

use schemars::{JsonSchema, json_schema};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::mail::inputs::inline_json_schema;

/// Declares a Camunda enum whose values read in any case, as Camunda's mapper reads them.
macro_rules! lenient_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $(if text.trim().eq_ignore_ascii_case($text) {
                    return Ok($name::$variant);
                })+
                Err(serde::de::Error::custom(format!(
                    "'{}' is not one of {}",
                    text.chars().take(80).collect::<String>(),
                    Self::VALUES.join(", ")
                )))
            }
        }

        // Any case is accepted, so the schema cannot list the values as an enum; the reading
        // names them when one is wrong.
        inline_json_schema!($name, json_schema!({ "type": "string", "examples": Self::VALUES }));
    };
}

lenient_enum!(
    /// `protocol`: which of the three config and action blocks the job uses.
    ProtocolName { Smtp = "smtp", Imap = "imap", Pop3 = "pop3" }
);
lenient_enum!(
    /// `authentication.type`.
    AuthType { Simple = "simple", NoAuth = "noAuth" }
);
lenient_enum!(
    /// `…CryptographicProtocol`: `TLS` is STARTTLS on SMTP and implicit TLS on IMAP and POP3,
    /// as Camunda's runtime reads it; `SSL` is implicit TLS everywhere.
    Crypto { Tls = "TLS", Ssl = "SSL", None = "NONE" }
);
lenient_enum!(SmtpActionKind { Send = "sendEmailSmtp" });
lenient_enum!(ImapActionKind {
    List = "listEmailsImap",
    Search = "searchEmailsImap",
    Read = "readEmailImap",
    Delete = "deleteEmailImap",
    Move = "moveEmailImap",
});
lenient_enum!(Pop3ActionKind {
    List = "listEmailsPop3",
    Search = "searchEmailsPop3",
    Read = "readEmailPop3",
    Delete = "deleteEmailPop3",
});
lenient_enum!(ImapSortField {
    ReceivedDate = "RECEIVED_DATE",
    SentDate = "SENT_DATE",
    Size = "SIZE",
});
lenient_enum!(Pop3SortField { SentDate = "SENT_DATE", Size = "SIZE" });
lenient_enum!(SortOrder { Asc = "ASC", Desc = "DESC" });
lenient_enum!(DocumentMode { None = "none", Single = "single", Multiple = "multiple" });
lenient_enum!(DocumentSource { Camunda = "camunda", Inline = "inline", External = "external" });

/// `contentType` of a send: unlike the other enums, an unknown, empty or missing value is
/// `PLAIN`, as Camunda's mapper reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentType {
    #[default]
    Plain,
    Html,
    Multipart,
}

impl<'de> Deserialize<'de> for ContentType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let text = value.as_str().unwrap_or_default().trim();
        Ok(if text.eq_ignore_ascii_case("HTML") {
            ContentType::Html
        } else if text.eq_ignore_ascii_case("MULTIPART") {
            ContentType::Multipart
        } else {
            ContentType::Plain
        })
    }
}

inline_json_schema!(
    ContentType,
    json_schema!({ "type": ["string", "null"], "enum": ["PLAIN", "HTML", "MULTIPART", null] })
);

/// A whole number that may come as a JSON number or as a numeric string (`"993"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number(pub u64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bad = |shown: &str| {
            serde::de::Error::custom(format!(
                "expected a whole number (or one as a string), got {}",
                shown.chars().take(40).collect::<String>()
            ))
        };
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(Number)
                .ok_or_else(|| bad(&n.to_string())),
            Value::String(s) => s.trim().parse().map(Number).map_err(|_| bad(&s)),
            other => Err(bad(&other.to_string())),
        }
    }
}

inline_json_schema!(Number, json_schema!({ "type": ["integer", "string"] }));

/// `imapPort`, the one field Camunda's runtime reads through its FEEL deserializer: besides a
/// [`Number`], a string starting with `=` is a FEEL expression, evaluated by the worker's own
/// bounded evaluator in an empty context (Camunda gives it none) and read as a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeelNumber(pub Number);

impl<'de> Deserialize<'de> for FeelNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let value = match value.as_str().map(str::trim_start) {
            Some(text) if text.starts_with('=') => feel::Expression::parse(text)
                .and_then(|expression| expression.evaluate(&Value::Null))
                .map_err(|e| serde::de::Error::custom(format!("the FEEL expression failed: {e}")))?
                .to_json(),
            _ => value,
        };
        if value.is_null() {
            return Err(serde::de::Error::custom(
                "the FEEL expression gave null, not a port",
            ));
        }
        Number::deserialize(value)
            .map(FeelNumber)
            .map_err(serde::de::Error::custom)
    }
}

inline_json_schema!(FeelNumber, json_schema!({ "type": ["integer", "string"] }));

/// Text that an empty input mapping may leave `null` or `""`: both read as absent.
pub fn optional_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.trim().is_empty()))
}

/// Top level of a job: `authentication`, `protocol` and `data`; every other variable in
/// scope is ignored.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Request {
    #[serde(default)]
    pub authentication: Option<Authentication>,
    #[serde(default)]
    pub protocol: Option<ProtocolName>,
    pub data: Data,
}

/// `authentication`: `simple` (the default) with username and password, or `noAuth`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Authentication {
    #[serde(rename = "type", default)]
    pub kind: Option<AuthType>,
    #[serde(default, deserialize_with = "optional_text")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub password: Option<String>,
}

/// `data`: the chosen protocol's config, its discriminator and its action. The action stays
/// JSON until the discriminator says what it is.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Data {
    #[serde(default)]
    pub smtp_config: Option<SmtpConfig>,
    #[serde(default)]
    pub imap_config: Option<ImapConfig>,
    #[serde(default)]
    pub pop3_config: Option<Pop3Config>,
    #[serde(default)]
    pub smtp_action_discriminator: Option<SmtpActionKind>,
    #[serde(default)]
    pub imap_action_discriminator: Option<ImapActionKind>,
    #[serde(default)]
    pub pop3_action_discriminator: Option<Pop3ActionKind>,
    #[serde(default)]
    pub smtp_action: Option<Value>,
    #[serde(default)]
    pub imap_action: Option<Value>,
    #[serde(default)]
    pub pop3_action: Option<Value>,
}

/// Declares a `…Config` block with its protocol's field names.
macro_rules! config {
    ($name:ident, $host:literal, $port:literal, $port_type:ty, $crypto:literal) => {
        #[derive(Debug, Deserialize, JsonSchema)]
        pub struct $name {
            #[serde(rename = $host, default, deserialize_with = "optional_text")]
            pub host: Option<String>,
            #[serde(rename = $port, default)]
            pub port: Option<$port_type>,
            #[serde(rename = $crypto, default)]
            pub crypto: Option<Crypto>,
        }

        impl $name {
            pub const FIELDS: [&'static str; 3] = [$host, $port, $crypto];
        }
    };
}

config!(
    SmtpConfig,
    "smtpHost",
    "smtpPort",
    Number,
    "smtpCryptographicProtocol"
);
config!(
    ImapConfig,
    "imapHost",
    "imapPort",
    FeelNumber,
    "imapCryptographicProtocol"
);
config!(
    Pop3Config,
    "pop3Host",
    "pop3Port",
    Number,
    "pop3CryptographicProtocol"
);

/// `data.smtpAction` of `sendEmailSmtp`, with the v5/v6 document helpers read directly: the
/// templates' own composer of `attachments` refers to them by names that resolve to nothing.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmtpAction {
    #[serde(default, deserialize_with = "optional_text")]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<Value>,
    #[serde(default)]
    pub cc: Option<Value>,
    #[serde(default)]
    pub bcc: Option<Value>,
    #[serde(default)]
    pub headers: Option<Value>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub content_type: ContentType,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_body: Option<String>,
    #[serde(default)]
    pub attachments: Option<Value>,
    #[serde(rename = "data_smtpAction_attachments_documentMode", default)]
    pub document_mode: Option<DocumentMode>,
    #[serde(rename = "data_smtpAction_attachments_single_documentSource", default)]
    pub document_source: Option<DocumentSource>,
    #[serde(
        rename = "data_smtpAction_attachments_single_camundaReference",
        default
    )]
    pub camunda_reference: Option<Value>,
    #[serde(rename = "data_smtpAction_attachments_single_inline_content", default)]
    pub inline_content: Option<String>,
    #[serde(
        rename = "data_smtpAction_attachments_single_inline_fileName",
        default,
        deserialize_with = "optional_text"
    )]
    pub inline_file_name: Option<String>,
    #[serde(
        rename = "data_smtpAction_attachments_single_inline_contentType",
        default,
        deserialize_with = "optional_text"
    )]
    pub inline_content_type: Option<String>,
    #[serde(
        rename = "data_smtpAction_attachments_single_external_url",
        default,
        deserialize_with = "optional_text"
    )]
    pub external_url: Option<String>,
    #[serde(
        rename = "data_smtpAction_attachments_single_external_fileName",
        default,
        deserialize_with = "optional_text"
    )]
    pub external_file_name: Option<String>,
    #[serde(rename = "data_smtpAction_attachments_multiple_expression", default)]
    pub multiple: Option<Value>,
}

/// `data.imapAction`: the fields of every IMAP action; which are used depends on the
/// discriminator.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImapAction {
    #[serde(default)]
    pub max_to_be_read: Option<Number>,
    #[serde(default, deserialize_with = "optional_text")]
    pub list_emails_folder: Option<String>,
    #[serde(default)]
    pub sort_field: Option<ImapSortField>,
    #[serde(default)]
    pub sort_order: Option<SortOrder>,
    #[serde(default)]
    pub criteria: Option<Value>,
    #[serde(default, deserialize_with = "optional_text")]
    pub search_email_folder: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub message_id: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub read_email_folder: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub delete_email_folder: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub from_folder: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub to_folder: Option<String>,
}

/// `data.pop3Action`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pop3Action {
    #[serde(default)]
    pub max_to_be_read: Option<Number>,
    #[serde(default)]
    pub sort_field: Option<Pop3SortField>,
    #[serde(default)]
    pub sort_order: Option<SortOrder>,
    #[serde(default)]
    pub criteria: Option<Value>,
    #[serde(default, deserialize_with = "optional_text")]
    pub message_id: Option<String>,
}
