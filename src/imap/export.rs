//! `imap:export`: one mail's raw RFC 5322 bytes, unchanged, as base64 in the response or as a
//! Camunda document (`as: document`, docs/configuration.md "Camunda 8.8 and newer").
//!
//! Memory stays bounded whatever the message's size: base64 is refused by the server's size
//! before anything is fetched when it could not fit the response budget (and a server that
//! lies about the size is caught as the bytes arrive), and a document is streamed to a file
//! a partial fetch at a time and uploaded from there.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::guard::Allowance;
use super::identity::{fields, found};
use super::pool::ImapPool;
use super::read::{each_chunk, fetch};
use super::session::ImapSession;
use crate::documents::Documents;
use crate::documents::disk::SpoolDir;
use crate::documents::spool::Spooled;
use crate::documents::store::{Upload, too_large};
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::inputs::{Folder, Imap, ImapMailInput, Login, Server};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// How the raw message is returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(extend("x-template" = { "choices": { "base64": "base64 in the response", "document": "Camunda document" } }))]
pub enum ExportAs {
    #[default]
    Base64,
    Document,
}

/// What `imap:export` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Export an email",
    description = "The raw message (RFC 5322 bytes, unchanged) as base64 or as a Camunda document."
)]
pub struct ExportInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(default, rename = "as")]
    #[schemars(
        title = "Export as",
        description = "base64 (default): in the response, within the response budget; document: a Camunda document."
    )]
    pub export_as: ExportAs,
}

/// What `imap:export` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    /// The message's Message-ID as found, or the one asked for.
    pub message_id: Option<String>,
    /// The size of the raw message in bytes.
    pub size: u64,
    /// The raw message, base64 (with `as: base64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The document store's reference (with `as: document`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
    /// `uid` and `uidValidity` of the message.
    #[serde(flatten)]
    pub identity: Map<String, Value>,
}

pub struct ExportOperation {
    pub pool: Arc<ImapPool>,
    pub max_response_bytes: usize,
}

/// Room the rest of the response takes besides the content.
const RESPONSE_FRAME: usize = 2048;

fn too_large_for_response(size: u64, budget: usize) -> EmailError {
    EmailError::new(
        ErrorCode::ResponseTooLarge,
        format!(
            "the message is {size} bytes, {} as base64, over the response budget of {budget} bytes \
             (EMAIL_MAX_RESPONSE_BYTES): export it with `as: document`",
            base64_len(size)
        ),
    )
}

fn base64_len(size: u64) -> u64 {
    size.div_ceil(3) * 4
}

async fn as_document(
    session: &mut ImapSession,
    uid: u32,
    id: &str,
    documents: Documents<'_>,
) -> Result<(u64, Value)> {
    let dir = SpoolDir::create()?;
    let path = dir.path().join("message.eml");
    let internal = |e: std::io::Error| {
        EmailError::new(
            ErrorCode::Internal,
            format!("cannot spool the message to disk: {e}"),
        )
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(internal)?);
    let mut allowance = documents.allowance();
    let size = each_chunk(session, uid, id, |chunk| {
        if !allowance.take(chunk.len() as u64) {
            return Err(too_large("/as", &allowance));
        }
        file.write_all(chunk).map_err(internal)
    })
    .await?;
    file.flush().map_err(internal)?;
    drop(file);
    let spooled = Spooled {
        path,
        file_name: format!("message-{uid}.eml"),
        content_type: "message/rfc822".into(),
        size,
        inline: false,
        content_id: None,
        refused: None,
    };
    match documents.store.upload(&spooled).await? {
        Upload::Stored(reference) => Ok((size, reference)),
        Upload::TooLarge(why) => Err(EmailError::new(ErrorCode::ResponseTooLarge, why)),
    }
}

impl MailOperation for ExportOperation {
    type Input = ExportInput;
    const NAME: &'static str = "imap:export";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: ExportInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
            let id = wanted.describe();
            let given = wanted.message_id.as_ref().map(|m| m.as_given().to_string());
            let documents = match input.export_as {
                ExportAs::Document => Some(job.services().documents("/as")?),
                ExportAs::Base64 => None,
            };
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let (validity, _) = session.open(&input.folder, false).await?;
            let (uid, as_found) =
                found(&mut session, input.folder.name(), validity, &wanted).await?;
            let (size, content, document) = match documents {
                Some(documents) => {
                    let (size, reference) = as_document(&mut session, uid, &id, documents).await?;
                    (size, None, Some(reference))
                }
                None => {
                    let budget = self.max_response_bytes.saturating_sub(RESPONSE_FRAME);
                    let announced = fetch(
                        &mut session,
                        uid,
                        "(UID RFC822.SIZE)",
                        Allowance::CONTROL,
                        &id,
                    )
                    .await?
                    .size
                    .map_or(0, u64::from);
                    if base64_len(announced) > budget as u64 {
                        return Err(too_large_for_response(announced, self.max_response_bytes));
                    }
                    let mut raw = Vec::new();
                    let size = each_chunk(&mut session, uid, &id, |chunk| {
                        raw.extend_from_slice(chunk);
                        if base64_len(raw.len() as u64) > budget as u64 {
                            return Err(too_large_for_response(
                                raw.len() as u64,
                                self.max_response_bytes,
                            ));
                        }
                        Ok(())
                    })
                    .await?;
                    let content = base64::engine::general_purpose::STANDARD.encode(&raw);
                    (size, Some(content), None)
                }
            };
            Ok(Outcome::respond(to_json(&ExportResult {
                message_id: as_found.or(given),
                size,
                content,
                document,
                identity: fields(uid, validity),
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_base64_and_names_the_way_out() {
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
        let error = too_large_for_response(10_000_000, 3_145_728);
        assert_eq!(error.code, ErrorCode::ResponseTooLarge);
        assert!(error.message.contains("as: document"), "{}", error.message);
    }
}
