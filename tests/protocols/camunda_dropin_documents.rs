//! Documents through the drop-in with a Camunda document store (the test store of
//! `support::documents`, on loopback): a send of a stored document picked with the template's
//! document picker, reads over IMAP and POP3 whose attachments come back as Camunda's document
//! references with the bytes in the store, a forward of those references, and an attachment the
//! store refuses as too large, named in `errors` while the read completes.

use crate::camunda_dropin::{READ_KEYS, Run, SENDER, connection, keys, setup_with, with};
use crate::support;

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};
use support::camunda_template::outbound_version;
use support::documents::{DocumentStore, STORE_ID};
use support::{testbed, unique};

const CAMUNDA_TYPE: &str = "io.camunda:email:1";
const WAIT: Duration = Duration::from_secs(30);
const USER: &str = "dropin11";

/// A PDF-ish payload that is not text, so no transfer encoding keeps it as it is by chance.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Checks one of Camunda's document references against the store and the original bytes.
fn check_reference(reference: &Value, store: &DocumentStore, original: &[u8], file_name: &str) {
    assert_eq!(reference["camunda.document.type"], "camunda", "{reference}");
    assert_eq!(reference["storeId"], STORE_ID);
    assert!(reference["contentHash"].is_string(), "{reference}");
    assert_eq!(reference["metadata"]["fileName"], file_name);
    assert_eq!(reference["metadata"]["size"], original.len());
    assert!(
        reference.get("content").is_none(),
        "no inline content: {reference}"
    );
    let id = reference["documentId"].as_str().expect("documentId");
    let stored = store.bytes(id).expect("the document is in the store");
    assert!(stored == original, "the stored bytes are the attachment's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_go_to_and_come_from_camundas_document_store() {
    let store = DocumentStore::start().await;
    let url = store.url();
    let s = setup_with(CAMUNDA_TYPE, &[USER], &[("CAMUNDA_REST_ADDRESS", &url)]).await;
    let run = Run::of(CAMUNDA_TYPE, USER, USER);
    let template = outbound_version(8);
    let report = payload(200_000);
    let picked = store.put(&report, "Bericht Müller.pdf", "application/pdf");
    let marker = unique("dropin-docs");
    let smtp = connection(&template, "smtp", SENDER, false);
    let imap = connection(&template, "imap", USER, false);
    // A send to USER with the picker's `helpers` (binding names of the document picker).
    let send = |subject: &str, body: &str, helpers: Value| {
        with(
            json!({
                "data.smtpActionDiscriminator": "sendEmailSmtp",
                "data.smtpAction.from": format!("{SENDER}@example.test"),
                "data.smtpAction.to": format!("{USER}@example.test"),
                "data.smtpAction.subject": subject,
                "data.smtpAction.body": body,
            }),
            helpers,
        )
    };
    let subject = |marker: &str| json!({ "field": "SUBJECT", "value": marker });
    let read_imap = |id: &str| json!({ "data.imapActionDiscriminator": "readEmailImap", "data.imapAction.messageId": id });

    // A stored document, picked with the template's document picker (its composer makes the
    // list the connector reads).
    let picked_one = send(
        &marker,
        "The report is attached.",
        json!({
            "data_smtpAction_attachments_documentMode": "single",
            "data_smtpAction_attachments_single_documentSource": "camunda",
            "data_smtpAction_attachments_single_camundaReference": picked,
        }),
    );
    let job = template.job(&with(smtp.clone(), picked_one.clone()));
    assert_eq!(
        job.variables["data"]["smtpAction"]["attachments"][0]["documentId"], picked["documentId"],
        "the template's composer lists the picked document"
    );
    let sent = s.act(&template, &smtp, picked_one, run).await;
    assert_eq!(sent["sent"], true);
    let message_id = s
        .find_one(&template, &imap, "imap", subject(&marker), run)
        .await;

    // IMAP and POP3 reads: Camunda's references, the bytes in the store.
    let read = s.act(&template, &imap, read_imap(&message_id), run).await;
    assert_eq!(keys(&read), READ_KEYS);
    assert_eq!(read["errors"], json!([]), "{read}");
    let attachments = read["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{read}");
    check_reference(&attachments[0], &store, &report, "Bericht Müller.pdf");
    assert_eq!(attachments[0]["metadata"]["contentType"], "application/pdf");
    let pop3 = connection(&template, "pop3", USER, false);
    let read_pop3 = json!({ "data.pop3ActionDiscriminator": "readEmailPop3", "data.pop3Action.messageId": message_id });
    let popped = s.act(&template, &pop3, read_pop3, run).await;
    assert_eq!(popped["errors"], json!([]), "{popped}");
    check_reference(
        &popped["attachments"][0],
        &store,
        &report,
        "Bericht Müller.pdf",
    );

    // The read's references, forwarded as they came (the picker's list mode).
    let forward_marker = format!("{marker}-fwd");
    let forward = send(
        &forward_marker,
        "forwarded",
        json!({
            "data_smtpAction_attachments_documentMode": "multiple",
            "data_smtpAction_attachments_multiple_expression": attachments,
        }),
    );
    s.act(&template, &smtp, forward, run).await;
    let tb = testbed();
    let delivered =
        support::mailbox::fetch_by_subject(tb.port("PORT_IMAP"), USER, &forward_marker, 1, WAIT)
            .await;
    let message = MessageParser::default()
        .parse(&delivered[0][..])
        .expect("parse");
    let attachment = message.attachment(0).expect("the forwarded document");
    assert_eq!(attachment.attachment_name(), Some("Bericht Müller.pdf"));
    assert!(
        attachment.contents() == report.as_slice(),
        "the forwarded bytes are the stored ones"
    );

    // An attachment the store refuses as too large: named in `errors`, the read completes with
    // the rest (a store that refuses for another reason fails the read, as Camunda's does).
    store.limit_file_size(1_000);
    let mixed_marker = format!("{marker}-mixed");
    let mixed = send(
        &mixed_marker,
        "two",
        json!({
            "data_smtpAction_attachments_documentMode": "multiple",
            "data_smtpAction_attachments_multiple_expression": [
                { "camunda.document.type": "inline", "content": "kept", "name": "ok.txt", "contentType": "text/plain" },
                { "camunda.document.type": "inline", "content": "x".repeat(5_000), "name": "big.txt", "contentType": "text/plain" }
            ],
        }),
    );
    s.act(&template, &smtp, mixed, run).await;
    let mixed_id = s
        .find_one(&template, &imap, "imap", subject(&mixed_marker), run)
        .await;
    let read = s.act(&template, &imap, read_imap(&mixed_id), run).await;
    let attachments = read["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{read}");
    check_reference(&attachments[0], &store, b"kept", "ok.txt");
    let errors = read["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{read}");
    assert!(
        errors[0].as_str().is_some_and(|e| e.contains("big.txt")),
        "{read}"
    );
}
