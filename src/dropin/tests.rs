//! The mapping of Camunda's layout onto our operations, without a server.

use serde_json::{Value, json};

use super::mapping::{Action, Document, Mapped, rename_pointers};

/// The mapping on a worker without a document store.
fn map(variables: &Value) -> crate::error::Result<Mapped> {
    super::mapping::map(variables, false)
}

fn smtp(action: Value) -> Value {
    json!({
        "authentication": { "type": "simple", "username": "u@x.test", "password": "pw" },
        "protocol": "smtp",
        "data": {
            "smtpConfig": { "smtpHost": "mail.x.test", "smtpPort": "587", "smtpCryptographicProtocol": "TLS" },
            "smtpActionDiscriminator": "sendEmailSmtp",
            "smtpAction": action
        }
    })
}

fn imap(discriminator: &str, action: Value) -> Value {
    json!({
        "authentication": { "type": "simple", "username": "u", "password": "p" },
        "protocol": "imap",
        "data": {
            "imapConfig": { "imapHost": "imap.x.test", "imapPort": 993, "imapCryptographicProtocol": "tls" },
            "imapActionDiscriminator": discriminator,
            "imapAction": action
        }
    })
}

#[test]
fn smtp_tls_is_starttls_and_strings_are_numbers() {
    let mapped = map(&smtp(json!({
        "from": "a@x.test", "to": ["b@x.test"], "subject": "S", "contentType": "multipart",
        "body": "b", "htmlBody": "<p>h</p>", "headers": { "X-A": "1" }
    })))
    .unwrap();
    assert_eq!(mapped.action, Action::Send);
    assert_eq!(
        mapped.variables["server"],
        json!({ "host": "mail.x.test", "port": 587, "security": "starttls" })
    );
    assert_eq!(mapped.variables["body"], "b");
    assert_eq!(mapped.variables["htmlBody"], "<p>h</p>");
    assert_eq!(mapped.variables["to"], json!(["b@x.test"]));
}

#[test]
fn content_type_chooses_the_bodies_and_unknown_is_plain() {
    let mapped = map(&smtp(json!({
        "from": "a@x.test", "to": "b@x.test", "subject": "S", "contentType": "weird",
        "body": "b", "htmlBody": "<p>h</p>"
    })))
    .unwrap();
    assert_eq!(mapped.variables["body"], "b");
    assert!(mapped.variables.get("htmlBody").is_none());
    let error = map(&smtp(json!({
        "from": "a@x.test", "to": "b@x.test", "subject": "S", "contentType": "HTML", "body": "b"
    })))
    .unwrap_err();
    assert!(
        error
            .message
            .contains("/data/smtpAction/htmlBody: is required"),
        "{}",
        error.message
    );
}

#[test]
fn a_missing_field_is_named_by_camundas_pointer() {
    let mut job = smtp(json!({ "to": "b@x.test", "subject": "S", "body": "b" }));
    job["data"]["smtpConfig"]
        .as_object_mut()
        .unwrap()
        .remove("smtpHost");
    job["authentication"]
        .as_object_mut()
        .unwrap()
        .remove("password");
    let error = map(&job).unwrap_err();
    for pointer in [
        "/data/smtpConfig/smtpHost",
        "/data/smtpAction/from",
        "/authentication/password",
    ] {
        assert!(
            error.message.contains(pointer),
            "{pointer}: {}",
            error.message
        );
    }
    let error = map(&json!({ "protocol": "imap" })).unwrap_err();
    assert!(
        error.message.contains("/data: is required"),
        "{}",
        error.message
    );
    let error = map(&imap("listEmailsImap", json!({ "maxToBeRead": "many" }))).unwrap_err();
    assert!(
        error.message.starts_with("/data/imapAction/maxToBeRead: "),
        "{}",
        error.message
    );
    let error = map(&imap("readMailImap", json!({}))).unwrap_err();
    assert!(
        error.message.starts_with("/data/imapActionDiscriminator: "),
        "{}",
        error.message
    );
}

#[test]
fn imap_actions_map_onto_ours() {
    let list = map(&imap(
        "listEmailsImap",
        json!({ "maxToBeRead": "5", "listEmailsFolder": "Archive/2024", "sortField": "size", "sortOrder": "desc" }),
    ))
    .unwrap();
    assert_eq!(list.action, Action::ImapList);
    assert_eq!(list.variables["server"]["security"], "tls");
    assert_eq!(list.variables["maxToBeRead"], 5);
    assert_eq!(list.variables["folder"], json!(["Archive", "2024"]));
    assert_eq!(
        (&list.variables["sortField"], &list.variables["sortOrder"]),
        (&json!("SIZE"), &json!("DESC"))
    );
    let moved = map(&imap(
        "moveEmailImap",
        json!({ "messageId": "<m@x>", "fromFolder": "inbox", "toFolder": "A.B" }),
    ))
    .unwrap();
    assert_eq!(moved.variables["sourceFolder"], "INBOX");
    assert_eq!(moved.variables["targetFolder"], json!(["A", "B"]));
    assert_eq!(moved.echo["to"], "A.B");
    let error = map(&imap("moveEmailImap", json!({ "messageId": "<m@x>" }))).unwrap_err();
    assert!(
        error.message.contains("/data/imapAction/toFolder"),
        "{}",
        error.message
    );
}

#[test]
fn noauth_and_ssl() {
    let mut job =
        smtp(json!({ "from": "a@x.test", "to": "b@x.test", "subject": "S", "body": "b" }));
    job["authentication"] = json!({ "type": "noAuth" });
    job["data"]["smtpConfig"]["smtpCryptographicProtocol"] = json!("SSL");
    let mapped = map(&job).unwrap();
    assert_eq!(
        mapped.variables["authentication"],
        json!({ "type": "none" })
    );
    assert_eq!(mapped.variables["server"]["security"], "tls");
}

#[test]
fn documents_of_every_source() {
    let reference = json!({
        "camunda.document.type": "camunda", "storeId": "in-memory", "documentId": "d1",
        "contentHash": "h", "metadata": { "contentType": "text/plain", "fileName": "a.txt", "size": 3, "processInstanceKey": 1 }
    });
    let mapped = map(&smtp(json!({
        "from": "a@x.test", "to": "b@x.test", "subject": "S", "body": "b",
        "attachments": [
            reference,
            { "camunda.document.type": "inline", "content": "héllo", "name": "h.txt", "contentType": "text/plain" },
            { "camunda.document.type": "external", "url": "http://127.0.0.1:1/f.pdf", "name": "f.pdf" }
        ]
    })))
    .unwrap();
    assert_eq!(mapped.documents.len(), 3);
    match &mapped.documents[0] {
        Document::Ready(value) => {
            assert_eq!(
                value["metadata"],
                json!({ "contentType": "text/plain", "fileName": "a.txt", "size": 3 })
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        mapped.documents[1],
        Document::Ready(
            json!({ "content": "aMOpbGxv", "fileName": "h.txt", "contentType": "text/plain" })
        )
    );
    assert_eq!(
        mapped.documents[2],
        Document::External {
            url: "http://127.0.0.1:1/f.pdf".into(),
            name: Some("f.pdf".into())
        }
    );
    // The v5/v6 helpers, read directly (the template's composer leaves attachments null).
    let single = map(&smtp(json!({
        "from": "a@x.test", "to": "b@x.test", "subject": "S", "body": "b", "attachments": null,
        "data_smtpAction_attachments_documentMode": "single",
        "data_smtpAction_attachments_single_documentSource": "inline",
        "data_smtpAction_attachments_single_inline_content": "x",
        "data_smtpAction_attachments_single_inline_fileName": "x.txt"
    })))
    .unwrap();
    assert_eq!(
        single.documents,
        vec![Document::Ready(
            json!({ "content": "eA==", "fileName": "x.txt" })
        )]
    );
}

#[test]
fn our_pointers_become_camundas_in_messages() {
    let mapped = map(&imap(
        "searchEmailsImap",
        json!({ "criteria": { "field": "SUBJECT" } }),
    ))
    .unwrap();
    let message = "/criteria: missing value; /server/host: refused; /serverX stays";
    assert_eq!(
        rename_pointers(message, &mapped.pointers),
        "/data/imapAction/criteria: missing value; /data/imapConfig/imapHost: refused; /serverX stays"
    );
}

#[test]
fn the_registry_serves_the_camunda_job_type_with_its_operations() {
    use crate::registry::Registry;
    let mut registry = Registry::standard(
        "email",
        None,
        &crate::operation::OperationSettings::default(),
    )
    .unwrap();
    registry
        .serve_camunda_job_type(super::CAMUNDA_JOB_TYPE)
        .unwrap();
    assert!(
        registry
            .serve_camunda_job_type("io.camunda:email:1")
            .is_err()
    );
    assert!(registry.serve_camunda_job_type("  ").is_err());
    let entry = registry.get("io.camunda:email:1").expect("served");
    assert_eq!(entry.operation.name(), "camunda:email");
    // Camunda's lenient values pass the schema the worker checks first.
    let job = smtp(json!({ "from": "a@x.test", "to": "b@x.test", "subject": "S", "body": "b" }));
    entry.schema.validate(&job).unwrap();
    assert_eq!(entry.operation.target(&job), "mail.x.test:587");
}

#[test]
fn secrets_resolve_in_camundas_connection_fields_only() {
    use crate::secrets::SecretProvider;
    // SAFETY: set once by this test alone, under a name no other test reads.
    unsafe { std::env::set_var("DROPIN_UNIT_TEST_PW", "s3cret") };
    let provider = SecretProvider::new("DROPIN_UNIT_TEST_", None);
    let mut job = smtp(
        json!({ "from": "a@x.test", "to": "b@x.test", "subject": "{{secrets.PW}}", "body": "b" }),
    );
    job["authentication"]["password"] = json!("{{secrets.PW}}");
    job["data"]["smtpConfig"]["smtpPort"] = json!("{{secrets.PW}}");
    let mask = provider.resolve_in(&mut job, super::SECRET_SCOPES).unwrap();
    assert_eq!(job["authentication"]["password"], "s3cret");
    assert_eq!(job["data"]["smtpConfig"]["smtpPort"], "s3cret");
    assert_eq!(job["data"]["smtpAction"]["subject"], "{{secrets.PW}}");
    assert_eq!(mask.apply("x s3cret"), "x ***");
    job["data"]["smtpConfig"]["smtpHost"] = json!("{{secrets.PW}}.exfil.test");
    let error = provider
        .resolve_in(&mut job, super::SECRET_SCOPES)
        .unwrap_err();
    assert!(
        error
            .message
            .contains("/data/smtpConfig/smtpHost: a secret inside a host"),
        "{}",
        error.message
    );
}

/// Template version 8's reusable account: the engine hands the credential's fields to the job
/// as `emailAccountConfiguration`, and they win over the task's own connection fields.
#[test]
fn an_email_account_credential_supplies_login_and_server() {
    let mut job = imap("listEmailsImap", json!({}));
    job["emailAccountConfiguration"] = json!({
        "protocol": "imap", "username": "acct@x.test", "password": "acct-pw",
        "imapHost": "acct.x.test", "imapPort": 1993, "imapCryptographicProtocol": "SSL"
    });
    let mapped = map(&job).unwrap();
    assert_eq!(
        mapped.variables["authentication"],
        json!({ "type": "simple", "username": "acct@x.test", "password": "acct-pw" })
    );
    assert_eq!(
        mapped.variables["server"],
        json!({ "host": "acct.x.test", "port": 1993, "security": "tls" })
    );
    // Only the account: port and security default as Camunda's reading defaults them.
    let only = json!({
        "emailAccountConfiguration": { "username": "u", "password": "p", "smtpHost": "s.x.test" },
        "protocol": "smtp",
        "data": { "smtpActionDiscriminator": "sendEmailSmtp",
                  "smtpAction": { "from": "a@x.test", "to": "b@x.test", "subject": "S", "body": "b" } }
    });
    let mapped = map(&only).unwrap();
    assert_eq!(
        mapped.variables["server"],
        json!({ "host": "s.x.test", "port": 587, "security": "starttls" })
    );
    let error = map(&json!({
        "emailAccountConfiguration": { "protocol": "smtp", "username": "u", "password": "", "smtpHost": "s.x.test" },
        "protocol": "imap", "data": { "imapActionDiscriminator": "listEmailsImap" }
    }))
    .unwrap_err();
    assert!(
        error
            .message
            .contains("/emailAccountConfiguration/imapHost: is required"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("/emailAccountConfiguration/password: is required"),
        "{}",
        error.message
    );
    // The credential's fields are connection fields: secrets resolve there too, never
    // inside a host name.
    use crate::secrets::SecretProvider;
    // SAFETY: set once by this test alone, under a name no other test reads.
    unsafe { std::env::set_var("DROPIN_ACCOUNT_TEST_PW", "acct-s3cret") };
    let provider = SecretProvider::new("DROPIN_ACCOUNT_TEST_", None);
    let mut with_secret = job.clone();
    with_secret["emailAccountConfiguration"]["password"] = json!("{{secrets.PW}}");
    provider
        .resolve_in(&mut with_secret, super::SECRET_SCOPES)
        .unwrap();
    assert_eq!(
        with_secret["emailAccountConfiguration"]["password"],
        "acct-s3cret"
    );
    with_secret["emailAccountConfiguration"]["imapHost"] = json!("{{secrets.PW}}.exfil.test");
    let error = provider
        .resolve_in(&mut with_secret, super::SECRET_SCOPES)
        .unwrap_err();
    assert!(
        error
            .message
            .contains("/emailAccountConfiguration/imapHost: a secret inside a host"),
        "{}",
        error.message
    );
    let dropin = super::CamundaEmail::new(Vec::new()).unwrap();
    assert_eq!(
        crate::operation::Operation::target(&dropin, &job),
        "acct.x.test:1993"
    );
}

/// Camunda's runtime reads `imapPort` (and only it) through its FEEL deserializer: a string
/// starting with `=` is evaluated, in an empty context.
#[test]
fn a_feel_imap_port_is_evaluated() {
    let mapped = map(&imap("listEmailsImap", json!({}))).unwrap();
    assert_eq!(mapped.variables["server"]["port"], 993);
    let mut job = imap("listEmailsImap", json!({}));
    job["data"]["imapConfig"]["imapPort"] = json!("= 900 + 93");
    assert_eq!(map(&job).unwrap().variables["server"]["port"], 993);
    job["data"]["imapConfig"]["imapPort"] = json!("=if true then \"143\" else 1");
    assert_eq!(map(&job).unwrap().variables["server"]["port"], 143);
    for bad in ["=missing", "=\"x\"", "=1.5", "=("] {
        job["data"]["imapConfig"]["imapPort"] = json!(bad);
        let error = map(&job).unwrap_err();
        assert!(
            error.message.starts_with("/data/imapConfig/imapPort: "),
            "{bad}: {}",
            error.message
        );
    }
    let mut job =
        smtp(json!({ "from": "a@x.test", "to": "b@x.test", "subject": "S", "body": "b" }));
    job["data"]["smtpConfig"]["smtpPort"] = json!("=587");
    assert!(
        map(&job)
            .unwrap_err()
            .message
            .starts_with("/data/smtpConfig/smtpPort: "),
    );
}
