//! The last words of a POP3 session that ends without its own QUIT: a job handed back at
//! shutdown, an operation cancelled by its timeout, an error half-way.
//!
//! RFC 1939 commits DELE marks only when QUIT enters the UPDATE state, so a connection that is
//! simply dropped deletes nothing on a conforming server. We do not rely on that alone: the
//! session's socket is handed to a short background task that sends `RSET` (every mark undone)
//! and only then `QUIT` (the maildrop lock released at once rather than when the server notices
//! the dead connection), and reads until the server closes. Both go out in one write, so a
//! server that processes commands in order can never see the QUIT without the RSET before it.
//!
//! The task is bounded by [`FAREWELL_TIME`] whatever the server does (a stalled server, a RETR
//! still streaming megabytes we discard through a small buffer), and the worker waits for the
//! pending farewells at shutdown ([`Farewells::settle`]) so a handed-back job's session is
//! rolled back before the process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

use crate::mail::net::MailStream;

/// The most a farewell may take: it runs after the job is over, at shutdown inside the pod's
/// termination grace, so it is kept short whatever the session's own timeout.
pub const FAREWELL_TIME: Duration = Duration::from_secs(2);

/// The farewells under way in one process: every POP3 client holds the tracker of the
/// services it was opened with (`crate::services::Services`), and the registry's shutdown
/// hook waits on the same one.
#[derive(Debug, Default)]
pub struct Farewells {
    pending: AtomicUsize,
    settled: Notify,
}

/// Counts a farewell as pending until it is dropped, however its task ends.
struct Pending(Arc<Farewells>);

impl Pending {
    fn new(farewells: &Arc<Farewells>) -> Pending {
        farewells.pending.fetch_add(1, Ordering::SeqCst);
        Pending(farewells.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl Farewells {
    /// Sends `RSET` and `QUIT` on `reader`'s connection in the background. Without a runtime
    /// (a client dropped outside tokio) the connection is only closed, which still commits
    /// nothing.
    pub(super) fn send(self: &Arc<Self>, reader: BufReader<MailStream>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pending = Pending::new(self);
        runtime.spawn(async move {
            let _pending = pending;
            let _ = tokio::time::timeout(FAREWELL_TIME, say_goodbye(reader)).await;
        });
    }

    /// The number of farewells still under way.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Waits until no farewell is under way, at most `within`.
    pub async fn settle(&self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            loop {
                let settled = self.settled.notified();
                if self.pending() == 0 {
                    return;
                }
                settled.await;
            }
        })
        .await;
    }
}

async fn say_goodbye(mut reader: BufReader<MailStream>) -> std::io::Result<()> {
    let stream = reader.get_mut();
    stream.write_all(b"RSET\r\nQUIT\r\n").await?;
    stream.flush().await?;
    // Whatever the server still owes (the rest of a RETR, the two replies) is read and
    // dropped until it closes the connection after QUIT.
    let mut sink = [0u8; 8192];
    while reader.read(&mut sink).await? > 0 {}
    Ok(())
}
