//! IMAP and POP3 operations that must work the same on any server, run against Dovecot and
//! Cyrus IMAP in its two common layouts (`tests/support/servers.rs`), each also as an older
//! server. Every IMAP command the worker sends here passes through a recorder and is checked
//! against RFC 3501's grammar, so a lenient server cannot hide a malformed command.
//!
//! Folder names in job variables are the user's (relative to the personal namespace, `.` or
//! the server's separator between levels); the checks read the server with its own names.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::servers::{Bench, Server};
use support::unique;

crate::on_every_server!(
    imap_list_read_and_delete,
    imap_search_with_nested_groups,
    imap_every_folder_input_takes_a_path,
    imap_wildcards_in_names_are_names,
    imap_move_without_move_or_uidplus_copies_nothing_it_cannot_expunge,
    imap_attachments_left_on_the_server_have_their_exact_size,
    pop3_list_read_delete_and_search,
    pop3_login_delay_sets_the_backoff,
);

/// A plain-text mail. A non-ASCII subject goes as an RFC 2047 encoded word, as mail must
/// (Cyrus replaces raw 8-bit header bytes with `X`); the body is 8-bit UTF-8.
fn simple(id: &str, subject: &str, from: &str, body: &str) -> Vec<u8> {
    use base64::Engine;
    let subject = if subject.is_ascii() {
        subject.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(subject)
        )
    };
    format!(
        "Message-ID: <{id}>\r\nFrom: {from}\r\nTo: someone@example.test\r\nSubject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["messageId"].as_str().unwrap_or("null").to_string())
        .collect()
}

fn sorted_subjects(list: &Value) -> Vec<String> {
    let mut s: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or("").to_string())
        .collect();
    s.sort();
    s
}

/// A folder name of one level, unique per run, without the characters a layout reserves.
fn name(label: &str) -> String {
    unique(label).replace('-', "")
}

async fn imap_list_read_and_delete(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv1";
    let tag = unique("l");
    let folder = name("List");
    let on_server = server.folder(&[&folder]);
    let [small, big, mid, deleted] =
        ["small", "big", "mid", "deleted"].map(|n| format!("{n}-{tag}@example.test"));
    server
        .append(
            user,
            &on_server,
            &[
                (&simple(&small, "small", "a@example.test", "s"), ""),
                (
                    &simple(&big, "big", "b@example.test", &"b".repeat(3000)),
                    "",
                ),
                (
                    &simple(&mid, "Grüße", "Carol <c@example.test>", "Grüße aus Köln"),
                    "",
                ),
                (
                    &simple(&deleted, "gone", "d@example.test", "d"),
                    "(\\Deleted)",
                ),
            ],
        )
        .await;

    // The server sorts (SORT) or the worker does (the older profile): the same answer.
    for vars in [
        b.vars(
            user,
            json!({ "folder": folder, "maxToBeRead": 2, "sortField": "SIZE", "sortOrder": "DESC" }),
        ),
        b.older_vars(
            user,
            json!({ "folder": folder, "maxToBeRead": 2, "sortField": "SIZE", "sortOrder": "DESC" }),
        ),
    ] {
        let listed = b.jobs.ok("list", vars).await;
        assert_eq!(
            ids(&listed),
            [format!("<{big}>"), format!("<{mid}>")],
            "{server:?}"
        );
    }
    // Dovecot cuts the order itself (ESORT with a context extension); Cyrus has ESORT without
    // one, so it sends the whole order.
    let partial = "UID SORT RETURN (PARTIAL 1:2) (REVERSE SIZE) UTF-8 ALL";
    assert_eq!(
        b.sent().contains(partial),
        server == Server::Dovecot,
        "{server:?}: {}",
        b.sent()
    );
    let listed = b
        .ok(
            "list",
            user,
            json!({ "folder": folder, "sortField": "RECEIVED_DATE" }),
        )
        .await;
    for id in [&small, &big, &mid] {
        assert!(
            ids(&listed).contains(&format!("<{id}>")),
            "{server:?}: {listed}"
        );
    }

    let read = b
        .ok("read", user, json!({ "folder": folder, "messageId": mid }))
        .await;
    assert_eq!(read["subject"], "Grüße");
    assert_eq!(read["fromAddress"], "c@example.test");
    assert_eq!(read["plainTextBody"], "Grüße aus Köln\r\n");
    let (retries, message, _) = b
        .fails(
            "read",
            user,
            json!({ "folder": folder, "messageId": "nope@example.test" }),
        )
        .await;
    assert_eq!(retries, 0, "{message}");
    assert!(message.starts_with("EMAIL_NOT_FOUND"), "{message}");

    // Without UIDPLUS, another mail flagged \Deleted keeps the worker from expunging.
    let (retries, message, _) = b
        .jobs
        .fails(
            "delete",
            b.older_vars(user, json!({ "folder": folder, "messageId": small })),
        )
        .await;
    assert!(retries > 0, "{message}");
    assert!(message.starts_with("TEMPORARY_FAILURE"), "{message}");
    let r = b
        .ok(
            "delete",
            user,
            json!({ "folder": folder, "messageId": small }),
        )
        .await;
    assert_eq!(r["deleted"], true, "{server:?}");
    let r = b
        .ok(
            "delete",
            user,
            json!({ "folder": folder, "messageId": small }),
        )
        .await;
    assert_eq!(r["deleted"], false, "{server:?}");
    let left = server.flags(user, &on_server).await;
    assert!(!left.contains_key(&format!("<{small}>")), "{left:?}");
    assert!(
        left[&format!("<{deleted}>")]
            .iter()
            .any(|f| f.contains("Deleted")),
        "{server:?}: the other \\Deleted mail was expunged: {left:?}"
    );
    b.assert_grammatical();
}

async fn imap_search_with_nested_groups(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv2";
    let tag = unique("s");
    let folder = name("Search");
    let messages = [
        ("alpha one", "a@example.test"),
        ("alpha two", "b@example.test"),
        ("beta", "a@example.test"),
        ("Grüße gamma", "c@example.test"),
    ];
    let raws: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(i, (subject, from))| simple(&format!("m{i}-{tag}@example.test"), subject, from, "x"))
        .collect();
    let items: Vec<(&[u8], &str)> = raws.iter().map(|r| (r.as_slice(), "")).collect();
    server
        .append(user, &server.folder(&[&folder]), &items)
        .await;
    let subject = |v: &str| json!({ "field": "SUBJECT", "value": v });
    let cases = [
        // An AND inside an OR: a parenthesized group.
        (
            json!({ "operator": "OR", "criteria": [
                { "operator": "AND", "criteria": [
                    subject("alpha"),
                    { "operator": "NOT", "criteria": [subject("two")] }
                ]},
                subject("beta")
            ]}),
            vec!["alpha one", "beta"],
        ),
        // NOT of an AND.
        (
            json!({ "operator": "NOT", "criteria": [
                { "operator": "AND", "criteria": [subject("alpha"), { "field": "FROM", "value": "a@example.test" }] }
            ]}),
            vec!["Grüße gamma", "alpha two", "beta"],
        ),
        // A UTF-8 value inside a group: CHARSET UTF-8, a literal on the older profile.
        (
            json!({ "operator": "AND", "criteria": [
                { "operator": "OR", "criteria": [subject("grüße"), subject("beta")] },
                { "operator": "NOT", "criteria": [subject("alpha")] }
            ]}),
            vec!["Grüße gamma", "beta"],
        ),
    ];
    for (criteria, expected) in cases {
        for vars in [
            b.vars(user, json!({ "folder": folder, "criteria": criteria })),
            b.older_vars(user, json!({ "folder": folder, "criteria": criteria })),
        ] {
            let found = b.jobs.ok("search", vars).await;
            assert_eq!(sorted_subjects(&found), expected, "{server:?}: {criteria}");
        }
    }
    b.assert_grammatical();
}

async fn imap_every_folder_input_takes_a_path(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv3";
    let d = server.delimiter();
    let tag = unique("p");
    let id = format!("path-{tag}@example.test");
    let source = name("Src");
    server
        .append(
            user,
            &server.folder(&[&source]),
            &[(
                &simple(&id, &format!("path {tag}"), "a@example.test", "x"),
                "",
            )],
        )
        .await;
    let top = name("P");
    let dotted = format!("{top}.2023.January");
    let january = server.folder(&[&top, "2023", "January"]);

    // The target is created level by level, in the personal namespace.
    let r = b
        .ok(
            "move",
            user,
            json!({ "messageId": id, "sourceFolder": source, "targetFolder": dotted }),
        )
        .await;
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some(source.as_str()), Some(dotted.as_str())),
        "{server:?}: the response names the folders as the user did"
    );
    assert_eq!(
        server.copies(user, &january, &id).await,
        1,
        "{server:?}: not in {january}"
    );
    let all = server.folders(user).await;
    for level in [server.folder(&[&top]), server.folder(&[&top, "2023"])] {
        assert!(
            all.contains(&level),
            "{server:?}: {level} missing in {all:?}"
        );
    }

    // Every folder input reads the same path: dots, segments, or the server's separator.
    let written = [
        json!(dotted),
        json!([top, "2023", "January"]),
        json!([top.as_str(), "2023", "January"].join(d)),
    ];
    for folder in &written {
        let listed = b.ok("list", user, json!({ "folder": folder })).await;
        assert_eq!(
            ids(&listed),
            [format!("<{id}>")],
            "{server:?}: list in {folder}"
        );
        let criteria = json!({ "field": "SUBJECT", "value": tag });
        let found = b
            .ok(
                "search",
                user,
                json!({ "folder": folder, "criteria": criteria }),
            )
            .await;
        assert_eq!(
            ids(&found),
            [format!("<{id}>")],
            "{server:?}: search in {folder}"
        );
        let read = b
            .ok("read", user, json!({ "folder": folder, "messageId": id }))
            .await;
        assert_eq!(read["messageId"], format!("<{id}>"));
    }
    // A path that already starts with the personal namespace is taken as it is.
    if !server.prefix().is_empty() {
        let prefixed = format!("{}{dotted}", server.prefix());
        let listed = b.ok("list", user, json!({ "folder": prefixed })).await;
        assert_eq!(
            ids(&listed),
            [format!("<{id}>")],
            "{server:?}: list in {prefixed}"
        );
    }
    let (retries, message, _) = b
        .fails(
            "list",
            user,
            json!({ "folder": format!("{top}.2023.February") }),
        )
        .await;
    assert_eq!(retries, 0, "{message}");
    assert!(
        message.starts_with("FOLDER_NOT_FOUND")
            && message.contains(&format!("{top}.2023.February")),
        "{server:?}: {message}"
    );

    // sourceFolder as a dotted path, targetFolder as segments: the response gives the target
    // in the user's terms (no namespace prefix, the server's separator).
    let r = b
        .ok(
            "move",
            user,
            json!({ "messageId": id, "sourceFolder": dotted, "targetFolder": [top, "Done"] }),
        )
        .await;
    assert_eq!(r["from"], dotted);
    assert_eq!(r["to"], format!("{top}{d}Done"), "{server:?}");
    let done = server.folder(&[&top, "Done"]);
    assert_eq!(
        server.copies(user, &done, &id).await,
        1,
        "{server:?}: not in {done}"
    );
    assert_eq!(server.copies(user, &january, &id).await, 0);
    let r = b
        .ok(
            "delete",
            user,
            json!({ "folder": [top, "Done"], "messageId": id }),
        )
        .await;
    assert_eq!(r["deleted"], true);

    // INBOX is INBOX everywhere.
    let inbox = b.ok("list", user, json!({ "folder": "INBOX" })).await;
    assert!(inbox.is_array(), "{inbox}");
    b.assert_grammatical();
}

async fn imap_wildcards_in_names_are_names(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv4";
    let tag = unique("w");
    let id = format!("wild-{tag}@example.test");
    let source = name("WSrc");
    let base = name("Arch");
    let existing = format!("{base}ive");
    server
        .create_folder(user, &server.folder(&[&existing]))
        .await;
    server
        .append(
            user,
            &server.folder(&[&source]),
            &[(&simple(&id, "wild", "a@example.test", "x"), "")],
        )
        .await;

    // `Arch*` is a folder of its own, never a pattern that finds `Archive`.
    let star = format!("{base}*");
    let job = b.vars(
        user,
        json!({ "messageId": id, "sourceFolder": source, "targetFolder": star }),
    );
    let r = b.jobs.ok("move", job).await;
    assert_eq!(r["to"], star);
    assert_eq!(
        server.copies(user, &server.folder(&[&star]), &id).await,
        1,
        "{server:?}"
    );
    assert_eq!(
        server.copies(user, &server.folder(&[&existing]), &id).await,
        0,
        "{server:?}: the mail went to {existing}"
    );

    // A mail that is in neither folder is not found, even when `%` would match `Archive`.
    let (retries, message, _) = b.fails("move", user, json!({ "messageId": "nope@example.test", "sourceFolder": source, "targetFolder": format!("{base}%") }))
        .await;
    assert_eq!(retries, 0, "{message}");
    assert!(
        message.starts_with("EMAIL_NOT_FOUND"),
        "{server:?}: {message}"
    );
    b.assert_grammatical();
}

async fn imap_move_without_move_or_uidplus_copies_nothing_it_cannot_expunge(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv5";
    let tag = unique("f");
    let [id, neighbour] = ["target", "neighbour"].map(|n| format!("{n}-{tag}@example.test"));
    let source = name("FSrc");
    let target = name("FDst");
    let on_source = server.folder(&[&source]);
    let on_target = server.folder(&[&target]);
    server
        .append(
            user,
            &on_source,
            &[
                (&simple(&id, "move me", "a@example.test", "x"), ""),
                (
                    &simple(
                        &neighbour,
                        "flagged by another client",
                        "b@example.test",
                        "y",
                    ),
                    "(\\Deleted)",
                ),
            ],
        )
        .await;
    let job = b.older_vars(
        user,
        json!({ "messageId": id, "sourceFolder": source, "targetFolder": target }),
    );
    // Each retry finds the same situation; none may leave a copy behind.
    for attempt in 0..2 {
        let (retries, message, _) = b.jobs.fails("move", job.clone()).await;
        assert!(retries > 0, "{message}");
        assert!(message.starts_with("TEMPORARY_FAILURE"), "{message}");
        assert_eq!(
            server.copies(user, &on_target, &id).await,
            0,
            "{server:?}: attempt {attempt} left a copy in {target}"
        );
    }
    let left = server.flags(user, &on_source).await;
    assert!(left.contains_key(&format!("<{id}>")), "{left:?}");
    assert!(
        left[&format!("<{neighbour}>")]
            .iter()
            .any(|f| f.contains("Deleted"))
    );

    // With MOVE or UIDPLUS the same move goes through, beside the \Deleted neighbour.
    let r = b
        .ok(
            "move",
            user,
            json!({ "messageId": id, "sourceFolder": source, "targetFolder": target }),
        )
        .await;
    assert_eq!(r["to"], target);
    assert_eq!(server.copies(user, &on_target, &id).await, 1);
    assert_eq!(server.copies(user, &on_source, &neighbour).await, 1);
    b.assert_grammatical();
}

/// A message over the response budget is read by its BODYSTRUCTURE, and an attachment left on
/// the server is listed with its decoded size: exact on every server (Cyrus's encoded sizes
/// count line ends differently from Dovecot's, and an estimate from them was a few bytes off).
async fn imap_attachments_left_on_the_server_have_their_exact_size(server: Server) {
    use base64::Engine;
    let b = Bench::start(server, "imap").await;
    let user = "srv6";
    let folder = name("Sizes");
    let on_server = server.folder(&[&folder]);
    let id = format!("{}@example.test", unique("sizes"));
    // Lengths give every padding (none, `==`, `=`), widths MIME's 76 and others.
    let cases = [(1_500_000usize, 76usize), (1_500_001, 64), (1_300_002, 60)];
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: sizes@example.test\r\nSubject: sizes\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\nContent-Type: text/plain\r\n\r\nsee the attachments\r\n"
    );
    for (n, (len, width)) in cases.iter().enumerate() {
        let bytes: Vec<u8> = (0..*len).map(|i| ((i * 7 + n * 13) % 256) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        raw.push_str(&format!(
            "--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f{n}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        for line in encoded.as_bytes().chunks(*width) {
            raw.push_str(std::str::from_utf8(line).unwrap_or_default());
            raw.push_str("\r\n");
        }
    }
    raw.push_str("--p--\r\n");
    server
        .append(user, &on_server, &[(raw.as_bytes(), "")])
        .await;
    let read = b
        .ok("read", user, json!({ "folder": folder, "messageId": id }))
        .await;
    assert_eq!(read["plainTextBody"], "see the attachments", "{server:?}");
    let attachments = read["attachments"].as_array().cloned().unwrap_or_default();
    assert_eq!(attachments.len(), cases.len(), "{server:?}: {read}");
    for (a, (len, width)) in attachments.iter().zip(cases) {
        assert_eq!(a["truncated"], true, "{server:?}");
        assert_eq!(
            a["size"], len,
            "{server:?}: {len} bytes in lines of {width}"
        );
    }
    b.assert_grammatical();
}

async fn pop3_list_read_delete_and_search(server: Server) {
    let b = Bench::start(server, "pop3").await;
    let user = "popsrv1";
    server.clear_inbox(user).await;
    let tag = unique("p");
    let mail: Vec<String> = (0..4).map(|i| format!("m{i}-{tag}@example.test")).collect();
    let stuffed = "First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast";
    server
        .append(
            user,
            "INBOX",
            &[
                (
                    &simple(
                        &mail[0],
                        "Rechnung März",
                        "billing@example.test",
                        "Bitte PAY now",
                    ),
                    "",
                ),
                (
                    &simple(
                        &mail[1],
                        "invoice 7",
                        "billing@example.test",
                        &"already paid ".repeat(50),
                    ),
                    "",
                ),
                (
                    &simple(&mail[2], "lunch", "friend@example.test", stuffed),
                    "",
                ),
                (&simple(&mail[3], "to delete", "x@example.test", "bye"), ""),
            ],
        )
        .await;
    let listed = b
        .ok(
            "list",
            user,
            json!({ "sortField": "SIZE", "sortOrder": "DESC", "maxToBeRead": 1 }),
        )
        .await;
    assert_eq!(ids(&listed), [format!("<{}>", mail[1])], "{server:?}");

    let read = b
        .ok(
            "read",
            user,
            json!({ "messageId": mail[2], "deleteAfterRead": false }),
        )
        .await;
    assert_eq!(
        read["plainTextBody"],
        format!("{stuffed}\r\n"),
        "{server:?}: dot-stuffing"
    );

    let r = b.ok("delete", user, json!({ "messageId": mail[3] })).await;
    assert_eq!(r["deleted"], true);
    let r = b.ok("delete", user, json!({ "messageId": mail[3] })).await;
    assert_eq!(r["deleted"], false);

    let criteria = json!({ "operator": "OR", "criteria": [
        { "operator": "AND", "criteria": [
            { "field": "FROM", "value": "BILLING@" },
            { "operator": "NOT", "criteria": [{ "field": "BODY", "value": "paid" }] }
        ]},
        { "operator": "NOT", "criteria": [
            { "operator": "OR", "criteria": [
                { "field": "FROM", "value": "billing" },
                { "field": "SUBJECT", "value": "lunch" }
            ]}
        ]}
    ]});
    let found = b.ok("search", user, json!({ "criteria": criteria })).await;
    assert_eq!(sorted_subjects(&found), ["Rechnung März"], "{server:?}");

    // Read and delete: gone once the completion was accepted.
    b.ok("read", user, json!({ "messageId": mail[0] })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server
        .flags(user, "INBOX")
        .await
        .contains_key(&format!("<{}>", mail[0]))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{server:?}: not deleted after read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pop3_login_delay_sets_the_backoff(server: Server) {
    let b = Bench::start(server, "pop3").await;
    let user = "popsrv2";
    // Two logins in a row. The older profile of Cyrus allows one a minute (Debian's
    // `popminpoll: 1`) and says so (CAPA `LOGIN-DELAY 60`); Dovecot sets no delay.
    let first = b.jobs.run("list", b.older_vars(user, json!({}))).await.1;
    let second = b.jobs.run("list", b.older_vars(user, json!({}))).await.1;
    if !server.is_cyrus() {
        for outcome in [first, second] {
            assert!(
                matches!(outcome, support::gateway::Outcome::Completed { .. }),
                "{outcome:?}"
            );
        }
        return;
    }
    match second {
        support::gateway::Outcome::Failed {
            retries,
            message,
            backoff_ms,
        } => {
            assert!(retries > 0, "{message}");
            assert!(message.contains("LOGIN-DELAY"), "{message}");
            assert_eq!(
                backoff_ms, 60_000,
                "{server:?}: the retry waits the server's delay, not the task's 2 s"
            );
        }
        other => panic!("{server:?}: a second login within a minute went through: {other:?}"),
    }
}
