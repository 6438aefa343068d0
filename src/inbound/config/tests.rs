use std::time::Duration;

use super::*;
use crate::inbound::correlation::KeySource;
use crate::inbound::watcher::DEFAULT_TTL;

fn secrets() -> SecretProvider {
    SecretProvider::new("INBOUND_TEST_SECRET_", None)
}

/// The file read under the default host policy.
fn parse(text: &str, secrets: &SecretProvider) -> Result<Vec<Watcher>, String> {
    super::parse(text, secrets, &HostPolicy::default())
}

const GOOD: &str = r#"
watchers:
  - name: support
    authentication: { username: u, password: p }
    server: { host: localhost, port: 143, security: none }
    publishMessage:
      name: mail-received
      correlationKey: { from: inReplyTo }
  - name: pop
    protocol: pop3
    authentication: { username: u, password: p }
    server: { host: localhost }
    maxPerPoll: -1
    startProcess: { bpmnProcessId: handle-mail }
"#;

#[test]
fn defaults_follow_the_spec() {
    let watchers = parse(GOOD, &secrets()).unwrap();
    let imap = &watchers[0];
    assert_eq!(imap.protocol, Protocol::Imap);
    assert_eq!(imap.folder, "INBOX");
    assert!(imap.unseen_only && imap.idle);
    assert_eq!(imap.max_per_poll, Some(5));
    assert_eq!(imap.poll_interval, Duration::from_secs(5));
    assert_eq!(imap.after, AfterProcessing::MarkRead);
    assert_eq!(imap.result_variable, "email");
    assert!(
        matches!(&imap.hand_over, HandOver::Publish { time_to_live, .. } if *time_to_live == DEFAULT_TTL)
    );
    let pop = &watchers[1];
    assert_eq!(pop.after, AfterProcessing::Delete);
    assert_eq!(pop.max_per_poll, None);
    assert_eq!(pop.target.endpoint.port, 995);
    assert!(matches!(
        &pop.hand_over,
        HandOver::Start { version: -1, .. }
    ));
}

#[test]
fn json_is_accepted() {
    let json = r#"{"watchers":[{"name":"a","authentication":{"username":"u","password":"p"},
            "server":{"host":"h"},"publishMessage":{"name":"m"}}]}"#;
    assert_eq!(parse(json, &secrets()).unwrap()[0].name, "a");
}

#[test]
fn errors_name_the_watcher_and_the_field() {
    let bad = r#"
watchers:
  - name: fine
    authentication: { username: u, password: p }
    server: { host: h }
    publishMessage: { name: m }
  - name: Bad_Name
    authentication: { username: u, password: p }
    server: { host: h, port: 70000 }
    publishMessage: { name: m }
  - name: other
    authentication: { username: u, password: p }
    server: { host: h }
    maxPerPoll: 0
    afterProcessing: move
    publishMessage: { name: m, correlationKey: { from: header } }
  - name: fine
    authentication: { username: u, password: p }
    server: { host: h }
    startProcess: { bpmnProcessId: p }
    publishMessage: { name: m }
"#;
    let e = parse(bad, &secrets()).unwrap_err();
    assert!(e.contains("watchers[1].server.port: "), "{e}");
    assert!(e.contains("watchers[2].maxPerPoll: 0"), "{e}");
    assert!(e.contains("watchers[2].moveTo: required"), "{e}");
    assert!(
        e.contains("watchers[2].publishMessage.correlationKey.header: "),
        "{e}"
    );
    assert!(e.contains("watchers[3]: either publishMessage"), "{e}");
    let zero = parse(&bad.replace("port: 70000", "port: 0"), &secrets()).unwrap_err();
    assert!(
        zero.contains("watchers[1].server.port: 0 is less than"),
        "{zero}"
    );
    let name = parse(&bad.replace("port: 70000", "port: 1"), &secrets()).unwrap_err();
    assert!(name.contains("watchers[1].name: 'Bad_Name'"), "{name}");
}

#[test]
fn unknown_fields_and_pop3_misuse_are_refused() {
    let e = parse(
            "watchers:\n  - name: a\n    protocol: pop3\n    folder: X\n    authentication: { username: u, password: p }\n    server: { host: h, colour: red }\n    publishMessage: { name: m }\n",
            &secrets(),
        )
        .unwrap_err();
    assert!(
        e.contains("watchers[0].server: Additional properties are not allowed ('colour'"),
        "{e}"
    );
    let folder = parse(
            "watchers:\n  - name: a\n    protocol: pop3\n    folder: X\n    authentication: { username: u, password: p }\n    server: { host: h }\n    publishMessage: { name: m }\n",
            &secrets(),
        )
        .unwrap_err();
    assert!(folder.contains("watchers[0].folder: IMAP only"), "{folder}");
}

#[test]
fn the_helm_charts_example_watchers_are_valid() {
    let values: Value =
        serde_norway::from_str(include_str!("../../../tests/chart/values-all-on.yaml")).unwrap();
    let file = serde_json::json!({ "watchers": values["inbound"]["watchers"] }).to_string();
    let dir = std::env::temp_dir().join(format!("inbound-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("IMAP_PASSWORD"), "imap-password-value\n").unwrap();
    let watchers = parse(&file, &SecretProvider::new("UNSET_PREFIX_", Some(dir))).unwrap();
    assert!(
        matches!(&watchers[0].after, AfterProcessing::Move(p) if p.segments == ["Processed", "2026"])
    );
    assert_eq!(
        watchers[0].target.authentication.username(),
        Some("support@example.com")
    );
}

#[test]
fn the_example_watchers_are_valid() {
    let dir = std::env::temp_dir().join(format!("inbound-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("MAIL_PASSWORD"), "pw").unwrap();
    let watchers = parse(
        include_str!("../../../examples/inbound.yaml"),
        &SecretProvider::new("UNSET_PREFIX_", Some(dir)),
    )
    .unwrap();
    assert_eq!(watchers.len(), 2);
    assert!(matches!(
        &watchers[1].hand_over,
        HandOver::Publish { name, key, time_to_live }
            if name == "reply-received"
                && key.source == KeySource::InReplyTo
                && *time_to_live == Duration::from_secs(86_400)
    ));
}

#[test]
fn pointers_become_paths() {
    assert_eq!(
        field_path("watchers[0]", "/a/0/b: x"),
        "watchers[0].a[0].b: x"
    );
    assert_eq!(field_path("watchers[0]", "/: x"), "watchers[0]: x");
    assert_eq!(field_path("", "plain"), "plain");
}

#[test]
fn message_ids_come_from_the_header_unless_stored_is_asked_for() {
    let watchers = parse(GOOD, &secrets()).unwrap();
    assert_eq!(watchers[0].message_id_from, MessageIdFrom::Header);
    let stored = GOOD.replace(
        "    publishMessage:\n",
        "    messageIdFrom: stored\n    publishMessage:\n",
    );
    assert_eq!(
        parse(&stored, &secrets()).unwrap()[0].message_id_from,
        MessageIdFrom::Stored
    );
    let wrong = GOOD.replace(
        "    publishMessage:\n",
        "    messageIdFrom: subject\n    publishMessage:\n",
    );
    let e = parse(&wrong, &secrets()).unwrap_err();
    assert!(
        e.contains(r#"watchers[0].messageIdFrom: "subject" is not one of "header" or "stored""#),
        "{e}"
    );
    let start = GOOD.replace(
        "    startProcess:",
        "    messageIdFrom: stored\n    startProcess:",
    );
    let e = parse(&start, &secrets()).unwrap_err();
    assert!(
        e.contains("watchers[1].messageIdFrom: only used with publishMessage"),
        "{e}"
    );
}

/// The watcher type is the one definition of the file: its schema lists every field and choice,
/// and a wrong choice is named with the ones allowed, by watcher and field.
#[test]
fn the_schema_of_a_watcher_comes_from_its_type() {
    let schema = watcher_schema::<Imap>();
    let properties = schema["properties"].as_object().unwrap();
    for field in [
        "name",
        "protocol",
        "authentication",
        "server",
        "folder",
        "afterProcessing",
        "moveTo",
        "publishMessage",
        "startProcess",
        "attachmentsAs",
        "messageIdFrom",
    ] {
        assert!(properties.contains_key(field), "{field}");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        properties["afterProcessing"]["enum"],
        serde_json::json!(["markRead", "move", "delete", "none"])
    );
    assert!(
        properties["messageIdFrom"]["description"]
            .as_str()
            .unwrap()
            .contains("stored")
    );
    let wrong = GOOD.replace(
        "    publishMessage:\n",
        "    afterProcessing: archive\n    attachmentsAs: pdf\n    publishMessage:\n",
    );
    let e = parse(&wrong, &secrets()).unwrap_err();
    assert!(
        e.contains(r#"watchers[0].afterProcessing: "archive" is not one of "markRead", "move""#),
        "{e}"
    );
    assert!(e.contains("watchers[0].attachmentsAs: \"pdf\""), "{e}");
    let pop_mark = GOOD.replace(
        "    startProcess:",
        "    afterProcessing: markRead\n    startProcess:",
    );
    let e = parse(&pop_mark, &secrets()).unwrap_err();
    assert!(
        e.contains("watchers[1].afterProcessing: IMAP only; POP3 allows delete, none"),
        "{e}"
    );
    let smtp = GOOD.replace("protocol: pop3", "protocol: smtp");
    let e = parse(&smtp, &secrets()).unwrap_err();
    assert!(e.contains("watchers[1].protocol: \"smtp\""), "{e}");
}

#[test]
fn a_token_endpoint_is_checked_against_the_policy_given() {
    let file = r#"
watchers:
  - name: tokens
    authentication:
      type: oauth2
      username: u
      tokenEndpoint: https://169.254.169.254/token
      clientId: c
    server: { host: localhost }
    publishMessage: { name: m }
"#;
    let e = parse(file, &secrets()).unwrap_err();
    assert_eq!(
        e,
        "watchers[0].authentication.tokenEndpoint: 169.254.169.254 is refused on this worker \
         (EMAIL_DENIED_HOSTS)"
    );
    let open = HostPolicy::new("*".parse().unwrap(), Default::default(), true).unwrap();
    assert!(super::parse(file, &secrets(), &open).is_ok());
}
