//! Reading a large message by its BODYSTRUCTURE: only the sections the response can return
//! are fetched (text bodies as partial fetches sized to the budget, attachments that fit the
//! limits whole), and the rest is described from the structure. The fetched pieces are put
//! back together (see [`super::skeleton`]) into a message the usual response builder reads,
//! so a 100 MB message costs about the budget, and the server never sends the rest.
//!
//! The plan decides by sizes estimated from the encoded size: base64 carries 57 bytes in each
//! 78-octet line (76 characters and CRLF), so decoded ≈ octets × 57 / 78; other encodings
//! count their octets (quoted-printable: an upper bound). A base64 part left on the server
//! is then listed with its exact size (see [`super::sizes`]).

use async_imap::imap_proto::{
    BodyParams, BodyStructure, ContentEncoding, MessageSection, SectionPath,
};

use super::guard::{Allowance, SLACK};
use crate::mail::cut::{CutReason, Encoding, Limits};
pub use crate::mail::prune::MAX_PARTS;

/// Multiparts nested deeper are described as one opaque part, listed and left on the server:
/// the pruner reads the skeleton only this deep anyway, and our walkers recurse.
pub const MAX_NESTING: usize = crate::mail::prune::MAX_DEPTH;

pub type Params = Vec<(String, String)>;

/// One part of a message as BODYSTRUCTURE describes it, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Structure {
    Multipart {
        subtype: String,
        params: Params,
        parts: Vec<Structure>,
    },
    Leaf(Leaf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// `type/subtype`, lower case.
    pub mime: String,
    pub params: Params,
    pub id: Option<String>,
    pub encoding: String,
    /// Encoded size.
    pub octets: u32,
    pub disposition: Option<(String, Params)>,
}

fn params(p: &BodyParams<'_>) -> Params {
    p.iter()
        .flatten()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn encoding_name(e: &ContentEncoding<'_>) -> String {
    match e {
        ContentEncoding::SevenBit => "7bit".into(),
        ContentEncoding::EightBit => "8bit".into(),
        ContentEncoding::Binary => "binary".into(),
        ContentEncoding::Base64 => "base64".into(),
        ContentEncoding::QuotedPrintable => "quoted-printable".into(),
        ContentEncoding::Other(other) => other.to_ascii_lowercase(),
    }
}

impl Structure {
    /// About the bytes it holds in memory. Recurses as deep as [`Structure::from_proto`]
    /// lets a structure nest.
    pub fn footprint(&self) -> usize {
        let params = |p: &Params| {
            p.iter()
                .map(|(k, v)| size_of::<(String, String)>() + k.len() + v.len())
                .sum::<usize>()
        };
        size_of::<Structure>()
            + match self {
                Structure::Multipart {
                    subtype,
                    params: p,
                    parts,
                } => {
                    subtype.len()
                        + params(p)
                        + parts.iter().map(Structure::footprint).sum::<usize>()
                }
                Structure::Leaf(leaf) => {
                    leaf.mime.len()
                        + params(&leaf.params)
                        + leaf.id.as_ref().map_or(0, String::len)
                        + leaf.encoding.len()
                        + leaf
                            .disposition
                            .as_ref()
                            .map_or(0, |(d, p)| d.len() + params(p))
                }
            }
    }

    pub fn from_proto(body: &BodyStructure<'_>) -> Structure {
        Self::from_proto_at(body, 0)
    }

    /// `depth` multiparts enclose `body`. Past [`MAX_NESTING`] a multipart becomes an opaque
    /// leaf (no boundary, no size): so every walker over a [`Structure`] recurses at most
    /// that deep, whatever a server sends.
    fn from_proto_at(body: &BodyStructure<'_>, depth: usize) -> Structure {
        let (common, other) = match body {
            BodyStructure::Multipart { common, bodies, .. } if depth < MAX_NESTING => {
                return Structure::Multipart {
                    subtype: common.ty.subtype.to_ascii_lowercase(),
                    params: params(&common.ty.params),
                    parts: bodies
                        .iter()
                        .map(|b| Self::from_proto_at(b, depth + 1))
                        .collect(),
                };
            }
            BodyStructure::Multipart { common, .. } => {
                let mut kept = params(&common.ty.params);
                kept.retain(|(k, _)| !k.eq_ignore_ascii_case("boundary"));
                return Structure::Leaf(Leaf {
                    mime: mime_type("multipart", &common.ty.subtype),
                    params: kept,
                    id: None,
                    encoding: String::new(),
                    octets: 0,
                    disposition: common
                        .disposition
                        .as_ref()
                        .map(|d| (d.ty.to_ascii_lowercase(), params(&d.params))),
                });
            }
            BodyStructure::Basic { common, other, .. }
            | BodyStructure::Text { common, other, .. }
            | BodyStructure::Message { common, other, .. } => (common, other),
        };
        Structure::Leaf(Leaf {
            mime: mime_type(&common.ty.ty, &common.ty.subtype),
            params: params(&common.ty.params),
            id: other.id.as_ref().map(|id| id.to_string()),
            encoding: encoding_name(&other.transfer_encoding),
            octets: other.octets,
            disposition: common
                .disposition
                .as_ref()
                .map(|d| (d.ty.to_ascii_lowercase(), params(&d.params))),
        })
    }
}

/// `type/subtype` in lower case. A server describes `Content-Type: text` (no subtype) with
/// empty or NIL fields; RFC 2045 §5.2 makes that text/plain.
fn mime_type(ty: &str, subtype: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_graphic() && *c != '/' && *c != ';')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let (ty, subtype) = (clean(ty), clean(subtype));
    match (ty.as_str(), subtype.as_str()) {
        ("" | "text", "") | ("", "plain") => "text/plain".into(),
        ("", _) => format!("application/{subtype}"),
        (_, "") => format!("{ty}/octet-stream"),
        _ => format!("{ty}/{subtype}"),
    }
}

/// A section path as FETCH responses name it: `HEADER`, `1.2`, `1.MIME`, `TEXT`, or empty for
/// the whole message.
pub fn section_name(section: &Option<SectionPath>) -> String {
    let part = |s: &MessageSection| match s {
        MessageSection::Header => "HEADER",
        MessageSection::Mime => "MIME",
        MessageSection::Text => "TEXT",
    };
    match section {
        None => String::new(),
        Some(SectionPath::Full(s)) => part(s).into(),
        Some(SectionPath::Part(path, s)) => {
            let mut name: Vec<String> = path.iter().map(u32::to_string).collect();
            name.extend(s.as_ref().map(|s| part(s).to_string()));
            name.join(".")
        }
    }
}

/// What to do with one leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Fetched whole: this many encoded octets, as the structure says.
    Whole(u32),
    /// The first this many octets: a text body longer than could be returned.
    Partial(u32),
    /// Left on the server: listed with its estimated decoded size.
    Cut(u64, CutReason),
}

/// Decoded size of a part left on the server (see the module documentation).
pub fn estimated_size(leaf: &Leaf) -> u64 {
    match Encoding::from_name(&leaf.encoding) {
        Encoding::Base64 => u64::from(leaf.octets) * 57 / 78,
        _ => u64::from(leaf.octets),
    }
}

/// Octets of encoded text that decode to about `allowance` bytes.
fn encoded_allowance(encoding: Encoding, allowance: usize) -> u64 {
    let allowance = allowance as u64;
    match encoding {
        Encoding::Base64 => (allowance / 57)
            .saturating_mul(78)
            .saturating_add(allowance % 57 * 78 / 57)
            .saturating_add(78),
        // Mostly-ASCII text grows little; a prefix decoding shorter is still a prefix.
        Encoding::QuotedPrintable => allowance.saturating_add(allowance / 2),
        Encoding::Identity => allowance,
    }
}

fn is_text_body(leaf: &Leaf) -> bool {
    (leaf.mime == "text/plain" || leaf.mime == "text/html")
        && leaf
            .disposition
            .as_ref()
            .is_none_or(|(d, _)| d != "attachment")
}

/// Every leaf with its section and decision, in order.
pub fn plan(structure: &Structure, limits: Limits) -> Vec<(String, Decision)> {
    let mut out = Vec::new();
    let mut text_pool = limits.text_pool();
    let walk = leaf_sections(structure);
    // Bodies come before attachment contents in the budget, so attachments get only what the
    // bodies will leave (base64 makes 4 of every 3 bytes): none is fetched only to be dropped.
    let text: u64 = walk
        .iter()
        .filter(|(_, leaf)| is_text_body(leaf))
        .map(|(_, leaf)| estimated_size(leaf).min(limits.text_allowance() as u64))
        .sum();
    let mut attachment_pool = limits.attachment_pool(text);
    for (index, (section, leaf)) in walk.into_iter().enumerate() {
        let decision = if leaf.mime.starts_with("multipart/") || index >= MAX_PARTS {
            // Nested too deep to describe, or past the parts the pruner keeps: not fetched.
            Decision::Cut(estimated_size(leaf), CutReason::Budget)
        } else if is_text_body(leaf) {
            let want =
                encoded_allowance(Encoding::from_name(&leaf.encoding), limits.text_allowance())
                    .min(text_pool);
            text_pool -= want.min(u64::from(leaf.octets));
            if u64::from(leaf.octets) <= want {
                Decision::Whole(leaf.octets)
            } else if want == 0 {
                // The text pool is spent (and `<0.0>` is not a valid partial fetch).
                Decision::Cut(estimated_size(leaf), CutReason::Budget)
            } else {
                Decision::Partial(u32::try_from(want).unwrap_or(u32::MAX))
            }
        } else {
            let size = estimated_size(leaf);
            if size > limits.max_attachment_bytes as u64 {
                Decision::Cut(size, CutReason::Limit)
            } else if size > attachment_pool {
                Decision::Cut(size, CutReason::Budget)
            } else {
                attachment_pool -= size;
                Decision::Whole(leaf.octets)
            }
        };
        out.push((section, decision));
    }
    out
}

/// Every leaf with its section, in order: the plan's order. A message that is one leaf is
/// section `TEXT` (its body).
pub fn leaf_sections(structure: &Structure) -> Vec<(String, &Leaf)> {
    let mut walk = Vec::new();
    match structure {
        Structure::Leaf(leaf) => walk.push(("TEXT".to_string(), leaf)),
        Structure::Multipart { .. } => leaves(structure, "", &mut walk),
    }
    walk
}

/// Recurses once per level, as deep as [`Structure::from_proto`] lets a structure nest.
fn leaves<'a>(node: &'a Structure, prefix: &str, out: &mut Vec<(String, &'a Leaf)>) {
    match node {
        Structure::Leaf(leaf) => out.push((prefix.to_string(), leaf)),
        Structure::Multipart { parts, .. } => {
            for (i, part) in parts.iter().enumerate() {
                let section = if prefix.is_empty() {
                    (i + 1).to_string()
                } else {
                    format!("{prefix}.{}", i + 1)
                };
                leaves(part, &section, out);
            }
        }
    }
}

/// Sections asked for in one FETCH: a message of thousands of small parts must not make a
/// command line longer than servers accept (Dovecot: 64 KiB).
const SECTIONS_PER_FETCH: usize = 100;

/// The FETCH item lists for a plan, one per command, each with what the server may send in
/// reply to it: the top header (capped) first, then each section to read. A section may come
/// a little larger than the structure said ([`SECTION_SLACK`]), never more: whatever a
/// server's structure claimed, the command's reply is bounded by the plan, and so is the
/// read.
pub fn fetch_items(plan: &[(String, Decision)], limits: Limits) -> Vec<(String, Allowance)> {
    // IMAP numbers are 32-bit (RFC 3501): a larger partial length is a syntax error.
    let header = u32::try_from(limits.header_allowance()).unwrap_or(u32::MAX);
    let mut items = vec![(format!("BODY.PEEK[HEADER]<0.{header}>"), header)];
    for (section, decision) in plan {
        match decision {
            Decision::Whole(octets) => items.push((format!("BODY.PEEK[{section}]"), *octets)),
            Decision::Partial(n) => items.push((format!("BODY.PEEK[{section}]<0.{n}>"), *n)),
            Decision::Cut(..) => {}
        }
    }
    items
        .chunks(SECTIONS_PER_FETCH)
        .map(|chunk| {
            let names: Vec<&str> = chunk.iter().map(|(item, _)| item.as_str()).collect();
            let sizes = chunk
                .iter()
                .map(|(_, size)| u64::from(*size) + SECTION_SLACK);
            let allowance = Allowance {
                literal: sizes.clone().max().unwrap_or(0),
                bytes: sizes
                    .map(|size| size.saturating_add(1024))
                    .fold(SLACK, u64::saturating_add),
            };
            (format!("(UID {})", names.join(" ")), allowance)
        })
        .collect()
}

/// How much larger than its structure's size a section may come: a server that counts line
/// ends differently in the two is still read, one that lies by more is refused.
pub const SECTION_SLACK: u64 = 4 * 1024;

#[cfg(test)]
mod tests;
