//! The pieces of a message fetched by section, put back together into a message skeleton
//! the response builder reads like any other: the top header as fetched, MIME fields written
//! from BODYSTRUCTURE, the bodies that were fetched (whole or a prefix), and for each part
//! left on the server a marker with its estimated size.

use std::collections::HashMap;

use super::structure::{Decision, Leaf, Params, Structure, estimated_size};
use crate::mail::cut::{CutReason, Encoding, marker_line, safe_prefix};
use crate::mail::normalize::is_header_line;

/// A parameter list as header text, each value quoted (RFC 2231 extended values bare).
fn write_params(out: &mut String, params: &Params) {
    for (name, value) in params {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(*c))
            .collect();
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        if name.is_empty() {
            continue;
        }
        if name.ends_with('*') && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
            out.push_str(&format!(";\r\n {name}={value}"));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!(";\r\n {name}=\"{quoted}\""));
        }
    }
}

fn boundary_of(params: &Params, section: &str) -> String {
    params
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("boundary") && !v.is_empty())
        .map(|(_, v)| v.chars().filter(|c| !c.is_control()).collect())
        .unwrap_or_else(|| format!("=_email-connector-{section}"))
}

/// The fetched pieces put back together, and whether the budget cut any of it.
pub struct Assembly<'a> {
    pub plan: &'a [(String, Decision)],
    /// The fetched sections by name, looked up once per leaf.
    sections: HashMap<&'a str, &'a [u8]>,
    out: Vec<u8>,
    top: Option<Vec<u8>>,
    top_rest: Vec<u8>,
    index: usize,
    budget_cut: bool,
}

impl<'a> Assembly<'a> {
    pub fn new(plan: &'a [(String, Decision)], sections: &'a [(String, Vec<u8>)]) -> Self {
        Assembly {
            plan,
            sections: sections
                .iter()
                .map(|(name, data)| (name.as_str(), data.as_slice()))
                .collect(),
            out: Vec::new(),
            top: None,
            top_rest: Vec::new(),
            index: 0,
            budget_cut: false,
        }
    }

    /// The skeleton message: `header` (the top header as fetched, possibly cut at `cap`)
    /// without its MIME fields, then those written anew from the structure. Text that the
    /// header block ran into without a blank line starts the body, as the pruner reads it.
    pub fn build(mut self, structure: &Structure, header: &[u8], cap: usize) -> (Vec<u8>, bool) {
        let header = if header.len() >= cap {
            self.budget_cut = true;
            let end = header
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            &header[..end]
        } else {
            header
        };
        let (top, rest) = without_mime_fields(header);
        self.top = Some(top);
        self.top_rest = rest;
        self.node(structure, "");
        (self.out, self.budget_cut)
    }

    /// Ends a part's header: the top header goes in once, then the blank line.
    fn end_header(&mut self, header: &str) {
        if let Some(top) = self.top.take() {
            self.out.extend_from_slice(&top);
        }
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        // Only a single-part message has its body right here; a multipart's would be preamble.
        let rest = std::mem::take(&mut self.top_rest);
        if !header.starts_with("Content-Type: multipart/") {
            self.out.extend_from_slice(&rest);
        }
    }

    /// Recurses once per level: a [`Structure`] nests at most
    /// [`super::structure::MAX_NESTING`] deep (see [`Structure::from_proto`]).
    fn node(&mut self, node: &Structure, section: &str) {
        match node {
            Structure::Multipart {
                subtype,
                params,
                parts,
            } => {
                let boundary = boundary_of(params, section);
                let mut header = format!("Content-Type: multipart/{subtype}");
                let mut params = params.clone();
                params.retain(|(k, _)| !k.eq_ignore_ascii_case("boundary"));
                params.push(("boundary".into(), boundary.clone()));
                write_params(&mut header, &params);
                header.push_str("\r\n");
                self.end_header(&header);
                for (i, part) in parts.iter().enumerate() {
                    let child = if section.is_empty() {
                        (i + 1).to_string()
                    } else {
                        format!("{section}.{}", i + 1)
                    };
                    self.out
                        .extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    self.node(part, &child);
                    self.out.extend_from_slice(b"\r\n");
                }
                self.out
                    .extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            }
            Structure::Leaf(leaf) => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, leaf: &Leaf) {
        let Some((section, decision)) = self.plan.get(self.index) else {
            return;
        };
        self.index += 1;
        let mut header = format!("Content-Type: {}", leaf.mime);
        write_params(&mut header, &leaf.params);
        header.push_str("\r\n");
        if !leaf.encoding.is_empty() {
            header.push_str(&format!(
                "Content-Transfer-Encoding: {}\r\n",
                leaf.encoding.replace(['\r', '\n'], "")
            ));
        }
        if let Some(id) = &leaf.id {
            header.push_str(&format!("Content-ID: {}\r\n", id.replace(['\r', '\n'], "")));
        }
        if let Some((kind, params)) = &leaf.disposition {
            let kind: String = kind.chars().filter(|c| !c.is_control()).collect();
            header.push_str(&format!("Content-Disposition: {kind}"));
            write_params(&mut header, params);
            header.push_str("\r\n");
        }
        let data = self
            .sections
            .get(section.as_str())
            .copied()
            .unwrap_or_default();
        let body = match decision {
            Decision::Whole(_) => data,
            Decision::Partial(n) if data.len() < *n as usize => data,
            Decision::Partial(_) => {
                self.budget_cut = true;
                header.push_str(&marker_line(estimated_size(leaf), CutReason::Budget));
                trim_partial(Encoding::from_name(&leaf.encoding), data)
            }
            Decision::Cut(size, reason) => {
                self.budget_cut |= *reason == CutReason::Budget;
                header.push_str(&marker_line(*size, *reason));
                &[]
            }
        };
        self.end_header(&header);
        self.out.extend_from_slice(body);
    }
}

/// A partial fetch ends anywhere: keep whole lines, or a clean prefix of a single line.
fn trim_partial(encoding: Encoding, data: &[u8]) -> &[u8] {
    match data.iter().rposition(|b| *b == b'\n') {
        Some(end) => &data[..=end],
        None => safe_prefix(encoding, data, data.len()),
    }
}

/// The header without Content-Type and Content-Transfer-Encoding (folded lines included)
/// and without its closing blank line; and, when the block runs into text that is not a
/// header (no blank line between), that text, which is where the body starts.
fn without_mime_fields(header: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(header.len());
    let mut skipping = false;
    let mut offset = 0;
    // A first line `From sender date` is an mbox separator, not the body's start: skipped,
    // as Python's email package (and the pruner) reads it.
    let header = match header.strip_prefix(b"From ") {
        Some(_) => header
            .iter()
            .position(|b| *b == b'\n')
            .map_or(&header[header.len()..], |end| &header[end + 1..]),
        None => header,
    };
    for line in header.split_inclusive(|b| *b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            return (out, Vec::new());
        }
        if matches!(content.first(), Some(b' ' | b'\t')) {
            if !skipping {
                out.extend_from_slice(line);
            }
        } else if !is_header_line(content) {
            return (out, header[offset..].to_vec());
        } else {
            let lower = content.to_ascii_lowercase();
            skipping = lower.starts_with(b"content-type:")
                || lower.starts_with(b"content-transfer-encoding:");
            if !skipping {
                out.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        offset += line.len();
    }
    (out, Vec::new())
}
