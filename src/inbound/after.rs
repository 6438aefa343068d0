//! After-processing of one IMAP mail, run only once Zeebe has accepted it. Each step touches
//! that UID alone: a flag on it, MOVE of it, or \Deleted + UID EXPUNGE of it (a plain EXPUNGE
//! only when no other mail is flagged, see [`expunge_only`]).

use super::config::AfterProcessing;
use crate::error::Result;
use crate::imap::common::expunge_only;
use crate::imap::error::ImapErrorKind;
use crate::imap::move_::transfer;
use crate::imap::session::ImapSession;
use crate::imap::wire::Command;
use crate::mail::inputs::Folder;

/// Applies `after` to `uid` of `folder` (selected read-write).
pub async fn apply(
    session: &mut ImapSession,
    folder: &Folder,
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
                ImapErrorKind::Refused,
            )
            .await
            .map(drop)
            .map_err(Into::into),
        AfterProcessing::Delete => expunge_only(session, &[uid]).await,
        AfterProcessing::Move(path) => {
            let target = session.mailbox(path, "/moveTo").await?;
            session.create_levels(&target).await?;
            // CREATE may leave the session without a selected folder on some servers.
            session.open(folder, true).await?;
            transfer(session, &[uid], &target.name).await.map(drop)
        }
    }
}
