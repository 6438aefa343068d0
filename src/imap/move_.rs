//! `imap:move`: moves a message to a folder, creating the missing folders along the path.
//!
//! The target is a dot-separated path (`Projects.2023.January`) or a list of segments for names
//! that contain dots (`["Reports", "v1.2"]`); segments are joined with the server's own
//! hierarchy delimiter. MOVE (RFC 6851) when the server has it, else COPY, flag and UID
//! EXPUNGE of exactly the moved message.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::common::{expunge_only, find_by_message_id, uid_sets};
use super::identity::{Lookup, resolve};
use super::pool::ImapPool;
use super::session::ImapSession;
use super::wire::Command;
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::inputs::{Folder, FolderPath, Imap, ImapMailInput, Login, Server};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:move` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Move an email",
    description = "Moves one message to another folder, creating missing folders along the path."
)]
pub struct MoveInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(default)]
    #[schemars(title = "Source folder")]
    pub source_folder: Folder,
    #[schemars(title = "Target folder")]
    pub target_folder: FolderPath,
}

pub struct MoveOperation {
    pub pool: Arc<ImapPool>,
}

/// Joins segments with the server's delimiter, refusing a segment that contains it (the
/// server would read it as another level).
pub fn join_path(
    segments: &[String],
    delimiter: Option<&str>,
    pointer_is_list: bool,
) -> Result<Vec<String>> {
    let mut prefixes = Vec::new();
    let mut path = String::new();
    for (index, segment) in segments.iter().enumerate() {
        match delimiter {
            Some(d) if segment.contains(d) => {
                let pointer = if pointer_is_list {
                    format!("/targetFolder/{index}")
                } else {
                    "/targetFolder".into()
                };
                return Err(EmailError::invalid_input(format!(
                    "{pointer}: folder name '{segment}' contains '{d}', which this server uses to separate folder levels"
                )));
            }
            None if segments.len() > 1 => {
                return Err(EmailError::invalid_input(
                    "/targetFolder: this server has no folder hierarchy; give one folder name",
                ));
            }
            _ => {}
        }
        if index > 0 {
            path.push_str(delimiter.unwrap_or_default());
        }
        path.push_str(segment);
        prefixes.push(path.clone());
    }
    Ok(prefixes)
}

/// Creates (and subscribes) each missing level of the path.
pub async fn ensure_path(session: &mut ImapSession, prefixes: &[String]) -> Result<()> {
    for prefix in prefixes {
        if session.folder_exists(prefix).await? {
            continue;
        }
        if let Err(e) = session
            .execute(
                &Command::new("CREATE").mailbox(prefix),
                ErrorCode::FolderNotFound,
            )
            .await
        {
            // Another job may have created it meanwhile.
            if !session.folder_exists(prefix).await? {
                return Err(EmailError::new(
                    ErrorCode::FolderNotFound,
                    format!("cannot create folder '{prefix}': {}", e.message),
                ));
            }
        }
        // Subscription only makes the folder visible in mail clients; a refusal is harmless.
        let _ = session
            .execute(
                &Command::new("SUBSCRIBE").mailbox(prefix),
                ErrorCode::ConnectionFailed,
            )
            .await;
    }
    Ok(())
}

/// The UID and Message-ID of the message with `id` in `target`, if that folder exists and
/// holds it. Leaves `target` selected (read-only).
async fn already_moved(
    session: &mut ImapSession,
    target: &str,
    id: &str,
) -> Result<Option<(u32, String)>> {
    if !session.folder_exists(target).await? {
        return Ok(None);
    }
    session.select(target, false).await?;
    let (uids, as_found) = find_by_message_id(session, id).await?;
    Ok(uids
        .last()
        .map(|uid| (*uid, as_found.unwrap_or_else(|| id.to_string()))))
}

impl MailOperation for MoveOperation {
    type Input = MoveInput;
    const NAME: &'static str = "imap:move";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: MoveInput,
        _job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
            let id = wanted.describe();
            let given = wanted.message_id.as_ref().map(|m| m.as_given().to_string());
            let source = input.source_folder.name();
            let mut session = self
                .pool
                .acquire(&input.server.endpoint(), &input.authentication)
                .await?;
            let delimiter = session.delimiter().await?;
            let prefixes = join_path(
                &input.target_folder.segments,
                delimiter.as_deref(),
                input.target_folder.is_list(),
            )?;
            let target = prefixes.last().cloned().unwrap_or_default();
            let (validity, _) = session.select(source, true).await?;
            let (uid, as_found) = match resolve(&mut session, source, validity, &wanted).await? {
                Lookup::Found { uid, message_id } => (uid, message_id),
                Lookup::Other(why) => return Err(EmailError::new(ErrorCode::EmailNotFound, why)),
                Lookup::Missing(why) => {
                    // A retry whose first MOVE went through but whose reply was lost: the
                    // message is where it was asked to go, which is the success the first
                    // attempt missed. Only a Message-ID can find it there.
                    let Some(given) = given else {
                        return Err(EmailError::new(ErrorCode::EmailNotFound, why));
                    };
                    return match already_moved(&mut session, &target, &given).await? {
                        Some((uid, as_found)) => Ok(Outcome::respond(json!({
                            "messageId": as_found,
                            "from": source,
                            "to": input.target_folder.given.unwrap_or(target),
                            "targetUid": uid,
                        }))),
                        None => Err(EmailError::new(
                            ErrorCode::EmailNotFound,
                            format!("no message {id} in folder '{source}' nor in '{target}'"),
                        )),
                    };
                }
            };
            let uids = [uid];
            ensure_path(&mut session, &prefixes).await?;
            // CREATE may leave the session without a selected folder on some servers.
            session.select(source, true).await?;
            let mut target_uid = None;
            for set in uid_sets(&uids) {
                let moved = if session.has("MOVE") {
                    session
                        .execute(
                            &Command::new("UID MOVE").raw(set).mailbox(&target),
                            ErrorCode::FolderNotFound,
                        )
                        .await?
                } else {
                    session
                        .execute(
                            &Command::new("UID COPY").raw(set).mailbox(&target),
                            ErrorCode::FolderNotFound,
                        )
                        .await?
                };
                target_uid = target_uid.or(moved.copy_uid());
            }
            if !session.has("MOVE") {
                expunge_only(&mut session, &uids).await?;
            }
            let to = input.target_folder.given.unwrap_or(target);
            Ok(Outcome::respond(json!({
                "messageId": as_found.or(given),
                "from": source,
                "to": to,
                "targetUid": target_uid,
                "uid": uid,
                "uidValidity": validity,
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_with_the_server_delimiter() {
        let path = |v: serde_json::Value| FolderPath::parse(&v, "/targetFolder").unwrap();
        let dots = path(json!("Projects.2023.January")).segments;
        assert_eq!(
            join_path(&dots, Some("/"), false).unwrap(),
            ["Projects", "Projects/2023", "Projects/2023/January"]
        );
        assert_eq!(
            join_path(&dots, Some("."), false).unwrap().last().unwrap(),
            "Projects.2023.January"
        );
        let list = path(json!(["Reports", "v1.2"])).segments;
        assert_eq!(
            join_path(&list, Some("/"), true).unwrap().last().unwrap(),
            "Reports/v1.2"
        );
        let e = join_path(&list, Some("."), true).unwrap_err();
        assert!(
            e.message
                .starts_with("/targetFolder/1: folder name 'v1.2' contains '.'"),
            "{}",
            e.message
        );
    }
}
