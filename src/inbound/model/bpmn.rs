//! The inbound elements of one deployed BPMN resource: start events, intermediate catch events,
//! boundary events and receive tasks that carry a `zeebe:property` named `inbound.type`, found
//! at any depth (sub-processes and event sub-processes included), with their properties and the
//! name of the message they catch.
//!
//! The XML comes from the cluster, but whoever deploys a process wrote it: it is read with a
//! size and node cap, without DTDs (no entity expansion), and walked without recursion, so a
//! deep or huge model costs a bounded amount and yields an error, never a crash.

use std::collections::{BTreeMap, HashMap};

const BPMN: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const ZEEBE: &str = "http://camunda.org/schema/zeebe/1.0";

/// A BPMN resource larger than this is not read (Zeebe's own default for a whole resource is
/// 4 MB).
pub const MAX_XML_BYTES: usize = 8 * 1024 * 1024;
/// Elements, attributes and text nodes the parser builds at most.
const MAX_NODES: u32 = 400_000;
/// Nesting of elements read at most. The parser descends recursively, so a deeper document
/// would exhaust the stack; real models nest a few dozen levels.
const MAX_DEPTH: usize = 128;

/// How an element receives what the watcher hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A message start event of the process: PublishMessage, key optional.
    MessageStart,
    /// A start event without an event definition: CreateProcessInstance of that version.
    NoneStart,
    /// A message start event of an event sub-process: a subscription of a running instance,
    /// so it needs a key; still a start event for the version rule.
    EventSubprocessStart,
    Intermediate,
    Boundary,
    Receive,
}

impl Kind {
    /// Start events are served for the latest version only.
    pub fn is_start(self) -> bool {
        matches!(
            self,
            Kind::MessageStart | Kind::NoneStart | Kind::EventSubprocessStart
        )
    }

    /// Whether a mail reaches it by PublishMessage (all but the plain start event).
    pub fn is_message(self) -> bool {
        self != Kind::NoneStart
    }

    /// Whether a correlation key is required: every message element but a process's own
    /// message start event.
    pub fn needs_key(self) -> bool {
        !matches!(self, Kind::MessageStart | Kind::NoneStart)
    }
}

/// One inbound element as modelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The id of the process the element belongs to.
    pub process_id: String,
    pub element_id: String,
    pub kind: Kind,
    /// The `name` of the `bpmn:message` it refers to.
    pub message_name: Option<String>,
    /// Its `zeebe:property` values by name; the first of a repeated name wins.
    pub properties: BTreeMap<String, String>,
}

/// The inbound elements of the process `process_id` in `xml`, of any inbound type (the caller
/// keeps those it serves).
pub fn inbound_elements(xml: &str, process_id: &str) -> Result<Vec<Element>, String> {
    if xml.len() > MAX_XML_BYTES {
        return Err(format!(
            "the BPMN resource has {} bytes, more than the {MAX_XML_BYTES} read",
            xml.len()
        ));
    }
    if nesting(xml.as_bytes()) > MAX_DEPTH {
        return Err(format!(
            "the BPMN resource nests elements deeper than the {MAX_DEPTH} levels read"
        ));
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let document = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| format!("the BPMN resource is not readable XML: {e}"))?;
    let messages: HashMap<&str, &str> = document
        .descendants()
        .filter(|n| n.has_tag_name((BPMN, "message")))
        .filter_map(|n| Some((n.attribute("id")?, n.attribute("name").unwrap_or_default())))
        .collect();
    let Some(process) = document
        .descendants()
        .find(|n| n.has_tag_name((BPMN, "process")) && n.attribute("id") == Some(process_id))
    else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for node in process.descendants() {
        let Some(kind) = kind_of(node) else {
            continue;
        };
        let properties = properties_of(node);
        if !properties.contains_key("inbound.type") {
            continue;
        }
        let message_ref = match kind {
            Kind::Receive => node.attribute("messageRef"),
            _ => node
                .children()
                .find(|c| c.has_tag_name((BPMN, "messageEventDefinition")))
                .and_then(|d| d.attribute("messageRef")),
        };
        found.push(Element {
            process_id: process_id.to_string(),
            element_id: node.attribute("id").unwrap_or_default().to_string(),
            kind,
            message_name: message_ref
                .and_then(|r| messages.get(r))
                .map(|name| name.to_string()),
            properties,
        });
    }
    Ok(found)
}

/// The deepest nesting of elements in `xml`, by a scan that knows comments, CDATA,
/// processing instructions and quoted attribute values (where a `>` does not end the tag).
/// Malformed text gives some number; the parser refuses it afterwards.
fn nesting(xml: &[u8]) -> usize {
    let find = |from: usize, needle: &[u8]| {
        xml[from.min(xml.len())..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map_or(xml.len(), |at| from + at + needle.len())
    };
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < xml.len() {
        if xml[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &xml[i..];
        if rest.starts_with(b"<!--") {
            i = find(i + 4, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(i + 9, b"]]>");
        } else if rest.starts_with(b"<?") {
            i = find(i + 2, b"?>");
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            if rest.starts_with(b"</") {
                depth = depth.saturating_sub(1);
            }
            i = find(i + 2, b">");
        } else {
            let mut quote = None;
            let mut j = i + 1;
            while j < xml.len() {
                let c = xml[j];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => break,
                    None => {}
                }
                j += 1;
            }
            if xml.get(j.wrapping_sub(1)) != Some(&b'/') {
                depth += 1;
                deepest = deepest.max(depth);
            }
            i = j + 1;
        }
    }
    deepest
}

fn kind_of(node: roxmltree::Node) -> Option<Kind> {
    if node.tag_name().namespace() != Some(BPMN) {
        return None;
    }
    let has_message = node
        .children()
        .any(|c| c.has_tag_name((BPMN, "messageEventDefinition")));
    let has_other_definition = node.children().any(|c| {
        c.is_element()
            && c.tag_name().namespace() == Some(BPMN)
            && c.tag_name().name().ends_with("EventDefinition")
            && c.tag_name().name() != "messageEventDefinition"
    });
    match node.tag_name().name() {
        "startEvent" if has_message => {
            let in_event_subprocess = node.parent_element().is_some_and(|p| {
                p.has_tag_name((BPMN, "subProcess"))
                    && matches!(p.attribute("triggeredByEvent"), Some("true" | "1"))
            });
            Some(if in_event_subprocess {
                Kind::EventSubprocessStart
            } else {
                Kind::MessageStart
            })
        }
        // Only the process's own: a plain start event inside a sub-process starts no instance.
        "startEvent"
            if !has_other_definition
                && node
                    .parent_element()
                    .is_some_and(|p| p.has_tag_name((BPMN, "process"))) =>
        {
            Some(Kind::NoneStart)
        }
        "intermediateCatchEvent" if has_message => Some(Kind::Intermediate),
        "boundaryEvent" if has_message => Some(Kind::Boundary),
        "receiveTask" => Some(Kind::Receive),
        _ => None,
    }
}

fn properties_of(node: roxmltree::Node) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    let listed = node
        .children()
        .filter(|c| c.has_tag_name((BPMN, "extensionElements")))
        .flat_map(|e| e.children())
        .filter(|c| c.has_tag_name((ZEEBE, "properties")))
        .flat_map(|p| p.children())
        .filter(|c| c.has_tag_name((ZEEBE, "property")));
    for property in listed {
        if let (Some(name), Some(value)) = (property.attribute("name"), property.attribute("value"))
        {
            properties
                .entry(name.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    properties
}

#[cfg(test)]
mod tests;
