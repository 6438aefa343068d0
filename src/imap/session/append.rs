//! APPEND: a message stored as given, byte for byte. Its bytes need not be UTF-8 (an 8-bit
//! mail in Latin-1), so they go on the connection as they are, after the server's go-ahead
//! for the literal, rather than through a text command.

use tokio::io::AsyncWriteExt;

use super::{ImapSession, ended};
use crate::imap::error::{ImapError, ImapErrorKind, ReplyStatus, ServerReply};
use crate::imap::response::{Event, Untagged};
use crate::imap::wire::Command;
use crate::smtp::data::Outgoing;
use crate::smtp::error::SmtpError;

/// What an APPEND stores.
#[derive(Clone, Copy)]
pub enum Literal<'a> {
    /// Bytes in hand.
    Bytes(&'a [u8]),
    /// A message as it was sent, written from its pieces (attachments encoded on the way), so
    /// a saved copy needs no buffer of the whole message; `len` is what it writes.
    Sent { message: &'a Outgoing, len: u64 },
}

impl<'a> Literal<'a> {
    /// A sent message, its length counted first (the literal's length goes before it).
    pub async fn sent(message: &'a Outgoing) -> Result<Literal<'a>, SmtpError> {
        let len = message.stored_len().await?;
        Ok(Literal::Sent { message, len })
    }

    /// The literal's length in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Literal::Bytes(bytes) => bytes.len() as u64,
            Literal::Sent { len, .. } => *len,
        }
    }

    /// The start of the message, its header among it.
    pub fn head(&self) -> &'a [u8] {
        match self {
            Literal::Bytes(bytes) => bytes,
            Literal::Sent { message, .. } => message.head(),
        }
    }
}

impl ImapSession {
    /// Appends `message` to `mailbox` (the server's name) with `flags` (an IMAP flag list such
    /// as `(\Seen)`, or empty). Returns the new UID when the server says it (APPENDUID,
    /// RFC 4315). A NO is `on_no`: a missing folder or a refused message.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &str,
        message: Literal<'_>,
        on_no: ImapErrorKind,
    ) -> Result<Option<u32>, ImapError> {
        let mut command = Command::new("APPEND").mailbox(mailbox);
        if !flags.is_empty() {
            command = command.raw(flags.to_string());
        }
        let command = command.raw(format!("{{{}}}", message.size()));
        let segments = command.segments(false);
        let [line] = segments.as_slice() else {
            return Err(ImapError::new(
                ImapErrorKind::Internal,
                "APPEND: the folder name did not fit a quoted string",
            ));
        };
        self.in_command = true;
        self.allow(self.control);
        let Some(tag) = self.send(line, true).await? else {
            return Err(ImapError::new(ImapErrorKind::Internal, "no tag for APPEND"));
        };
        let refused = |reply: Option<ServerReply>| {
            ImapError::refused(
                &command.redacted(),
                reply.unwrap_or(ServerReply {
                    status: ReplyStatus::No,
                    code: None,
                    text: String::new(),
                }),
                on_no,
                ImapErrorKind::Input,
            )
        };
        loop {
            match self.read().await? {
                Event::Continue => break,
                Event::Done {
                    tag: t, refusal, ..
                } if t == tag => {
                    self.in_command = false;
                    return Err(refused(refusal));
                }
                Event::Untagged(Untagged::Bye(text)) => {
                    self.broken = true;
                    return Err(ended(text));
                }
                _ => {}
            }
        }
        let timeout = self.timeout;
        let stream = self.inner.get_mut();
        let written = tokio::time::timeout(timeout, async {
            match message {
                Literal::Bytes(bytes) => {
                    stream.write_all(bytes).await.map_err(|e| e.to_string())?
                }
                Literal::Sent { message, len } => {
                    let wrote = message
                        .write_stored_to(stream)
                        .await
                        .map_err(|e| e.to_string())?;
                    // A literal of another length than announced puts the server out of step.
                    if wrote != len {
                        return Err(format!("{wrote} bytes written of the {len} announced"));
                    }
                }
            }
            stream.write_all(b"\r\n").await.map_err(|e| e.to_string())?;
            stream.flush().await.map_err(|e| e.to_string())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.broken = true;
                return Err(ImapError::new(
                    ImapErrorKind::Connection,
                    format!("APPEND: the message could not be sent: {e}"),
                ));
            }
            Err(_) => {
                self.broken = true;
                return Err(ImapError::new(
                    ImapErrorKind::Timeout,
                    "APPEND: the server stopped reading the message",
                ));
            }
        }
        loop {
            match self.read().await? {
                Event::Done {
                    tag: t,
                    refusal,
                    copy_uid,
                } if t == tag => {
                    self.in_command = false;
                    return match refusal {
                        None => Ok(copy_uid),
                        reply => Err(refused(reply)),
                    };
                }
                Event::Untagged(Untagged::Bye(text)) => {
                    self.broken = true;
                    return Err(ended(text));
                }
                _ => {}
            }
        }
    }
}
