use super::*;

fn properties(pairs: &[(&str, &str)]) -> String {
    let inner: String = pairs
        .iter()
        .map(|(n, v)| format!(r#"<zeebe:property name="{n}" value="{v}"/>"#))
        .collect();
    format!(
        "<bpmn:extensionElements><zeebe:properties>{inner}</zeebe:properties></bpmn:extensionElements>"
    )
}

fn model() -> String {
    let email = properties(&[
        ("inbound.type", "io.camunda:connector-email-inbound:1"),
        ("data.folderToListen", "INBOX"),
        ("data.folderToListen", "Second"),
        ("activationCondition", "=subject = &quot;a&lt;b&quot;"),
    ]);
    let plain = properties(&[("other", "x")]);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="mail" isExecutable="true">
    <bpmn:startEvent id="start">{email}<bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>
    <bpmn:startEvent id="timer">{email}<bpmn:timerEventDefinition/></bpmn:startEvent>
    <bpmn:startEvent id="plain">{plain}</bpmn:startEvent>
    <bpmn:subProcess id="sub">
      <bpmn:intermediateCatchEvent id="wait">{email}<bpmn:messageEventDefinition messageRef="m2"/></bpmn:intermediateCatchEvent>
    </bpmn:subProcess>
    <bpmn:subProcess id="inner">
      <bpmn:startEvent id="innerStart">{email}</bpmn:startEvent>
    </bpmn:subProcess>
    <bpmn:subProcess id="events" triggeredByEvent="1">
      <bpmn:startEvent id="esp">{email}<bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>
    </bpmn:subProcess>
    <bpmn:userTask id="task"/>
    <bpmn:boundaryEvent id="edge" attachedToRef="task">{email}<bpmn:messageEventDefinition messageRef="m2"/></bpmn:boundaryEvent>
    <bpmn:receiveTask id="receive" messageRef="m3">{email}</bpmn:receiveTask>
    <bpmn:startEvent id="bare">{email}</bpmn:startEvent>
  </bpmn:process>
  <bpmn:process id="other" isExecutable="true">
    <bpmn:startEvent id="elsewhere">{email}<bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>
  </bpmn:process>
  <bpmn:message id="m1" name="mail-start"/>
  <bpmn:message id="m2" name="mail-wait"/>
  <bpmn:message id="m3" name="mail-receive"/>
</bpmn:definitions>"#
    )
}

#[test]
fn finds_every_inbound_element_of_the_process_at_any_depth() {
    let found = inbound_elements(&model(), "mail").unwrap();
    let summary: Vec<(&str, Kind, Option<&str>)> = found
        .iter()
        .map(|e| (e.element_id.as_str(), e.kind, e.message_name.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("start", Kind::MessageStart, Some("mail-start")),
            ("wait", Kind::Intermediate, Some("mail-wait")),
            ("esp", Kind::EventSubprocessStart, Some("mail-start")),
            ("edge", Kind::Boundary, Some("mail-wait")),
            ("receive", Kind::Receive, Some("mail-receive")),
            ("bare", Kind::NoneStart, None),
        ]
    );
    let start = &found[0];
    assert_eq!(
        start.properties["data.folderToListen"], "INBOX",
        "first wins"
    );
    assert_eq!(
        start.properties["activationCondition"],
        "=subject = \"a<b\""
    );
    assert!(found.iter().all(|e| e.process_id == "mail"));
    let other = inbound_elements(&model(), "other").unwrap();
    assert_eq!(other.len(), 1);
    assert!(inbound_elements(&model(), "absent").unwrap().is_empty());
}

#[test]
fn hostile_models_are_refused_not_expanded() {
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;</bpmn:definitions>"#;
    let error = inbound_elements(laughs, "mail").unwrap_err();
    assert!(error.contains("not readable XML"), "{error}");
    let wide = format!(
        r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">{}</bpmn:definitions>"#,
        "<a/>".repeat(MAX_NODES as usize + 10)
    );
    assert!(inbound_elements(&wide, "mail").is_err());
    let huge = " ".repeat(MAX_XML_BYTES + 1);
    assert!(
        inbound_elements(&huge, "mail")
            .unwrap_err()
            .contains("bytes")
    );
    let deep = format!(
        r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"><bpmn:process id="mail">{}{}</bpmn:process></bpmn:definitions>"#,
        "<bpmn:subProcess>".repeat(100_000),
        "</bpmn:subProcess>".repeat(100_000)
    );
    let refused = inbound_elements(&deep, "mail").unwrap_err();
    assert!(refused.contains("deeper"), "{refused}");
    // As deep as allowed is read, and an element at the bottom is found.
    let email = properties(&[("inbound.type", "x")]);
    let allowed = format!(
        r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"><bpmn:process id="mail">{}<bpmn:receiveTask id="r" note="a > b">{email}</bpmn:receiveTask><!-- <x> --><![CDATA[<y>]]>{}</bpmn:process></bpmn:definitions>"#,
        "<bpmn:subProcess>".repeat(MAX_DEPTH - 6),
        "</bpmn:subProcess>".repeat(MAX_DEPTH - 6)
    );
    let found = inbound_elements(&allowed, "mail").unwrap();
    assert_eq!(found.len(), 1);
    assert!(inbound_elements("not xml at all <", "mail").is_err());
}
