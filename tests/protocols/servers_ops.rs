//! The operations beyond the seeds (flags, folders, copy, append, export, reply and forward) on
//! every server of `servers.rs`: Dovecot and Cyrus in its two layouts (`.` under `INBOX.`, and
//! `/` without a prefix), current and older profile, every command checked against RFC 3501's
//! grammar. Folder inputs are the user's paths (dots, segments or the server's separator);
//! the checks read the server with its own names. Reply and forward send to a sink on
//! loopback: what is checked is that they find the original and store on each server.

use crate::support;

use base64::Engine;
use serde_json::{Value, json};
use support::fake_smtp::recording;
use support::servers::{Bench, Server};
use support::unique;

crate::on_every_server!(
    imap_flags_copy_and_export,
    imap_folders_create_list_rename_delete,
    imap_append_stores_the_bytes_once,
    imap_reply_and_forward_find_the_original_and_save_a_copy,
);

fn name(label: &str) -> String {
    unique(label).replace('-', "")
}

fn simple(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}>\r\nFrom: Customer <customer@example.test>\r\nTo: srv@example.test\r\n\
         Subject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße, {subject}\r\n"
    )
    .into_bytes()
}

fn decoded(content: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(content.as_str().expect("content"))
        .expect("base64")
}

/// Whether `flags` (as the test's IMAP client shows them: `Seen`, `Custom("$Filed")`) hold
/// `flag`.
fn has(flags: &[String], flag: &str) -> bool {
    let bare = flag.trim_start_matches('\\');
    flags.iter().any(|f| f.contains(bare))
}

async fn imap_flags_copy_and_export(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv7";
    let d = server.delimiter();
    let source = name("OpsSrc");
    let on_source = server.folder(&[&source]);
    let id = format!("{}@example.test", unique("fc"));
    let raw = simple(&id, "flags and copies");
    server.append(user, &on_source, &[(&raw, "(\\Seen)")]).await;

    let r = b
        .ok(
            "flags",
            user,
            json!({ "folder": source, "messageId": id, "add": ["\\flagged", "$Important"], "remove": ["\\Seen"] }),
        )
        .await;
    assert_eq!(r["messageId"], format!("<{id}>"), "{server:?}: {r}");
    let flags = &server.flags(user, &on_source).await[&format!("<{id}>")];
    assert!(
        has(flags, "\\Flagged") && has(flags, "$Important") && !has(flags, "\\Seen"),
        "{server:?}: {flags:?}"
    );

    // Copy into a path two levels deep, created level by level; a retry copies nothing more.
    let top = name("OpsCopies");
    let on_target = server.folder(&[&top, "2024"]);
    for (profile, target) in [
        ("current", json!(format!("{top}.2024"))),
        ("older", json!([top, "2024"])),
    ] {
        let extra = json!({ "messageId": id, "sourceFolder": source, "targetFolder": target });
        let job = if profile == "older" {
            b.older_vars(user, extra)
        } else {
            b.vars(user, extra)
        };
        let r = b.jobs.ok("copy", job.clone()).await;
        assert!(
            r["targetUid"].as_u64().is_some(),
            "{server:?} {profile}: {r}"
        );
        let again = b.jobs.ok("copy", job).await;
        assert_eq!(
            again["targetUid"], r["targetUid"],
            "{server:?} {profile}: {again}"
        );
        assert_eq!(
            server.copies(user, &on_target, &id).await,
            1,
            "{server:?} {profile}"
        );
        assert_eq!(
            server.copies(user, &on_source, &id).await,
            1,
            "{server:?} {profile}"
        );
    }

    // Export from the copy, by the server's separator: the bytes as appended.
    let by_separator = [top.as_str(), "2024"].join(d);
    for (profile, job) in [
        (
            "current",
            b.vars(user, json!({ "folder": by_separator, "messageId": id })),
        ),
        (
            "older",
            b.older_vars(user, json!({ "folder": by_separator, "messageId": id })),
        ),
    ] {
        let r = b.jobs.ok("export", job).await;
        assert_eq!(decoded(&r["content"]), raw, "{server:?} {profile}");
    }
    b.assert_grammatical();
}

async fn imap_folders_create_list_rename_delete(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv8";
    let d = server.delimiter();
    let top = name("OpsFold");
    let dotted = format!("{top}.Übersicht");

    let created = b
        .ok(
            "folders",
            user,
            json!({ "action": "create", "folder": dotted }),
        )
        .await;
    assert_eq!(created["created"], true, "{server:?}: {created}");
    let again = b
        .ok(
            "folders",
            user,
            json!({ "action": "create", "folder": [top, "Übersicht"] }),
        )
        .await;
    assert_eq!(again["created"], false, "{server:?}: {again}");
    let on_server = server.folders(user).await;
    for level in [
        server.folder(&[&top]),
        server.folder(&[&top, "&ANw-bersicht"]),
    ] {
        assert!(
            on_server.contains(&level),
            "{server:?}: {level} not in {on_server:?}"
        );
    }

    // The list names folders in the user's terms: no namespace prefix, the server's separator.
    for job in [
        b.vars(user, json!({ "action": "list" })),
        b.older_vars(user, json!({ "action": "list" })),
    ] {
        let listed = b.jobs.ok("folders", job).await;
        let entries = listed.as_array().unwrap_or_else(|| panic!("{listed}"));
        let shown = format!("{top}{d}Übersicht");
        let entry = entries
            .iter()
            .find(|e| e["name"] == shown)
            .unwrap_or_else(|| panic!("{server:?}: {shown} not in {listed}"));
        assert_eq!(entry["delimiter"], d, "{server:?}: {entry}");
        assert!(
            entries.iter().any(|e| e["name"] == top),
            "{server:?}: {top} not in {listed}"
        );
    }

    // Rename by the server's separator; a retry finds it done; the old name is gone.
    let renamed = format!("{top}{d}Overview");
    let r = b
        .ok(
            "folders",
            user,
            json!({ "action": "rename", "folder": dotted, "newName": renamed }),
        )
        .await;
    assert_eq!(r["to"], renamed, "{server:?}: {r}");
    let retry = b
        .ok(
            "folders",
            user,
            json!({ "action": "rename", "folder": dotted, "newName": renamed }),
        )
        .await;
    assert_eq!(retry["to"], renamed, "{server:?}: {retry}");
    let on_server = server.folders(user).await;
    assert!(
        on_server.contains(&server.folder(&[&top, "Overview"])),
        "{server:?}: {on_server:?}"
    );
    assert!(
        !on_server.contains(&server.folder(&[&top, "&ANw-bersicht"])),
        "{server:?}: {on_server:?}"
    );

    // Into a parent that does not exist yet, children and all; back again.
    let child_id = format!("{}@example.test", unique("fo"));
    server
        .append(
            user,
            &server.folder(&[&top, "Overview", "Child"]),
            &[(&simple(&child_id, "child"), "")],
        )
        .await;
    let elsewhere = name("OpsMoved");
    let r = b
        .ok(
            "folders",
            user,
            json!({ "action": "rename", "folder": [top, "Overview"], "newName": [elsewhere, "Deep"] }),
        )
        .await;
    assert_eq!(r["to"], format!("{elsewhere}{d}Deep"), "{server:?}: {r}");
    let moved = server.folder(&[&elsewhere, "Deep", "Child"]);
    assert_eq!(
        server.copies(user, &moved, &child_id).await,
        1,
        "{server:?}: not in {moved}"
    );
    let r = b
        .ok(
            "folders",
            user,
            json!({ "action": "rename", "folder": [elsewhere, "Deep"], "newName": renamed }),
        )
        .await;
    assert_eq!(r["to"], renamed, "{server:?}: {r}");
    for folder in [json!([elsewhere]), json!([top, "Overview", "Child"])] {
        // The worker's session has the folder selected (the export) when it deletes it.
        if folder.as_array().is_some_and(|a| a.len() == 3) {
            b.ok(
                "export",
                user,
                json!({ "folder": folder, "messageId": child_id }),
            )
            .await;
        }
        let r = b
            .ok(
                "folders",
                user,
                json!({ "action": "delete", "folder": folder }),
            )
            .await;
        assert_eq!(r["deleted"], true, "{server:?}: {r}");
    }

    // A folder with children is refused; its child, then itself, are deleted.
    let (retries, message, _) = b
        .fails(
            "folders",
            user,
            json!({ "action": "delete", "folder": top }),
        )
        .await;
    assert_eq!(retries, 0, "{message}");
    assert!(message.contains("below it"), "{server:?}: {message}");
    for folder in [json!([top, "Overview"]), json!(top)] {
        let r = b
            .ok(
                "folders",
                user,
                json!({ "action": "delete", "folder": folder }),
            )
            .await;
        assert_eq!(r["deleted"], true, "{server:?}: {r}");
    }
    let on_server = server.folders(user).await;
    assert!(
        !on_server.iter().any(|f| f.contains(&top)),
        "{server:?}: {on_server:?}"
    );
    let (_, message, _) = b
        .fails(
            "folders",
            user,
            json!({ "action": "delete", "folder": top }),
        )
        .await;
    assert!(
        message.starts_with("FOLDER_NOT_FOUND"),
        "{server:?}: {message}"
    );
    b.assert_grammatical();
}

async fn imap_append_stores_the_bytes_once(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv9";
    let top = name("OpsAppend");
    for profile in ["current", "older"] {
        let id = format!("{}@example.test", unique("ap"));
        let raw = simple(&id, "appended");
        let extra = json!({
            "folder": [top, profile],
            "raw": base64::engine::general_purpose::STANDARD.encode(&raw),
            "flags": ["\\Seen", "$Filed"]
        });
        let job = if profile == "older" {
            b.older_vars(user, extra)
        } else {
            b.vars(user, extra)
        };
        let r = b.jobs.ok("append", job.clone()).await;
        assert_eq!(
            r["messageId"],
            format!("<{id}>"),
            "{server:?} {profile}: {r}"
        );
        let uid = r["uid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{server:?} {profile}: no uid in {r}"));
        let again = b.jobs.ok("append", job).await;
        assert_eq!(again["uid"], uid, "{server:?} {profile}: {again}");
        let on_server = server.folder(&[&top, profile]);
        assert_eq!(
            server.copies(user, &on_server, &id).await,
            1,
            "{server:?} {profile}"
        );
        let flags = &server.flags(user, &on_server).await[&format!("<{id}>")];
        assert!(
            has(flags, "\\Seen") && has(flags, "$Filed"),
            "{server:?}: {flags:?}"
        );
        let exported = b
            .ok(
                "export",
                user,
                json!({ "folder": [top, profile], "uid": uid }),
            )
            .await;
        assert_eq!(decoded(&exported["content"]), raw, "{server:?} {profile}");
    }
    b.assert_grammatical();
}

async fn imap_reply_and_forward_find_the_original_and_save_a_copy(server: Server) {
    let b = Bench::start(server, "imap").await;
    let user = "srv10";
    let (port, received, _) = recording(None).await;
    let smtp = json!({
        "server": { "host": "127.0.0.1", "port": port, "security": "none" },
        "authentication": { "type": "none" }
    });
    let folder = name("OpsInbox");
    let on_folder = server.folder(&[&folder]);
    let sent = [folder.as_str(), "Sent"];
    let on_sent = server.folder(&sent);
    let id = format!("{}@example.test", unique("rf"));
    let raw = simple(&id, "Order late");
    server.append(user, &on_folder, &[(&raw, "")]).await;

    for (profile, vars) in [
        ("current", b.vars(user, json!({}))),
        ("older", b.older_vars(user, json!({}))),
    ] {
        let mut job = vars;
        for (k, v) in [
            ("folder", json!(folder)),
            ("messageId", json!(id)),
            ("smtp", smtp.clone()),
            ("from", json!(format!("{user}@example.test"))),
            ("body", json!("On it.")),
            ("saveCopyTo", json!(sent)),
        ] {
            job[k] = v;
        }
        let r = b.jobs.ok("reply", job.clone()).await;
        assert_eq!(
            r["inReplyTo"],
            format!("<{id}>"),
            "{server:?} {profile}: {r}"
        );
        assert!(
            r["savedTo"]["uid"].as_u64().is_some(),
            "{server:?} {profile}: {r}"
        );
        let reply = received.lock().expect("lock").pop().expect("the reply");
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.contains(&format!("In-Reply-To: <{id}>")),
            "{server:?}: {text}"
        );
        let reply_id = r["messageId"]
            .as_str()
            .expect("id")
            .trim_matches(['<', '>'])
            .to_string();
        assert_eq!(
            server.copies(user, &on_sent, &reply_id).await,
            1,
            "{server:?} {profile}"
        );

        job["to"] = json!("colleague@example.test");
        let r = b.jobs.ok("forward", job).await;
        assert!(
            r["savedTo"]["uid"].as_u64().is_some(),
            "{server:?} {profile}: {r}"
        );
        let forward = received.lock().expect("lock").pop().expect("the forward");
        assert!(
            forward.windows(raw.len()).any(|w| w == raw.as_slice()),
            "{server:?} {profile}: the original is not in the forward"
        );
        let forward_id = r["messageId"]
            .as_str()
            .expect("id")
            .trim_matches(['<', '>'])
            .to_string();
        assert_eq!(
            server.copies(user, &on_sent, &forward_id).await,
            1,
            "{server:?} {profile}"
        );
    }
    let flags = &server.flags(user, &on_folder).await[&format!("<{id}>")];
    assert!(has(flags, "\\Answered"), "{server:?}: {flags:?}");
    assert!(!has(flags, "\\Seen"), "{server:?}: {flags:?}");
    b.assert_grammatical();
}
