//! The commands the worker builds, checked against RFC 3501's grammar without a server: SEARCH
//! programs for every shape of criteria tree (and a few thousand random ones), and mailbox
//! arguments for awkward names. The checker (`tests/support/rfc3501.rs`) is tested here too.
//! `tests/protocols/servers.rs` runs the same checker over every command sent to real servers.

use crate::support;

use email_connector::imap::program::search_program;
use email_connector::imap::wire::Command;
use email_connector::mail::criteria::Criterion;
use serde_json::{Value, json};
use support::rfc3501::{check, violations};

/// The bytes a command is on the wire, with synchronizing literals (each segment after a
/// `{n}` line) or LITERAL+.
fn wire(command: &Command, literal_plus: bool) -> Vec<u8> {
    let mut out = b"A1 ".to_vec();
    out.extend_from_slice(command.segments(literal_plus).join("\r\n").as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

fn search(criteria: &Value) -> Command {
    let program = search_program(&Criterion::parse(criteria, "/criteria").expect("valid criteria"));
    let verb = if program.needs_utf8() {
        "UID SEARCH CHARSET UTF-8"
    } else {
        "UID SEARCH"
    };
    Command::new(verb).extend(program)
}

fn assert_grammatical(command: &Command, what: &str) {
    for literal_plus in [false, true] {
        let bytes = wire(command, literal_plus);
        if let Err(reason) = check(&bytes) {
            panic!("{what}: {reason}\n{}", String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn the_checker_knows_the_grammar() {
    for good in [
        "A1 UID SEARCH OR (SUBJECT \"x\" NOT SUBJECT \"y\") SUBJECT \"z\"\r\n",
        "A1 UID SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n\u{e4}\r\n",
        "A1 UID SEARCH CHARSET UTF-8 SUBJECT {2}\r\n\u{e4} FROM \"a\"\r\n",
        "A1 UID SEARCH SINCE 1-Feb-2024 NOT BEFORE 12-Dec-2023 HEADER \"X-A\" \"1\"\r\n",
        "A1 UID SEARCH ((SEEN) UNSEEN)\r\n",
        "A1 UID SORT (REVERSE ARRIVAL) UTF-8 ALL\r\n",
        "A1 UID SORT RETURN (PARTIAL 1:10) (REVERSE ARRIVAL) UTF-8 ALL\r\n",
        "A1 UID FETCH 1:3,5 (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM)])\r\n",
        "A1 UID FETCH 7 (UID BODY.PEEK[]<0.65536>)\r\n",
        "A1 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[1.2.MIME] BODY.PEEK[2]<0.100>)\r\n",
        "A1 UID FETCH 1:* (UID INTERNALDATE)\r\n",
        "A1 UID STORE 4:9 +FLAGS.SILENT (\\Deleted)\r\n",
        "A1 UID COPY 4 \"INBOX.Arch*\"\r\n",
        "A1 UID MOVE 4,6 \"Projects/2023\"\r\n",
        "A1 UID EXPUNGE 4:5\r\n",
        "A1 LIST \"\" \"INBOX.Arch%\"\r\n",
        "A1 LIST \"\" \"\"\r\n",
        "A1 CREATE \"&ANw-bersicht\"\r\n",
        "A1 SELECT INBOX\r\n",
        "A1 LOGIN \"u@example.test\" \"p\\\"w\"\r\n",
        "A1 AUTHENTICATE PLAIN AHVAZQBw\r\n",
        "A1 NAMESPACE\r\n",
        "A1 IDLE\r\nDONE\r\n",
        "A1 RENAME \"INBOX.a\" \"INBOX.b\"\r\n",
        "A1 APPEND \"Sent\" (\\Seen $Filed) {5}\r\nHello\r\n",
        "A1 APPEND Sent {3+}\r\nabc\r\n",
        "A1 APPEND Sent () \"01-Feb-2024 10:00:00 +0000\" {1}\r\nx\r\n",
    ] {
        assert!(
            violations(good.as_bytes()).is_empty(),
            "{good:?}: {:?}",
            violations(good.as_bytes())
        );
    }
    for (bad, reason) in [
        // Item 1 of issue 22: what Cyrus answers BAD to.
        (
            "A1 UID SEARCH OR ( SUBJECT \"x\" NOT SUBJECT \"y\" ) SUBJECT \"z\"\r\n",
            "space after '('",
        ),
        ("A1 UID SEARCH (SUBJECT \"x\" )\r\n", "space before ')'"),
        (
            "A1 UID SEARCH SUBJECT \"x\"  FROM \"y\"\r\n",
            "expected an atom",
        ),
        ("A1 UID SEARCH SUBJECT \"caf\u{e9}\"\r\n", "7-bit"),
        ("A1 UID SEARCH SINCE 2024-02-01\r\n", "a date's"),
        ("A1 UID SEARCH COLOUR \"red\"\r\n", "unknown search key"),
        ("A1 UID FETCH 0 (UID)\r\n", "leading zero"),
        (
            "A1 UID STORE 4 +FLAGS.SILENT ( \\Deleted)\r\n",
            "space after '('",
        ),
        ("A1 SELECT Arch*\r\n", "CRLF"),
        ("A1 UID SORT (ARRIVAL) UTF-8\r\n", "one space"),
        (
            "A1 UID SORT RETURN (PARTIAL 0:10) (ARRIVAL) UTF-8 ALL\r\n",
            "leading zero",
        ),
        ("A1 NOOP \r\n", "CRLF"),
        ("A1 RENAME \"a\"\r\n", "one space"),
        ("A1 APPEND Sent Hello\r\n", "a literal"),
        ("A1 APPEND Sent ( \\Seen) {1}\r\nx\r\n", "space after '('"),
        ("A1 APPEND Sent {1}\r\n\0\r\n", "NUL"),
    ] {
        let found = violations(bad.as_bytes());
        assert!(
            found.iter().any(|v| v.contains(reason)),
            "{bad:?} should break the grammar ({reason}): {found:?}"
        );
    }
}

#[test]
fn search_programs_follow_the_grammar() {
    let leaf = |field: &str, value: &str| json!({ "field": field, "value": value });
    let and = |items: Vec<Value>| json!({ "operator": "AND", "criteria": items });
    let or = |items: Vec<Value>| json!({ "operator": "OR", "criteria": items });
    let not = |item: Value| json!({ "operator": "NOT", "criteria": [item] });
    let cases = [
        leaf("SUBJECT", "x"),
        or(vec![
            and(vec![leaf("SUBJECT", "x"), not(leaf("SUBJECT", "y"))]),
            leaf("SUBJECT", "z"),
        ]),
        not(and(vec![leaf("SUBJECT", "a"), leaf("FROM", "b")])),
        and(vec![and(vec![and(vec![leaf("TO", "t"), leaf("CC", "c")])])]),
        or(vec![
            leaf("BODY", "Grüße"),
            and(vec![
                leaf("SUBJECT", "say \"hi\" \\o/"),
                leaf("FROM", "x\r\ny"),
            ]),
        ]),
        and(vec![
            json!({ "field": "HEADER", "name": "X-Prio", "value": "1" }),
            json!({ "field": "SINCE", "value": "2024-02-01" }),
            json!({ "field": "BEFORE", "value": "2024-12-31" }),
            not(json!({ "field": "SEEN" })),
            json!({ "field": "UNSEEN" }),
        ]),
        or(vec![
            not(or(vec![leaf("SUBJECT", "a"), leaf("SUBJECT", "b")])),
            and(vec![leaf("SUBJECT", "c")]),
        ]),
    ];
    for criteria in &cases {
        assert_grammatical(&search(criteria), &criteria.to_string());
    }
}

/// A few thousand random trees: every operator at every depth the parser allows here, values
/// with quotes, backslashes, line breaks and non-ASCII text.
#[test]
fn random_search_programs_follow_the_grammar() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    const VALUES: [&str; 6] = [
        "plain",
        "Grüße",
        "a \"quoted\" \\ value",
        "two\r\nlines",
        "",
        "(x)",
    ];
    fn tree(depth: u32, next: &mut dyn FnMut(u64) -> u64) -> Value {
        let leaf = |next: &mut dyn FnMut(u64) -> u64| {
            let value = VALUES[next(VALUES.len() as u64) as usize];
            match next(8) {
                0 => json!({ "field": "FROM", "value": value }),
                1 => json!({ "field": "TO", "value": value }),
                2 => json!({ "field": "CC", "value": value }),
                3 => json!({ "field": "BODY", "value": value }),
                4 => json!({ "field": "HEADER", "name": "X-Tag", "value": value }),
                5 => json!({ "field": "SINCE", "value": "2024-02-01" }),
                6 => json!({ "field": if next(2) == 0 { "SEEN" } else { "UNSEEN" } }),
                _ => json!({ "field": "SUBJECT", "value": value }),
            }
        };
        if depth == 0 || next(3) == 0 {
            return leaf(next);
        }
        let count = 1 + next(4) as usize;
        match next(3) {
            0 => json!({ "operator": "NOT", "criteria": [tree(depth - 1, next)] }),
            op => json!({
                "operator": if op == 1 { "AND" } else { "OR" },
                "criteria": (0..count).map(|_| tree(depth - 1, next)).collect::<Vec<_>>()
            }),
        }
    }
    for _ in 0..3000 {
        let criteria = tree(5, &mut next);
        if Criterion::parse(&criteria, "/criteria").is_err() {
            continue; // an empty value where one is required: refused before any command
        }
        assert_grammatical(&search(&criteria), &criteria.to_string());
    }
}

#[test]
fn mailbox_arguments_follow_the_grammar() {
    for name in [
        "INBOX",
        "Arch*",
        "Arch%",
        "a \"b\" \\ c",
        "Übersicht/2024",
        "Projects.2023",
        "]",
    ] {
        for verb in ["SELECT", "EXAMINE", "CREATE", "SUBSCRIBE"] {
            assert_grammatical(&Command::new(verb).mailbox(name), &format!("{verb} {name}"));
        }
        assert_grammatical(&Command::new("LIST").value("").mailbox(name), name);
        assert_grammatical(&Command::new("UID MOVE").raw("1:3").mailbox(name), name);
        assert_grammatical(&Command::new("UID COPY").raw("4").mailbox(name), name);
    }
}
