//! After-processing of one IMAP mail, run only once Zeebe has accepted it. Each step touches
//! that UID alone: a flag on it, MOVE of it, or \Deleted + UID EXPUNGE of it (a plain EXPUNGE
//! only when no other mail is flagged, see [`expunge_only`]).

use super::config::AfterProcessing;
use crate::error::{ErrorCode, Result};
use crate::imap::common::expunge_only;
use crate::imap::move_::{ensure_path, join_path};
use crate::imap::session::ImapSession;
use crate::imap::wire::Command;

/// Applies `after` to `uid` of `folder` (selected read-write).
pub async fn apply(
    session: &mut ImapSession,
    folder: &str,
    uid: u32,
    after: &AfterProcessing,
) -> Result<()> {
    match after {
        AfterProcessing::None => Ok(()),
        AfterProcessing::MarkRead => session
            .execute(
                &Command::new("UID STORE")
                    .raw(uid.to_string())
                    .raw("+FLAGS.SILENT (\\Seen)"),
                ErrorCode::ConnectionFailed,
            )
            .await
            .map(drop),
        AfterProcessing::Delete => expunge_only(session, &[uid]).await,
        AfterProcessing::Move(path) => {
            let delimiter = session.delimiter().await?;
            let prefixes = join_path(&path.segments, delimiter.as_deref(), path.is_list())?;
            let target = prefixes.last().cloned().unwrap_or_default();
            ensure_path(session, &prefixes).await?;
            // CREATE may leave the session without a selected folder on some servers.
            session.select(folder, true).await?;
            if session.has("MOVE") {
                session
                    .execute(
                        &Command::new("UID MOVE")
                            .raw(uid.to_string())
                            .mailbox(&target),
                        ErrorCode::FolderNotFound,
                    )
                    .await
                    .map(drop)
            } else {
                session
                    .execute(
                        &Command::new("UID COPY")
                            .raw(uid.to_string())
                            .mailbox(&target),
                        ErrorCode::FolderNotFound,
                    )
                    .await?;
                expunge_only(session, &[uid]).await
            }
        }
    }
}
