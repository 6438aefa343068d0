//! The operator's own endpoints pass the host policy (issue 21): `EMAIL_ALLOWED_HOSTS` bounds
//! what jobs choose (mail servers, token endpoints in `authentication`), not Camunda's document
//! store, which the operator configured with `CAMUNDA_REST_ADDRESS`. (The gateway's token
//! endpoint: `tests/camunda/camunda.rs`.)

use crate::support;

use serde_json::json;
use support::documents::DocumentStore;
use support::{Jobs, testbed, unique};

/// A send whose attachment is a document reference: the worker downloads it from the store at
/// `localhost` (a name, so the resolver is asked) while the policy allows only the mail
/// server's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_store_passes_a_narrow_host_policy() {
    let store = DocumentStore::start().await;
    let url = format!("http://localhost:{}", store.address.port());
    let jobs = Jobs::start_with(
        "smtp",
        &[
            ("CAMUNDA_REST_ADDRESS", &url),
            ("EMAIL_ALLOWED_HOSTS", "127.0.0.1"),
        ],
    )
    .await;
    let tb = testbed();
    let reference = store.put(b"stored bytes", "stored.txt", "text/plain");
    let vars = json!({
        "authentication": { "type": "simple", "username": "docs4@example.test", "password": "docs4-pw" },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_SUBMISSION"), "security": "starttls",
                    "serverCertificate": tb.ca_pem(), "timeoutSeconds": 30 },
        "from": "docs4@example.test", "to": "operator-endpoints@discard.test",
        "subject": unique("operator"), "body": "see attachment", "attachments": [reference]
    });
    let response = jobs.ok("send", vars.clone()).await;
    assert_eq!(response["sent"], true, "{response}");
    // The policy still holds for what the job chose.
    let mut elsewhere = vars;
    elsewhere["server"]["host"] = json!("localhost");
    let (retries, message, _) = jobs.fails("send", elsewhere).await;
    assert_eq!(retries, 0, "{message}");
    assert!(message.starts_with("INVALID_INPUT: "), "{message}");
    assert!(message.contains("EMAIL_ALLOWED_HOSTS"), "{message}");
}
