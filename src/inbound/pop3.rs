//! The POP3 watcher: POP3 has no push, so it polls every `pollInterval`. Each round is one
//! session: UIDL to know the mails, RETR through the same pruner and budget as `pop3:read`,
//! a hand-over per mail, and only for accepted mails DELE; QUIT then commits the deletions
//! (RFC 1939 §6), so a session that breaks before QUIT deletes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::watch;

use super::Context;
use super::config::{AfterProcessing, Watcher};
use super::handover::{Mail, Verdict, hand_over};
use crate::error::{ErrorCode, Result};
use crate::pop3::client::Pop3Client;
use crate::pop3::read::read_number;

/// Runs until `stop` turns true; never returns early on a mail or server error.
pub async fn run(watcher: Arc<Watcher>, context: Arc<Context>, mut stop: watch::Receiver<bool>) {
    // UIDLs handed over while their mail stays (`afterProcessing: none`), and those the
    // gateway rejected for good (skipped while this process runs).
    let mut remembered: HashSet<String> = HashSet::new();
    let mut rejected: HashSet<String> = HashSet::new();
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            r = round(&watcher, &context, &mut remembered, &mut rejected) => r,
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

async fn round(
    watcher: &Watcher,
    context: &Context,
    remembered: &mut HashSet<String>,
    rejected: &mut HashSet<String>,
) -> Result<()> {
    let mut client =
        Pop3Client::connect(&watcher.target.endpoint, &watcher.target.authentication).await?;
    let sizes: std::collections::HashMap<u32, u64> = client.list().await?.into_iter().collect();
    let mut uidls = client.uidl().await?;
    uidls.sort_unstable_by_key(|(number, _)| *number);
    let remember = watcher.after == AfterProcessing::None;
    let present: HashSet<String> = uidls.iter().map(|(_, u)| u.clone()).collect();
    // Forget mails that are gone, so the sets stay the size of the maildrop.
    remembered.retain(|u| present.contains(u));
    rejected.retain(|u| present.contains(u));
    uidls.retain(|(_, u)| !remembered.contains(u) && !rejected.contains(u));
    uidls.truncate(watcher.max_per_poll.unwrap_or(usize::MAX));
    context.state.set("watching (polling)");
    let mut marked = 0usize;
    // Without CAMUNDA_REST_ADDRESS the round fails with INVALID_INPUT naming the field, and the
    // watcher backs off as after any failure; the mail stays untouched.
    let store = if watcher.as_documents {
        Some(crate::documents::store("attachmentsAs")?)
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
            store,
        );
        let response = match read.await {
            Ok(r) => r,
            Err(e) if e.code == ErrorCode::EmailNotFound => continue,
            Err(e) if super::skip_for_good(watcher, context, &e, &format!("UIDL {uidl}")) => {
                rejected.insert(uidl);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mail = Mail {
            response,
            folder: "INBOX".into(),
            fallback_id: format!("{}/{uidl}", watcher.name),
        };
        match hand_over(&context.gateway, watcher, &mail).await {
            Verdict::Accepted { duplicate } => {
                context.state.count(if duplicate {
                    "duplicate"
                } else {
                    "handed_over"
                });
                tracing::info!(
                    watcher = %watcher.name,
                    uidl = %uidl,
                    message_id = %mail.message_id(),
                    duplicate,
                    "mail handed over"
                );
            }
            Verdict::Refused(reason) => {
                context.state.error("GATEWAY_REFUSED");
                context
                    .state
                    .set(format!("gateway refused a hand-over: {reason}"));
                tracing::warn!(
                    watcher = %watcher.name,
                    uidl = %uidl,
                    "the gateway did not accept the mail; it stays and is tried again: {reason}"
                );
                break;
            }
            Verdict::Rejected(reason) => {
                super::skip(
                    watcher,
                    context,
                    "GATEWAY_REJECTED",
                    &format!("UIDL {uidl}, Message-ID {}", mail.message_id()),
                    &format!("the gateway rejected this mail: {reason}"),
                );
                rejected.insert(uidl);
                continue;
            }
        }
        if remember {
            remembered.insert(uidl);
            context.state.count("after_processed");
        } else {
            client.dele(number).await?;
            marked += 1;
        }
    }
    // Commits the DELEs of the accepted mails only.
    client.quit().await?;
    for _ in 0..marked {
        context.state.count("after_processed");
    }
    Ok(())
}
