//! `imap:folders`: lists the user's folders (with their special use, such as `\Sent`), and
//! creates, renames or deletes one, named as every folder input is ([`super::folder`]).
//!
//! A folder name may hold `*` or `%`, which LIST reads as wildcards: a name is looked up with
//! each replaced by `%` (one level) and the answers compared with the name itself, so a folder
//! called `*` never stands for all of them. INBOX is never deleted or renamed (RENAME of INBOX
//! moves its mail, which no process means), and neither is a folder with children deleted:
//! some servers would take the children along, others leave them orphaned.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::folder::{Mailbox, user_terms};
use super::pool::ImapPool;
use super::response::Untagged;
use super::session::ImapSession;
use super::wire::{Command, decode_mailbox, encode_mailbox};
use crate::error::{EmailError, Result};
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::mail::inputs::{FolderPath, Imap, Login, Server};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:folders` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(extend("x-template" = { "choices": {
    "list": "List folders", "create": "Create a folder", "rename": "Rename a folder", "delete": "Delete a folder"
} }))]
pub enum FolderAction {
    #[default]
    List,
    Create,
    Rename,
    Delete,
}

/// What `imap:folders` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Manage folders",
    description = "Lists the folders (with special use such as \\Sent), or creates, renames or deletes one."
)]
pub struct FoldersInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(
        title = "Action",
        description = "list (default), create, rename or delete."
    )]
    pub action: FolderAction,
    #[schemars(
        title = "Folder path",
        description = "The folder to create, rename or delete: a dot-separated path or a FEEL list of names.",
        extend("x-template" = { "feel": "optional" })
    )]
    pub folder: Option<FolderPath>,
    #[schemars(
        title = "New name",
        description = "For rename: the folder's new path (dot-separated or a FEEL list).",
        extend("x-template" = { "feel": "optional" })
    )]
    pub new_name: Option<FolderPath>,
}

/// One folder as `list` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderEntry {
    /// The name with the server's delimiter, decoded from modified UTF-7, without the
    /// personal namespace's prefix: what the other operations take as a folder.
    pub name: String,
    /// The server's hierarchy delimiter; null on a server without levels.
    pub delimiter: Option<String>,
    /// The LIST attributes as the server sent them (`\HasChildren`, `\Noselect`, `\Sent`).
    pub attributes: Vec<String>,
    /// The special use (RFC 6154) among the attributes, such as `\Sent`; null when none.
    pub special_use: Option<String>,
}

/// What `create` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderCreated {
    pub folder: String,
    /// False when it existed already.
    pub created: bool,
}

/// What `rename` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FolderRenamed {
    pub from: String,
    pub to: String,
}

/// What `delete` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FolderDeleted {
    pub folder: String,
    pub deleted: bool,
}

const SPECIAL_USES: [&str; 8] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
    "\\Important",
];

fn special_use(attributes: &[String]) -> Option<String> {
    attributes.iter().find_map(|a| {
        SPECIAL_USES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(a))
            .map(|s| s.to_string())
    })
}

pub struct FoldersOperation {
    pub pool: Arc<ImapPool>,
}

/// The LIST answers for `pattern` (already encoded; `*` and `%` in names turned into `%`).
async fn list(session: &mut ImapSession, pattern: String) -> Result<Vec<Untagged>> {
    Ok(session
        .execute(
            &Command::new("LIST").value("").value(pattern),
            ImapErrorKind::Refused,
        )
        .await?
        .data
        .into_iter()
        .filter(|u| matches!(u, Untagged::List { .. }))
        .collect())
}

/// Whether a folder of exactly this name exists (selectable or not), and whether it has
/// children.
async fn state(
    session: &mut ImapSession,
    name: &str,
    delimiter: Option<&str>,
) -> Result<(bool, bool)> {
    let wanted = encode_mailbox(name);
    let pattern = wanted.replace('*', "%");
    let exists = list(session, pattern.clone()).await?.iter().any(|u| {
        matches!(u, Untagged::List { name, .. }
            if *name == wanted || (name.eq_ignore_ascii_case("INBOX") && wanted.eq_ignore_ascii_case("INBOX")))
    });
    let Some(d) = delimiter else {
        return Ok((exists, false));
    };
    let below = format!("{wanted}{d}");
    let children = list(session, format!("{pattern}{d}%"))
        .await?
        .iter()
        .any(|u| matches!(u, Untagged::List { name, .. } if name.starts_with(&below)));
    Ok((exists, children))
}

fn refuse(pointer: &str, why: impl std::fmt::Display) -> EmailError {
    EmailError::invalid_input(format!("{pointer}: {why}"))
}

fn missing(mailbox: &Mailbox) -> EmailError {
    ImapError::new(
        ImapErrorKind::FolderMissing,
        format!("no folder '{}'", mailbox.shown),
    )
    .into()
}

impl FoldersOperation {
    async fn list_all(&self, session: &mut ImapSession) -> Result<Vec<FolderEntry>> {
        let namespace = session.namespace().await?;
        let mut entries: Vec<FolderEntry> = list(session, "*".into())
            .await?
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List {
                    name,
                    delimiter,
                    attributes,
                    ..
                } => Some(FolderEntry {
                    name: user_terms(&decode_mailbox(&name), &namespace),
                    delimiter,
                    special_use: special_use(&attributes),
                    attributes,
                }),
                _ => None,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        Ok(entries)
    }
}

impl MailOperation for FoldersOperation {
    type Input = FoldersInput;
    const NAME: &'static str = "imap:folders";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: FoldersInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let path = match (input.action, &input.folder) {
                (FolderAction::List, _) => None,
                (_, Some(path)) => Some(path),
                (action, None) => {
                    return Err(refuse(
                        "/",
                        format!(
                            "folder is required for {}",
                            to_json(&action).as_str().unwrap_or_default()
                        ),
                    ));
                }
            };
            let new_name = match (input.action, &input.new_name) {
                (FolderAction::Rename, None) => {
                    return Err(refuse("/", "newName is required for rename"));
                }
                (_, new_name) => new_name,
            };
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let Some(path) = path else {
                return Ok(Outcome::respond(to_json(
                    &self.list_all(&mut session).await?,
                )));
            };
            let mailbox = session.mailbox(path, "/folder").await?;
            let delimiter = session.namespace().await?.delimiter;
            let (exists, children) =
                state(&mut session, &mailbox.name, delimiter.as_deref()).await?;
            let inbox = mailbox.name.eq_ignore_ascii_case("INBOX");
            let response = match input.action {
                // Answered above, before a path was needed.
                FolderAction::List => {
                    return Ok(Outcome::respond(to_json(
                        &self.list_all(&mut session).await?,
                    )));
                }
                FolderAction::Create => {
                    if !exists {
                        session.create_levels(&mailbox).await?;
                    }
                    to_json(&FolderCreated {
                        folder: mailbox.shown,
                        created: !exists,
                    })
                }
                FolderAction::Delete => {
                    if inbox {
                        return Err(refuse("/folder", "INBOX cannot be deleted"));
                    }
                    if !exists {
                        return Err(missing(&mailbox));
                    }
                    if children {
                        return Err(refuse(
                            "/folder",
                            format!(
                                "folder '{}' has folders below it; delete those first",
                                mailbox.shown
                            ),
                        ));
                    }
                    // A folder still selected by this pooled session is left first: some
                    // servers refuse to delete the selected folder.
                    let _ = session
                        .execute(&Command::new("UNSELECT"), ImapErrorKind::Refused)
                        .await;
                    session
                        .execute(
                            &Command::new("DELETE").mailbox(&mailbox.name),
                            ImapErrorKind::Refused,
                        )
                        .await?;
                    to_json(&FolderDeleted {
                        folder: mailbox.shown,
                        deleted: true,
                    })
                }
                FolderAction::Rename => {
                    let Some(new_name) = new_name else {
                        return Err(refuse("/", "newName is required for rename"));
                    };
                    let target = session.mailbox(new_name, "/newName").await?;
                    if inbox || target.name.eq_ignore_ascii_case("INBOX") {
                        return Err(refuse("/folder", "INBOX cannot be renamed"));
                    }
                    let (taken, _) =
                        state(&mut session, &target.name, delimiter.as_deref()).await?;
                    match (exists, taken) {
                        // A retry whose first RENAME went through: done.
                        (false, true) => {}
                        (false, false) => return Err(missing(&mailbox)),
                        (true, true) => {
                            return Err(refuse(
                                "/newName",
                                format!("folder '{}' exists already", target.shown),
                            ));
                        }
                        (true, false) => {
                            session.create_parents(&target).await?;
                            let _ = session
                                .execute(&Command::new("UNSELECT"), ImapErrorKind::Refused)
                                .await;
                            session
                                .execute(
                                    &Command::new("RENAME")
                                        .mailbox(&mailbox.name)
                                        .mailbox(&target.name),
                                    ImapErrorKind::Refused,
                                )
                                .await?;
                        }
                    }
                    to_json(&FolderRenamed {
                        from: mailbox.shown,
                        to: target.shown,
                    })
                }
            };
            Ok(Outcome::respond(response))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_is_read_from_the_attributes() {
        let attributes = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            special_use(&attributes(&["\\HasNoChildren", "\\sent"])).as_deref(),
            Some("\\Sent")
        );
        assert_eq!(special_use(&attributes(&["\\HasChildren"])), None);
    }
}
