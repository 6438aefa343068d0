//! The IMAP watcher: one session per watcher, IDLE (RFC 2177) when the server has it and the
//! watcher wants it, polling otherwise, and a round of hand-overs after each wake-up.
//!
//! A round searches `UNSEEN UNDELETED` (or `UNDELETED`) and takes the lowest UIDs first (the
//! oldest arrivals). Each mail is read with the same code and budget as `imap:read`, handed
//! over, and only then after-processed. A refused hand-over ends the round: that mail stays
//! exactly as it was, and the next round tries it again after `pollInterval`.
//!
//! `maxPerPoll` is a throttle: at most that many mails within any `pollInterval`, in both
//! modes. What waits beyond it waits until the interval allows more; with IDLE, news starts a
//! round at once, but that round takes only what the interval still allows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::config::{AfterProcessing, Watcher};
use super::handover::{Mail, Place};
use super::ledger::Ledger;
use super::{Context, Handed, after, after_failed, deliver};
use crate::error::{ErrorCode, Result};
use crate::imap::error::ImapErrorKind;
use crate::imap::program::search_program;
use crate::imap::read::read_uid;
use crate::imap::session::ImapSession;
use crate::imap::wire::Command;

/// Servers may drop a client idle for 30 minutes (RFC 2177 asks to re-issue IDLE before 29).
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);
/// With IDLE the round still runs at least this often, as a safety net for a missed
/// notification; `pollInterval` when longer.
const IDLE_SAFETY_NET: Duration = Duration::from_secs(60);
/// The longest the session stays silent outside IDLE: a NOOP at least this often.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// How long one IDLE lasts before DONE and a round: the safety net's minute or `pollInterval`
/// when longer, but never as long as the 29 minutes after which RFC 2177 lets a server drop us.
fn idle_for(poll_interval: Duration) -> Duration {
    poll_interval.max(IDLE_SAFETY_NET).min(MAX_IDLE)
}

/// What the watcher remembers of its folder, per UIDVALIDITY (UIDs of another are other mails).
#[derive(Default)]
struct Remembered {
    validity: u32,
    /// Handed over while their mail stays in the search (`afterProcessing: none`, or `markRead`
    /// with `unseenOnly: false`), or handed over and given up on after-processing: skipped
    /// while this process runs.
    uids: HashSet<u32>,
    /// The gateway rejected them for good: skipped while this process runs.
    rejected: HashSet<u32>,
    /// Accepted by Zeebe, after-processing not done yet: UID → failed attempts. Never handed
    /// over again; only their after-processing is tried again.
    pending: HashMap<u32, u32>,
    /// The watcher's generation `rejected` belongs to (see [`Watcher::generation`]): mail no
    /// element took is tried again under new elements.
    generation: u64,
}

/// `maxPerPoll` as a sliding window: when the mails taken within the last `pollInterval`
/// were taken, oldest first (at most `maxPerPoll` of them).
#[derive(Default)]
struct Allowance {
    taken: VecDeque<Instant>,
}

impl Allowance {
    /// How many mails may be taken now.
    fn left(&mut self, watcher: &Watcher) -> usize {
        let Some(max) = watcher.max_per_poll else {
            return usize::MAX;
        };
        while self
            .taken
            .front()
            .is_some_and(|t| t.elapsed() >= watcher.poll_interval)
        {
            self.taken.pop_front();
        }
        max.saturating_sub(self.taken.len())
    }

    /// Notes one mail taken now.
    fn take(&mut self, watcher: &Watcher) {
        if watcher.max_per_poll.is_some() {
            self.taken.push_back(Instant::now());
        }
    }

    /// When the next mail may be taken.
    fn next(&self, watcher: &Watcher) -> Instant {
        self.taken
            .front()
            .map_or_else(Instant::now, |t| *t + watcher.poll_interval)
    }
}

/// What a watcher keeps across sessions.
struct Memory {
    remembered: Remembered,
    ledger: Ledger,
    allowance: Allowance,
}

/// Runs until `stop` turns true; never returns early on a mail or server error.
pub async fn run(watcher: Arc<Watcher>, context: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let mut memory = Memory {
        remembered: Remembered::default(),
        ledger: Ledger::default(),
        allowance: Allowance::default(),
    };
    let mut failures = 0u32;
    while !*stop.borrow() {
        let result = tokio::select! {
            r = session(&watcher, &context, &mut memory, &mut failures) => r,
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
    memory: &mut Memory,
    failures: &mut u32,
) -> Result<()> {
    let Memory {
        remembered,
        ledger,
        allowance,
    } = memory;
    let mut session = ImapSession::connect(
        &context.services,
        &watcher.target.endpoint,
        &watcher.target.authentication,
    )
    .await?;
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
        if allowance.left(watcher) == 0 {
            pause_until(&mut session, allowance.next(watcher)).await?;
            continue;
        }
        let round = round(
            &mut session,
            watcher,
            context,
            remembered,
            ledger,
            allowance,
        )
        .await?;
        if round.refused || !idle {
            pause_until(&mut session, Instant::now() + watcher.poll_interval).await?;
        } else if round.more {
            // The allowance is spent and mail waits: it is taken as the interval allows.
            pause_until(&mut session, allowance.next(watcher)).await?;
        } else {
            session.idle_wait(idle_for(watcher.poll_interval)).await?;
        }
    }
}

/// Waits until `deadline`, with a NOOP at least every [`KEEP_ALIVE`]: a cheap check that the
/// session still lives, which also lets the server report news.
async fn pause_until(session: &mut ImapSession, deadline: Instant) -> Result<()> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        tokio::time::sleep((deadline - now).min(KEEP_ALIVE)).await;
        session.noop().await?;
    }
}

/// What one round did.
struct Round {
    /// The gateway refused a hand-over: the round ended there.
    refused: bool,
    /// More mail waits than the round could take.
    more: bool,
}

async fn round(
    session: &mut ImapSession,
    watcher: &Watcher,
    context: &Context,
    remembered: &mut Remembered,
    ledger: &mut Ledger,
    allowance: &mut Allowance,
) -> Result<Round> {
    let search = round_search(watcher);
    let mut uids = session
        .execute(&search, ImapErrorKind::Refused)
        .await?
        .ids();
    uids.sort_unstable();
    uids.dedup();
    // Forgetting UIDs the search no longer finds keeps the sets the size of the folder; a
    // pending mail that left the search was after-processed by someone else.
    let found: HashSet<u32> = uids.iter().copied().collect();
    remembered.uids.retain(|uid| found.contains(uid));
    remembered.rejected.retain(|uid| found.contains(uid));
    if remembered.generation != watcher.generation() {
        remembered.rejected.clear();
        remembered.generation = watcher.generation();
    }
    remembered.pending.retain(|uid, _| found.contains(uid));
    let mut pending: Vec<u32> = remembered.pending.keys().copied().collect();
    pending.sort_unstable();
    for uid in pending {
        after_process(session, watcher, context, remembered, uid).await?;
    }
    let validity = remembered.validity;
    uids.retain(|uid| {
        !remembered.rejected.contains(uid)
            && !remembered.uids.contains(uid)
            && !remembered.pending.contains_key(uid)
            && !ledger.is_held(&Place::Imap {
                validity,
                uid: *uid,
            })
    });
    let limit = allowance.left(watcher);
    let more = uids.len() > limit;
    uids.truncate(limit);
    let mut done = Round {
        refused: false,
        more,
    };
    // Without CAMUNDA_REST_ADDRESS the round fails with INVALID_INPUT naming the field, and the
    // watcher backs off as after any failure; the mail stays untouched.
    let documents = if watcher.as_documents {
        Some(context.services.documents("attachmentsAs")?)
    } else {
        None
    };
    for uid in uids {
        allowance.take(watcher);
        context.state.count("seen");
        let label = format!("UID {uid}");
        let place = Place::Imap { validity, uid };
        let response =
            match read_uid(session, (uid, validity), context.limits, &label, documents).await {
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
            place,
        };
        match deliver(watcher, context, ledger, &mail).await {
            Handed::Accepted => {}
            Handed::Refused => {
                done.refused = true;
                return Ok(done);
            }
            Handed::Skipped => {
                if !ledger.is_held(&mail.place) {
                    remembered.rejected.insert(uid);
                }
                continue;
            }
        }
        // Remembered before it is touched: whatever happens to the after-processing, this
        // mail is not handed over again while the process runs.
        remembered.pending.insert(uid, 0);
        after_process(session, watcher, context, remembered, uid).await?;
    }
    context.state.set(if session.has("IDLE") && watcher.idle {
        "watching (IDLE)"
    } else {
        "watching (polling)"
    });
    Ok(done)
}

/// The round's search: unseen (or all) undeleted mail, and what the watcher's criteria find,
/// all in one program for the server.
fn round_search(watcher: &Watcher) -> Command {
    let own = if watcher.unseen_only {
        "UNSEEN UNDELETED"
    } else {
        "UNDELETED"
    };
    let Some(criteria) = &watcher.criteria else {
        return Command::new(format!("UID SEARCH {own}"));
    };
    let program = search_program(criteria);
    let head = if program.needs_utf8() {
        "UID SEARCH CHARSET UTF-8"
    } else {
        "UID SEARCH"
    };
    // IMAP ANDs the keys of a program, so the criteria's keys simply follow ours.
    Command::new(format!("{head} {own}")).extend(program)
}

/// After-processes the accepted (pending) mail `uid`. A failure is counted and logged, and the
/// mail stays pending for the next round, up to [`super::AFTER_ATTEMPTS`] tries; the round goes
/// on unless the session itself broke.
async fn after_process(
    session: &mut ImapSession,
    watcher: &Watcher,
    context: &Context,
    remembered: &mut Remembered,
    uid: u32,
) -> Result<()> {
    let result = after::apply(session, &watcher.folder_path, uid, &watcher.after).await;
    let stays = match watcher.after {
        AfterProcessing::None => true,
        AfterProcessing::MarkRead => !watcher.unseen_only,
        _ => false,
    };
    match result {
        Ok(()) => {
            remembered.pending.remove(&uid);
            if stays {
                remembered.uids.insert(uid);
            }
            context.state.count("after_processed");
            tracing::debug!(watcher = %watcher.name, mail = %format!("UID {uid}"), "mail after-processed");
            Ok(())
        }
        Err(error) => {
            let attempt = remembered.pending.get(&uid).copied().unwrap_or(0) + 1;
            remembered.pending.insert(uid, attempt);
            if after_failed(watcher, context, &format!("UID {uid}"), attempt, &error) {
                remembered.pending.remove(&uid);
                remembered.uids.insert(uid);
            }
            if session.reusable() {
                Ok(())
            } else {
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(extra: &str) -> Watcher {
        let yaml = format!(
            "watchers:\n  - name: w\n    authentication: {{ username: u, password: p }}\n    server: {{ host: mail.example.com }}\n    publishMessage: {{ name: m }}\n{extra}"
        );
        crate::inbound::config::parse(
            &yaml,
            &crate::secrets::SecretProvider::new("IMAP_WATCHER_TEST_", None),
            &crate::mail::policy::HostPolicy::default(),
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn criteria_join_the_rounds_own_keys_in_one_server_search() {
        let text = |w: &Watcher| round_search(w).segments(true).concat();
        assert_eq!(text(&watcher("")), "UID SEARCH UNSEEN UNDELETED");
        let filtered = watcher(
            "    unseenOnly: false\n    criteria: { operator: OR, criteria: [ { field: FROM, value: \"boss@\" }, { field: SUBJECT, value: \"Grüße\" } ] }\n",
        );
        assert_eq!(
            text(&filtered),
            "UID SEARCH CHARSET UTF-8 UNDELETED OR FROM \"boss@\" SUBJECT {7+}\r\nGrüße"
        );
        // A criteria tree from a model is read as the search operation reads it.
        let problems = crate::inbound::config::parse(
            "watchers:\n  - name: w\n    authentication: { username: u, password: p }\n    server: { host: h }\n    publishMessage: { name: m }\n    criteria: { field: COLOUR, value: red }\n",
            &crate::secrets::SecretProvider::new("IMAP_WATCHER_TEST_", None),
            &crate::mail::policy::HostPolicy::default(),
        )
        .unwrap_err();
        assert!(problems.contains("watchers[0].criteria"), "{problems}");
    }

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
