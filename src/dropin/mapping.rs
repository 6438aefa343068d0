//! Camunda's layout onto our operations' variables (docs/operations.md): which operation a
//! job asks for, the variables that operation takes, and for each of our fields the Camunda
//! field it came from, so that a refusal names the field the model wrote.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::account::Account;
use super::connection;
use super::inputs::{
    ImapAction, ImapActionKind, ImapSortField, Number, Pop3Action, Pop3ActionKind, Pop3SortField,
    ProtocolName, Request, SmtpAction, SortOrder,
};
pub use super::pointers::{read_at, rename_pointers};
pub use super::send::Document;
use super::send::send;
use crate::error::{EmailError, Result};

/// One of Camunda's ten actions, by the operation of ours that does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    ImapList,
    ImapSearch,
    ImapRead,
    ImapDelete,
    ImapMove,
    Pop3List,
    Pop3Search,
    Pop3Read,
    Pop3Delete,
}

impl Action {
    /// Our operation's name (`smtp:send`).
    pub fn operation(self) -> &'static str {
        match self {
            Action::Send => "smtp:send",
            Action::ImapList => "imap:list",
            Action::ImapSearch => "imap:search",
            Action::ImapRead => "imap:read",
            Action::ImapDelete => "imap:delete",
            Action::ImapMove => "imap:move",
            Action::Pop3List => "pop3:list",
            Action::Pop3Search => "pop3:search",
            Action::Pop3Read => "pop3:read",
            Action::Pop3Delete => "pop3:delete",
        }
    }
}

/// A job in our terms.
#[derive(Debug)]
pub struct Mapped {
    pub action: Action,
    /// Our operation's variables (attachments still to be added, for a send).
    pub variables: Value,
    /// Our pointer → Camunda's, longest first, for messages.
    pub pointers: Vec<(String, String)>,
    /// The send's documents, and the pointer of the field they came from.
    pub documents: Vec<Document>,
    pub documents_pointer: String,
    /// What Camunda's delete and move echo: the input `messageId` and folders, as given.
    pub echo: Map<String, Value>,
}

/// Builds the variables of one operation, remembering where each came from and every problem.
pub(super) struct Builder {
    /// Whether the worker has a document store: read attachments go there, as Camunda's
    /// runtime returns them, else inline.
    pub(super) has_store: bool,
    pub(super) variables: Map<String, Value>,
    pub(super) pointers: Vec<(String, String)>,
    pub(super) problems: Vec<String>,
}

impl Builder {
    pub(super) fn set(&mut self, ours: &str, theirs: &str, value: Value) {
        self.variables.insert(ours.to_string(), value);
        self.pointers.push((format!("/{ours}"), theirs.to_string()));
    }

    pub(super) fn missing(&mut self, pointer: &str) {
        self.problems.push(format!(
            "{pointer}: is required by Camunda's Email connector"
        ));
    }

    /// Reads the action block at `pointer` into its type; a refusal names the field.
    fn read<T: DeserializeOwned + Default>(&mut self, value: Option<&Value>, pointer: &str) -> T {
        match value {
            None | Some(Value::Null) => T::default(),
            Some(value) => read_at(value, pointer).unwrap_or_else(|e| {
                self.problems.push(e.message);
                T::default()
            }),
        }
    }
}

/// Maps a job's variables (Camunda's layout) onto one of our operations.
pub fn map(variables: &Value, has_store: bool) -> Result<Mapped> {
    let request: Request = read_at(variables, "")?;
    let protocol = request.protocol.unwrap_or(ProtocolName::Smtp);
    let mut builder = Builder {
        has_store,
        variables: Map::new(),
        pointers: Vec::new(),
        problems: Vec::new(),
    };
    match Account::of(variables)? {
        Some(account) => connection::from_account(&mut builder, protocol, &account),
        None => {
            connection::authentication(&mut builder, &request);
            connection::server(&mut builder, protocol, &request.data);
        }
    }
    let mut documents = Vec::new();
    let mut echo = Map::new();
    let action = match protocol {
        ProtocolName::Smtp => {
            // `sendEmailSmtp` is the only action; the discriminator was checked on reading.
            let pointer = "/data/smtpAction";
            match request.data.smtp_action.as_ref() {
                None | Some(Value::Null) => builder.missing(pointer),
                Some(value) => match read_at::<SmtpAction>(value, pointer) {
                    Ok(action) => documents = send(&mut builder, action),
                    Err(e) => builder.problems.push(e.message),
                },
            }
            Action::Send
        }
        ProtocolName::Imap => {
            let kind = request
                .data
                .imap_action_discriminator
                .unwrap_or(ImapActionKind::List);
            let action: ImapAction =
                builder.read(request.data.imap_action.as_ref(), "/data/imapAction");
            imap(&mut builder, kind, action, &mut echo)
        }
        ProtocolName::Pop3 => {
            let kind = request
                .data
                .pop3_action_discriminator
                .unwrap_or(Pop3ActionKind::List);
            let action: Pop3Action =
                builder.read(request.data.pop3_action.as_ref(), "/data/pop3Action");
            pop3(&mut builder, kind, action, &mut echo)
        }
    };
    if !builder.problems.is_empty() {
        builder.problems.dedup();
        return Err(EmailError::invalid_input(builder.problems.join("; ")));
    }
    let mut pointers = builder.pointers;
    pointers.sort_by_key(|(ours, _)| std::cmp::Reverse(ours.len()));
    Ok(Mapped {
        action,
        variables: Value::Object(builder.variables),
        pointers,
        documents,
        documents_pointer: "/data/smtpAction/attachments".into(),
        echo,
    })
}

/// A Camunda folder name as ours: empty or any case of INBOX is INBOX; otherwise the path is
/// split on `.` and `/` as Camunda's runtime splits it, and given as segments.
fn folder(name: &str) -> Value {
    let segments: Vec<&str> = name.split(['.', '/']).filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => json!("INBOX"),
        [one] if one.eq_ignore_ascii_case("INBOX") => json!("INBOX"),
        _ => json!(segments),
    }
}

fn message_id(
    builder: &mut Builder,
    id: Option<String>,
    pointer: &str,
    echo: &mut Map<String, Value>,
) {
    match id {
        Some(id) => {
            echo.insert("messageId".into(), json!(id));
            builder.set("messageId", pointer, json!(id));
        }
        None => builder.missing(pointer),
    }
}

fn criteria(builder: &mut Builder, criteria: Option<Value>, pointer: &str) {
    match criteria.filter(|c| !c.is_null()) {
        Some(criteria) => builder.set("criteria", pointer, criteria),
        None => builder.missing(pointer),
    }
    // Camunda returns every hit; ours caps, at its largest.
    builder.variables.insert("maxResults".into(), json!(10_000));
}

fn limit(builder: &mut Builder, max: Option<Number>, pointer: &str) {
    let max = max.map_or(100, |Number(n)| n);
    builder.set("maxToBeRead", pointer, json!(max));
}

/// Attachments of a read: documents when the worker has a store, as Camunda's runtime
/// returns them, else inline.
fn attachments_as(builder: &mut Builder) {
    let mode = if builder.has_store {
        "document"
    } else {
        "inline"
    };
    builder
        .variables
        .insert("attachmentsAs".into(), json!(mode));
}

fn imap(
    builder: &mut Builder,
    kind: ImapActionKind,
    action: ImapAction,
    echo: &mut Map<String, Value>,
) -> Action {
    let at = |field: &str| format!("/data/imapAction/{field}");
    let folder_of = |builder: &mut Builder, ours: &str, field: &str, name: Option<String>| {
        if let Some(name) = name {
            builder.set(ours, &at(field), folder(&name));
        }
    };
    match kind {
        ImapActionKind::List => {
            limit(builder, action.max_to_be_read, &at("maxToBeRead"));
            folder_of(
                builder,
                "folder",
                "listEmailsFolder",
                action.list_emails_folder,
            );
            let field = action.sort_field.unwrap_or(ImapSortField::ReceivedDate);
            builder.set("sortField", &at("sortField"), json!(field.as_str()));
            let order = action.sort_order.unwrap_or(SortOrder::Asc);
            builder.set("sortOrder", &at("sortOrder"), json!(order.as_str()));
            Action::ImapList
        }
        ImapActionKind::Search => {
            criteria(builder, action.criteria, &at("criteria"));
            folder_of(
                builder,
                "folder",
                "searchEmailFolder",
                action.search_email_folder,
            );
            Action::ImapSearch
        }
        ImapActionKind::Read => {
            message_id(builder, action.message_id, &at("messageId"), echo);
            folder_of(
                builder,
                "folder",
                "readEmailFolder",
                action.read_email_folder,
            );
            attachments_as(builder);
            Action::ImapRead
        }
        ImapActionKind::Delete => {
            message_id(builder, action.message_id, &at("messageId"), echo);
            folder_of(
                builder,
                "folder",
                "deleteEmailFolder",
                action.delete_email_folder,
            );
            Action::ImapDelete
        }
        ImapActionKind::Move => {
            message_id(builder, action.message_id, &at("messageId"), echo);
            for (ours, field, name, echoed) in [
                ("sourceFolder", "fromFolder", action.from_folder, "from"),
                ("targetFolder", "toFolder", action.to_folder, "to"),
            ] {
                match name {
                    Some(name) => {
                        echo.insert(echoed.into(), json!(name));
                        folder_of(builder, ours, field, Some(name));
                    }
                    None => builder.missing(&at(field)),
                }
            }
            Action::ImapMove
        }
    }
}

fn pop3(
    builder: &mut Builder,
    kind: Pop3ActionKind,
    action: Pop3Action,
    echo: &mut Map<String, Value>,
) -> Action {
    let at = |field: &str| format!("/data/pop3Action/{field}");
    match kind {
        Pop3ActionKind::List => {
            limit(builder, action.max_to_be_read, &at("maxToBeRead"));
            let field = action.sort_field.unwrap_or(Pop3SortField::SentDate);
            builder.set("sortField", &at("sortField"), json!(field.as_str()));
            let order = action.sort_order.unwrap_or(SortOrder::Asc);
            builder.set("sortOrder", &at("sortOrder"), json!(order.as_str()));
            Action::Pop3List
        }
        Pop3ActionKind::Search => {
            criteria(builder, action.criteria, &at("criteria"));
            Action::Pop3Search
        }
        Pop3ActionKind::Read => {
            message_id(builder, action.message_id, &at("messageId"), echo);
            // Camunda's runtime leaves the message on the server, whatever the template's
            // description says; so does the drop-in.
            builder
                .variables
                .insert("deleteAfterRead".into(), json!(false));
            attachments_as(builder);
            Action::Pop3Read
        }
        Pop3ActionKind::Delete => {
            message_id(builder, action.message_id, &at("messageId"), echo);
            Action::Pop3Delete
        }
    }
}
