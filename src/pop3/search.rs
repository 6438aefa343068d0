//! `pop3:search`: the criteria evaluated here, as IMAP SEARCH would (POP3 has no search).
//! Headers come from `TOP n 0`; a message is downloaded only when its headers cannot decide
//! (the criteria ask about the body and the rest does not settle it), and then BODY matches
//! what a read would return of its text: each body up to the response budget.

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::client::HEADER_BATCH;
use super::common::{Maildrop, summary, uidls, with_headers};
use crate::error::Result;
use crate::mail::criteria::MessageView;
use crate::mail::cut::Limits;
use crate::mail::inputs::{Criteria, Login, MaxResults, Pop3, Server};
use crate::mail::server::Protocol;
use crate::mail::summary::Listing;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `pop3:search` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Search emails",
    description = "Searches the maildrop by headers, fetching bodies only when the criteria need them."
)]
pub struct SearchInput {
    pub authentication: Login<Pop3>,
    pub server: Server<Pop3>,
    pub criteria: Criteria,
    #[serde(default)]
    pub max_results: MaxResults,
}

pub struct SearchOperation {
    /// The response budget (`EMAIL_MAX_RESPONSE_BYTES`): a result list keeps the leading
    /// entries that fit.
    pub max_response_bytes: usize,
}

impl MailOperation for SearchOperation {
    type Input = SearchInput;
    const NAME: &'static str = "pop3:search";
    const PROTOCOL: Protocol = Protocol::Pop3;

    fn apply<'a>(
        &'a self,
        input: SearchInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let criteria = input.criteria.0;
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let limit = input.max_results.0;
            let mut client = maildrop.connect(job.services()).await?;
            // A body is searched in what a read would return of it: the text bodies, each to
            // the response budget, so a message of any size costs about the budget.
            let limits = Limits {
                max_attachment_bytes: 0,
                max_response_bytes: self.max_response_bytes,
            };
            let uidls = uidls(&mut client).await?;
            let mut found = Listing::new(self.max_response_bytes);
            let mut matches = 0;
            'batches: for batch in client.list().await?.chunks(HEADER_BATCH) {
                for listed in with_headers(&mut client, batch, &uidls).await? {
                    if matches >= limit || found.is_full() {
                        break 'batches;
                    }
                    let decided = match criteria.evaluate(&MessageView::new(&listed.headers, false))
                    {
                        Some(answer) => answer,
                        None => {
                            let pruned = client
                                .retr_pruned(listed.number, listed.size, limits)
                                .await?;
                            criteria
                                .evaluate(&MessageView::new(&pruned.raw, true))
                                .unwrap_or(false)
                        }
                    };
                    if decided {
                        matches += 1;
                        found.push(summary(&listed));
                    }
                }
            }
            client.quit().await?;
            Ok(Outcome::respond(Value::Array(found.finish(matches))))
        })
    }
}
