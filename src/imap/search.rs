//! `imap:search`: the criteria tree as one server-side UID SEARCH program. Values travel as
//! quoted strings or literals, with CHARSET UTF-8 when any is non-ASCII.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::common::summaries;
use super::pool::ImapPool;
use super::program::search_program;
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::ImapErrorKind;
use crate::mail::inputs::{Criteria, Folder, Imap, Login, MaxResults, Server};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:search` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Search emails",
    description = "Searches a folder on the server (IMAP SEARCH) with nested AND / OR / NOT criteria."
)]
pub struct SearchInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    pub criteria: Criteria,
    #[serde(default)]
    pub max_results: MaxResults,
}

pub struct SearchOperation {
    pub pool: Arc<ImapPool>,
    /// The response budget (`EMAIL_MAX_RESPONSE_BYTES`): a result list keeps the leading
    /// entries that fit.
    pub max_response_bytes: usize,
}

impl MailOperation for SearchOperation {
    type Input = SearchInput;
    const NAME: &'static str = "imap:search";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: SearchInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let program = search_program(&input.criteria.0);
            let command = if program.needs_utf8() {
                Command::new("UID SEARCH CHARSET UTF-8")
            } else {
                Command::new("UID SEARCH")
            }
            .extend(program);
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let (validity, _) = session.open(&input.folder, false).await?;
            // A NO is the server's trouble of the moment (retried); a BAD or NO [BADCHARSET]
            // means the search as given can never run there (an incident).
            let mut uids = session
                .execute_split(&command, ImapErrorKind::Busy, ImapErrorKind::Input)
                .await?
                .ids();
            uids.sort_unstable();
            uids.truncate(input.max_results.0);
            let entries = summaries(&mut session, &uids, validity, self.max_response_bytes).await?;
            Ok(Outcome::respond(Value::Array(entries)))
        })
    }
}
