//! Which stored mail each message id this watcher published belongs to, while Zeebe keeps
//! the message (its `timeToLive`).
//!
//! With `messageIdFrom: header` the message id is the sender's Message-ID, and Zeebe answers
//! `ALREADY_EXISTS` to a second publish with the same id, which the watcher takes as "Zeebe has
//! this mail" (a retry, or another replica). A second mail that reuses the Message-ID of one
//! published before would be taken as handed over and then marked, moved or deleted without
//! ever reaching Zeebe. When this process published that id itself, for another mail with
//! other content (a second copy of the same message, delivered twice, is the same message), the
//! ledger says so: the second mail is left as it is, held back until the first message has
//! left Zeebe's buffer, and then handed over. Zeebe removes expired messages on a schedule of
//! its own, so an id is remembered for a while past its `timeToLive`, and a mail that still
//! meets `ALREADY_EXISTS` then is held back again. Another replica's publishes are not known
//! here (README "Email-triggered processes" says what `messageIdFrom: stored` does instead).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::handover::Place;

/// How many published ids are remembered at most (some 300 bytes each, so a few MB at most);
/// a watcher that publishes more within one `timeToLive` and its grace forgets the oldest
/// first (its guard then covers the newest ones). `maxPerPoll` 5 per PT5S, the defaults, is
/// 3,600 an hour.
const CAPACITY: usize = 20_000;
/// How long past its `timeToLive` an id is remembered: Zeebe's broker looks for expired
/// messages once a minute, so one may still be there for a while.
const GRACE: Duration = Duration::from_secs(10 * 60);
/// How long a mail is held back again when its id still meets `ALREADY_EXISTS` after the
/// first message's `timeToLive`.
const RETRY: Duration = Duration::from_secs(30);

pub struct Ledger {
    /// Message id → the mail it was published for, a digest of its content, and until when
    /// Zeebe keeps it.
    published: HashMap<String, (Place, String, Instant)>,
    /// Ids in the order published, with when they are forgotten.
    order: VecDeque<(Instant, String)>,
    /// Mails held back, each until it is tried again.
    held: HashMap<Place, Instant>,
    grace: Duration,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::with_grace(GRACE)
    }
}

impl Ledger {
    fn with_grace(grace: Duration) -> Ledger {
        Ledger {
            published: HashMap::new(),
            order: VecDeque::new(),
            held: HashMap::new(),
            grace,
        }
    }

    /// Notes that `id` was published for the mail at `place` (whose content digests to
    /// `content`), kept by Zeebe for `ttl`.
    pub fn record(&mut self, id: &str, place: &Place, content: &str, ttl: Duration) {
        let now = Instant::now();
        self.forget(now);
        let until = now.checked_add(ttl).unwrap_or(now);
        self.published
            .insert(id.to_string(), (place.clone(), content.to_string(), until));
        let forget_at = until.checked_add(self.grace).unwrap_or(until);
        self.order.push_back((forget_at, id.to_string()));
        while self.order.len() > CAPACITY {
            if let Some((_, oldest)) = self.order.pop_front() {
                self.published.remove(&oldest);
            }
        }
    }

    /// When `id` was published by this watcher for another mail than the one at `place`, with
    /// other content: until when the mail at `place` is held back (until Zeebe lets that
    /// message go, or a while when it should have already).
    pub fn collision(&mut self, id: &str, place: &Place, content: &str) -> Option<Instant> {
        let now = Instant::now();
        self.forget(now);
        let (first, first_content, until) = self.published.get(id)?;
        if first_content == content {
            return None;
        }
        let other = match (first, place) {
            // Another UIDVALIDITY: the folder was rebuilt, and it may be the same mail.
            (
                Place::Imap {
                    validity: a,
                    uid: x,
                },
                Place::Imap {
                    validity: b,
                    uid: y,
                },
            ) => a == b && x != y,
            (a, b) => a != b,
        };
        if !other {
            return None;
        }
        let release = if *until > now { *until } else { now + RETRY };
        self.held.insert(place.clone(), release);
        Some(release)
    }

    /// Whether the mail at `place` is held back now.
    pub fn is_held(&mut self, place: &Place) -> bool {
        let now = Instant::now();
        self.held.retain(|_, until| *until > now);
        self.held.contains_key(place)
    }

    fn forget(&mut self, now: Instant) {
        while let Some((until, _)) = self.order.front() {
            if *until > now {
                break;
            }
            let grace = self.grace;
            if let Some((_, id)) = self.order.pop_front()
                && self
                    .published
                    .get(&id)
                    .is_some_and(|(_, _, u)| u.checked_add(grace).is_none_or(|f| f <= now))
            {
                self.published.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(uid: u32) -> Place {
        Place::Imap { validity: 7, uid }
    }

    #[test]
    fn a_second_mail_with_a_published_id_is_held_until_the_first_expires() {
        let mut ledger = Ledger::with_grace(Duration::from_millis(300));
        ledger.record("<a@b>", &uid(1), "one", Duration::from_millis(200));
        assert_eq!(
            ledger.collision("<a@b>", &uid(1), "one"),
            None,
            "a retry of the same mail"
        );
        assert_eq!(
            ledger.collision(
                "<a@b>",
                &Place::Imap {
                    validity: 8,
                    uid: 1
                },
                "two"
            ),
            None,
            "after a UIDVALIDITY change it may be the same mail"
        );
        assert_eq!(ledger.collision("<other@b>", &uid(2), "two"), None);
        assert_eq!(
            ledger.collision("<a@b>", &uid(2), "one"),
            None,
            "a second copy of the same message"
        );
        assert!(ledger.collision("<a@b>", &uid(2), "two").is_some());
        assert!(ledger.is_held(&uid(2)));
        assert!(!ledger.is_held(&uid(1)));
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !ledger.is_held(&uid(2)),
            "released once Zeebe should have let the first go"
        );
        let again = ledger
            .collision("<a@b>", &uid(2), "two")
            .expect("Zeebe still had it");
        assert!(again >= Instant::now() + RETRY - Duration::from_secs(1));
        assert!(ledger.is_held(&uid(2)));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(ledger.collision("<other@b>", &uid(3), "three"), None);
        assert!(
            ledger.published.is_empty() && ledger.order.is_empty(),
            "forgotten"
        );
    }

    #[test]
    fn the_ledger_is_bounded() {
        let mut ledger = Ledger::default();
        for n in 0..(CAPACITY as u32 + 10) {
            ledger.record(&format!("<{n}@b>"), &uid(n), "x", Duration::from_secs(3600));
        }
        assert_eq!(ledger.published.len(), CAPACITY);
        assert_eq!(
            ledger.collision("<0@b>", &uid(99_999_999), "y"),
            None,
            "the oldest forgotten"
        );
        assert!(ledger.collision("<12@b>", &uid(99_999_999), "y").is_some());
    }
}
