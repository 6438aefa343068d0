//! `pop3:search`: the criteria evaluated here, as IMAP SEARCH would (POP3 has no search).
//! Headers come from `TOP n 0`; a message is downloaded only when its headers cannot decide
//! (the criteria ask about the body and the rest does not settle it).

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::common::{Maildrop, list_with_headers, summary};
use crate::error::Result;
use crate::mail::criteria::MessageView;
use crate::mail::inputs::{Criteria, Login, MaxResults, Pop3, Server};
use crate::mail::server::Protocol;
use crate::mail::summary::within_budget;
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
    /// The response budget (SPEC §7.1): a result list keeps the leading entries that fit.
    pub max_response_bytes: usize,
}

impl MailOperation for SearchOperation {
    type Input = SearchInput;
    const NAME: &'static str = "pop3:search";
    const PROTOCOL: Protocol = Protocol::Pop3;

    fn apply<'a>(
        &'a self,
        input: SearchInput,
        _job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let criteria = input.criteria.0;
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let limit = input.max_results.0;
            let mut client = maildrop.connect().await?;
            let mut found = Vec::new();
            for listed in list_with_headers(&mut client).await? {
                if found.len() >= limit {
                    break;
                }
                let decided = match criteria.evaluate(&MessageView::new(&listed.headers, false)) {
                    Some(answer) => answer,
                    None => {
                        let raw = client.retr(listed.number).await?;
                        criteria
                            .evaluate(&MessageView::new(&raw, true))
                            .unwrap_or(false)
                    }
                };
                if decided {
                    found.push(summary(&listed));
                }
            }
            client.quit().await?;
            Ok(Outcome::respond(Value::Array(within_budget(
                found,
                self.max_response_bytes,
            ))))
        })
    }
}
