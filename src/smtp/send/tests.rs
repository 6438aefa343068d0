use super::*;
use crate::mail::inputs::decode;
use crate::operation::Operation;
use serde_json::Value;
use serde_json::json;

fn base() -> Value {
    json!({
        "authentication": { "type": "none" },
        "server": { "host": "127.0.0.1", "port": 25, "security": "none" },
        "from": "Sender <sender@example.test>",
        "to": "a@example.test",
        "subject": "Hi",
        "body": "text"
    })
}

/// The message as it goes to the server after DATA.
fn formatted(vars: Value) -> String {
    let job = JobContext {
        job_key: 42,
        process_instance_key: 7,
        retries: 3,
        ..JobContext::default()
    };
    let input = decode(vars).unwrap();
    let prepared = prepare(input, &job).unwrap();
    let message = Outgoing::assemble(prepared.message.formatted(), prepared.contents).unwrap();
    let mut out = Vec::new();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(message.write_to(&mut out))
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn problems(vars: Value) -> String {
    match decode(vars) {
        Ok(input) => {
            prepare(input, &JobContext::default())
                .err()
                .unwrap()
                .message
        }
        Err(e) => e.message,
    }
}

#[test]
fn control_bytes_in_an_attachment_go_as_base64() {
    // 00 01 02 03 is ASCII, and lettre sent it as 7bit: Dovecot stored the NUL as 0x80.
    let mut vars = base();
    vars["attachments"] = json!([{ "fileName": "raw.bin", "content": "AAECAw==" }]);
    let text = formatted(vars);
    let part = text.split("filename=\"raw.bin\"").nth(1).unwrap();
    assert!(
        part.contains("Content-Transfer-Encoding: base64") && part.contains("AAECAw=="),
        "{part}"
    );
}

#[test]
fn attachment_forms_are_exclusive_and_references_need_a_store() {
    let mut vars = base();
    vars["attachments"] = json!([
        { "fileName": "a", "content": "aGk=", "documentId": "d1" },
        { "contentType": "text/plain" }
    ]);
    let m = problems(vars);
    assert!(
        m.contains("/attachments/0") && m.contains("/attachments/1"),
        "{m}"
    );
    assert!(m.contains("exactly one of"), "{m}");
}

#[test]
fn message_id_comes_from_the_job() {
    let text = formatted(base());
    assert!(text.contains("Message-ID: <42.7@example.test>"), "{text}");
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    assert!(!text.contains("multipart"), "{text}");
}

#[test]
fn both_bodies_are_alternatives_and_attachments_mix() {
    let mut vars = base();
    vars["htmlBody"] = json!("<p>html</p>");
    assert!(formatted(vars.clone()).contains("multipart/alternative"));
    vars["attachments"] = json!([{ "fileName": "Grüße.txt", "content": "aGVsbG8=" }]);
    let text = formatted(vars);
    assert!(text.contains("multipart/mixed"), "{text}");
    assert!(text.contains("multipart/alternative"), "{text}");
    assert!(
        text.contains("filename*0*=utf-8''Gr%C3%BC%C3%9Fe.txt"),
        "{text}"
    );
}

#[test]
fn injection_and_reserved_headers_are_refused_with_pointers() {
    let mut vars = base();
    vars["subject"] = json!("Hi\r\nBcc: victim@example.test");
    vars["to"] = json!(["ok@example.test", "x@example.test\nBcc: y@example.test"]);
    vars["headers"] = json!({ "X-Ok": "fine", "X-Bad": "a\nb", "From": "evil@example.test", "Content-Type": "text/html", "Bad Name": "v" });
    vars["attachments"] = json!([{ "fileName": "a\r\n.txt", "content": "!!" }]);
    let m = problems(vars);
    for pointer in [
        "/subject",
        "/to/1",
        "/headers/X-Bad",
        "/headers/From",
        "/headers/Content-Type",
        "/headers/Bad Name",
        "/attachments/0/fileName",
        "/attachments/0/content",
    ] {
        assert!(
            m.contains(&format!("{pointer}:")),
            "{pointer} missing in {m}"
        );
    }
    assert!(!m.contains("/headers/X-Ok"), "{m}");
}

#[test]
fn recipients_and_bodies_are_required() {
    let mut vars = base();
    vars["to"] = json!(null);
    vars["body"] = json!("");
    let m = problems(vars);
    assert!(m.contains("at least one recipient"), "{m}");
    assert!(m.contains("at least one of body and htmlBody"), "{m}");
}

#[test]
fn addresses_as_string_or_list_and_bcc_hidden() {
    let mut vars = base();
    vars["to"] = json!("\"Doe, Jane\" <jane@example.test>, bob@example.test");
    vars["cc"] = json!(["c1@example.test", "c2@example.test"]);
    vars["bcc"] = json!("hidden@example.test");
    let job = JobContext {
        job_key: 1,
        process_instance_key: 1,
        retries: 1,
        ..JobContext::default()
    };
    let prepared = prepare(decode(vars).unwrap(), &job).unwrap();
    let envelope: Vec<String> = prepared
        .message
        .envelope()
        .to()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(envelope.len(), 5, "{envelope:?}");
    assert!(envelope.contains(&"hidden@example.test".to_string()));
    let text = String::from_utf8(prepared.message.formatted()).unwrap();
    assert!(!text.contains("hidden@example.test"), "{text}");
    // "Doe, Jane" travels as an encoded word, which keeps the comma out of the list syntax.
    assert!(
        text.contains("=?utf-8?b?RG9lLCBKYW5l?= <jane@example.test>, bob@example.test"),
        "{text}"
    );
}

#[test]
fn field_headers_conflict_only_when_both_are_given() {
    let mut vars = base();
    vars["headers"] = json!({ "Reply-To": "r@example.test" });
    assert!(formatted(vars.clone()).contains("Reply-To: r@example.test"));
    vars["replyTo"] = json!("s@example.test");
    assert!(problems(vars).contains("/headers/Reply-To"));
}

#[test]
fn schema_compiles_and_rejects_unknown_nested_fields() {
    let op = SendOperation::new(Arc::new(SmtpTransports::new(true)));
    let schema = crate::schema::InputSchema::compile(&op.schema()).unwrap();
    schema.validate(&base()).unwrap();
    let mut vars = base();
    vars["attachments"] = json!([{ "fileName": "a", "content": "", "extra": 1 }]);
    vars["server"]["port"] = json!("25");
    vars["someProcessVariable"] = json!({ "anything": true });
    let m = schema.validate(&vars).unwrap_err().message;
    assert!(m.contains("/attachments/0"), "{m}");
    assert!(m.contains("/server/port"), "{m}");
    assert!(!m.contains("someProcessVariable"), "{m}");
}

/// Every spelling of an attachment a send accepts (docs/responses.md, `email:smtp:send:1`):
/// inline, a document reference as a form's file picker gives it (its fields beside the
/// attachment's, `camunda.document.type` left out too), and a read's entry with the reference
/// under `document`; each passes the schema and reads as the same reference.
#[test]
fn attachment_spellings_read_as_one_reference() {
    let op = SendOperation::new(Arc::new(SmtpTransports::new(true)));
    let schema = crate::schema::InputSchema::compile(&op.schema()).unwrap();
    let reference = json!({
        "camunda.document.type": "camunda", "storeId": "s", "documentId": "d",
        "contentHash": "h", "metadata": { "contentType": "application/pdf", "fileName": "a.pdf", "size": 3 }
    });
    let mut entry = json!({ "fileName": "b.pdf", "contentType": "application/pdf", "size": 3,
        "inline": false, "contentId": null, "truncated": false });
    entry["document"] = reference.clone();
    let untyped = json!({ "documentId": "d", "storeId": "s", "camunda.document.type": null,
        "metadata": null });
    let mut vars = base();
    vars["attachments"] = json!([
        { "fileName": "n.txt", "content": "aGk=", "documentId": null, "storeId": null },
        reference,
        entry,
        untyped
    ]);
    schema.validate(&vars).unwrap();
    let input: SendInput = decode(vars).unwrap();
    let attachments = input.attachments.unwrap();
    assert!(attachments[0].reference().is_none());
    let flat = attachments[1].reference().unwrap();
    assert_eq!(
        (flat.document_type.as_str(), flat.store_id.as_deref()),
        ("camunda", Some("s"))
    );
    assert_eq!(
        (flat.document_id.as_str(), flat.content_hash.as_deref()),
        ("d", Some("h"))
    );
    assert_eq!(attachments[1].name().as_deref(), Some("a.pdf"));
    assert_eq!(
        attachments[1].media_type().as_deref(),
        Some("application/pdf")
    );
    let nested = attachments[2].reference().unwrap();
    assert_eq!(nested.document_id, "d");
    assert_eq!(nested.metadata.size, Some(3));
    assert_eq!(attachments[2].name().as_deref(), Some("b.pdf"));
    let bare = attachments[3].reference().unwrap();
    assert_eq!(
        (bare.document_type.as_str(), bare.document_id.as_str()),
        ("", "d")
    );
    assert_eq!(attachments[3].name(), None);
    // Two spellings of a reference in one entry are two forms.
    let mut vars = base();
    vars["attachments"] = json!([{ "documentId": "d", "document": { "camunda.document.type": "camunda", "documentId": "e" } }]);
    assert!(problems(vars).contains("exactly one of"));
}
