//! IMAP responses as the operations use them: async-imap's borrowed, private response types
//! turned into owned values ([`Untagged`], [`FetchItem`]) and collected per command
//! ([`Reply`]).

use async_imap::imap_proto::{MailboxDatum, Response, ResponseCode, Status};

use super::error::ServerReply;

/// What a command's untagged responses told us, owned (async-imap's response type is private).
#[derive(Debug, Clone, PartialEq)]
pub enum Untagged {
    /// SEARCH or SORT results, in the server's order.
    Ids(Vec<u32>),
    Exists(u32),
    UidValidity(u32),
    /// The first destination UID of a COPYUID response code (RFC 4315).
    CopyUid(u32),
    List {
        name: String,
        delimiter: Option<String>,
        selectable: bool,
        /// The name attributes as the server wrote them (`\\HasChildren`, `\\Sent`).
        attributes: Vec<String>,
    },
    Fetch(FetchItem),
    Bye(String),
    Other,
}

/// The attributes of one FETCH response that the operations use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchItem {
    pub uid: Option<u32>,
    pub size: Option<u32>,
    /// INTERNALDATE as the server sent it (`01-Feb-2024 10:00:00 +0000`).
    pub internal_date: Option<String>,
    /// The first body section or RFC822 data.
    pub body: Option<Vec<u8>>,
    /// Which section `body` is (`HEADER`, `1.2`, `TEXT`; empty for `BODY[]`).
    pub body_section: Option<String>,
    /// The body sections after the first, by section (each is held once).
    pub sections: Vec<(String, Vec<u8>)>,
    pub structure: Option<Box<super::structure::Structure>>,
    /// The FLAGS, when asked for.
    pub flags: Option<Vec<String>>,
}

impl Untagged {
    /// About the bytes this value holds in memory: what a command's reply is charged for it.
    pub fn footprint(&self) -> usize {
        let heap = match self {
            Untagged::Ids(ids) => ids.len() * size_of::<u32>(),
            Untagged::List {
                name,
                delimiter,
                attributes,
                ..
            } => {
                name.len()
                    + delimiter.as_ref().map_or(0, String::len)
                    + attributes.iter().map(String::len).sum::<usize>()
            }
            Untagged::Fetch(item) => item.heap(),
            Untagged::Bye(text) => text.len(),
            Untagged::Exists(_) | Untagged::UidValidity(_) | Untagged::CopyUid(_) => 0,
            Untagged::Other => 0,
        };
        size_of::<Untagged>() + heap
    }
}

impl FetchItem {
    fn heap(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        text(&self.internal_date)
            + text(&self.body_section)
            + self.body.as_ref().map_or(0, Vec::len)
            + self
                .sections
                .iter()
                .map(|(name, data)| size_of::<(String, Vec<u8>)>() + name.len() + data.len())
                .sum::<usize>()
            + self.structure.as_ref().map_or(0, |s| s.footprint())
            + self
                .flags
                .iter()
                .flatten()
                .map(|f| size_of::<String>() + f.len())
                .sum::<usize>()
    }
}

/// One response as a session reads it.
#[derive(Debug, PartialEq)]
pub enum Event {
    Continue,
    Done {
        tag: String,
        /// How the command was refused; `None` for OK.
        refusal: Option<ServerReply>,
        copy_uid: Option<u32>,
    },
    Untagged(Untagged),
}

/// The first destination UID of a COPYUID or APPENDUID response code (RFC 4315): where a
/// copied, moved or appended message now is.
fn copy_uid(code: &Option<ResponseCode<'_>>) -> Option<u32> {
    match code {
        Some(ResponseCode::CopyUid(_, _, to) | ResponseCode::AppendUid(_, to)) => {
            to.first().map(|member| match member {
                async_imap::imap_proto::rfc4315::UidSetMember::Uid(uid) => *uid,
                async_imap::imap_proto::rfc4315::UidSetMember::UidRange(range) => *range.start(),
            })
        }
        _ => None,
    }
}

/// A parsed response in our own terms, taking the UIDs of a SEARCH or SORT response out of
/// it rather than copying them.
pub fn into_event(response: Response<'_>) -> Event {
    match response {
        Response::MailboxData(MailboxDatum::Search(ids) | MailboxDatum::Sort(ids)) => {
            Event::Untagged(Untagged::Ids(ids))
        }
        other => event(&other),
    }
}

/// A parsed response in our own terms.
pub fn event(response: &Response<'_>) -> Event {
    use async_imap::imap_proto::AttributeValue;
    match response {
        Response::Continue { .. } => Event::Continue,
        Response::Done {
            tag,
            status,
            outcome,
        } => Event::Done {
            tag: tag.0.clone(),
            refusal: (!matches!(status, Status::Ok))
                .then(|| ServerReply::from_outcome(status, outcome)),
            copy_uid: copy_uid(&outcome.code),
        },
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Event::Untagged(Untagged::Bye(
            outcome.information.as_deref().unwrap_or("").to_string(),
        )),
        Response::Data { outcome, .. } => Event::Untagged(match &outcome.code {
            Some(ResponseCode::UidValidity(v)) => Untagged::UidValidity(*v),
            c => copy_uid(c).map_or(Untagged::Other, Untagged::CopyUid),
        }),
        Response::MailboxData(MailboxDatum::Search(ids) | MailboxDatum::Sort(ids)) => {
            Event::Untagged(Untagged::Ids(ids.clone()))
        }
        Response::MailboxData(MailboxDatum::Exists(n)) => Event::Untagged(Untagged::Exists(*n)),
        Response::MailboxData(MailboxDatum::List(list)) => Event::Untagged(Untagged::List {
            name: list.name.to_string(),
            delimiter: list.delimiter.as_ref().map(|d| d.to_string()),
            selectable: !list
                .name_attributes
                .iter()
                .any(|a| matches!(a, async_imap::imap_proto::NameAttribute::NoSelect)),
            attributes: list
                .name_attributes
                .iter()
                .map(name_attribute)
                .filter(|a| !a.is_empty())
                .collect(),
        }),
        Response::Fetch(_, attributes) => {
            let mut item = FetchItem::default();
            for attribute in attributes {
                match attribute {
                    AttributeValue::Uid(uid) => item.uid = Some(*uid),
                    AttributeValue::Flags(flags) => {
                        item.flags = Some(flags.iter().map(|f| f.to_string()).collect())
                    }
                    AttributeValue::Rfc822Size(size) => item.size = Some(*size),
                    AttributeValue::InternalDate(date) => {
                        item.internal_date = Some(date.to_string())
                    }
                    AttributeValue::BodySection {
                        data: Some(data),
                        section,
                        ..
                    } if item.body.is_none() => {
                        item.body = Some(data.to_vec());
                        item.body_section = Some(super::structure::section_name(section));
                    }
                    AttributeValue::BodySection {
                        data: Some(data),
                        section,
                        ..
                    } => item
                        .sections
                        .push((super::structure::section_name(section), data.to_vec())),
                    AttributeValue::Rfc822(Some(data)) if item.body.is_none() => {
                        item.body = Some(data.to_vec())
                    }
                    AttributeValue::BodyStructure(structure) => {
                        item.structure =
                            Some(Box::new(super::structure::Structure::from_proto(structure)))
                    }
                    _ => {}
                }
            }
            Event::Untagged(Untagged::Fetch(item))
        }
        _ => Event::Untagged(Untagged::Other),
    }
}

/// A LIST name attribute as written on the wire (RFC 3501, RFC 6154 special use).
fn name_attribute(attribute: &async_imap::imap_proto::NameAttribute<'_>) -> String {
    use async_imap::imap_proto::NameAttribute as A;
    match attribute {
        A::NoInferiors => "\\Noinferiors",
        A::NoSelect => "\\Noselect",
        A::Marked => "\\Marked",
        A::Unmarked => "\\Unmarked",
        A::All => "\\All",
        A::Archive => "\\Archive",
        A::Drafts => "\\Drafts",
        A::Flagged => "\\Flagged",
        A::Junk => "\\Junk",
        A::Sent => "\\Sent",
        A::Trash => "\\Trash",
        A::Extension(other) => return other.to_string(),
        _ => "",
    }
    .to_string()
}

/// The reply to one command: its untagged responses and the completion's COPYUID.
#[derive(Debug, Default)]
pub struct Reply {
    pub data: Vec<Untagged>,
    pub completion_copy_uid: Option<u32>,
}

impl Reply {
    /// UIDs of the SEARCH or SORT responses, in the server's order. Taken out of the reply,
    /// not copied: a folder's worth of UIDs is held once.
    pub fn ids(self) -> Vec<u32> {
        let mut all: Vec<u32> = Vec::new();
        for untagged in self.data {
            if let Untagged::Ids(ids) = untagged {
                if all.is_empty() {
                    all = ids;
                } else {
                    all.extend(ids);
                }
            }
        }
        all
    }

    /// The destination UID of a copied or moved message, from the completion or from an
    /// untagged OK (servers send it either way).
    pub fn copy_uid(&self) -> Option<u32> {
        self.completion_copy_uid.or_else(|| {
            self.data.iter().find_map(|u| match u {
                Untagged::CopyUid(uid) => Some(*uid),
                _ => None,
            })
        })
    }

    pub fn fetches(self) -> impl Iterator<Item = FetchItem> {
        self.data.into_iter().filter_map(|u| match u {
            Untagged::Fetch(item) => Some(item),
            _ => None,
        })
    }
}

/// Reads a server's bytes the way a session does: the nesting guard first, then imap-proto one
/// response at a time, each turned into our own values. Stops at the first response imap-proto
/// cannot parse or that is incomplete. For the fuzz target and tests; the session reads the
/// same way from its socket.
pub fn interpret(bytes: &[u8]) -> Reply {
    let mut reply = Reply::default();
    if super::nesting::Nesting::default().scan(bytes).is_err() {
        return reply;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        let Ok((left, response)) = Response::parse(rest) else {
            break;
        };
        match event(&response) {
            Event::Untagged(untagged) => reply.data.push(untagged),
            Event::Done { copy_uid, .. } => {
                reply.completion_copy_uid = reply.completion_copy_uid.or(copy_uid)
            }
            Event::Continue => {}
        }
        if left.len() >= rest.len() {
            break;
        }
        rest = left;
    }
    reply
}
