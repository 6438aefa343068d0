//! IMAP operations end to end: test gateway → worker process → Dovecot. 127.0.0.1 is a full
//! Dovecot (SORT, MOVE, UIDPLUS, LITERAL+); 127.0.0.2 is the same server advertising none of
//! those, so the fallback paths run against a real server too.

use crate::support;

use serde_json::{Value, json};
use support::mailbox::{
    append, create_folder, flags_by_message_id, folders, remove_maildir, write_maildir,
};
use support::{Jobs, testbed, unique};

pub(crate) fn vars(user: &str, extra: Value) -> Value {
    let tb = testbed();
    let mut v = json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_IMAPS"), "security": "tls", "serverCertificate": tb.ca_pem(), "timeoutSeconds": 20 }
    });
    for (k, val) in extra.as_object().expect("object") {
        v[k] = val.clone();
    }
    v
}

/// The same, against the reduced-capability address (plaintext, no SORT/MOVE/UIDPLUS/LITERAL+).
pub(crate) fn old_server_vars(user: &str, extra: Value) -> Value {
    let mut v = vars(user, extra);
    v["server"] = json!({ "host": "127.0.0.2", "port": testbed().port("PORT_IMAP"), "security": "none", "timeoutSeconds": 20 });
    v
}

fn simple(id: &str, subject: &str, from: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}>\r\nFrom: {from}\r\nTo: someone@example.test\r\nSubject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|m| m["messageId"].as_str().unwrap_or("null").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_decodes_charsets_encodings_and_nested_parts() {
    let s = Jobs::start("imap").await;
    let folder = unique("Read");
    let tag = unique("r");
    let qp = format!(
        "Message-ID: <qp-{tag}@example.test>\r\nFrom: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen@example.test>\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\r\nDate: Thu, 1 Feb 2024 11:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me, na=EFve =\r\nsoft break\r\n"
    );
    let cp1252 = format!(
        "Message-ID: <cp-{tag}@example.test>\r\nFrom: shop@example.test\r\nSubject: =?utf-8?b?UHJlaXMg4oKs?=\r\nDate: Thu, 1 Feb 2024 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: base64\r\n\r\nUHJpY2U6IDEwgCDEIA==\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Price: 10 \u{20ac}</p>\r\n--alt--\r\n"
    );
    let nested = format!(
        "Message-ID: <nested-{tag}@example.test>\r\nFrom: \"Ops Team\" <ops@example.test>\r\nSubject: Report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the chart \u{2713}\r\n--inner\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<img src=\"cid:chart@x\">\r\n--rel\r\nContent-Type: image/png\r\nContent-ID: <chart@x>\r\nContent-Disposition: inline; filename=chart.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--rel--\r\n--inner--\r\n--outer\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''Rechnung_%C3%A4%20M%C3%A4rz.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\nFrom: inner@example.test\r\nSubject: Forwarded one\r\nMessage-ID: <inner-{tag}@example.test>\r\n\r\nInner body\r\n--outer--\r\n"
    );
    let no_id = "From: anon@example.test\r\nSubject: no id\r\nDate: Thu, 1 Feb 2024 13:00:00 +0000\r\n\r\nwho am I\r\n".to_string();
    let no_date = format!(
        "Message-ID: <nodate-{tag}@example.test>\r\nFrom: late@example.test\r\nSubject: no date\r\n\r\nwhen?\r\n"
    );
    append(
        "alice",
        &folder,
        &[
            (qp.as_bytes(), ""),
            (cp1252.as_bytes(), ""),
            (nested.as_bytes(), ""),
            (no_id.as_bytes(), ""),
            (no_date.as_bytes(), ""),
        ],
    )
    .await;

    let r = s
        .ok(
            "read",
            vars(
                "alice",
                json!({ "folder": folder, "messageId": format!("qp-{tag}@example.test") }),
            ),
        )
        .await;
    assert_eq!(r["messageId"], format!("<qp-{tag}@example.test>"));
    assert_eq!(r["fromAddress"], "juergen@example.test");
    assert_eq!(r["subject"], "Grüße aus Köln");
    assert_eq!(
        r["plainTextBody"].as_str().map(str::trim),
        Some("Café crème, naïve soft break")
    );
    assert_eq!(r["htmlBody"], Value::Null);
    assert_eq!(r["sentDate"], "2024-02-01T10:00:00Z");
    assert!(
        r["receivedDateTime"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z')),
        "{r}"
    );
    assert_eq!(r["size"].as_u64(), Some(qp.len() as u64));
    let headers = r["headers"].as_array().expect("headers");
    assert_eq!(
        headers[0],
        json!({ "header": "Message-ID", "value": format!("<qp-{tag}@example.test>") })
    );
    assert!(
        headers.contains(
            &json!({ "header": "From", "value": "Jürgen Müller <juergen@example.test>" })
        ),
        "{headers:?}"
    );

    let r = s
        .ok(
            "read",
            vars(
                "alice",
                json!({ "folder": folder, "messageId": format!("<cp-{tag}@example.test>") }),
            ),
        )
        .await;
    assert_eq!(r["subject"], "Preis €");
    assert_eq!(
        r["plainTextBody"].as_str().map(str::trim),
        Some("Price: 10€ Ä")
    );
    assert_eq!(
        r["htmlBody"].as_str().map(str::trim),
        Some("<p>Price: 10 €</p>")
    );

    let r = s
        .ok(
            "read",
            vars(
                "alice",
                json!({ "folder": folder, "messageId": format!("nested-{tag}@example.test") }),
            ),
        )
        .await;
    assert_eq!(
        r["plainTextBody"].as_str().map(str::trim),
        Some("See the chart ✓")
    );
    assert_eq!(
        r["htmlBody"].as_str().map(str::trim),
        Some("<img src=\"cid:chart@x\">")
    );
    let attachments = r["attachments"].as_array().expect("attachments");
    let by_name = |name: &str| {
        attachments
            .iter()
            .find(|a| a["fileName"] == name)
            .unwrap_or_else(|| panic!("{name} in {attachments:?}"))
            .clone()
    };
    let image = by_name("chart.png");
    assert_eq!(
        (
            image["contentType"].as_str(),
            image["inline"].as_bool(),
            image["contentId"].as_str()
        ),
        (Some("image/png"), Some(true), Some("chart@x"))
    );
    assert_eq!(image["content"], "iVBORw0KGgo=");
    let pdf = by_name("Rechnung_ä März.pdf");
    assert_eq!(
        (
            pdf["contentType"].as_str(),
            pdf["size"].as_u64(),
            pdf["content"].as_str()
        ),
        (Some("application/pdf"), Some(8), Some("JVBERi0xLjQ="))
    );
    let forwarded = by_name("Forwarded one.eml");
    assert_eq!(forwarded["contentType"], "message/rfc822");

    let r = s
        .ok(
            "read",
            vars(
                "alice",
                json!({ "folder": folder, "messageId": format!("nodate-{tag}@example.test") }),
            ),
        )
        .await;
    assert_eq!(r["sentDate"], Value::Null);
    assert_eq!(r["plainTextBody"].as_str().map(str::trim), Some("when?"));

    let listed = s
        .ok("list", vars("alice", json!({ "folder": folder })))
        .await;
    assert_eq!(ids(&listed).len(), 5);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["messageId"].is_null() && m["subject"] == "no id"),
        "{listed}"
    );

    let (retries, message, _) = s
        .fails(
            "read",
            vars(
                "alice",
                json!({ "folder": folder, "messageId": "<missing@example.test>" }),
            ),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with(&format!(
            "EMAIL_NOT_FOUND: imap:read on 127.0.0.1:{}",
            testbed().port("PORT_IMAPS")
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_keeps_messages_unseen_unless_asked() {
    let s = Jobs::start("imap").await;
    let folder = unique("Seen");
    let (a, b) = (unique("a") + "@example.test", unique("b") + "@example.test");
    append(
        "bob",
        &folder,
        &[
            (&simple(&a, "A", "x@example.test", "a"), ""),
            (&simple(&b, "B", "x@example.test", "b"), ""),
        ],
    )
    .await;
    s.ok(
        "read",
        vars("bob", json!({ "folder": folder, "messageId": a })),
    )
    .await;
    s.ok(
        "read",
        vars(
            "bob",
            json!({ "folder": folder, "messageId": b, "markAsRead": true }),
        ),
    )
    .await;
    let flags = flags_by_message_id("bob", &folder).await;
    assert!(
        !flags[&format!("<{a}>")].iter().any(|f| f.contains("Seen")),
        "{flags:?}"
    );
    assert!(
        flags[&format!("<{b}>")].iter().any(|f| f.contains("Seen")),
        "{flags:?}"
    );
}

/// What the test knows of each generated message, to compute expected orders itself.
struct Generated {
    message_id: String,
    sent: i64,
    arrival: i64,
    size: usize,
}

/// 10,000 messages whose Date, arrival time and size each order them differently.
fn bulk(count: usize, tag: &str) -> (Vec<(Vec<u8>, i64)>, Vec<Generated>) {
    let base = 1_700_000_000i64;
    let mut messages = Vec::new();
    let mut meta = Vec::new();
    for i in 0..count {
        let sent = base + ((i * 7919) % count) as i64 * 60;
        let arrival = base + ((i * 104_729 + 13) % count) as i64 * 61;
        // Fixed-width numbers: the padding alone (a permutation of 0..count) sets the size.
        let id = format!("bulk-{i:05}-{tag}@example.test");
        let padding = "x".repeat((i * 31) % count);
        let date = support::rfc5322_date(sent);
        let raw = format!(
            "Message-ID: <{id}>\r\nFrom: sender{i:05}@example.test\r\nSubject: bulk {i:05}\r\nDate: {date:>31}\r\n\r\nbody {i:05} {padding}\r\n"
        );
        meta.push(Generated {
            message_id: format!("<{id}>"),
            sent,
            arrival,
            size: raw.len(),
        });
        messages.push((raw.into_bytes(), arrival));
    }
    (messages, meta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_sorts_then_limits_on_a_folder_of_ten_thousand() {
    let s = Jobs::start("imap").await;
    let tb = testbed();
    let folder = unique("Bulk");
    let (messages, meta) = bulk(10_000, &folder);
    let mut sizes: Vec<usize> = meta.iter().map(|m| m.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    assert_eq!(
        sizes.len(),
        meta.len(),
        "the generator must give distinct sizes"
    );
    write_maildir(tb.dir(), "bench", &folder, &messages);
    type SortKey = fn(&Generated) -> i64;
    let keys: [(&str, SortKey); 3] = [
        ("RECEIVED_DATE", |m| m.arrival),
        ("SENT_DATE", |m| m.sent),
        ("SIZE", |m| m.size as i64),
    ];
    for (field, key) in keys {
        for order in ["ASC", "DESC"] {
            let mut expected: Vec<(i64, String)> = meta
                .iter()
                .map(|m| (key(m), m.message_id.clone()))
                .collect();
            expected.sort();
            if order == "DESC" {
                expected.reverse();
            }
            let expected: Vec<String> = expected.into_iter().take(10).map(|(_, id)| id).collect();
            let extra = json!({ "folder": folder, "maxToBeRead": 10, "sortField": field, "sortOrder": order });
            let listed = s.ok("list", vars("bench", extra.clone())).await;
            assert_eq!(ids(&listed), expected, "server SORT, {field} {order}");
            // The same through the client-side fallback (no SORT advertised).
            let listed = s.ok("list", old_server_vars("bench", extra)).await;
            assert_eq!(ids(&listed), expected, "local sort, {field} {order}");
        }
    }
    let first = s
        .ok(
            "list",
            vars(
                "bench",
                json!({ "folder": folder, "maxToBeRead": 1, "sortField": "SIZE" }),
            ),
        )
        .await;
    assert_eq!(
        first[0]["size"].as_u64(),
        Some(meta.iter().map(|m| m.size).min().unwrap() as u64)
    );
    remove_maildir(tb.dir(), "bench", &folder);
}

fn deleted_neighbour_setup(tag: &str) -> (String, String, String, Vec<u8>, Vec<u8>, Vec<u8>) {
    let target = format!("target-{tag}@example.test");
    let neighbour = format!("flagged-{tag}@example.test");
    let other = format!("other-{tag}@example.test");
    let (t, n, o) = (
        simple(&target, "t", "a@example.test", "t"),
        simple(&neighbour, "n", "a@example.test", "n"),
        simple(&other, "o", "a@example.test", "o"),
    );
    (target, neighbour, other, t, n, o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_only_its_message_and_a_second_delete_is_false() {
    let s = Jobs::start("imap").await;
    let folder = unique("Del");
    let tag = unique("d");
    let (target, neighbour, other, t, n, o) = deleted_neighbour_setup(&tag);
    append("carol", &folder, &[(&t, ""), (&n, "(\\Deleted)"), (&o, "")]).await;
    let r = s
        .ok(
            "delete",
            vars(
                "carol",
                json!({ "folder": folder, "messageId": format!("<{target}>") }),
            ),
        )
        .await;
    assert_eq!(r["deleted"], true);
    assert_eq!(r["messageId"], format!("<{target}>"));
    let flags = flags_by_message_id("carol", &folder).await;
    assert!(!flags.contains_key(&format!("<{target}>")), "{flags:?}");
    assert!(
        flags[&format!("<{neighbour}>")]
            .iter()
            .any(|f| f.contains("Deleted")),
        "the flagged neighbour must survive: {flags:?}"
    );
    assert!(flags.contains_key(&format!("<{other}>")));
    let again = s
        .ok(
            "delete",
            vars("carol", json!({ "folder": folder, "messageId": target })),
        )
        .await;
    assert_eq!(again["deleted"], false);

    // Without UIDPLUS, EXPUNGE would take the flagged neighbour along: refuse, and keep all.
    let folder = unique("DelOld");
    append("carol", &folder, &[(&t, ""), (&n, "(\\Deleted)")]).await;
    let (retries, message, _) = s
        .fails(
            "delete",
            old_server_vars("carol", json!({ "folder": folder, "messageId": target })),
        )
        .await;
    assert_eq!(retries, 2, "{message}");
    assert!(
        message.starts_with("TEMPORARY_FAILURE: ") && message.contains("UIDPLUS"),
        "{message}"
    );
    assert_eq!(flags_by_message_id("carol", &folder).await.len(), 2);
    // With no other message flagged, the plain EXPUNGE is safe and used.
    let folder = unique("DelOldSafe");
    append("carol", &folder, &[(&t, ""), (&o, "")]).await;
    let r = s
        .ok(
            "delete",
            old_server_vars("carol", json!({ "folder": folder, "messageId": target })),
        )
        .await;
    assert_eq!(r["deleted"], true);
    assert_eq!(
        flags_by_message_id("carol", &folder)
            .await
            .keys()
            .collect::<Vec<_>>(),
        [&format!("<{other}>")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_creates_the_path_on_both_folder_layouts() {
    let s = Jobs::start("imap").await;
    for (user, delimiter) in [("move1", "."), ("fsuser", "/")] {
        let tag = unique("m");
        let source = unique("Src");
        let (target, neighbour, _, t, n, _) = deleted_neighbour_setup(&tag);
        let second = format!("second-{tag}@example.test");
        append(
            user,
            &source,
            &[
                (&t, ""),
                (&n, "(\\Deleted)"),
                (&simple(&second, "s", "a@example.test", "s"), ""),
            ],
        )
        .await;

        let top = unique("P").replace('-', "");
        let path = format!("{top}.2023.January");
        let r = s
            .ok(
                "move",
                vars(
                    user,
                    json!({ "messageId": target, "sourceFolder": source, "targetFolder": path }),
                ),
            )
            .await;
        assert_eq!(
            (r["from"].as_str(), r["to"].as_str()),
            (Some(source.as_str()), Some(path.as_str())),
            "{user}"
        );
        assert_eq!(r["messageId"], format!("<{target}>"));
        assert!(r["targetUid"].as_u64().is_some(), "{r}");
        let server_path = [top.as_str(), "2023", "January"].join(delimiter);
        assert!(
            flags_by_message_id(user, &server_path)
                .await
                .contains_key(&format!("<{target}>")),
            "{user}: not in {server_path}"
        );
        let left = flags_by_message_id(user, &source).await;
        assert!(
            !left.contains_key(&format!("<{target}>")),
            "{user}: {left:?}"
        );
        assert!(
            left[&format!("<{neighbour}>")]
                .iter()
                .any(|f| f.contains("Deleted")),
            "{user}: neighbour lost: {left:?}"
        );
        let all = folders(user).await;
        for level in [top.clone(), [top.as_str(), "2023"].join(delimiter)] {
            assert!(all.contains(&level), "{user}: {level} missing in {all:?}");
        }

        let reports = unique("R").replace('-', "");
        let segments = json!([reports, "v1.2"]);
        let job = vars(
            user,
            json!({ "messageId": second, "sourceFolder": source, "targetFolder": segments }),
        );
        if delimiter == "/" {
            let r = s.ok("move", job).await;
            assert_eq!(r["to"], format!("{reports}/v1.2"));
            assert!(
                flags_by_message_id(user, &format!("{reports}/v1.2"))
                    .await
                    .contains_key(&format!("<{second}>"))
            );
        } else {
            // With '.' as the delimiter a folder cannot be named "v1.2": say so, move nothing.
            let (retries, message, _) = s.fails("move", job).await;
            assert_eq!(retries, 0);
            assert!(
                message.contains("/targetFolder/1: folder name 'v1.2' contains '.'"),
                "{message}"
            );
            assert!(
                flags_by_message_id(user, &source)
                    .await
                    .contains_key(&format!("<{second}>"))
            );
        }
    }

    // A server without MOVE: COPY, flag and UID EXPUNGE... and without UIDPLUS, only when safe.
    let source = unique("SrcOld");
    let tag = unique("o");
    let id = format!("old-{tag}@example.test");
    append(
        "move2",
        &source,
        &[(&simple(&id, "o", "a@example.test", "o"), "")],
    )
    .await;
    let r = s
        .ok(
            "move",
            old_server_vars(
                "move2",
                json!({ "messageId": id, "sourceFolder": source, "targetFolder": "Archive.Old" }),
            ),
        )
        .await;
    assert_eq!(r["to"], "Archive.Old");
    assert!(
        flags_by_message_id("move2", "Archive.Old")
            .await
            .contains_key(&format!("<{id}>"))
    );
    assert!(flags_by_message_id("move2", &source).await.is_empty());

    let (retries, message, _) = s.fails("move", vars("move2", json!({ "messageId": "nope@example.test", "sourceFolder": source, "targetFolder": "X" }))).await;
    assert_eq!(retries, 0);
    assert!(message.starts_with("EMAIL_NOT_FOUND"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_runs_nested_criteria_with_utf8_and_quoted_values_on_the_server() {
    let s = Jobs::start("imap").await;
    let folder = unique("Search");
    let tag = unique("s");
    let messages = [
        (
            format!("m1-{tag}@example.test"),
            "Rechnung März 2024",
            "billing@example.test",
            "Bitte zahlen",
        ),
        (
            format!("m2-{tag}@example.test"),
            "Quote \"this\" \\ back",
            "quotes@example.test",
            "quoted",
        ),
        (
            format!("m3-{tag}@example.test"),
            "invoice 42",
            "billing@example.test",
            "urgent payment",
        ),
        (
            format!("m4-{tag}@example.test"),
            "lunch",
            "friend@example.test",
            "pizza?",
        ),
        (
            format!("m5-{tag}@example.test"),
            "invoice 43",
            "other@example.test",
            "not urgent",
        ),
    ];
    let raws: Vec<Vec<u8>> = messages
        .iter()
        .map(|(id, subject, from, body)| simple(id, subject, from, body))
        .collect();
    let items: Vec<(&[u8], &str)> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_slice(), if i == 2 { "(\\Seen)" } else { "" }))
        .collect();
    append("dave", &folder, &items).await;
    let subjects = |list: &Value| -> Vec<String> {
        let mut s: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap_or("").to_string())
            .collect();
        s.sort();
        s
    };

    // (FROM billing AND (SUBJECT März OR (BODY urgent AND NOT UNSEEN))) OR SUBJECT "Quote "this" \ back"
    let criteria = json!({
        "operator": "OR",
        "criteria": [
            { "operator": "AND", "criteria": [
                { "field": "FROM", "value": "billing@example.test" },
                { "operator": "OR", "criteria": [
                    { "field": "SUBJECT", "value": "März" },
                    { "operator": "AND", "criteria": [
                        { "field": "BODY", "value": "urgent" },
                        { "operator": "NOT", "criteria": [{ "field": "UNSEEN" }] }
                    ]}
                ]}
            ]},
            { "field": "SUBJECT", "value": "Quote \"this\" \\ back" }
        ]
    });
    let expected = vec![
        "Quote \"this\" \\ back".to_string(),
        "Rechnung März 2024".into(),
        "invoice 42".into(),
    ];
    let found = s
        .ok(
            "search",
            vars(
                "dave",
                json!({ "folder": folder, "criteria": criteria.clone() }),
            ),
        )
        .await;
    assert_eq!(subjects(&found), expected);
    assert!(
        found[0]["messageId"]
            .as_str()
            .is_some_and(|id| id.contains(&tag))
    );
    // Without LITERAL+, the UTF-8 value goes as a synchronizing literal.
    let found = s
        .ok(
            "search",
            old_server_vars("dave", json!({ "folder": folder, "criteria": criteria })),
        )
        .await;
    assert_eq!(subjects(&found), expected);
    // The JSON text form, as a FEEL text field gives it, and maxResults.
    let text = r#"{"operator":"OR","criteria":[{"field":"SUBJECT","value":"invoice"},{"field":"SUBJECT","value":"lunch"}]}"#;
    let found = s
        .ok(
            "search",
            vars(
                "dave",
                json!({ "folder": folder, "criteria": text, "maxResults": 2 }),
            ),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 2);

    for (bad, pointer) in [
        (
            json!({ "operator": "OR" }),
            "/criteria: \"criteria\" is required for OR",
        ),
        (
            json!({ "operator": "AND", "criteria": [] }),
            "/criteria/criteria: AND needs at least one criterion",
        ),
        (
            json!({ "field": "SUBJECT" }),
            "/criteria: \"value\" is required for SUBJECT",
        ),
        (
            json!({ "field": "COLOUR", "value": "red" }),
            "/criteria/field: unknown field 'COLOUR'",
        ),
        (
            json!({ "operator": "XOR", "criteria": [{ "field": "SEEN" }] }),
            "/criteria/operator: must be AND, OR or NOT",
        ),
        (
            json!({ "operator": "AND", "criteria": [{ "field": "FROM", "value": "a", "colour": 1 }] }),
            "/criteria/criteria/0: unknown property 'colour'",
        ),
    ] {
        let (retries, message, _) = s
            .fails(
                "search",
                vars("dave", json!({ "folder": folder, "criteria": bad })),
            )
            .await;
        assert_eq!(retries, 0);
        assert!(
            message.starts_with("INVALID_INPUT: ") && message.contains(pointer),
            "{pointer} in {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_security_mode_and_the_failures_that_need_a_person() {
    let s = Jobs::start("imap").await;
    let tb = testbed();
    let folder = "Übersicht";
    create_folder("erin", "&ANw-bersicht").await;
    append(
        "erin",
        "&ANw-bersicht",
        &[(
            &simple(&unique("u"), "umlaut folder", "a@example.test", "x"),
            "",
        )],
    )
    .await;
    for (security, port) in [
        ("tls", tb.port("PORT_IMAPS")),
        ("starttls", tb.port("PORT_IMAP")),
        ("none", tb.port("PORT_IMAP")),
    ] {
        let mut v = vars("erin", json!({ "folder": folder }));
        v["server"]["security"] = json!(security);
        v["server"]["port"] = json!(port);
        let listed = s.ok("list", v).await;
        assert!(
            listed
                .as_array()
                .is_some_and(|l| !l.is_empty() && l[0]["subject"] == "umlaut folder"),
            "{security}: {listed}"
        );
    }
    let mut v = vars("erin", json!({}));
    v["server"]["serverCertificate"] = json!(tb.other_ca_pem());
    let (retries, message, _) = s.fails("list", v).await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with(&format!(
            "TLS_ERROR: imap:list on 127.0.0.1:{}",
            testbed().port("PORT_IMAPS")
        )),
        "{message}"
    );

    let mut v = vars("erin", json!({}));
    v["server"]["port"] = json!(tb.port("PORT_IMAP"));
    let (_, message, _) = s.fails("list", v).await;
    assert!(
        message.starts_with("TLS_ERROR: "),
        "TLS to a plaintext port: {message}"
    );

    let mut v = vars("erin", json!({}));
    v["authentication"]["password"] = json!("wrong");
    let (retries, message, _) = s.fails("list", v).await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("AUTHENTICATION_FAILED: ") && !message.contains("wrong"),
        "{message}"
    );

    let (retries, message, _) = s
        .fails("list", vars("erin", json!({ "folder": "Does.Not.Exist" })))
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("FOLDER_NOT_FOUND: ") && message.contains("Does.Not.Exist"),
        "{message}"
    );

    let mut v = vars("erin", json!({}));
    v["authentication"] = json!({ "type": "none" });
    let (retries, message, _) = s.fails("list", v).await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("INVALID_INPUT: ") && message.contains("/authentication/type"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_level_reveals_a_password() {
    let tb = testbed();
    let gateway = support::gateway::TestGateway::start().await;
    let worker = support::WorkerProcess::start(
        &gateway.url(),
        &[("RUST_LOG", "trace"), ("EMAIL_SECRET_IMAP_PW", "grace-pw")],
    );
    let mut imap = vars("grace", json!({}));
    imap["authentication"]["password"] = json!("{{secrets.IMAP_PW}}");
    let mut smtp = json!({
        "authentication": { "username": "grace@example.test", "password": "{{secrets.IMAP_PW}}" },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_SUBMISSION"), "security": "starttls", "serverCertificate": tb.ca_pem() },
        "from": "grace@example.test", "to": "grace@example.test", "subject": "trace", "body": "x"
    });
    for (job_type, variables) in [
        ("email:imap:list:1", imap.clone()),
        ("email:smtp:send:1", smtp.take()),
    ] {
        let key = gateway.create_job(job_type, variables, json!({}), 3);
        let outcome = gateway
            .wait_outcome(key, std::time::Duration::from_secs(30))
            .await;
        assert!(
            matches!(outcome, support::gateway::Outcome::Completed { .. }),
            "{job_type}: {outcome:?}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = worker.logs();
    // The libraries that trace wire data are capped at info whatever RUST_LOG says, so the
    // proof that the filter took effect is the worker's own debug output.
    assert!(logs.contains("DEBUG"), "the worker did log below info");
    assert!(
        !logs.contains("grace-pw"),
        "a password reached the log at trace level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_message_id_is_ambiguous_and_uids_name_each_mail() {
    // Any sender can reuse a Message-ID: here a second mail carries the first one's. An
    // operation given the Message-ID alone must touch neither; list, search and read give the
    // UID and UIDVALIDITY that name each mail for good.
    let s = Jobs::start("imap").await;
    let folder = unique("Same");
    let target = unique("Kept").replace('-', "");
    let tag = unique("same");
    let reused = format!("reused-{tag}@example.test");
    let other = format!("other-{tag}@example.test");
    append(
        "dave",
        &folder,
        &[
            (
                &simple(&reused, "genuine", "a@example.test", "the real one"),
                "",
            ),
            (&simple(&reused, "spoof", "b@example.test", "a copy"), ""),
            (&simple(&other, "other", "c@example.test", "other"), ""),
        ],
    )
    .await;
    let v = |extra: Value| {
        let mut extra = extra;
        extra["folder"] = json!(folder);
        vars("dave", extra)
    };
    let list = s.ok("list", v(json!({}))).await;
    let entry = |subject: &str| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|m| m["subject"] == subject)
            .cloned()
            .expect("listed")
    };
    let (genuine, spoof, third) = (entry("genuine"), entry("spoof"), entry("other"));
    let uid = |m: &Value| m["uid"].as_u64().expect("uid");
    let validity = genuine["uidValidity"].as_u64().expect("uidValidity");
    assert!(
        uid(&genuine) < uid(&spoof) && uid(&spoof) < uid(&third),
        "{list}"
    );
    assert_eq!(spoof["uidValidity"], validity);
    let found = s
        .ok(
            "search",
            v(json!({ "criteria": { "field": "SUBJECT", "value": "spoof" } })),
        )
        .await;
    assert_eq!(found[0]["uid"], spoof["uid"], "{found}");
    assert_eq!(found[0]["uidValidity"], validity);

    // The Message-ID alone: an incident naming both UIDs, for read, move and delete alike.
    for (operation, extra) in [
        ("read", json!({ "messageId": reused })),
        ("delete", json!({ "messageId": reused })),
        (
            "move",
            json!({ "messageId": reused, "sourceFolder": folder, "targetFolder": target }),
        ),
    ] {
        let (retries, message, _) = s.fails(operation, v(extra)).await;
        assert_eq!(retries, 0, "{operation}: {message}");
        assert!(
            message.starts_with("EMAIL_AMBIGUOUS: ")
                && message.contains(&format!("UID {}", uid(&genuine)))
                && message.contains(&format!("UID {}", uid(&spoof))),
            "{operation}: {message}"
        );
    }
    assert_eq!(
        flags_by_message_id("dave", &folder).await.len(),
        2,
        "nothing touched"
    );
    assert!(!folders("dave").await.contains(&target), "nothing moved");
    // A model may catch it on an error boundary event.
    let key = s.gateway.create_job(
        "email:imap:read:1",
        v(json!({ "messageId": format!("<{reused}>") })),
        json!({ "bpmnErrors": "EMAIL_AMBIGUOUS" }),
        3,
    );
    match s
        .gateway
        .wait_outcome(key, std::time::Duration::from_secs(30))
        .await
    {
        support::gateway::Outcome::Thrown { code, .. } => assert_eq!(code, "EMAIL_AMBIGUOUS"),
        other => panic!("expected a BPMN error, got {other:?}"),
    }

    // By UID: exactly that mail; with the Message-ID too, both must match.
    let read = s
        .ok(
            "read",
            v(json!({ "uid": uid(&genuine), "uidValidity": validity })),
        )
        .await;
    assert_eq!(read["subject"], "genuine");
    assert_eq!(read["uid"], genuine["uid"]);
    assert_eq!(read["uidValidity"], validity);
    let read = s
        .ok(
            "read",
            v(json!({ "uid": uid(&spoof), "messageId": reused })),
        )
        .await;
    assert_eq!(read["subject"], "spoof");
    for (extra, says) in [
        (
            json!({ "uid": uid(&third), "messageId": reused }),
            "carries Message-ID",
        ),
        (
            json!({ "uid": uid(&genuine), "uidValidity": validity + 1 }),
            "UIDVALIDITY",
        ),
        (json!({ "uid": uid(&third) + 1000 }), "no message with UID"),
    ] {
        let (retries, message, _) = s.fails("read", v(extra.clone())).await;
        assert_eq!(retries, 0, "{extra}: {message}");
        assert!(
            message.starts_with("EMAIL_NOT_FOUND: ") && message.contains(says),
            "{extra}: {message}"
        );
    }
    let (_, message, _) = s.fails("read", v(json!({ "uidValidity": validity }))).await;
    assert!(
        message.starts_with("INVALID_INPUT: ") && message.contains("messageId or uid is required"),
        "{message}"
    );

    // Move the spoof by UID, then delete the genuine one by UID and Message-ID.
    let moved = s
        .ok(
            "move",
            v(json!({ "uid": uid(&spoof), "uidValidity": validity, "sourceFolder": folder, "targetFolder": target })),
        )
        .await;
    assert_eq!(moved["uid"], spoof["uid"], "{moved}");
    assert_eq!(moved["messageId"], format!("<{reused}>"));
    assert!(moved["targetUid"].as_u64().is_some(), "{moved}");
    let stale = s
        .fails(
            "delete",
            v(json!({ "uid": uid(&genuine), "uidValidity": validity + 1 })),
        )
        .await;
    assert!(stale.1.starts_with("EMAIL_NOT_FOUND: "), "{}", stale.1);
    let deleted = s
        .ok(
            "delete",
            v(json!({ "uid": uid(&genuine), "uidValidity": validity, "messageId": reused })),
        )
        .await;
    assert_eq!(deleted["deleted"], true, "{deleted}");
    assert_eq!(deleted["uid"], genuine["uid"]);
    let again = s
        .ok(
            "delete",
            v(json!({ "uid": uid(&genuine), "uidValidity": validity })),
        )
        .await;
    assert_eq!(again["deleted"], false, "{again}");
    let left = flags_by_message_id("dave", &folder).await;
    assert_eq!(left.keys().collect::<Vec<_>>(), [&format!("<{other}>")]);
    let spoofed = flags_by_message_id("dave", &target).await;
    assert!(spoofed.contains_key(&format!("<{reused}>")), "{spoofed:?}");
    // Now one mail carries the Message-ID in the source: the id alone names it again.
    let read = s.ok("read", v(json!({ "messageId": other }))).await;
    assert_eq!(read["uid"], third["uid"]);
}
