//! `pop3:search`: the criteria evaluated here, as IMAP SEARCH would (POP3 has no search).
//! Headers come from `TOP n 0`; a message is downloaded only when its headers cannot decide
//! (the criteria ask about the body and the rest does not settle it).

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::common::{Maildrop, list_with_headers, summary};
use crate::error::Result;
use crate::mail::criteria::{Criterion, MessageView};
use crate::mail::inputs::{criteria_field, max_results, max_results_field, operation_schema};
use crate::mail::server::Protocol;
use crate::operations::{JobContext, Operation, Outcome};

pub struct SearchOperation;

impl Operation for SearchOperation {
    fn name(&self) -> &'static str {
        "pop3:search"
    }

    fn protocol(&self) -> Protocol {
        Protocol::Pop3
    }

    fn schema(&self) -> Value {
        operation_schema(
            Protocol::Pop3,
            "Search emails",
            "Searches the maildrop by headers, fetching bodies only when the criteria need them.",
            json!({
                "criteria": criteria_field(),
                "maxResults": max_results_field()
            }),
            &["criteria"],
        )
    }

    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let criteria = Criterion::parse(&variables["criteria"], "/criteria")?;
            let maildrop = Maildrop::from_variables(&variables)?;
            let limit = max_results(&variables);
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
            Ok(Outcome::respond(Value::Array(found)))
        })
    }
}
