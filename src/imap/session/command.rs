//! Running one command on a session: send it (synchronizing literals waiting for the server's
//! go-ahead), collect the untagged responses up to its tagged completion, and keep the
//! session's state honest: a timeout or protocol error marks it broken, and a command cancelled
//! before its completion leaves it marked in-command, so neither serves another job.

use super::ImapSession;
use crate::error::{EmailError, ErrorCode, Result};
use crate::imap::response::{Event, Reply, Untagged, event};
use crate::imap::session::classify;
use crate::imap::wire::Command;

impl ImapSession {
    pub(super) async fn read(&mut self) -> Result<Event> {
        match tokio::time::timeout(self.timeout, self.inner.read_response()).await {
            Err(_) => {
                self.broken = true;
                Err(EmailError::new(
                    ErrorCode::Timeout,
                    format!("no answer within {} s", self.timeout.as_secs()),
                ))
            }
            Ok(Ok(Some(response))) => Ok(event(response.parsed())),
            Ok(Ok(None)) => {
                self.broken = true;
                Err(EmailError::new(
                    ErrorCode::ConnectionFailed,
                    "the server closed the connection",
                ))
            }
            Ok(Err(e)) => {
                self.broken = true;
                Err(classify(
                    async_imap::error::Error::Io(e),
                    "reading a response",
                ))
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
                Err(EmailError::new(
                    ErrorCode::Timeout,
                    "the server stopped reading",
                ))
            }
            Ok(Err(e)) => {
                self.broken = true;
                Err(classify(e, "sending a command"))
            }
            Ok(Ok(id)) => Ok(id),
        }
    }

    /// Runs a command and returns its reply. A NO or BAD completion becomes an error with the
    /// server's text and `on_no` as its code (a NO to SELECT means a missing folder, say).
    pub async fn execute(&mut self, command: &Command, on_no: ErrorCode) -> Result<Reply> {
        self.execute_split(command, on_no, on_no).await
    }

    /// Like [`ImapSession::execute`], telling the server's trouble (NO: `on_no`) from a command
    /// it can never carry out as given (BAD, or NO [BADCHARSET]: `on_bad`).
    pub async fn execute_split(
        &mut self,
        command: &Command,
        on_no: ErrorCode,
        on_bad: ErrorCode,
    ) -> Result<Reply> {
        self.in_command = true;
        let result = self.run(command, on_no, on_bad).await;
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
        on_no: ErrorCode,
        on_bad: ErrorCode,
    ) -> Result<Reply> {
        let segments = command.segments(self.has("LITERAL+"));
        let Some(tag) = self.send(&segments[0], true).await? else {
            return Err(EmailError::internal("no tag for a command"));
        };
        let mut data = Vec::new();
        for segment in &segments[1..] {
            // A synchronizing literal: wait for the server's go-ahead.
            loop {
                match self.read().await? {
                    Event::Continue => break,
                    Event::Done {
                        tag: t,
                        text,
                        malformed,
                        ..
                    } if t == tag => {
                        return Err(EmailError::new(
                            if malformed { on_bad } else { on_no },
                            format!("{} refused: {text}", command.redacted()),
                        ));
                    }
                    Event::Done { .. } => {}
                    Event::Untagged(u) => data.push(u),
                }
            }
            self.send(segment, false).await?;
        }
        loop {
            match self.read().await? {
                Event::Done {
                    tag: t,
                    ok,
                    malformed,
                    text,
                    copy_uid,
                } if t == tag => {
                    if ok {
                        return Ok(Reply {
                            data,
                            completion_copy_uid: copy_uid,
                        });
                    }
                    return Err(EmailError::new(
                        if malformed { on_bad } else { on_no },
                        format!("{} refused: {text}", command.redacted()),
                    ));
                }
                Event::Untagged(Untagged::Bye(text)) => {
                    self.broken = true;
                    return Err(EmailError::new(
                        ErrorCode::ConnectionFailed,
                        format!("the server ended the session: {text}"),
                    ));
                }
                Event::Untagged(u) => data.push(u),
                Event::Continue | Event::Done { .. } => {}
            }
        }
    }
}
