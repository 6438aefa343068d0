//! Our own inbound templates, filled as the Modeler fills them: every property's default from
//! the generated template file, the conditions evaluated, then what the modeller types. What
//! they offer beyond Camunda's (POP3, IMAP IDLE, `maxPerPoll`, our payload) reaches the gateway.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{start_worker, wait_readyz, watching};
use crate::support::bpmn::{EmailInbound, Process};
use crate::support::camunda_rest::CamundaRest;
use crate::support::gateway::TestGateway;
use crate::support::mailbox::clear_inbox;
use crate::support::testbed;
use crate::{deliver, flags_of, mail, wait_flags, with_id};

/// The `zeebe:property` entries the Modeler writes for template `kind` after the modeller set
/// `typed` (by property id): defaults, then the typed values, each property kept only while
/// its condition holds (as the Modeler removes a hidden property's binding).
fn filled(kind: &str, typed: &[(&str, &str)]) -> EmailInbound {
    let path = format!(
        "{}/element-templates/email-inbound-{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("template")).expect("json");
    let properties = template["properties"].as_array().expect("properties");
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for p in properties {
        let text = match &p["value"] {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        values.insert(p["id"].as_str().unwrap_or_default().to_string(), text);
    }
    for (id, value) in typed {
        values.insert(id.to_string(), value.to_string());
    }
    let mut written = Vec::new();
    for p in properties {
        if p["binding"]["type"] != "zeebe:property" {
            continue;
        }
        let id = p["id"].as_str().unwrap_or_default();
        let Some(value) = values.get(id).filter(|v| !v.is_empty()) else {
            continue;
        };
        if p.get("condition").is_some_and(|c| !holds(c, &values)) {
            continue;
        }
        let name = p["binding"]["name"].as_str().unwrap_or_default();
        written.push((name.to_string(), value.clone()));
    }
    EmailInbound::from_properties(written)
}

fn holds(condition: &Value, values: &BTreeMap<String, String>) -> bool {
    if let Some(all) = condition["allMatch"].as_array() {
        return all.iter().all(|c| holds(c, values));
    }
    let current = condition["property"]
        .as_str()
        .and_then(|p| values.get(p))
        .filter(|v| !v.is_empty());
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(expected) = condition.get("equals") {
        return current == Some(&text(expected));
    }
    if let Some(options) = condition["oneOf"].as_array() {
        return current.is_some_and(|c| options.iter().any(|o| &text(o) == c));
    }
    if let Some(active) = condition["isActive"].as_bool() {
        return current.is_some() == active;
    }
    true
}

fn login(user: &str) -> [(String, String); 3] {
    [
        ("authentication.type".into(), "simple".into()),
        (
            "authentication.username".into(),
            format!("{user}@example.test"),
        ),
        ("authentication.password".into(), format!("{user}-pw")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_template_serves_a_pop3_maildrop_and_an_idling_imap_folder_from_the_model() {
    let (pop_user, imap_user) = ("model10", "model11");
    clear_inbox(pop_user).await;
    clear_inbox(imap_user).await;
    let tb = testbed();
    let pop_port = tb.port("PORT_POP3").to_string();
    let imap_port = tb.port("PORT_IMAP").to_string();
    let [a, b, c] = login(pop_user);
    let pop = filled(
        "start",
        &[
            ("protocol", "pop3"),
            (&a.0, &a.1),
            (&b.0, &b.1),
            (&c.0, &c.1),
            ("server.host-variant", "127.0.0.1"),
            ("server.security", "none"),
            ("server.port.none-variant", &pop_port),
            ("server.timeoutSeconds", "20"),
            ("pollInterval", "PT0.5S"),
        ],
    );
    let [a, b, c] = login(imap_user);
    let imap = filled(
        "intermediate",
        &[
            (&a.0, &a.1),
            (&b.0, &b.1),
            (&c.0, &c.1),
            ("server.host", "127.0.0.1"),
            ("server.security", "none"),
            ("server.port.none", &imap_port),
            ("maxPerPoll", "2"),
            ("correlationKeyPayload", "=subject"),
            ("criteria", r#"{"field": "SUBJECT", "value": "case-"}"#),
        ],
    );
    assert_eq!(imap.get("idle"), Some("true"), "IDLE is the default");
    assert_eq!(
        pop.get("idle"),
        None,
        "IMAP-only fields are not written for POP3"
    );
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "our-template";
    rest.deploy(
        pid,
        &Process::new(pid)
            .message_start("StartEvent_pop", "our-pop-start", pop)
            .intermediate_catch("Catch_imap", "our-imap-wait", "=caseId", imap)
            .xml(),
    );
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "both elements", |body| {
        watching(body, pid, 1, "StartEvent_pop") && watching(body, pid, 1, "Catch_imap")
    })
    .await;

    let pop_id = format!("{}@example.test", crate::support::unique("ours-pop"));
    deliver(pop_user, &mail(&pop_id, "by pop3", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&pop_id))
        .await;
    let email = &published[0].variables["email"];
    assert_eq!(published[0].name, "our-pop-start");
    assert_eq!(email["subject"], "by pop3", "{email}");
    // Our read shape, with where the mail came from.
    assert!(
        email["watcher"]
            .as_str()
            .is_some_and(|w| w.starts_with("model-")),
        "{email}"
    );
    assert!(
        email.get("plainTextBody").is_some() && email.get("errors").is_none(),
        "{email}"
    );
    // POP3's default after-processing deletes the mail once Zeebe has it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while flags_of(pop_user, "INBOX", &pop_id).await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "{pop_id} was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The criteria filter on the server: a mail they do not find is neither handed over nor
    // touched.
    let other_id = format!("{}@example.test", crate::support::unique("ours-other"));
    deliver(imap_user, &mail(&other_id, "unrelated", "")).await;
    let imap_id = format!("{}@example.test", crate::support::unique("ours-imap"));
    deliver(imap_user, &mail(&imap_id, "case-42", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&imap_id))
        .await;
    assert_eq!(published[0].name, "our-imap-wait");
    assert_eq!(published[0].correlation_key, "case-42");
    assert_eq!(published[0].variables["email"]["folder"], "INBOX");
    wait_flags(imap_user, "INBOX", &imap_id, &["Seen"]).await;
    assert!(
        gateway
            .published()
            .iter()
            .all(|p| !p.message_id.contains(&other_id))
    );
    let other = flags_of(imap_user, "INBOX", &other_id)
        .await
        .unwrap_or_default();
    assert!(!other.iter().any(|f| f == "Seen"), "{other:?}");
    assert!(
        plain(&worker.logs()).contains("idle=true"),
        "the IMAP element's watcher idles"
    );
}

fn plain(log: &str) -> String {
    crate::plain(log)
}
