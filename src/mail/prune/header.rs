//! A part's header as it streams by: fields collected (folded lines joined), normalized and
//! kept within the header's cap (the structural ones always, once); its end decides whether
//! the part is a container to read on or a leaf whose body the pools allow.

use super::body::{Leaf, Role};
use super::{MAX_DEPTH, Mode, Pruner};
use crate::mail::cut::{Encoding, param};
use crate::mail::normalize::{HeaderField, is_header_line, normalize_field};

impl Pruner {
    pub(super) fn start_part(&mut self) {
        self.field = HeaderField::default();
        self.content_type.clear();
        self.transfer_encoding.clear();
        self.disposition.clear();
        self.header_kept = 0;
    }

    pub(super) fn header_line(&mut self, content: &[u8], eol: &[u8]) {
        let eol: &[u8] = if eol.is_empty() { b"\r\n" } else { eol };
        if self.top && self.out.is_empty() && self.field.is_empty() && content.starts_with(b"From ")
        {
            // An mbox separator ("From sender date"), not a header: skipped, as Python does.
            return;
        }
        let continuation = matches!(content.first(), Some(b' ' | b'\t'));
        if continuation && !self.field.is_empty() {
            self.field.continue_with(content, eol);
            return;
        }
        self.flush_field();
        if content.is_empty() {
            self.end_header(eol);
        } else if is_header_line(content) || continuation {
            self.field.start(content, eol);
        } else {
            // Not a header: the body starts here, as Python's email package reads it.
            self.end_header(eol);
            self.push(content, eol);
        }
    }

    /// Writes the header field collected so far, normalized, when it fits.
    pub(super) fn flush_field(&mut self) {
        let Some(field) = normalize_field(std::mem::take(&mut self.field)) else {
            return;
        };
        let structural = match field.name_lower.as_str() {
            "content-type" => Some(&mut self.content_type),
            "content-transfer-encoding" => Some(&mut self.transfer_encoding),
            "content-disposition" => Some(&mut self.disposition),
            _ => None,
        };
        let cap = if self.top {
            self.limits.header_allowance()
        } else {
            64 * 1024
        };
        let fits = self.header_kept + field.bytes.len() <= cap;
        if let Some(slot) = structural {
            // Structure is kept whatever the cap (once, bounded), or the parts are lost.
            if slot.is_empty() && field.value.len() <= 16 * 1024 {
                *slot = field.value.clone();
                self.out.extend_from_slice(&field.bytes);
                self.header_kept += field.bytes.len();
                return;
            }
        }
        if fits {
            self.out.extend_from_slice(&field.bytes);
            self.header_kept += field.bytes.len();
        } else {
            // Full: later fields go too, so what stays is a prefix of the header.
            self.header_kept = cap + 1;
            self.budget_cut |= self.top;
        }
    }

    pub(super) fn end_header(&mut self, eol: &[u8]) {
        let content_type = self.content_type.to_ascii_lowercase();
        let mime_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if mime_type.starts_with("multipart/")
            && self.boundaries.len() < MAX_DEPTH
            && let Some(boundary) = param(&self.content_type, "boundary")
            && !boundary.is_empty()
        {
            self.out.extend_from_slice(eol);
            self.boundaries.push(boundary.into_bytes());
            self.mode = Mode::Skip;
            return;
        }
        let attachment = self
            .disposition
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("attachment");
        let text = mime_type.is_empty() || mime_type == "text/plain" || mime_type == "text/html";
        let role = if text && !attachment {
            Role::Text
        } else {
            Role::Attachment
        };
        let allowance = match role {
            Role::Text => self.text_pool.min(self.limits.text_allowance() as u64),
            Role::Attachment => self
                .attachment_pool
                .min(self.limits.max_attachment_bytes as u64),
        };
        let header_end = self.out.len();
        self.out.extend_from_slice(eol);
        let body_start = self.out.len();
        let mut leaf = Leaf {
            role,
            encoding: Encoding::from_name(&self.transfer_encoding),
            header_end,
            body_start,
            allowance,
            kept: 0,
            seen: 0,
            last_eol: 0,
            cut: false,
        };
        if self.skeleton() > self.limits.skeleton_allowance() {
            // This part's own header went past the allowance: listed, without its body.
            leaf.cut = true;
            leaf.allowance = 0;
            self.budget_cut = true;
        }
        self.mode = Mode::Body(leaf);
    }
}
