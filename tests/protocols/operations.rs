//! The operations beyond the seeds (docs/responses.md): flags, copy, folders, export, append,
//! reply, forward and send's saveCopyTo end to end (test gateway → worker process → Dovecot and
//! Postfix), on the full server at 127.0.0.1 and the older-server profile at 127.0.0.2 (no
//! MOVE, UIDPLUS, LITERAL+), with hostile input.

use crate::support;

use base64::Engine;
use serde_json::{Value, json};
use support::documents::DocumentStore;
use support::mailbox::{append, create_folder, flags_by_message_id, folders, write_maildir};
use support::{Jobs, testbed, unique};

use crate::imap::{old_server_vars, vars};

fn simple(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}>\r\nFrom: a@example.test\r\nTo: someone@example.test\r\nSubject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody of {subject}\r\n"
    )
    .into_bytes()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_add_and_remove_and_refuse_what_could_inject() {
    let s = Jobs::start("imap").await;
    let folder = unique("Flags");
    let id = format!("{}@example.test", unique("f"));
    append("ops1", &folder, &[(&simple(&id, "flag me"), "(\\Seen)")]).await;

    let r = s
        .ok(
            "flags",
            vars(
                "ops1",
                json!({ "folder": folder, "messageId": id, "add": ["\\flagged", "$Important"], "remove": ["\\Seen"] }),
            ),
        )
        .await;
    assert_eq!(r["messageId"], format!("<{id}>"));
    let flags = strings(&r["flags"]);
    assert!(flags.contains(&"\\Flagged".to_string()), "{r}");
    assert!(flags.contains(&"$Important".to_string()), "{r}");
    assert!(!flags.contains(&"\\Seen".to_string()), "{r}");
    assert!(
        r["uid"].as_u64().is_some() && r["uidValidity"].as_u64().is_some(),
        "{r}"
    );
    let stored = &flags_by_message_id("ops1", &folder).await[&format!("<{id}>")];
    assert!(stored.iter().any(|f| f.contains("Flagged")), "{stored:?}");
    assert!(!stored.iter().any(|f| f.contains("Seen")), "{stored:?}");

    // The same on the older server, by UID this time.
    let r2 = s
        .ok(
            "flags",
            old_server_vars(
                "ops1",
                json!({ "folder": folder, "uid": r["uid"], "uidValidity": r["uidValidity"], "add": ["\\Seen"], "remove": ["$Important"] }),
            ),
        )
        .await;
    let flags = strings(&r2["flags"]);
    assert!(
        flags.contains(&"\\Seen".to_string()) && !flags.contains(&"$Important".to_string()),
        "{r2}"
    );

    // \Deleted, a line break, a parenthesis, a space, a wildcard: refused before any command.
    for (flag, says) in [
        ("\\Deleted", "imap:delete"),
        ("$X\r\nA1 DELETE INBOX", "/add/0"),
        ("$X) (\\Deleted", "/add/0"),
        ("$A B", "/add/0"),
        ("*", "/add/0"),
    ] {
        let (retries, message, _) = s
            .fails(
                "flags",
                vars(
                    "ops1",
                    json!({ "folder": folder, "messageId": id, "add": [flag] }),
                ),
            )
            .await;
        assert_eq!(retries, 0, "{flag:?}");
        assert!(message.starts_with("INVALID_INPUT"), "{flag:?}: {message}");
        assert!(message.contains(says), "{flag:?}: {message}");
    }
    let (_, message, _) = s
        .fails(
            "flags",
            vars("ops1", json!({ "folder": folder, "messageId": id })),
        )
        .await;
    assert!(message.contains("add or remove"), "{message}");
    let stored = &flags_by_message_id("ops1", &folder).await[&format!("<{id}>")];
    assert!(!stored.iter().any(|f| f.contains("Deleted")), "{stored:?}");
    assert!(folders("ops1").await.contains(&"INBOX".to_string()));

    let (retries, message, _) = s
        .fails(
            "flags",
            vars(
                "ops1",
                json!({ "folder": folder, "messageId": "nope@example.test", "add": ["\\Seen"] }),
            ),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(message.starts_with("EMAIL_NOT_FOUND"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_keeps_the_original_and_a_retry_makes_no_second_copy() {
    let s = Jobs::start("imap").await;
    for (server, user) in [("new", "ops2"), ("old", "ops3")] {
        let source = unique("CopySrc");
        let id = format!("{}@example.test", unique("c"));
        append(user, &source, &[(&simple(&id, "copy me"), "")]).await;
        let top = unique("Copies").replace('-', "");
        let target = format!("{top}.2024");
        let job = json!({ "messageId": id, "sourceFolder": source, "targetFolder": target });
        let job = if server == "old" {
            old_server_vars(user, job)
        } else {
            vars(user, job)
        };
        let r = s.ok("copy", job.clone()).await;
        assert_eq!(r["messageId"], format!("<{id}>"), "{server}: {r}");
        assert_eq!(
            (r["from"].as_str(), r["to"].as_str()),
            (Some(source.as_str()), Some(target.as_str()))
        );
        // With UIDPLUS from COPYUID, without it found by the Message-ID: either way, there.
        assert!(r["targetUid"].as_u64().is_some(), "{server}: {r}");
        assert!(
            flags_by_message_id(user, &source)
                .await
                .contains_key(&format!("<{id}>")),
            "{server}: original gone"
        );
        assert!(
            flags_by_message_id(user, &format!("{top}.2024"))
                .await
                .contains_key(&format!("<{id}>")),
            "{server}: no copy"
        );
        let again = s.ok("copy", job).await;
        assert_eq!(
            again["targetUid"], r["targetUid"],
            "{server}: a second copy: {again}"
        );
        assert!(folders(user).await.contains(&top));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_list_create_rename_delete_with_their_refusals() {
    let s = Jobs::start("imap").await;
    let user = "ops4";
    let top = unique("Fold").replace('-', "");
    let umlaut = format!("{top}.Übersicht");

    let created = s
        .ok(
            "folders",
            vars(user, json!({ "action": "create", "folder": umlaut })),
        )
        .await;
    assert_eq!(created, json!({ "folder": umlaut, "created": true }));
    let again = s
        .ok(
            "folders",
            vars(user, json!({ "action": "create", "folder": umlaut })),
        )
        .await;
    assert_eq!(again["created"], false);

    // The testbed declares Sent's special use; the folder exists once created.
    create_folder(user, "Sent").await;
    let listed = s.ok("folders", vars(user, json!({}))).await;
    let entries = listed.as_array().expect("a list");
    let find = |name: &str| entries.iter().find(|e| e["name"] == name).cloned();
    let entry = find(&umlaut).unwrap_or_else(|| panic!("{umlaut} not in {listed}"));
    assert_eq!(entry["delimiter"], ".");
    assert_eq!(entry["specialUse"], Value::Null);
    let sent = find("Sent").unwrap_or_else(|| panic!("no Sent in {listed}"));
    assert_eq!(sent["specialUse"], "\\Sent", "{sent}");
    let parent = find(&top).expect("the parent level");
    assert!(
        strings(&parent["attributes"])
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\HasChildren")),
        "{parent}"
    );

    // A folder with children, INBOX, a missing one, a wildcard: refused, nothing deleted.
    let (retries, message, _) = s
        .fails(
            "folders",
            vars(user, json!({ "action": "delete", "folder": top })),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("INVALID_INPUT") && message.contains("below it"),
        "{message}"
    );
    let (_, message, _) = s
        .fails(
            "folders",
            vars(user, json!({ "action": "delete", "folder": "inbox" })),
        )
        .await;
    assert!(
        message.starts_with("INVALID_INPUT") && message.contains("INBOX"),
        "{message}"
    );
    for wildcard in ["*", "%", format!("{top}.*").as_str()] {
        let (retries, message, _) = s
            .fails(
                "folders",
                vars(user, json!({ "action": "delete", "folder": wildcard })),
            )
            .await;
        assert_eq!(retries, 0);
        assert!(
            message.starts_with("FOLDER_NOT_FOUND"),
            "{wildcard}: {message}"
        );
    }
    assert!(
        folders(user).await.contains(&umlaut.replace("Ü", "&ANw-")),
        "the folder survived"
    );

    // Rename, then a retry of it finds it done; a taken name is refused.
    let renamed = format!("{top}.Overview");
    let r = s
        .ok(
            "folders",
            vars(
                user,
                json!({ "action": "rename", "folder": umlaut, "newName": renamed }),
            ),
        )
        .await;
    assert_eq!(r, json!({ "from": umlaut, "to": renamed }));
    let retry = s
        .ok(
            "folders",
            vars(
                user,
                json!({ "action": "rename", "folder": umlaut, "newName": renamed }),
            ),
        )
        .await;
    assert_eq!(retry["to"], renamed);
    create_folder(user, &format!("{top}.Taken")).await;
    let (_, message, _) = s
        .fails(
            "folders",
            vars(
                user,
                json!({ "action": "rename", "folder": renamed, "newName": format!("{top}.Taken") }),
            ),
        )
        .await;
    assert!(
        message.contains("/newName") && message.contains("exists"),
        "{message}"
    );

    let deleted = s
        .ok(
            "folders",
            vars(
                user,
                json!({ "action": "delete", "folder": [top.as_str(), "Overview"] }),
            ),
        )
        .await;
    assert_eq!(deleted["deleted"], true, "{deleted}");
    let (_, message, _) = s
        .fails(
            "folders",
            vars(user, json!({ "action": "delete", "folder": renamed })),
        )
        .await;
    assert!(message.starts_with("FOLDER_NOT_FOUND"), "{message}");
    let (_, message, _) = s
        .fails(
            "folders",
            vars(user, json!({ "action": "rename", "folder": renamed })),
        )
        .await;
    assert!(message.contains("newName"), "{message}");

    // The older server lists the same folders.
    let old = s
        .ok(
            "folders",
            old_server_vars(user, json!({ "action": "list" })),
        )
        .await;
    assert!(
        old.as_array()
            .expect("list")
            .iter()
            .any(|e| e["name"] == format!("{top}.Taken")),
        "{old}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_gives_the_bytes_unchanged_or_a_document_and_refuses_what_does_not_fit() {
    let store = DocumentStore::start().await;
    let url = store.url();
    let s = Jobs::start_with("imap", &[("CAMUNDA_REST_ADDRESS", &url)]).await;
    let folder = unique("Export").replace('-', "");
    let id = format!("{}@example.test", unique("e"));
    // 8-bit bytes that are not UTF-8 and a bare LF: unchanged means unchanged.
    let mut raw = simple(&id, "export me");
    raw.extend_from_slice(b"caf\xe9 latin-1\r\n");
    append("ops5", &folder, &[(&raw, "")]).await;

    let r = s
        .ok(
            "export",
            vars("ops5", json!({ "folder": folder, "messageId": id })),
        )
        .await;
    let content = base64::engine::general_purpose::STANDARD
        .decode(r["content"].as_str().expect("content"))
        .expect("base64");
    assert_eq!(content, raw);
    assert_eq!(r["size"], raw.len());
    assert!(r.get("document").is_none(), "{r}");
    let flags = &flags_by_message_id("ops5", &folder).await[&format!("<{id}>")];
    assert!(
        !flags.iter().any(|f| f.contains("Seen")),
        "export marked it read: {flags:?}"
    );

    // 10 MB: too large as base64 (the budget is 3 MiB), named the way out; as a document whole.
    let big_id = format!("{}@example.test", unique("big"));
    let mut big = simple(&big_id, "big");
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n";
    while big.len() < 10_000_000 {
        big.extend_from_slice(line);
    }
    write_maildir(
        testbed().dir(),
        "ops5",
        &folder,
        &[(big.clone(), 1_706_781_600)],
    );
    let (retries, message, _) = s
        .fails(
            "export",
            vars("ops5", json!({ "folder": folder, "messageId": big_id })),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("RESPONSE_TOO_LARGE") && message.contains("as: document"),
        "{message}"
    );
    let before = s.worker_peak_rss();
    let r = s
        .ok(
            "export",
            vars(
                "ops5",
                json!({ "folder": folder, "messageId": big_id, "as": "document" }),
            ),
        )
        .await;
    let grown = s.worker_peak_rss().saturating_sub(before);
    let document_id = r["document"]["documentId"]
        .as_str()
        .expect("a reference")
        .to_string();
    assert_eq!(store.bytes(&document_id).expect("stored"), big);
    assert_eq!(r["size"], big.len());
    assert!(r.get("content").is_none(), "{r}");
    eprintln!("a 10 MB export as a document grew the worker's peak RSS by {grown} bytes");
    assert!(
        grown < 8_000_000,
        "a 10 MB export grew the worker by {grown} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_stores_the_bytes_as_given_once_with_its_flags() {
    let s = Jobs::start("imap").await;
    for (server, user) in [("new", "ops6"), ("old", "ops7")] {
        let folder = format!("{}.In", unique("Append").replace('-', ""));
        let id = format!("{}@example.test", unique("a"));
        let mut raw = simple(&id, "stored");
        raw.extend_from_slice(b"8-bit: caf\xe9\r\n");
        let job = json!({
            "folder": folder,
            "raw": base64::engine::general_purpose::STANDARD.encode(&raw),
            "flags": ["\\Seen", "$Filed"]
        });
        let job = if server == "old" {
            old_server_vars(user, job)
        } else {
            vars(user, job)
        };
        let r = s.ok("append", job.clone()).await;
        assert_eq!(r["folder"], folder, "{server}: {r}");
        assert_eq!(r["messageId"], format!("<{id}>"), "{server}: {r}");
        let uid = r["uid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{server}: no uid in {r}"));
        let stored = flags_by_message_id(user, &folder).await;
        let flags = &stored[&format!("<{id}>")];
        assert!(
            flags.iter().any(|f| f.contains("Seen")),
            "{server}: {flags:?}"
        );
        assert!(
            flags.iter().any(|f| f.contains("$Filed")),
            "{server}: {flags:?}"
        );
        // A retry stores nothing new.
        let again = s.ok("append", job).await;
        assert_eq!(again["uid"], uid, "{server}: {again}");
        assert_eq!(
            flags_by_message_id(user, &folder).await.len(),
            1,
            "{server}"
        );
        // The bytes come back unchanged.
        let exported = s
            .ok(
                "export",
                vars(user, json!({ "folder": folder, "uid": uid })),
            )
            .await;
        let back = base64::engine::general_purpose::STANDARD
            .decode(exported["content"].as_str().expect("content"))
            .expect("base64");
        assert_eq!(back, raw, "{server}");
    }
    // Composed from send's fields, as send composes it.
    let folder = unique("Drafts").replace('-', "");
    let subject = format!("Draft {}", unique("d"));
    let r = s
        .ok(
            "append",
            vars(
                "ops6",
                json!({ "folder": folder, "from": "Ops <ops6@example.test>", "to": ["x@example.test"],
                        "subject": subject, "body": "Grüße", "flags": ["\\Draft"] }),
            ),
        )
        .await;
    let id = r["messageId"].as_str().expect("a Message-ID").to_string();
    let stored = s_export("ops6", &folder, r["uid"].as_u64().expect("uid")).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(&stored)
        .expect("parses");
    assert_eq!(parsed.subject(), Some(subject.as_str()));
    assert_eq!(parsed.body_text(0).as_deref().map(str::trim), Some("Grüße"));
    assert!(
        flags_by_message_id("ops6", &folder).await[&id]
            .iter()
            .any(|f| f.contains("Draft"))
    );
    let (_, message, _) = s
        .fails(
            "append",
            vars("ops6", json!({ "raw": "QQ==", "subject": "both" })),
        )
        .await;
    assert!(
        message.contains("either raw or the message fields"),
        "{message}"
    );
    let (_, message, _) = s
        .fails(
            "append",
            vars("ops6", json!({ "from": "ops6@example.test", "to": "x@example.test", "subject": "a\r\nBcc: y@example.test", "body": "b" })),
        )
        .await;
    assert!(
        message.starts_with("INVALID_INPUT") && message.contains("/subject"),
        "{message}"
    );

    // A mail a stranger delivered with the same Message-ID does not stand in for ours.
    let folder = unique("Spoof").replace('-', "");
    let id = format!("{}@example.test", unique("sp"));
    append("ops6", &folder, &[(&simple(&id, "the stranger's"), "")]).await;
    let ours = simple(&id, "ours, longer than the stranger's");
    let r = s
        .ok(
            "append",
            vars(
                "ops6",
                json!({ "folder": folder, "raw": base64::engine::general_purpose::STANDARD.encode(&ours) }),
            ),
        )
        .await;
    let exported = s_export("ops6", &folder, r["uid"].as_u64().expect("uid")).await;
    assert_eq!(exported, ours);

    let (retries, message, _) = s
        .fails(
            "append",
            vars("ops6", json!({ "raw": "not base64!", "flags": [] })),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(message.contains("/raw"), "{message}");
    let (_, message, _) = s
        .fails(
            "append",
            vars("ops6", json!({ "raw": "QQ==", "flags": ["a\r\nb"] })),
        )
        .await;
    assert!(message.contains("/flags/0"), "{message}");
}

pub(crate) fn smtp_block(user: &str) -> Value {
    let tb = testbed();
    json!({
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_SUBMISSION"), "security": "starttls", "serverCertificate": tb.ca_pem(), "timeoutSeconds": 20 },
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") }
    })
}

fn header<'a>(message: &'a mail_parser::Message<'a>, name: &str) -> String {
    message
        .header_raw(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_threads_quotes_marks_answered_and_no_hostile_header_gets_through() {
    use mail_parser::MessageParser;
    use std::time::Duration;
    use support::mailbox::fetch_by_subject;
    let s = Jobs::start("imap").await;
    let marker = unique("rp").replace('-', "");
    let id = format!("{marker}@customer.test");
    // A subject and a Reply-To whose encoded words decode to a line break and a Bcc header.
    let original = format!(
        "Message-ID: <{id}>\r\nFrom: Customer <ops7@example.test>\r\n\
         Reply-To: =?utf-8?q?x=0D=0ABcc=3A_ops5=40example=2Etest?= <ops7@example.test>\r\n\
         To: ops8@example.test\r\nCc: ops6@example.test, OPS8@example.test\r\n\
         Subject: =?utf-8?q?Help_{marker}=0D=0ABcc=3A_ops5=40example=2Etest?=\r\n\
         References: <root-{marker}@customer.test>\r\n\
         Date: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nMy order is late.\r\nPlease help.\r\n"
    );
    append("ops8", "INBOX", &[(original.as_bytes(), "")]).await;

    let r = s
        .ok(
            "reply",
            vars(
                "ops8",
                json!({
                    "messageId": id, "smtp": smtp_block("ops8"), "from": "Support <ops8@example.test>",
                    "body": "We are on it.", "htmlBody": "<p>We are on it.</p>",
                    "replyAll": true, "saveCopyTo": format!("Sent{marker}")
                }),
            ),
        )
        .await;
    assert_eq!(r["sent"], true, "{r}");
    assert_eq!(r["inReplyTo"], format!("<{id}>"));
    assert_eq!(r["to"], json!(["ops7@example.test"]), "{r}");
    assert_eq!(
        r["cc"],
        json!(["ops6@example.test"]),
        "ourselves never: {r}"
    );
    let subject = r["subject"].as_str().expect("subject");
    assert!(
        subject.starts_with("Re: Help") && !subject.contains('\n') && !subject.contains('\r'),
        "{subject:?}"
    );
    assert!(r["savedTo"]["uid"].as_u64().is_some(), "{r}");

    let port = testbed().port("PORT_IMAP");
    let got = fetch_by_subject(port, "ops7", &marker, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "the reply did not arrive");
    let reply = MessageParser::default().parse(&got[0]).expect("parses");
    assert_eq!(header(&reply, "In-Reply-To"), format!("<{id}>"));
    assert_eq!(
        header(&reply, "References")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [format!("<root-{marker}@customer.test>"), format!("<{id}>")]
    );
    assert_eq!(reply.header_raw("Bcc"), None);
    let text = reply.body_text(0).expect("text");
    assert!(text.starts_with("We are on it."), "{text}");
    assert!(
        text.contains("> My order is late.") && text.contains("> Please help."),
        "{text}"
    );
    assert!(text.contains("wrote:"), "{text}");
    let html = reply.body_html(0).expect("html");
    assert!(
        html.contains("<blockquote") && html.contains("My order is late."),
        "{html}"
    );
    // The address smuggled in through the subject and the Reply-To got nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        fetch_by_subject(port, "ops5", &marker, 1, Duration::from_secs(1))
            .await
            .is_empty()
    );
    assert_eq!(
        fetch_by_subject(port, "ops6", &marker, 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );

    let flags = &flags_by_message_id("ops8", "INBOX").await[&format!("<{id}>")];
    assert!(flags.iter().any(|f| f.contains("Answered")), "{flags:?}");
    assert!(!flags.iter().any(|f| f.contains("Seen")), "{flags:?}");
    let sent = flags_by_message_id("ops8", &format!("Sent{marker}")).await;
    let copy = sent
        .get(r["messageId"].as_str().expect("id"))
        .unwrap_or_else(|| panic!("no copy in Sent: {sent:?}"));
    assert!(copy.iter().any(|f| f.contains("Seen")), "{copy:?}");

    // The older server (no UIDPLUS): \Answered set, the copy found by its Message-ID.
    let old_id = format!("old-{marker}@customer.test");
    let old = format!(
        "Message-ID: <{old_id}>\r\nFrom: ops7@example.test\r\nTo: ops8@example.test\r\nSubject: Old {marker}\r\n\r\nOld server.\r\n"
    );
    append("ops8", "INBOX", &[(old.as_bytes(), "")]).await;
    let r = s
        .ok(
            "reply",
            old_server_vars(
                "ops8",
                json!({ "messageId": old_id, "smtp": smtp_block("ops8"), "body": "Seen.", "saveCopyTo": format!("SentOld{marker}") }),
            ),
        )
        .await;
    assert_eq!(r["subject"], format!("Re: Old {marker}"));
    assert!(r["savedTo"]["uid"].as_u64().is_some(), "{r}");
    let flags = &flags_by_message_id("ops8", "INBOX").await[&format!("<{old_id}>")];
    assert!(flags.iter().any(|f| f.contains("Answered")), "{flags:?}");

    // Re: is not doubled; no quote, no \Answered when asked.
    let again_id = format!("re-{marker}@customer.test");
    let second = format!(
        "Message-ID: <{again_id}>\r\nFrom: ops7@example.test\r\nTo: ops8@example.test\r\nSubject: RE: again {marker}\r\n\r\nAgain.\r\n"
    );
    append("ops8", "INBOX", &[(second.as_bytes(), "")]).await;
    let r = s
        .ok(
            "reply",
            vars("ops8", json!({ "messageId": again_id, "smtp": smtp_block("ops8"), "body": "Done.", "quote": false, "markAnswered": false })),
        )
        .await;
    assert_eq!(r["subject"], format!("RE: again {marker}"));
    assert_eq!(r["cc"], json!([]));
    let flags = &flags_by_message_id("ops8", "INBOX").await[&format!("<{again_id}>")];
    assert!(!flags.iter().any(|f| f.contains("Answered")), "{flags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_attaches_the_bytes_unchanged_or_quotes_inline() {
    use mail_parser::{MessageParser, MimeHeaders};
    use std::time::Duration;
    use support::mailbox::fetch_by_subject;
    let s = Jobs::start("imap").await;
    let marker = unique("fw").replace('-', "");
    let id = format!("{marker}@customer.test");
    let mut original = format!(
        "Message-ID: <{id}>\r\nFrom: ops7@example.test\r\nTo: ops8@example.test\r\nSubject: Invoice {marker}\r\n\
         Date: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nThe invoice is due.\r\n"
    )
    .into_bytes();
    original.extend_from_slice(b"Caf\xe9\r\n");
    let folder = unique("Fwd").replace('-', "");
    append("ops8", &folder, &[(&original, "")]).await;

    let r = s
        .ok(
            "forward",
            vars("ops8", json!({ "folder": folder, "messageId": id, "smtp": smtp_block("ops8"), "to": "ops6@example.test", "body": "FYI" })),
        )
        .await;
    assert_eq!(r["subject"], format!("Fwd: Invoice {marker}"), "{r}");
    let port = testbed().port("PORT_IMAP");
    let got = fetch_by_subject(
        port,
        "ops6",
        &format!("Fwd: Invoice {marker}"),
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(got.len(), 1);
    let forward = MessageParser::default().parse(&got[0]).expect("parses");
    assert!(forward.body_text(0).expect("note").starts_with("FYI"));
    let attached = forward
        .attachments()
        .find(|p| p.content_type().is_some_and(|t| t.c_type == "message"))
        .expect("a message/rfc822 part");
    let bytes = match &attached.body {
        mail_parser::PartType::Message(inner) => inner.raw_message().to_vec(),
        _ => attached.contents().to_vec(),
    };
    assert_eq!(bytes, original, "the forwarded bytes changed");

    let r = s
        .ok(
            "forward",
            vars("ops8", json!({ "folder": folder, "messageId": id, "smtp": smtp_block("ops8"), "to": ["ops6@example.test"], "asAttachment": false, "subject": "ignored" })),
        )
        .await;
    assert_eq!(r["sent"], true);
    let got = fetch_by_subject(
        port,
        "ops6",
        &format!("Fwd: Invoice {marker}"),
        2,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(got.len(), 2);
    let inline = got
        .iter()
        .map(|raw| MessageParser::default().parse(raw).expect("parses"))
        .find(|m| m.attachment_count() == 0)
        .expect("the inline forward");
    let text = inline.body_text(0).expect("text");
    assert!(
        text.contains("Forwarded message")
            && text.contains("The invoice is due.")
            && text.contains("Café"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Subject: Invoice {marker}")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_saves_the_same_bytes_and_a_failed_save_does_not_fail_the_send() {
    use std::time::Duration;
    use support::mailbox::fetch_by_subject;
    let s = Jobs::start("smtp").await;
    let marker = unique("sv").replace('-', "");
    let imap = vars("ops6", json!({}))["server"].clone();
    let mut job = smtp_block("ops6");
    job["from"] = json!("ops6@example.test");
    job["to"] = json!("ops7@example.test");
    job["subject"] = json!(format!("Saved {marker}"));
    job["body"] = json!(".a line with a leading dot\r\nand more");
    // A folder of this run: the test gateway's job keys, and so the Message-IDs, repeat
    // from run to run, and a copy with the same Message-ID is not stored twice.
    let sent_folder = format!("Sent{marker}");
    job["saveCopyTo"] = json!({ "folder": sent_folder, "server": imap });
    let r = s.ok("send", job.clone()).await;
    assert_eq!(r["savedTo"]["folder"], sent_folder, "{r}");
    assert!(r["savedTo"]["uid"].as_u64().is_some(), "{r}");
    assert!(r.get("saveError").is_none(), "{r}");
    let port = testbed().port("PORT_IMAP");
    let delivered = fetch_by_subject(port, "ops7", &marker, 1, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 1);
    let sent = flags_by_message_id("ops6", &sent_folder).await;
    let flags = sent
        .get(r["messageId"].as_str().expect("id"))
        .unwrap_or_else(|| panic!("{sent:?}"));
    assert!(flags.iter().any(|f| f.contains("Seen")), "{flags:?}");
    let exported = s_export(
        "ops6",
        &sent_folder,
        r["savedTo"]["uid"].as_u64().expect("uid"),
    )
    .await;
    assert!(
        delivered[0].ends_with(&exported),
        "the saved copy is not the sent message (Postfix only adds headers in front)"
    );

    // An IMAP server that is not there: the mail goes, the job completes, the save is reported.
    job["subject"] = json!(format!("Unsaved {marker}"));
    job["saveCopyTo"]["server"]["port"] = json!(1);
    let r = s.ok("send", job).await;
    assert_eq!(r["sent"], true);
    assert_eq!(r["savedTo"], Value::Null, "{r}");
    assert_eq!(r["saveError"]["code"], "CONNECTION_FAILED", "{r}");
}

/// The raw bytes of `uid` in `user`'s `folder`, read by the export job.
async fn s_export(user: &str, folder: &str, uid: u64) -> Vec<u8> {
    let s = Jobs::start("imap").await;
    let r = s
        .ok(
            "export",
            vars(user, json!({ "folder": folder, "uid": uid })),
        )
        .await;
    base64::engine::general_purpose::STANDARD
        .decode(r["content"].as_str().expect("content"))
        .expect("base64")
}
