use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn definition() -> Definition {
    Definition {
        key: 7,
        process_id: "mail".into(),
        version: 3,
        tenant_id: "<default>".into(),
    }
}

fn element(kind: Kind, pairs: &[(&str, &str)]) -> Element {
    Element {
        process_id: "mail".into(),
        element_id: "start".into(),
        kind,
        message_name: Some("mail-start".into()),
        properties: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

const CAMUNDA: &[(&str, &str)] = &[
    ("inbound.type", CAMUNDA_INBOUND_TYPE),
    ("authentication.type", "simple"),
    ("authentication.username", "u@example.test"),
    ("authentication.password", "{{secrets.PW}}"),
    ("data.imapConfig.imapHost", "mail.example.test"),
    ("data.imapConfig.imapPort", "143"),
    ("data.imapConfig.imapCryptographicProtocol", "NONE"),
    ("data.pollingWaitTime", "PT20S"),
    ("data.pollingConfigDiscriminator", "unseenPollingConfig"),
    ("data.pollingConfig.handlingStrategy", "READ"),
    ("activationCondition", "=subject = \"x\""),
    ("consumeUnmatchedEvents", "true"),
    ("deduplicationMode", "AUTO"),
    ("resultVariable", "email"),
];

fn with(base: &[(&str, &str)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all: BTreeMap<String, String> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in changes {
        all.insert(k.to_string(), v.to_string());
    }
    all.into_iter().collect()
}

fn camunda(changes: &[(&str, &str)], kind: Kind) -> Result<Resolved, String> {
    let pairs = with(CAMUNDA, changes);
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    resolve(&element(kind, &borrowed), &definition(), true)
}

#[test]
fn camunda_properties_keep_camundas_meaning() {
    let resolved = camunda(&[], Kind::MessageStart).unwrap();
    assert_eq!(
        resolved.mailbox,
        json!({
            "authentication": { "type": "simple", "username": "u@example.test", "password": "{{secrets.PW}}" },
            "server": { "host": "mail.example.test", "security": "none", "port": 143 },
            "folder": "INBOX",
            "unseenOnly": true,
            "maxPerPoll": -1,
            "pollInterval": "PT20S",
            "attachmentsAs": "document",
            "afterProcessing": "markRead",
        })
    );
    let target = resolved.target;
    assert!(target.consume_unmatched && target.camunda_payload);
    assert_eq!(target.message_name, "mail-start");
    assert_eq!(target.time_to_live, Duration::from_secs(3600));
    assert_eq!(target.label(), "mail v3 start");
    assert!(resolved.manual_group.is_none());

    let all = camunda(
        &[
            ("data.pollingConfigDiscriminator", "allPollingConfig"),
            ("data.pollingConfig.handlingStrategy", "MOVE"),
            ("data.pollingConfig.targetFolder", "Archive/2026.Done"),
            ("data.imapConfig.imapCryptographicProtocol", "SSL"),
            ("messageTtl", "PT5M"),
        ],
        Kind::MessageStart,
    )
    .unwrap();
    assert_eq!(all.mailbox["unseenOnly"], json!(false));
    assert_eq!(all.mailbox["afterProcessing"], json!("move"));
    assert_eq!(all.mailbox["moveTo"], json!(["Archive", "2026", "Done"]));
    assert_eq!(all.mailbox["server"]["security"], json!("tls"));
    assert_eq!(all.target.time_to_live, Duration::from_secs(300));
    // Host, port and folder may be FEEL in Camunda's templates.
    let feel = camunda(
        &[
            ("data.imapConfig.imapPort", "=993"),
            ("data.imapConfig.imapHost", "=\"imap.\" + \"example.test\""),
            ("data.folderToListen", "=\"Support\""),
        ],
        Kind::MessageStart,
    )
    .unwrap();
    assert_eq!(feel.mailbox["server"]["port"], json!(993));
    assert_eq!(feel.mailbox["server"]["host"], json!("imap.example.test"));
    assert_eq!(feel.mailbox["folder"], json!("Support"));
    // Marking read is no handling of "all" polling in Camunda's templates.
    let read_all = camunda(
        &[("data.pollingConfigDiscriminator", "allPollingConfig")],
        Kind::MessageStart,
    );
    assert!(
        read_all
            .err()
            .unwrap_or_default()
            .contains("handlingStrategy")
    );
}

#[test]
fn what_camunda_skips_is_refused_naming_the_property() {
    type Case<'a> = (&'a [(&'a str, &'a str)], Kind, &'a str);
    let cases: &[Case] = &[
        (&[], Kind::Intermediate, "correlationKeyExpression"),
        (
            &[("data.imapConfig.imapPort", "99999")],
            Kind::MessageStart,
            "imapPort",
        ),
        (
            &[("data.imapConfig.imapCryptographicProtocol", "STARTTLS")],
            Kind::MessageStart,
            "imapCryptographicProtocol",
        ),
        (
            &[("data.pollingConfig.handlingStrategy", "MOVE")],
            Kind::MessageStart,
            "targetFolder",
        ),
        (&[("messageTtl", "soon")], Kind::MessageStart, "messageTtl"),
        (
            &[("activationCondition", "=subject = ")],
            Kind::MessageStart,
            "activationCondition",
        ),
        (
            &[("deduplicationMode", "MANUAL")],
            Kind::MessageStart,
            "deduplicationId",
        ),
    ];
    for (changes, kind, named) in cases {
        let problem = camunda(changes, *kind).err().unwrap_or_default();
        assert!(problem.contains(named), "{changes:?}: {problem}");
    }
    let keyed = camunda(&[("correlationKeyExpression", "=subject")], Kind::Boundary).unwrap();
    assert!(keyed.target.correlation_key.is_some());
    let manual = camunda(
        &[
            ("deduplicationMode", "MANUAL"),
            ("deduplicationId", "support"),
        ],
        Kind::MessageStart,
    )
    .unwrap();
    assert_eq!(manual.manual_group.as_deref(), Some("support"));
    let mut nameless = element(Kind::MessageStart, CAMUNDA);
    nameless.message_name = None;
    assert!(resolve(&nameless, &definition(), true).is_err());
    let plain = element(Kind::NoneStart, CAMUNDA);
    assert_eq!(
        resolve(&plain, &definition(), true)
            .unwrap()
            .target
            .message_name,
        ""
    );
}

#[test]
fn our_properties_nest_by_their_dots_and_keep_their_types() {
    let ours = element(
        Kind::MessageStart,
        &[
            ("inbound.type", OUR_INBOUND_TYPE),
            ("protocol", "imap"),
            ("authentication.username", "u"),
            ("authentication.password", "p"),
            ("server.host", "127.0.0.1"),
            ("server.port", "1143"),
            ("server.security", "none"),
            ("idle", "false"),
            ("maxPerPoll", "3"),
            ("moveTo", "[\"A\", \"B.C\"]"),
            ("folder", ""),
            ("correlationKeyExpression", "=subject"),
            ("resultVariable", "email"),
        ],
    );
    let resolved = resolve(&ours, &definition(), false).unwrap();
    assert_eq!(
        resolved.mailbox,
        json!({
            "authentication": { "password": "p", "username": "u" },
            "idle": false,
            "maxPerPoll": 3,
            "moveTo": ["A", "B.C"],
            "protocol": "imap",
            "server": { "host": "127.0.0.1", "port": 1143, "security": "none" },
        })
    );
    assert!(!resolved.target.camunda_payload);
    let deep = element(
        Kind::MessageStart,
        &[("inbound.type", OUR_INBOUND_TYPE), ("a.b.c.d.e.f.g.h", "x")],
    );
    assert!(
        resolve(&deep, &definition(), false)
            .err()
            .unwrap_or_default()
            .contains("deep")
    );
    let clash = element(
        Kind::MessageStart,
        &[
            ("inbound.type", OUR_INBOUND_TYPE),
            ("server", "x"),
            ("server.host", "h"),
        ],
    );
    assert!(resolve(&clash, &definition(), false).is_err());
    let bad_json = element(
        Kind::MessageStart,
        &[("inbound.type", OUR_INBOUND_TYPE), ("maxPerPoll", "five")],
    );
    assert!(
        resolve(&bad_json, &definition(), false)
            .err()
            .unwrap_or_default()
            .contains("maxPerPoll")
    );
}
