//! BPMN XML as Camunda Modeler writes it when a modeller applies Camunda's inbound Email
//! connector templates (message start event, intermediate catch event, boundary event,
//! receive task): each element carries `zeebe:modelerTemplate` and its settings as
//! `zeebe:property` entries; the message it waits for is a `bpmn:message` whose name the
//! template generates and whose `zeebe:subscription` holds the process-side correlation key.
//!
//! A process is one sequence flow from a start event to an end event through the elements in
//! the order they were added; a boundary event hangs on a user task of its own.

/// The connector type every Email inbound template writes.
pub const INBOUND_TYPE: &str = "io.camunda:connector-email-inbound:1";

const START_TEMPLATE: &str = "io.camunda.connectors.inbound.EmailMessageStart.v1";
const INTERMEDIATE_TEMPLATE: &str = "io.camunda.connectors.inbound.EmailIntermediate.v1";
const BOUNDARY_TEMPLATE: &str = "io.camunda.connectors.inbound.EmailBoundary.v1";
const RECEIVE_TEMPLATE: &str = "io.camunda.connectors.inbound.EmailReceive.v1";
/// The version of the four templates in Camunda's package.
const TEMPLATE_VERSION: u32 = 2;

/// The `zeebe:property` entries of one element, in the order the template lists them.
#[derive(Debug, Clone)]
pub struct EmailInbound {
    properties: Vec<(String, String)>,
}

impl EmailInbound {
    /// A mailbox over plaintext IMAP, polled for unseen mail every second and marked read
    /// after the hand-over; the other fields as the template leaves them (consume unmatched
    /// events on, deduplication AUTO).
    pub fn imap(host: &str, port: u16, username: &str, password: &str) -> EmailInbound {
        let properties = [
            ("inbound.type", INBOUND_TYPE),
            ("authentication.type", "simple"),
            ("authentication.username", username),
            ("authentication.password", password),
            ("data.imapConfig.imapHost", host),
            ("data.imapConfig.imapPort", &port.to_string()),
            ("data.imapConfig.imapCryptographicProtocol", "NONE"),
            ("data.folderToListen", "INBOX"),
            ("data.pollingWaitTime", "PT1S"),
            ("data.pollingConfigDiscriminator", "unseenPollingConfig"),
            ("data.pollingConfig.handlingStrategy", "READ"),
            ("consumeUnmatchedEvents", "true"),
            ("deduplicationModeManualFlag", "false"),
            ("deduplicationMode", "AUTO"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        EmailInbound { properties }
    }

    /// The given properties as they are (our own template's, for instance).
    pub fn from_properties(properties: Vec<(String, String)>) -> EmailInbound {
        EmailInbound { properties }
    }

    /// Sets (or replaces) one property, e.g. `activationCondition`, `correlationKeyExpression`,
    /// `messageIdExpression`, `messageTtl`, `resultVariable`, `resultExpression`.
    pub fn with(mut self, name: &str, value: &str) -> EmailInbound {
        match self.properties.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.properties.push((name.to_string(), value.to_string())),
        }
        self
    }

    /// Drops a property, as the Modeler drops one left empty.
    pub fn without(mut self, name: &str) -> EmailInbound {
        self.properties.retain(|(k, _)| k != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    name: String,
    /// The process-side correlation key (FEEL), written as `zeebe:subscription`.
    correlation_key: Option<String>,
    template: &'static str,
}

#[derive(Debug, Clone)]
enum Node {
    MessageStart {
        id: String,
        message: Message,
        inbound: EmailInbound,
    },
    IntermediateCatch {
        id: String,
        message: Message,
        inbound: EmailInbound,
    },
    /// A user task with an interrupting message boundary event on it.
    BoundaryOnTask {
        task: String,
        id: String,
        message: Message,
        inbound: EmailInbound,
    },
    Receive {
        id: String,
        message: Message,
        inbound: EmailInbound,
    },
}

impl Node {
    /// The id of the node the sequence flow goes through.
    fn flow_id(&self) -> &str {
        match self {
            Node::MessageStart { id, .. }
            | Node::IntermediateCatch { id, .. }
            | Node::Receive { id, .. } => id,
            Node::BoundaryOnTask { task, .. } => task,
        }
    }

    fn message(&self) -> &Message {
        match self {
            Node::MessageStart { message, .. }
            | Node::IntermediateCatch { message, .. }
            | Node::BoundaryOnTask { message, .. }
            | Node::Receive { message, .. } => message,
        }
    }
}

/// One executable process.
#[derive(Debug, Clone)]
pub struct Process {
    id: String,
    nodes: Vec<Node>,
}

fn message(element: &str, name: &str, key: Option<&str>, template: &'static str) -> Message {
    Message {
        id: format!("Message_{element}"),
        name: name.to_string(),
        correlation_key: key.map(str::to_string),
        template,
    }
}

impl Process {
    pub fn new(id: &str) -> Process {
        Process {
            id: id.to_string(),
            nodes: Vec::new(),
        }
    }

    /// A message start event (it must come first); the template asks for no correlation key.
    pub fn message_start(mut self, id: &str, message_name: &str, inbound: EmailInbound) -> Self {
        let inbound = match inbound.get("correlationRequired") {
            Some(_) => inbound,
            None => inbound.with("correlationRequired", "notRequired"),
        };
        self.nodes.push(Node::MessageStart {
            id: id.to_string(),
            message: message(id, message_name, None, START_TEMPLATE),
            inbound,
        });
        self
    }

    /// An intermediate message catch event; `correlation_key` is the process side (`=...`).
    pub fn intermediate_catch(
        mut self,
        id: &str,
        message_name: &str,
        correlation_key: &str,
        inbound: EmailInbound,
    ) -> Self {
        self.nodes.push(Node::IntermediateCatch {
            id: id.to_string(),
            message: message(
                id,
                message_name,
                Some(correlation_key),
                INTERMEDIATE_TEMPLATE,
            ),
            inbound,
        });
        self
    }

    /// A user task `task` with a message boundary event `id` attached to it.
    pub fn boundary_on_user_task(
        mut self,
        task: &str,
        id: &str,
        message_name: &str,
        correlation_key: &str,
        inbound: EmailInbound,
    ) -> Self {
        self.nodes.push(Node::BoundaryOnTask {
            task: task.to_string(),
            id: id.to_string(),
            message: message(id, message_name, Some(correlation_key), BOUNDARY_TEMPLATE),
            inbound,
        });
        self
    }

    /// A receive task waiting for the message.
    pub fn receive_task(
        mut self,
        id: &str,
        message_name: &str,
        correlation_key: &str,
        inbound: EmailInbound,
    ) -> Self {
        self.nodes.push(Node::Receive {
            id: id.to_string(),
            message: message(id, message_name, Some(correlation_key), RECEIVE_TEMPLATE),
            inbound,
        });
        self
    }

    /// The BPMN file.
    pub fn xml(&self) -> String {
        let mut body = String::new();
        // Flow: [plain start] -> nodes ... -> end.
        let mut chain: Vec<String> = Vec::new();
        if !matches!(self.nodes.first(), Some(Node::MessageStart { .. })) {
            chain.push("StartEvent_plain".into());
        }
        chain.extend(self.nodes.iter().map(|n| n.flow_id().to_string()));
        chain.push("EndEvent_done".into());
        let incoming = |node: &str| {
            chain
                .iter()
                .position(|n| n == node)
                .filter(|i| *i > 0)
                .map(|i| format!("      <bpmn:incoming>Flow_{i}</bpmn:incoming>\n"))
                .unwrap_or_default()
        };
        let outgoing = |node: &str| {
            chain
                .iter()
                .position(|n| n == node)
                .filter(|i| i + 1 < chain.len())
                .map(|i| format!("      <bpmn:outgoing>Flow_{}</bpmn:outgoing>\n", i + 1))
                .unwrap_or_default()
        };
        if chain[0] == "StartEvent_plain" {
            body += &format!(
                "    <bpmn:startEvent id=\"StartEvent_plain\">\n{}    </bpmn:startEvent>\n",
                outgoing("StartEvent_plain")
            );
        }
        for node in &self.nodes {
            let flows = format!("{}{}", incoming(node.flow_id()), outgoing(node.flow_id()));
            body += &match node {
                Node::MessageStart {
                    id,
                    message,
                    inbound,
                } => format!(
                    "    <bpmn:startEvent id=\"{}\"{}>\n{}{flows}      <bpmn:messageEventDefinition id=\"MessageEventDefinition_{}\" messageRef=\"{}\" />\n    </bpmn:startEvent>\n",
                    esc(id),
                    template_attributes(START_TEMPLATE),
                    extension(inbound),
                    esc(id),
                    esc(&message.id)
                ),
                Node::IntermediateCatch {
                    id,
                    message,
                    inbound,
                } => format!(
                    "    <bpmn:intermediateCatchEvent id=\"{}\"{}>\n{}{flows}      <bpmn:messageEventDefinition id=\"MessageEventDefinition_{}\" messageRef=\"{}\" />\n    </bpmn:intermediateCatchEvent>\n",
                    esc(id),
                    template_attributes(INTERMEDIATE_TEMPLATE),
                    extension(inbound),
                    esc(id),
                    esc(&message.id)
                ),
                Node::BoundaryOnTask {
                    task,
                    id,
                    message,
                    inbound,
                } => format!(
                    "    <bpmn:userTask id=\"{task}\">\n{flows}    </bpmn:userTask>\n    <bpmn:boundaryEvent id=\"{id}\"{} attachedToRef=\"{task}\">\n{}      <bpmn:outgoing>Flow_{id}_escalated</bpmn:outgoing>\n      <bpmn:messageEventDefinition id=\"MessageEventDefinition_{id}\" messageRef=\"{}\" />\n    </bpmn:boundaryEvent>\n    <bpmn:endEvent id=\"EndEvent_{id}\">\n      <bpmn:incoming>Flow_{id}_escalated</bpmn:incoming>\n    </bpmn:endEvent>\n    <bpmn:sequenceFlow id=\"Flow_{id}_escalated\" sourceRef=\"{id}\" targetRef=\"EndEvent_{id}\" />\n",
                    template_attributes(BOUNDARY_TEMPLATE),
                    extension(inbound),
                    esc(&message.id),
                    task = esc(task),
                    id = esc(id),
                ),
                Node::Receive {
                    id,
                    message,
                    inbound,
                } => format!(
                    "    <bpmn:receiveTask id=\"{}\"{} messageRef=\"{}\">\n{}{flows}    </bpmn:receiveTask>\n",
                    esc(id),
                    template_attributes(RECEIVE_TEMPLATE),
                    esc(&message.id),
                    extension(inbound),
                ),
            };
        }
        body += &format!(
            "    <bpmn:endEvent id=\"EndEvent_done\">\n{}    </bpmn:endEvent>\n",
            incoming("EndEvent_done")
        );
        for i in 1..chain.len() {
            body += &format!(
                "    <bpmn:sequenceFlow id=\"Flow_{i}\" sourceRef=\"{}\" targetRef=\"{}\" />\n",
                esc(&chain[i - 1]),
                esc(&chain[i])
            );
        }
        let mut messages = String::new();
        for m in self.nodes.iter().map(Node::message) {
            messages += &format!(
                "  <bpmn:message id=\"{}\" name=\"{}\" zeebe:modelerTemplate=\"{}\">\n",
                esc(&m.id),
                esc(&m.name),
                m.template
            );
            if let Some(key) = &m.correlation_key {
                messages += &format!(
                    "    <bpmn:extensionElements>\n      <zeebe:subscription correlationKey=\"{}\" />\n    </bpmn:extensionElements>\n",
                    esc(key)
                );
            }
            messages += "  </bpmn:message>\n";
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <bpmn:definitions xmlns:bpmn=\"http://www.omg.org/spec/BPMN/20100524/MODEL\" \
             xmlns:zeebe=\"http://camunda.org/schema/zeebe/1.0\" \
             xmlns:modeler=\"http://camunda.org/schema/modeler/1.0\" \
             id=\"Definitions_{id}\" targetNamespace=\"http://bpmn.io/schema/bpmn\" \
             exporter=\"Camunda Modeler\" exporterVersion=\"5.38.0\" \
             modeler:executionPlatform=\"Camunda Cloud\" modeler:executionPlatformVersion=\"8.8.0\">\n\
             \x20 <bpmn:process id=\"{id}\" isExecutable=\"true\">\n{body}  </bpmn:process>\n{messages}</bpmn:definitions>\n",
            id = esc(&self.id),
        )
    }
}

fn template_attributes(template: &str) -> String {
    format!(
        " zeebe:modelerTemplate=\"{template}\" zeebe:modelerTemplateVersion=\"{TEMPLATE_VERSION}\""
    )
}

fn extension(inbound: &EmailInbound) -> String {
    let mut out = String::from("      <bpmn:extensionElements>\n        <zeebe:properties>\n");
    for (name, value) in &inbound.properties {
        out += &format!(
            "          <zeebe:property name=\"{}\" value=\"{}\" />\n",
            esc(name),
            esc(value)
        );
    }
    out + "        </zeebe:properties>\n      </bpmn:extensionElements>\n"
}

/// Escapes text for an XML attribute value (line breaks kept as character references, as a
/// FEEL result expression over several lines is written).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}
