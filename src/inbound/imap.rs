//! The IMAP watcher: one session per watcher, IDLE (RFC 2177) when the server has it and the
//! watcher wants it, polling otherwise, and a round of hand-overs after each wake-up.
//!
//! A round searches `UNSEEN UNDELETED` (or `UNDELETED`) and takes the lowest UIDs first (the
//! oldest arrivals), at most `maxPerPoll`. Each mail is read with the same code and budget as
//! `imap:read`, handed over, and only then after-processed. A refused hand-over ends the round:
//! that mail stays exactly as it was, and the next round tries it again after `pollInterval`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Context;
use super::after;
use super::config::{AfterProcessing, Watcher};
use super::handover::{Mail, Verdict, hand_over};
use crate::error::{EmailError, ErrorCode, Result};
use crate::imap::read::read_uid;
use crate::imap::session::ImapSession;
use crate::imap::wire::Command;

/// Servers may drop a client idle for 30 minutes (RFC 2177 asks to re-issue IDLE before 29).
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);
/// With IDLE the round still runs at least this often, as a safety net for a missed
/// notification; `pollInterval` when longer.
const IDLE_SAFETY_NET: Duration = Duration::from_secs(60);

/// How long one IDLE lasts before DONE and a round: the safety net's minute or `pollInterval`
/// when longer, but never as long as the 29 minutes after which RFC 2177 lets a server drop us.
fn idle_for(poll_interval: Duration) -> Duration {
    poll_interval.max(IDLE_SAFETY_NET).min(MAX_IDLE)
}

/// UIDs handed over while their mail stays in the search (`afterProcessing: none`, or
/// `markRead` with `unseenOnly: false`), and UIDs
/// the gateway rejected for good, per UIDVALIDITY, so such a mail is not handed over on every
/// round while this process runs.
#[derive(Default)]
struct Remembered {
    validity: u32,
    uids: HashSet<u32>,
    rejected: HashSet<u32>,
}

/// Runs until `stop` turns true; never returns early on a mail or server error.
pub async fn run(watcher: Arc<Watcher>, context: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let mut remembered = Remembered::default();
    let mut failures = 0u32;
    while !*stop.borrow() {
        let result = tokio::select! {
            r = session(&watcher, &context, &mut remembered, &mut failures) => r,
            _ = stop.changed() => return,
        };
        if let Err(error) = result {
            let pause = super::failed(&watcher, &context, &mut failures, &error, "reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// One connection: rounds and waits until an error ends it.
async fn session(
    watcher: &Watcher,
    context: &Context,
    remembered: &mut Remembered,
    failures: &mut u32,
) -> Result<()> {
    let mut session =
        ImapSession::connect(&watcher.target.endpoint, &watcher.target.authentication).await?;
    let (validity, _) = session.open(&watcher.folder_path, true).await?;
    if remembered.validity != validity {
        *remembered = Remembered {
            validity,
            ..Remembered::default()
        };
    }
    let idle = watcher.idle && session.has("IDLE");
    *failures = 0;
    context.state.set(if idle {
        "watching (IDLE)"
    } else {
        "watching (polling)"
    });
    tracing::info!(watcher = %watcher.name, folder = %watcher.folder, idle, "watching");
    loop {
        let (handed, refused, full) =
            round(&mut session, watcher, context, remembered, validity).await?;
        if full && !refused {
            // More mail may wait beyond maxPerPoll: go on at once.
            continue;
        }
        let _ = handed;
        if idle && !refused {
            session.idle_wait(idle_for(watcher.poll_interval)).await?;
        } else {
            tokio::time::sleep(watcher.poll_interval).await;
            // A cheap check that the session still lives, and lets the server report news.
            session.noop().await?;
        }
    }
}

/// One round: returns (mails handed over, whether a hand-over was refused, whether the round
/// took as many as it could and more may wait).
async fn round(
    session: &mut ImapSession,
    watcher: &Watcher,
    context: &Context,
    remembered: &mut Remembered,
    validity: u32,
) -> Result<(usize, bool, bool)> {
    let search = Command::new(if watcher.unseen_only {
        "UID SEARCH UNSEEN UNDELETED"
    } else {
        "UID SEARCH UNDELETED"
    });
    let mut uids = session
        .execute(&search, ErrorCode::ConnectionFailed)
        .await?
        .ids();
    uids.sort_unstable();
    uids.dedup();
    // Mails that stay where the search finds them again are remembered: `none` always, and
    // `markRead` when read mail is searched too. Forgetting UIDs the search no longer finds
    // keeps the sets the size of the folder.
    let remember = match watcher.after {
        AfterProcessing::None => true,
        AfterProcessing::MarkRead => !watcher.unseen_only,
        _ => false,
    };
    let found: HashSet<u32> = uids.iter().copied().collect();
    remembered.uids.retain(|uid| found.contains(uid));
    remembered.rejected.retain(|uid| found.contains(uid));
    uids.retain(|uid| !remembered.rejected.contains(uid) && !remembered.uids.contains(uid));
    let limit = watcher.max_per_poll.unwrap_or(usize::MAX);
    let full = uids.len() > limit;
    uids.truncate(limit);
    let mut handed = 0;
    // Without CAMUNDA_REST_ADDRESS the round fails with INVALID_INPUT naming the field, and the
    // watcher backs off as after any failure; the mail stays untouched.
    let store = if watcher.as_documents {
        Some(crate::documents::store("attachmentsAs")?)
    } else {
        None
    };
    for uid in uids {
        context.state.count("seen");
        let label = format!("UID {uid}");
        let response = match read_uid(session, uid, context.limits, &label, store).await {
            Ok(r) => r,
            // Expunged by another client between SEARCH and FETCH: nothing to hand over.
            Err(e) if e.code == ErrorCode::EmailNotFound => continue,
            Err(e) if super::skip_for_good(watcher, context, &e, &label) => {
                remembered.rejected.insert(uid);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mail = Mail {
            response,
            folder: watcher.folder.clone(),
            fallback_id: format!("{}/{validity}/{uid}", watcher.name),
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
                    uid,
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
                    uid,
                    "the gateway did not accept the mail; it stays as it was and is tried again: {reason}"
                );
                return Ok((handed, true, full));
            }
            Verdict::Rejected(reason) => {
                super::skip(
                    watcher,
                    context,
                    "GATEWAY_REJECTED",
                    &format!("{label}, Message-ID {}", mail.message_id()),
                    &format!("the gateway rejected this mail: {reason}"),
                );
                remembered.rejected.insert(uid);
                continue;
            }
        }
        handed += 1;
        if remember {
            remembered.uids.insert(uid);
        }
        after::apply(session, &watcher.folder_path, uid, &watcher.after)
            .await
            .map_err(|e| {
                EmailError::new(
                    e.code,
                    format!(
                        "after-processing UID {uid} (handed over already): {}",
                        e.message
                    ),
                )
            })?;
        context.state.count("after_processed");
    }
    context.state.set(if session.has("IDLE") && watcher.idle {
        "watching (IDLE)"
    } else {
        "watching (polling)"
    });
    Ok((handed, false, full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_reissued_before_29_minutes_whatever_the_poll_interval() {
        let minute = Duration::from_secs(60);
        assert_eq!(idle_for(Duration::from_secs(5)), minute);
        assert_eq!(idle_for(10 * minute), 10 * minute);
        for long in [29 * minute, 30 * minute, 24 * 60 * minute, Duration::MAX] {
            assert!(idle_for(long) < 29 * minute, "{long:?}");
        }
    }
}
