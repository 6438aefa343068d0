//! `pop3:list`: the first `maxToBeRead` messages by Date header or size. Sizes come from LIST,
//! headers from pipelined `TOP n 0`; no message is ever downloaded whole.

use futures_util::future::BoxFuture;
use mail_parser::MessageParser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Listed, Maildrop, list_with_headers, summary, uidls};
use crate::error::Result;
use crate::mail::inputs::{Login, MaxToBeRead, Pop3, Server, SortOrder};
use crate::mail::server::Protocol;
use crate::mail::summary::within_budget;
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
    /// The response budget (SPEC §7.1): a listing keeps the leading entries that fit.
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
        _job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let limit = input.max_to_be_read.0;
            let by_size = input.sort_field == SortField::Size;
            let descending = input.sort_order == SortOrder::Desc;
            let mut client = maildrop.connect().await?;
            let listed = if by_size {
                // Sizes alone decide the order: headers only for the messages returned.
                let sizes = client.list().await?;
                let uidls = uidls(&mut client).await?;
                let keyed = sizes
                    .into_iter()
                    .map(|(number, size)| {
                        (
                            Listed {
                                number,
                                size,
                                headers: Vec::new(),
                                uidl: uidls.get(&number).cloned(),
                            },
                            None,
                        )
                    })
                    .collect();
                let mut chosen = order(keyed, true, descending);
                chosen.truncate(limit);
                let numbers: Vec<u32> = chosen.iter().map(|l| l.number).collect();
                for (listed, headers) in chosen.iter_mut().zip(client.headers(&numbers).await?) {
                    listed.headers = headers;
                }
                chosen
            } else {
                let keyed = list_with_headers(&mut client)
                    .await?
                    .into_iter()
                    .map(|l| {
                        let date =
                            MessageParser::default()
                                .parse_headers(&l.headers)
                                .and_then(|m| {
                                    m.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp())
                                });
                        (l, date)
                    })
                    .collect();
                let mut chosen = order(keyed, false, descending);
                chosen.truncate(limit);
                chosen
            };
            client.quit().await?;
            Ok(Outcome::respond(Value::Array(within_budget(
                listed.iter().map(summary).collect(),
                self.max_response_bytes,
            ))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(number: u32, size: u64) -> Listed {
        Listed {
            number,
            size,
            headers: Vec::new(),
            uidl: None,
        }
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
