//! Inbound: email-triggered processes (docs/inbound.md). Watchers from `EMAIL_INBOUND_CONFIG` watch
//! mailboxes and hand each new mail to Zeebe once, losing none.
//!
//! A mail travels in one direction:
//!
//! 1. [`config`] read the watchers at start (the worker refuses to start on a broken file);
//! 2. [`imap`] (IDLE or polling) or [`pop3`] (polling) finds new mail and reads it with the
//!    very code `imap:read` / `pop3:read` use, under the same attachment limit and budget;
//! 3. [`handover`] publishes a message (key from [`correlation`], message id = Message-ID or
//!    an id of the stored mail, so Zeebe drops a second publish) or creates a process instance;
//!    [`ledger`] keeps a second mail with a Message-ID already published from passing as
//!    handed over;
//! 4. only when Zeebe accepted, [`after`] marks, moves or deletes that one mail; otherwise the
//!    mail stays as it was and the next round tries again. A mail Zeebe accepted is never
//!    handed over again while the process runs: when its after-processing fails, only that is
//!    tried again.
//!
//! Each watcher runs in a task of its own: a watcher's failure (wrong password, server gone)
//! is logged, counted and retried with capped backoff, and touches neither the other watchers
//! nor the job types.

pub mod after;
pub mod config;
pub mod correlation;
pub mod handover;
pub mod imap;
pub mod ledger;
pub mod model;
pub mod pop3;
pub mod state;
pub mod watcher;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{EmailError, ErrorCode};
use crate::gateway::GatewayClient;
use crate::mail::cut::Limits;
use crate::mail::server::Protocol;
use crate::metrics::Metrics;
use crate::services::Services;
pub use config::Watcher;
use config::{HandOver, MessageIdFrom};
use handover::{Mail, Verdict, hand_over};
use ledger::Ledger;
pub use state::InboundStatus;

/// What one watcher's task uses besides its configuration.
pub struct Context {
    pub gateway: GatewayClient,
    /// The process's services, the same the job types run with: the host policy, the OAuth2
    /// token caches, the document store, the POP3 farewells shutdown waits for.
    pub services: Arc<Services>,
    /// The read response's limits (`EMAIL_MAX_RESPONSE_BYTES`, attachment size), the same as
    /// `imap:read`'s.
    pub limits: Limits,
    pub state: Arc<state::WatcherState>,
}

/// The pause before the `failures`-th retry: doubling from 1 s, capped at 30 s, and at 5
/// minutes for a refused login (retrying a wrong password fast can lock the account).
pub fn backoff(failures: u32, code: ErrorCode) -> Duration {
    let cap = if code == ErrorCode::AuthenticationFailed {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(30)
    };
    let exponent = failures.saturating_sub(1).min(16);
    let pause = Duration::from_secs(1u64 << exponent).min(cap);
    if code == ErrorCode::AuthenticationFailed {
        pause.max(Duration::from_secs(30))
    } else {
        pause
    }
}

/// Counts a failed round of `watcher`, records it in its state, metrics and log (masked), and
/// returns the pause before the next try; `next` says what that try is ("reconnecting",
/// "retrying"). The IMAP and POP3 watchers fail the same way.
pub fn failed(
    watcher: &Watcher,
    context: &Context,
    failures: &mut u32,
    error: &crate::error::EmailError,
    next: &str,
) -> Duration {
    *failures = failures.saturating_add(1);
    let pause = backoff(*failures, error.code).max(error.retry_after.unwrap_or_default());
    context.state.error(error.code.as_str());
    context.state.set(format!(
        "{next} in {} s after {}",
        pause.as_secs(),
        error.code.as_str()
    ));
    tracing::warn!(
        watcher = %watcher.name,
        "{}: {} (next try in {} s)",
        error.code.as_str(),
        watcher.mask.apply(&error.message),
        pause.as_secs()
    );
    pause
}

/// Whether reading one mail failed for a reason of that mail alone that no later try changes
/// (the document store refused one of its attachments for good): the mail is then skipped as
/// one the gateway rejects.
pub fn skip_for_good(
    watcher: &Watcher,
    context: &Context,
    error: &crate::error::EmailError,
    mail: &str,
) -> bool {
    if error.code != crate::error::ErrorCode::MessageRejected {
        return false;
    }
    skip(
        watcher,
        context,
        error.code.as_str(),
        mail,
        &format!("this mail cannot be read as configured: {}", error.message),
    );
    true
}

/// Leaves one mail as it was and has the caller skip it while this process runs (the gateway
/// rejected it, or it cannot be read as configured), so it never holds up the mail behind it;
/// the caller remembers it. Counted under `code` and logged as an error (masked) naming `mail`.
pub fn skip(watcher: &Watcher, context: &Context, code: &str, mail: &str, why: &str) {
    context.state.error(code);
    tracing::error!(
        watcher = %watcher.name,
        mail,
        "{}; it stays as it was and is skipped while this process runs",
        watcher.mask.apply(why)
    );
}

/// How many times a failed after-processing (a `moveTo` folder that cannot be created, a
/// delete the server cannot do safely, a POP3 deletion rolled back) is tried again, once per
/// round, before the watcher gives up on it and leaves the mail as it is.
pub const AFTER_ATTEMPTS: u32 = 5;

/// What became of one hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    /// Zeebe has the mail: after-process it.
    Accepted,
    /// The gateway is away or refused for now: leave the mail, end the round.
    Refused,
    /// Zeebe will never take it as it is, or it is held back (see [`ledger`]): leave it and
    /// go on with the next mail.
    Skipped,
}

/// Hands `mail` to Zeebe and counts, logs and notes in `ledger` what came of it.
pub async fn deliver(
    watcher: &Watcher,
    context: &Context,
    ledger: &mut Ledger,
    mail: &Mail,
) -> Handed {
    let id = mail.message_id(watcher);
    let place = &mail.place;
    let content = mail.content_digest();
    // Only ids a sender chooses can collide with another mail's.
    let guarded = match &watcher.hand_over {
        HandOver::Publish { time_to_live, .. }
            if watcher.message_id_from == MessageIdFrom::Header =>
        {
            Some(*time_to_live)
        }
        _ => None,
    };
    let verdict = match &watcher.hand_over {
        HandOver::Model(elements) => {
            model::deliver::hand_over(&context.gateway, watcher, mail, elements, ledger).await
        }
        _ => hand_over(&context.gateway, watcher, mail).await,
    };
    match verdict {
        Verdict::Accepted { duplicate } => {
            if duplicate
                && guarded.is_some()
                && let Some(until) = ledger.collision(&id, place, &content)
            {
                context.state.error("DUPLICATE_MESSAGE_ID");
                tracing::warn!(
                    watcher = %watcher.name,
                    mail = %place,
                    message_id = %id,
                    "this watcher published a message with this id for another mail (other \
                     content), so Zeebe's ALREADY_EXISTS does not mean it has this one: the mail \
                     stays as it was and is handed over once Zeebe lets the first message go (in \
                     {} s)",
                    until.saturating_duration_since(std::time::Instant::now()).as_secs()
                );
                return Handed::Skipped;
            }
            if let (false, Some(ttl)) = (duplicate, guarded) {
                ledger.record(&id, place, &content, ttl);
            }
            context.state.count(if duplicate {
                "duplicate"
            } else {
                "handed_over"
            });
            tracing::info!(
                watcher = %watcher.name,
                mail = %place,
                message_id = %id,
                duplicate,
                "mail handed over"
            );
            Handed::Accepted
        }
        Verdict::Consumed => {
            context.state.count("consumed_unmatched");
            tracing::info!(
                watcher = %watcher.name,
                mail = %place,
                "no element's activation condition holds for the mail; consumed, as an element \
                 says consumeUnmatchedEvents"
            );
            Handed::Accepted
        }
        Verdict::Unmatched => {
            context.state.count("unmatched");
            tracing::info!(
                watcher = %watcher.name,
                mail = %place,
                "no element's activation condition holds for the mail; it stays as it was and \
                 is tried again when the deployed elements change"
            );
            Handed::Skipped
        }
        Verdict::Held => {
            context.state.error("DUPLICATE_MESSAGE_ID");
            tracing::warn!(
                watcher = %watcher.name,
                mail = %place,
                "this watcher published a message with this name and id for another mail, so \
                 Zeebe's ALREADY_EXISTS does not mean it has this one: the mail stays as it was \
                 and is handed over once Zeebe lets the first message go"
            );
            Handed::Skipped
        }
        Verdict::Refused(reason) => {
            context.state.error("GATEWAY_REFUSED");
            context
                .state
                .set(format!("gateway refused a hand-over: {reason}"));
            tracing::warn!(
                watcher = %watcher.name,
                mail = %place,
                "the gateway did not accept the mail; it stays as it was and is tried again: {reason}"
            );
            Handed::Refused
        }
        Verdict::Rejected(reason) => {
            skip(
                watcher,
                context,
                "GATEWAY_REJECTED",
                &format!(
                    "{place}, Message-ID {}",
                    mail.header_id().unwrap_or("(none)")
                ),
                &format!("the gateway rejected this mail: {reason}"),
            );
            Handed::Skipped
        }
    }
}

/// Counts and logs a failed after-processing of the accepted mail at `mail`, its `attempt`-th;
/// returns whether to give up on it (then it stays as it is, and is skipped while the process
/// runs: it was handed over).
pub fn after_failed(
    watcher: &Watcher,
    context: &Context,
    mail: &str,
    attempt: u32,
    error: &EmailError,
) -> bool {
    context.state.error("AFTER_PROCESSING_FAILED");
    let give_up = attempt >= AFTER_ATTEMPTS;
    let what = watcher.mask.apply(&error.to_string());
    if give_up {
        tracing::error!(
            watcher = %watcher.name,
            mail,
            "after-processing failed {attempt} times, giving up: {what}; the mail was handed \
             over and stays as it is, skipped while this process runs"
        );
    } else {
        tracing::warn!(
            watcher = %watcher.name,
            mail,
            "after-processing failed (attempt {attempt} of {AFTER_ATTEMPTS}): {what}; the mail \
             was handed over and is not handed over again, only its after-processing is tried \
             again next round"
        );
    }
    give_up
}

/// Starts one task per watcher, under `services`; they stop when `stop` turns true.
pub fn start(
    watchers: Vec<Watcher>,
    gateway: &GatewayClient,
    services: &Arc<Services>,
    limits: Limits,
    metrics: &Metrics,
    stop: &watch::Receiver<bool>,
) -> (InboundStatus, Vec<JoinHandle<()>>) {
    let status = InboundStatus::default();
    let mut tasks = Vec::new();
    for watcher in watchers {
        let state = state::WatcherState::new(&watcher.name, metrics);
        status.add(state.clone());
        let context = Arc::new(Context {
            gateway: gateway.clone(),
            services: services.clone(),
            limits,
            state,
        });
        let watcher = Arc::new(watcher);
        tracing::info!(watcher = %watcher.name, protocol = watcher.protocol.name(), "starting watcher");
        let stop = stop.clone();
        tasks.push(match watcher.protocol {
            Protocol::Pop3 => tokio::spawn(pop3::run(watcher, context, stop)),
            _ => tokio::spawn(imap::run(watcher, context, stop)),
        });
    }
    (status, tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_slow_for_refused_logins() {
        assert_eq!(
            backoff(1, ErrorCode::ConnectionFailed),
            Duration::from_secs(1)
        );
        assert_eq!(
            backoff(3, ErrorCode::ConnectionFailed),
            Duration::from_secs(4)
        );
        assert_eq!(
            backoff(40, ErrorCode::ConnectionFailed),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(1, ErrorCode::AuthenticationFailed),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(40, ErrorCode::AuthenticationFailed),
            Duration::from_secs(300)
        );
    }
}
