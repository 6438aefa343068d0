use serde_json::json;

use super::*;

fn path(value: serde_json::Value) -> FolderPath {
    FolderPath::parse(&value, "/folder").unwrap()
}

fn debian() -> Namespace {
    Namespace::parse(br#"(("INBOX." ".")) (("user." ".")) (("" "."))"#).unwrap()
}

fn upstream() -> Namespace {
    Namespace::parse(br#"(("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))"#).unwrap()
}

fn dovecot() -> Namespace {
    Namespace::parse(br#"(("" ".")) NIL NIL"#).unwrap()
}

#[test]
fn namespace_responses_are_read() {
    assert_eq!(
        debian(),
        Namespace {
            prefix: "INBOX.".into(),
            delimiter: Some(".".into()),
            others: vec!["user.".into()],
        }
    );
    assert_eq!(upstream().others, ["Other Users/", "Shared Folders/"]);
    assert_eq!(dovecot(), Namespace::flat(Some(".".into())));
    // Extensions, literals, modified UTF-7 and NIL delimiters.
    let extended = Namespace::parse(
        b"((\"\" \"/\" \"X-PARAM\" (\"a\" \"b\"))) NIL ((\"&ANY-ffentlich/\" \"/\")({4}\r\nx/y/ NIL))",
    )
    .unwrap();
    assert_eq!(extended.prefix, "");
    assert_eq!(extended.others, ["Öffentlich/", "x/y/"]);
    for broken in [&b""[..], b"((", b"((\"a\"))", b"OOPS", b"((\"a\" \"//\"))"] {
        assert_eq!(
            Namespace::parse(broken),
            None,
            "{:?}",
            String::from_utf8_lossy(broken)
        );
    }
}

#[test]
fn paths_are_relative_to_the_personal_namespace() {
    let resolve = |p: serde_json::Value, ns: &Namespace| resolve(&path(p), ns, "/folder").unwrap();
    let archive = resolve(json!("Archive.2024"), &debian());
    assert_eq!(archive.name, "INBOX.Archive.2024");
    assert_eq!(archive.levels, ["INBOX.Archive", "INBOX.Archive.2024"]);
    assert_eq!(archive.shown, "Archive.2024");
    // Already under the prefix, INBOX itself, another namespace: as they are.
    for (given, name) in [
        ("INBOX.Archive", "INBOX.Archive"),
        ("inbox", "INBOX"),
        ("INBOX", "INBOX"),
        ("user.bob.Sent", "user.bob.Sent"),
    ] {
        assert_eq!(resolve(json!(given), &debian()).name, name, "{given}");
    }
    assert_eq!(
        resolve(json!("INBOX.Archive"), &debian()).levels,
        ["INBOX.Archive"]
    );
    assert!(resolve(json!("INBOX"), &debian()).levels.is_empty());
    // Dots and the server's separator mean the same on a '/' server.
    for given in [
        "Projects.2023.January",
        "Projects/2023/January",
        "Projects/2023.January",
    ] {
        let january = resolve(json!(given), &upstream());
        assert_eq!(january.name, "Projects/2023/January", "{given}");
        assert_eq!(january.shown, given);
    }
    assert_eq!(
        resolve(json!("Other Users.bob"), &upstream()).levels,
        ["Other Users/bob"]
    );
    assert_eq!(
        resolve(json!("INBOX.Sub"), &upstream()).name,
        "INBOX/Sub",
        "INBOX's children on a server without a prefix"
    );
    assert_eq!(resolve(json!("Archive"), &dovecot()).name, "Archive");
    // A list keeps dots inside a name, and is shown in the user's terms.
    let listed = resolve(json!(["Reports", "v1.2"]), &upstream());
    assert_eq!(
        (listed.name.as_str(), listed.shown.as_str()),
        ("Reports/v1.2", "Reports/v1.2")
    );
    let listed = resolve(json!(["Reports", "2024"]), &debian());
    assert_eq!(
        (listed.name.as_str(), listed.shown.as_str()),
        ("INBOX.Reports.2024", "Reports.2024")
    );
}

#[test]
fn names_the_server_cannot_hold_are_refused_with_their_pointer() {
    let refused = |p: serde_json::Value, ns: &Namespace| {
        resolve(&path(p), ns, "/targetFolder")
            .unwrap_err()
            .to_string()
    };
    assert!(
        refused(json!(["Reports", "v1.2"]), &debian())
            .starts_with("/targetFolder/1: folder name 'v1.2' contains '.'"),
    );
    assert!(refused(json!("a//b"), &upstream()).starts_with("/targetFolder: empty folder name"));
    assert!(
        refused(json!("a.b"), &Namespace::flat(None))
            .contains("this server has no folder hierarchy")
    );
    let flat = resolve(&path(json!("Archive")), &Namespace::flat(None), "/folder").unwrap();
    assert_eq!(flat.name, "Archive");
}

#[test]
fn names_come_back_in_the_users_terms() {
    assert_eq!(user_terms("INBOX.Archive.2024", &debian()), "Archive.2024");
    assert_eq!(user_terms("INBOX", &debian()), "INBOX");
    assert_eq!(user_terms("user.bob", &debian()), "user.bob");
    assert_eq!(user_terms("Archive/2024", &upstream()), "Archive/2024");
}
