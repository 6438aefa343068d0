//! `imap:search`: the criteria tree as one server-side UID SEARCH program. Values travel as
//! quoted strings or literals, with CHARSET UTF-8 when any is non-ASCII.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::common::{folder, summaries, target};
use super::pool::ImapPool;
use super::program::search_program;
use super::wire::Command;
use crate::error::{ErrorCode, Result};
use crate::mail::criteria::Criterion;
use crate::mail::inputs::{
    criteria_field, folder_field, max_results, max_results_field, operation_schema,
};
use crate::mail::server::Protocol;
use crate::operations::{JobContext, Operation, Outcome};

pub struct SearchOperation {
    pub pool: Arc<ImapPool>,
}

impl Operation for SearchOperation {
    fn name(&self) -> &'static str {
        "imap:search"
    }

    fn protocol(&self) -> Protocol {
        Protocol::Imap
    }

    fn schema(&self) -> Value {
        operation_schema(
            Protocol::Imap,
            "Search emails",
            "Searches a folder on the server (IMAP SEARCH) with nested AND / OR / NOT criteria.",
            json!({
                "folder": folder_field("Folder"),
                "criteria": criteria_field(),
                "maxResults": max_results_field()
            }),
            &["criteria"],
        )
    }

    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let criteria = Criterion::parse(&variables["criteria"], "/criteria")?;
            let mailbox = target(&variables)?;
            let folder = folder(&variables, "folder");
            let limit = max_results(&variables);
            let program = search_program(&criteria);
            let command = if program.needs_utf8() {
                Command::new("UID SEARCH CHARSET UTF-8")
            } else {
                Command::new("UID SEARCH")
            }
            .extend(program);
            let mut session = self
                .pool
                .acquire(&mailbox.endpoint, &mailbox.authentication)
                .await?;
            session.select(&folder, false).await?;
            let mut uids = session
                .execute(&command, ErrorCode::InvalidInput)
                .await?
                .ids();
            uids.sort_unstable();
            uids.truncate(limit);
            Ok(Outcome::respond(Value::Array(
                summaries(&mut session, &uids).await?,
            )))
        })
    }
}
