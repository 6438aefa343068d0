//! Folders on a session: the user's namespace (asked once), a path resolved to the server's
//! name by the one rule of [`crate::imap::folder`], opening it, whether a folder exists, and
//! creating the levels of a path.

use super::ImapSession;
use super::tap::Capture;
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::imap::folder::{Mailbox, Namespace, resolve, user_terms};
use crate::imap::response::Untagged;
use crate::imap::wire::{Command, encode_mailbox};
use crate::mail::inputs::{Folder, FolderPath};

impl ImapSession {
    /// The personal namespace (RFC 2342 NAMESPACE when the server has it, else no prefix and
    /// the `LIST "" ""` separator), asked once per session.
    pub async fn namespace(&mut self) -> Result<Namespace, ImapError> {
        if let Some(known) = &self.namespace {
            return Ok(known.clone());
        }
        let mut announced = None;
        if self.has("NAMESPACE") {
            let (reply, captured) = self
                .execute_capturing(
                    &Command::new("NAMESPACE"),
                    Capture::Namespace,
                    ImapErrorKind::Refused,
                    ImapErrorKind::Refused,
                )
                .await;
            match reply {
                Ok(_) => announced = captured.iter().find_map(|data| Namespace::parse(data)),
                // A NO or BAD: the server does not tell; a broken session cannot go on.
                Err(e) if !self.reusable() => return Err(e),
                Err(_) => {}
            }
        }
        let namespace = match announced {
            Some(namespace) => namespace,
            None => Namespace::flat(self.list_delimiter().await?),
        };
        self.namespace = Some(namespace.clone());
        Ok(namespace)
    }

    async fn list_delimiter(&mut self) -> Result<Option<String>, ImapError> {
        let reply = self
            .execute(
                &Command::new("LIST").value("").value(""),
                ImapErrorKind::Refused,
            )
            .await?;
        Ok(reply.data.iter().find_map(|u| match u {
            Untagged::List { delimiter, .. } => delimiter.clone(),
            _ => None,
        }))
    }

    /// The server's folder for `path`; `pointer` names the input in messages.
    pub async fn mailbox(
        &mut self,
        path: &FolderPath,
        pointer: &str,
    ) -> Result<Mailbox, ImapError> {
        let namespace = self.namespace().await?;
        resolve(path, &namespace, pointer)
    }

    /// Opens the `folder` input: SELECT (`writable`) or EXAMINE. Returns UIDVALIDITY and the
    /// message count.
    pub async fn open(&mut self, folder: &Folder, writable: bool) -> Result<(u32, u32), ImapError> {
        let mailbox = self.mailbox(folder.path(), "/folder").await?;
        self.select_mailbox(&mailbox, writable).await
    }

    /// Selects a resolved folder; a missing one is named as the process wrote it.
    pub async fn select_mailbox(
        &mut self,
        mailbox: &Mailbox,
        writable: bool,
    ) -> Result<(u32, u32), ImapError> {
        self.select(&mailbox.name, writable).await.map_err(|e| {
            if e.kind() == ImapErrorKind::FolderMissing && mailbox.shown != mailbox.name {
                e.reworded(|message| {
                    message.replacen(
                        &format!("folder '{}'", mailbox.name),
                        &format!(
                            "folder '{}' ('{}' on this server)",
                            mailbox.shown, mailbox.name
                        ),
                        1,
                    )
                })
            } else {
                e
            }
        })
    }

    /// Whether a selectable folder has exactly this name. LIST takes a pattern, and a name may
    /// hold `*` or `%`: each becomes `%` (one level, so the answer stays the size of one
    /// folder's siblings) and the answers are compared with the name itself.
    pub async fn folder_exists(&mut self, name: &str) -> Result<bool, ImapError> {
        let wanted = encode_mailbox(name);
        let pattern = wanted.replace('*', "%");
        let reply = self
            .execute(
                &Command::new("LIST").value("").value(pattern),
                ImapErrorKind::Refused,
            )
            .await?;
        Ok(reply.data.iter().any(|u| {
            matches!(u, Untagged::List { name, selectable: true, .. }
                if *name == wanted || (name.eq_ignore_ascii_case("INBOX") && wanted.eq_ignore_ascii_case("INBOX")))
        }))
    }

    /// Creates (and subscribes) each missing level of `mailbox`.
    pub async fn create_levels(&mut self, mailbox: &Mailbox) -> Result<(), ImapError> {
        self.create_each(&mailbox.levels).await
    }

    /// Creates each missing level above `mailbox`, not itself: where a RENAME puts a folder.
    /// Servers differ there (Cyrus makes the levels a RENAME needs, Dovecot leaves a parent
    /// that is no folder and cannot be deleted), so they are made first, as everywhere else.
    pub async fn create_parents(&mut self, mailbox: &Mailbox) -> Result<(), ImapError> {
        let parents = mailbox.levels.split_last().map_or(&[][..], |(_, p)| p);
        self.create_each(parents).await
    }

    async fn create_each(&mut self, levels: &[String]) -> Result<(), ImapError> {
        for level in levels {
            if self.folder_exists(level).await? {
                continue;
            }
            if let Err(e) = self
                .execute(
                    &Command::new("CREATE").mailbox(level),
                    ImapErrorKind::FolderMissing,
                )
                .await
            {
                // Another job may have created it meanwhile.
                if !self.folder_exists(level).await? {
                    let namespace = self.namespace().await?;
                    return Err(ImapError::new(
                        ImapErrorKind::FolderMissing,
                        format!(
                            "cannot create folder '{}': {e}",
                            user_terms(level, &namespace)
                        ),
                    )
                    .with_source(e));
                }
            }
            // Subscription only makes the folder visible in mail clients; a refusal is harmless.
            let _ = self
                .execute(
                    &Command::new("SUBSCRIBE").mailbox(level),
                    ImapErrorKind::Refused,
                )
                .await;
        }
        Ok(())
    }
}
