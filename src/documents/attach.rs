//! The step `attachmentsAs: document` adds to a read, in one function so IMAP, POP3 and the
//! inbound watchers share it: upload each spooled attachment and make the response's
//! `attachments` the list of the store's references.

use serde_json::{Value, json};

use super::spool::Spooled;
use super::store::{DocumentStore, Upload};
use crate::error::Result;

/// Uploads `attachments` (in message order) and replaces `response["attachments"]` with one
/// entry per attachment: `fileName`, `contentType`, `size` (decoded bytes), `inline`,
/// `contentId` and `document`, the store's reference, instead of `content`. An attachment the
/// store refuses as too large, or the spool did not keep (over the job's allowance), gets
/// `truncated: true` and `documentError` instead.
pub async fn attach_documents(
    response: &mut Value,
    attachments: &[Spooled],
    store: &DocumentStore,
) -> Result<()> {
    let mut entries = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        let mut entry = json!({
            "fileName": attachment.file_name,
            "contentType": attachment.content_type,
            "size": attachment.size,
            "inline": attachment.inline,
            "contentId": attachment.content_id,
        });
        if let Some(reason) = &attachment.refused {
            entry["truncated"] = json!(true);
            entry["documentError"] = json!(reason);
            entries.push(entry);
            continue;
        }
        match store.upload(attachment).await? {
            Upload::Stored(reference) => entry["document"] = reference,
            // As an inline attachment over the size limit: listed, marked, and the mail itself
            // still goes through (one oversized file must not stall a mailbox's every mail).
            Upload::TooLarge(reason) => {
                entry["truncated"] = json!(true);
                entry["documentError"] = json!(reason);
            }
        }
        entries.push(entry);
    }
    if let Some(object) = response.as_object_mut() {
        object.insert("attachments".into(), Value::Array(entries));
    }
    Ok(())
}
