//! Running one command on a session: send it (synchronizing literals waiting for the server's
//! go-ahead), collect the untagged responses up to its tagged completion, and keep the
//! session's state honest: a timeout or protocol error marks it broken, and a command cancelled
//! before its completion leaves it marked in-command, so neither serves another job.

use tokio::io::AsyncReadExt;

use super::{ImapSession, closed, ended};
use crate::imap::error::{ImapError, ImapErrorKind, ReplyStatus, ServerReply};
use crate::imap::guard::Allowance;
use crate::imap::response::{Event, Reply, Untagged};
use crate::imap::wire::Command;

type Result<T> = std::result::Result<T, ImapError>;

/// Bytes asked of the connection at a time.
const READ_SIZE: usize = 64 * 1024;

impl ImapSession {
    pub(super) async fn read(&mut self) -> Result<Event> {
        match tokio::time::timeout(self.timeout, self.next_event()).await {
            Err(_) => {
                self.broken = true;
                Err(ImapError::new(
                    ImapErrorKind::Timeout,
                    format!("no answer within {} s", self.timeout.as_secs()),
                ))
            }
            Ok(Ok(Some(event))) => Ok(event),
            Ok(Ok(None)) => {
                self.broken = true;
                Err(closed())
            }
            Ok(Err(e)) => {
                self.broken = true;
                Err(ImapError::library(e.into(), "reading a response", None))
            }
        }
    }

    /// The next response, read off the guarded stream (see [`crate::imap::frames`]). Cancel
    /// safe: a read cut short loses nothing, so IDLE can give up waiting at any point.
    pub(super) async fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        loop {
            if let Some(event) = self.frames.next_event()? {
                return Ok(Some(event));
            }
            let spare = self.frames.spare(READ_SIZE);
            let read = self.inner.get_mut().read_buf(spare).await?;
            if read == 0 {
                if self.frames.pending() > 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection mid-response",
                    ));
                }
                return Ok(None);
            }
        }
    }

    pub(super) async fn send(&mut self, segment: &str, tagged: bool) -> Result<Option<String>> {
        let sent = if tagged {
            tokio::time::timeout(self.timeout, self.inner.run_command(segment))
                .await
                .map(|r| r.map(|id| Some(id.0)))
        } else {
            tokio::time::timeout(self.timeout, self.inner.run_command_untagged(segment))
                .await
                .map(|r| r.map(|_| None))
        };
        match sent {
            Err(_) => {
                self.broken = true;
                Err(ImapError::new(
                    ImapErrorKind::Timeout,
                    "the server stopped reading",
                ))
            }
            Ok(Err(e)) => {
                self.broken = true;
                Err(ImapError::library(e, "sending a command", None))
            }
            Ok(Ok(id)) => Ok(id),
        }
    }

    /// Runs a command and returns its reply. A NO or BAD completion becomes an error with the
    /// server's text and `on_no` as its kind (a NO to SELECT means a missing folder, say).
    /// The server may send the session's allowance for commands without mail text (see
    /// [`Allowance::control`]).
    pub async fn execute(&mut self, command: &Command, on_no: ImapErrorKind) -> Result<Reply> {
        self.execute_split(command, on_no, on_no).await
    }

    /// Like [`ImapSession::execute`] for a command that fetches mail text: the server may send
    /// `allowance`, and the reply keeps at most `allowance.bytes` of what it sent.
    pub async fn execute_within(
        &mut self,
        command: &Command,
        on_no: ImapErrorKind,
        allowance: Allowance,
    ) -> Result<Reply> {
        self.run_marked(command, on_no, on_no, allowance).await
    }

    /// Like [`ImapSession::execute`] for a command whose data comes in a response async-imap
    /// cannot parse (NAMESPACE, ESEARCH): those responses are taken out of the stream while it
    /// runs and returned beside the reply, each after its `* NAME `.
    pub async fn execute_capturing(
        &mut self,
        command: &Command,
        capture: super::tap::Capture,
        on_no: ImapErrorKind,
        on_bad: ImapErrorKind,
    ) -> (Result<Reply>, Vec<Vec<u8>>) {
        self.inner.get_mut().arm(capture);
        let reply = self.execute_split(command, on_no, on_bad).await;
        (reply, self.inner.get_mut().disarm())
    }

    /// Starts a command's allowance on the connection.
    pub(super) fn allow(&mut self, allowance: Allowance) {
        self.inner.get_mut().inner_mut().allow(allowance);
    }

    /// Like [`ImapSession::execute`], telling the server's trouble (NO: `on_no`) from a command
    /// it can never carry out as given (BAD, or NO [BADCHARSET]: `on_bad`).
    pub async fn execute_split(
        &mut self,
        command: &Command,
        on_no: ImapErrorKind,
        on_bad: ImapErrorKind,
    ) -> Result<Reply> {
        self.run_marked(command, on_no, on_bad, self.control).await
    }

    /// Runs a command with the session marked in-command until its completion.
    async fn run_marked(
        &mut self,
        command: &Command,
        on_no: ImapErrorKind,
        on_bad: ImapErrorKind,
        allowance: Allowance,
    ) -> Result<Reply> {
        self.in_command = true;
        let result = self.run(command, on_no, on_bad, allowance).await;
        // Reached only when the command ran to its end (or marked the session broken); a
        // cancelled command never gets here and leaves the flag set.
        self.in_command = false;
        result
    }

    /// Whether the session may serve another job: not broken, and not left mid-command.
    pub fn reusable(&self) -> bool {
        !self.broken && !self.in_command
    }

    async fn run(
        &mut self,
        command: &Command,
        on_no: ImapErrorKind,
        on_bad: ImapErrorKind,
        allowance: Allowance,
    ) -> Result<Reply> {
        let segments = command.segments(self.has("LITERAL+"));
        self.allow(allowance);
        let mut kept = Kept::new(allowance, command);
        let Some(tag) = self.send(&segments[0], true).await? else {
            return Err(ImapError::new(
                ImapErrorKind::Internal,
                "no tag for a command",
            ));
        };
        let mut data = Vec::new();
        for segment in &segments[1..] {
            // A synchronizing literal: wait for the server's go-ahead.
            loop {
                match self.read().await? {
                    Event::Continue => break,
                    Event::Done {
                        tag: t, refusal, ..
                    } if t == tag => {
                        // An OK before the go-ahead leaves the command half sent: refused too.
                        let reply = refusal.unwrap_or_else(|| ServerReply {
                            status: ReplyStatus::No,
                            code: None,
                            text: String::new(),
                        });
                        return Err(ImapError::refused(
                            &command.redacted(),
                            reply,
                            on_no,
                            on_bad,
                        ));
                    }
                    Event::Done { .. } => {}
                    Event::Untagged(u) => self.keep(&mut kept, &mut data, u)?,
                }
            }
            self.send(segment, false).await?;
        }
        loop {
            match self.read().await? {
                Event::Done {
                    tag: t,
                    refusal,
                    copy_uid,
                } if t == tag => {
                    return match refusal {
                        None => Ok(Reply {
                            data,
                            completion_copy_uid: copy_uid,
                        }),
                        Some(reply) => Err(ImapError::refused(
                            &command.redacted(),
                            reply,
                            on_no,
                            on_bad,
                        )),
                    };
                }
                Event::Untagged(Untagged::Bye(text)) => {
                    self.broken = true;
                    return Err(ended(text));
                }
                Event::Untagged(u) => self.keep(&mut kept, &mut data, u)?,
                Event::Continue | Event::Done { .. } => {}
            }
        }
    }

    /// Adds an untagged response to a command's reply, within what the command may keep.
    fn keep(
        &mut self,
        kept: &mut Kept,
        data: &mut Vec<Untagged>,
        untagged: Untagged,
    ) -> Result<()> {
        if untagged == Untagged::Other {
            // Nothing the operations read: kept, it would only cost memory.
            return Ok(());
        }
        kept.bytes = kept.bytes.saturating_add(untagged.footprint() as u64);
        if kept.bytes > kept.allowance {
            self.broken = true;
            return Err(ImapError::new(
                ImapErrorKind::Protocol,
                format!(
                    "{}: the server's answer takes more than the {} bytes the command can use",
                    kept.command.redacted(),
                    kept.allowance
                ),
            ));
        }
        data.push(untagged);
        Ok(())
    }
}

/// What one command's reply holds so far.
struct Kept<'a> {
    bytes: u64,
    allowance: u64,
    command: &'a Command,
}

impl Kept<'_> {
    fn new(allowance: Allowance, command: &Command) -> Kept<'_> {
        Kept {
            bytes: 0,
            allowance: allowance.bytes,
            command,
        }
    }
}
