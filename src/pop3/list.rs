//! `pop3:list`: the first `maxToBeRead` messages by Date header or size. Sizes come from LIST,
//! headers from pipelined `TOP n 0`; no message is ever downloaded whole. Memory follows the
//! listing, not the maildrop: of the messages not chosen only a date is kept.

use std::collections::BinaryHeap;

use futures_util::future::BoxFuture;
use mail_parser::MessageParser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::HEADER_BATCH;
use super::common::{Listed, Maildrop, summaries, summary, uidls, with_headers};
use crate::error::Result;
use crate::mail::inputs::{Login, MaxToBeRead, Pop3, Server, SortOrder};
use crate::mail::server::Protocol;
use crate::mail::summary::Listing;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `pop3:list` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "List emails",
    description = "Lists the maildrop from headers only (TOP), never downloading whole messages."
)]
pub struct ListInput {
    pub authentication: Login<Pop3>,
    pub server: Server<Pop3>,
    #[serde(default)]
    pub max_to_be_read: MaxToBeRead,
    #[serde(default)]
    pub sort_field: SortField,
    #[serde(default)]
    pub sort_order: SortOrder,
}

/// POP3 knows no arrival time: a message sorts by its Date header or its size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schemars(
    title = "Sort by",
    description = "Sent date is the message's Date header, size its size in bytes. POP3 has no \
                   received date.",
    extend("x-template" = { "choices": { "SENT_DATE": "Sent date", "SIZE": "Size" } })
)]
pub enum SortField {
    #[default]
    SentDate,
    Size,
}

pub struct ListOperation {
    /// The response budget (`EMAIL_MAX_RESPONSE_BYTES`): a listing keeps the leading entries
    /// that fit.
    pub max_response_bytes: usize,
}

/// Orders messages: by Date header (messages without one last, whatever the order) or size;
/// ties keep maildrop order.
pub fn order(
    mut listed: Vec<(Listed, Option<i64>)>,
    by_size: bool,
    descending: bool,
) -> Vec<Listed> {
    listed.sort_by(|(a, a_date), (b, b_date)| {
        let primary = if by_size {
            let o = a.size.cmp(&b.size);
            if descending { o.reverse() } else { o }
        } else {
            match (a_date, b_date) {
                (Some(x), Some(y)) => {
                    if descending {
                        y.cmp(x)
                    } else {
                        x.cmp(y)
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        };
        primary.then(a.number.cmp(&b.number))
    });
    listed.into_iter().map(|(l, _)| l).collect()
}

impl MailOperation for ListOperation {
    type Input = ListInput;
    const NAME: &'static str = "pop3:list";
    const PROTOCOL: Protocol = Protocol::Pop3;

    fn apply<'a>(
        &'a self,
        input: ListInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let limit = input.max_to_be_read.0;
            let by_size = input.sort_field == SortField::Size;
            let descending = input.sort_order == SortOrder::Desc;
            let mut client = maildrop.connect(job.services()).await?;
            let sizes = client.list().await?;
            let uidls = uidls(&mut client).await?;
            let entries = if by_size {
                // Sizes alone decide the order: headers only for the messages returned.
                let keyed = sizes
                    .iter()
                    .map(|&(n, size)| (listed(n, size), None))
                    .collect();
                let mut chosen = order(keyed, true, descending);
                chosen.truncate(limit);
                let chosen: Vec<(u32, u64)> = chosen.iter().map(|l| (l.number, l.size)).collect();
                summaries(&mut client, &chosen, &uidls, self.max_response_bytes).await?
            } else {
                // Every message's Date decides: headers a batch at a time, and only the best
                // entries so far are held (see `Best`).
                let mut best = Best::new(limit, self.max_response_bytes);
                for batch in sizes.chunks(HEADER_BATCH) {
                    for l in with_headers(&mut client, batch, &uidls).await? {
                        let date =
                            MessageParser::default()
                                .parse_headers(&l.headers)
                                .and_then(|m| {
                                    m.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp())
                                });
                        // Dated first, by date either way round, then maildrop order (see
                        // `order`); `!` reverses an order without overflow.
                        let date = date.map(|d| if descending { !d } else { d });
                        best.offer((date.is_none(), date, l.number), summary(&l));
                    }
                }
                best.finish(sizes.len().min(limit))
            };
            client.quit().await?;
            Ok(Outcome::respond(Value::Array(entries)))
        })
    }
}

/// The first `limit` entries by key seen so far whose JSON array fits `max_bytes`, as
/// [`Listing`] would keep them once sorted: an entry that cannot be among them now can never
/// be (later entries only go before it), so it is dropped at once, and a maildrop of any size
/// costs at most the budget.
struct Best<K: Ord> {
    heap: BinaryHeap<Entry<K>>,
    limit: usize,
    /// The JSON array's bytes: `[`, `]` and each entry with its comma.
    used: usize,
    max_bytes: usize,
}

struct Entry<K> {
    key: K,
    size: usize,
    summary: Value,
}

impl<K: Ord> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<K: Ord> Eq for Entry<K> {}
impl<K: Ord> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl<K: Ord> Best<K> {
    fn new(limit: usize, max_bytes: usize) -> Self {
        Best {
            heap: BinaryHeap::new(),
            limit,
            used: 2,
            max_bytes,
        }
    }

    fn offer(&mut self, key: K, summary: Value) {
        let size = serde_json::to_string(&summary).map_or(usize::MAX, |s| s.len());
        self.used = self.used.saturating_add(size).saturating_add(1);
        self.heap.push(Entry { key, size, summary });
        while self.heap.len() > self.limit || self.used > self.max_bytes {
            let Some(worst) = self.heap.pop() else { break };
            self.used = self.used.saturating_sub(worst.size.saturating_add(1));
        }
    }

    /// The entries, best first, of `total` that could have been listed.
    fn finish(self, total: usize) -> Vec<Value> {
        let mut listing = Listing::new(self.max_bytes);
        for entry in self.heap.into_sorted_vec() {
            listing.push(entry.summary);
        }
        listing.finish(total)
    }
}

/// A listed message whose headers are not held.
fn listed(number: u32, size: u64) -> Listed {
    Listed {
        number,
        size,
        headers: Vec::new(),
        uidl: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(number: u32, size: u64) -> Listed {
        listed(number, size)
    }

    #[test]
    fn undated_messages_sort_last_both_ways() {
        let numbers = |v: Vec<Listed>| v.iter().map(|l| l.number).collect::<Vec<_>>();
        let input = || {
            vec![
                (l(1, 10), Some(30)),
                (l(2, 5), None),
                (l(3, 7), Some(10)),
                (l(4, 1), Some(20)),
            ]
        };
        assert_eq!(numbers(order(input(), false, false)), [3, 4, 1, 2]);
        assert_eq!(numbers(order(input(), false, true)), [1, 4, 3, 2]);
        assert_eq!(numbers(order(input(), true, false)), [4, 2, 3, 1]);
        assert_eq!(numbers(order(input(), true, true)), [1, 3, 2, 4]);
    }
}
