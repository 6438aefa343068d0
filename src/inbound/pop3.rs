//! The POP3 watcher: POP3 has no push, so it polls every `pollInterval`. Each round is one
//! session: UIDL to know the mails, RETR through the same pruner and budget as `pop3:read`,
//! a hand-over per mail, and only for accepted mails DELE; QUIT then commits the deletions
//! (RFC 1939 §6), so a session that breaks before QUIT deletes nothing.
//!
//! A failed DELE or QUIT rolls back every deletion of the session, so an accepted mail is
//! remembered by its UIDL until its deletion is confirmed: the next rounds only delete it
//! again, and never hand it over a second time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::watch;

use super::config::{AfterProcessing, Watcher};
use super::handover::{Mail, Place};
use super::ledger::Ledger;
use super::{Context, Handed, after_failed, deliver};
use crate::error::{EmailError, ErrorCode, Result};
use crate::pop3::client::Pop3Client;
use crate::pop3::read::read_number;

/// What the watcher remembers across rounds, by UIDL.
#[derive(Default)]
struct Memory {
    /// Handed over while their mail stays (`afterProcessing: none`), or handed over and given
    /// up on deleting: skipped while this process runs.
    remembered: HashSet<String>,
    /// The gateway rejected them for good: skipped while this process runs.
    rejected: HashSet<String>,
    /// Accepted by Zeebe, deletion not confirmed yet: UIDL → failed attempts.
    pending: HashMap<String, u32>,
    ledger: Ledger,
    /// The watcher's generation `rejected` belongs to (see [`Watcher::generation`]).
    generation: u64,
}

impl Memory {
    /// Counts a failed deletion of each of `uidls`; those tried too often are given up on.
    fn deletion_failed(
        &mut self,
        watcher: &Watcher,
        context: &Context,
        uidls: &[String],
        error: &EmailError,
    ) {
        for uidl in uidls {
            let attempt = self.pending.get(uidl).copied().unwrap_or(0) + 1;
            self.pending.insert(uidl.clone(), attempt);
            if after_failed(watcher, context, &format!("UIDL {uidl}"), attempt, error) {
                self.pending.remove(uidl);
                self.remembered.insert(uidl.clone());
            }
        }
    }
}

/// Runs until `stop` turns true; never returns early on a mail or server error.
pub async fn run(watcher: Arc<Watcher>, context: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let mut memory = Memory::default();
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            r = round(&watcher, &context, &mut memory) => r,
            _ = stop.changed() => return,
        };
        let pause = match result {
            Ok(()) => {
                failures = 0;
                watcher.poll_interval
            }
            Err(error) => super::failed(&watcher, &context, &mut failures, &error, "retrying"),
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn round(watcher: &Watcher, context: &Context, memory: &mut Memory) -> Result<()> {
    let mut client = Pop3Client::connect(
        &context.services,
        &watcher.target.endpoint,
        &watcher.target.authentication,
    )
    .await?;
    let sizes: HashMap<u32, u64> = client.list().await?.into_iter().collect();
    let mut uidls = client.uidl().await?;
    uidls.sort_unstable_by_key(|(number, _)| *number);
    let present: HashSet<String> = uidls.iter().map(|(_, u)| u.clone()).collect();
    // Forget mails that are gone, so the sets stay the size of the maildrop. A pending mail
    // that is gone was deleted after all (a QUIT whose answer was lost) or by someone else.
    memory.remembered.retain(|u| present.contains(u));
    memory.rejected.retain(|u| present.contains(u));
    if memory.generation != watcher.generation() {
        memory.rejected.clear();
        memory.generation = watcher.generation();
    }
    memory.pending.retain(|u, _| present.contains(u));
    context.state.set("watching (polling)");
    // The UIDLs whose DELE this session sent, committed only by its QUIT.
    let mut deleting: Vec<String> = Vec::new();
    for (number, uidl) in &uidls {
        if memory.pending.contains_key(uidl) {
            dele(
                &mut client,
                watcher,
                context,
                memory,
                &mut deleting,
                *number,
                uidl,
            )
            .await?;
        }
    }
    uidls.retain(|(_, u)| {
        !memory.remembered.contains(u)
            && !memory.rejected.contains(u)
            && !memory.pending.contains_key(u)
            && !memory.ledger.is_held(&Place::Pop3 { uidl: u.clone() })
    });
    uidls.truncate(watcher.max_per_poll.unwrap_or(usize::MAX));
    // Without CAMUNDA_REST_ADDRESS the round fails with INVALID_INPUT naming the field, and the
    // watcher backs off as after any failure; the mail stays untouched.
    let documents = if watcher.as_documents {
        Some(context.services.documents("attachmentsAs")?)
    } else {
        None
    };
    for (number, uidl) in uidls {
        context.state.count("seen");
        let size = sizes.get(&number).copied().unwrap_or(0);
        let read = read_number(
            &mut client,
            (number, Some(&uidl)),
            size,
            context.limits,
            documents,
        );
        let response = match read.await {
            Ok(r) => r,
            Err(e) if e.code == ErrorCode::EmailNotFound => continue,
            Err(e) if super::skip_for_good(watcher, context, &e, &format!("UIDL {uidl}")) => {
                memory.rejected.insert(uidl);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mail = Mail {
            response,
            folder: "INBOX".into(),
            place: Place::Pop3 { uidl: uidl.clone() },
        };
        match deliver(watcher, context, &mut memory.ledger, &mail).await {
            Handed::Accepted => {}
            Handed::Refused => break,
            Handed::Skipped => {
                if !memory.ledger.is_held(&mail.place) {
                    memory.rejected.insert(uidl);
                }
                continue;
            }
        }
        if watcher.after == AfterProcessing::None {
            memory.remembered.insert(uidl);
            context.state.count("after_processed");
        } else {
            // Remembered before DELE: from now on only its deletion is tried again.
            memory.pending.insert(uidl.clone(), 0);
            dele(
                &mut client,
                watcher,
                context,
                memory,
                &mut deleting,
                number,
                &uidl,
            )
            .await?;
        }
    }
    // Commits the DELEs of the accepted mails only.
    if let Err(error) = client.quit().await {
        let error = EmailError::from(error);
        memory.deletion_failed(watcher, context, &deleting, &error);
        return Err(error);
    }
    for uidl in deleting {
        memory.pending.remove(&uidl);
        context.state.count("after_processed");
        tracing::debug!(watcher = %watcher.name, mail = %format!("UIDL {uidl}"), "mail after-processed");
    }
    Ok(())
}

/// DELE of the accepted mail `number` (`uidl`). A refusal counts against that mail and the
/// session goes on; a broken session rolls back every DELE it carried, so each counts.
async fn dele(
    client: &mut Pop3Client,
    watcher: &Watcher,
    context: &Context,
    memory: &mut Memory,
    deleting: &mut Vec<String>,
    number: u32,
    uidl: &str,
) -> Result<()> {
    match client.dele(number).await.map_err(EmailError::from) {
        Ok(()) => {
            deleting.push(uidl.to_string());
            Ok(())
        }
        // -ERR: the server refused this one; the session and its other DELEs stand.
        Err(error) if error.code == ErrorCode::EmailNotFound => {
            memory.deletion_failed(watcher, context, &[uidl.to_string()], &error);
            Ok(())
        }
        Err(error) => {
            deleting.push(uidl.to_string());
            memory.deletion_failed(watcher, context, deleting, &error);
            Err(error)
        }
    }
}
