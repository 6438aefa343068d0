//! The step `attachmentsAs: document` adds to a read, in one function so IMAP, POP3 and the
//! inbound watchers share it: upload each spooled attachment and make the response's
//! attachments the list of the store's references.

use super::spool::Spooled;
use super::store::{DocumentStore, Upload};
use crate::error::Result;
use crate::mail::response::{Attachment, ReadMessage};

/// Uploads `attachments` (in message order) and replaces the response's attachments with one
/// entry per attachment in the document form ([`Attachment`] with `document`, the store's
/// reference, instead of `content`; `size` counts decoded bytes). An attachment the store
/// refuses as too large, or the spool did not keep (over the job's allowance), gets
/// `truncated` and `documentError` instead.
pub async fn attach_documents(
    response: &mut ReadMessage,
    attachments: &[Spooled],
    store: &DocumentStore,
) -> Result<()> {
    let mut entries = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        let mut entry = Attachment {
            file_name: attachment.file_name.clone(),
            content_type: attachment.content_type.clone(),
            size: attachment.size,
            inline: attachment.inline,
            content_id: attachment.content_id.clone(),
            ..Attachment::default()
        };
        let refused = match &attachment.refused {
            Some(reason) => Some(reason.clone()),
            None => match store.upload(attachment).await? {
                Upload::Stored(reference) => {
                    entry.document = Some(reference);
                    None
                }
                // As an inline attachment over the size limit: listed, marked, and the mail
                // itself still goes through (one oversized file must not stall a mailbox's
                // every mail).
                Upload::TooLarge(reason) => Some(reason),
            },
        };
        if let Some(reason) = refused {
            entry.truncated = true;
            entry.document_error = Some(reason);
        }
        entries.push(entry);
    }
    response.attachments = entries;
    Ok(())
}
