//! Plans and skeletons from BODYSTRUCTURE, read back by the response builder.

use async_imap::imap_proto::{AttributeValue, Response};

use super::*;
use crate::imap::skeleton::Assembly;
use crate::mail::message::{Envelope, respond};
use crate::mail::prune::prune;

const LIMITS: Limits = Limits {
    max_attachment_bytes: 1000,
    max_response_bytes: 4000,
};

/// The structure as Dovecot would send it in a FETCH response.
fn parse(bodystructure: &str) -> Structure {
    let line = format!("* 1 FETCH (UID 7 BODYSTRUCTURE {bodystructure})\r\n");
    let Ok((_, Response::Fetch(_, attributes))) = Response::parse(line.as_bytes()) else {
        panic!("not a FETCH response: {line}");
    };
    attributes
        .iter()
        .find_map(|a| match a {
            AttributeValue::BodyStructure(b) => Some(Structure::from_proto(b)),
            _ => None,
        })
        .expect("a body structure")
}

const MIXED: &str = r#"(("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 20000 400 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 300 5 NIL NIL NIL NIL)("application" "pdf" ("name" "=?utf-8?q?R=C3=A9sum=C3=A9.pdf?=") NIL NIL "base64" 780 NIL ("attachment" ("filename*" "utf-8''R%C3%A9sum%C3%A9.pdf")) NIL NIL)("image" "png" NIL "<logo@x>" NIL "base64" 7800 NIL ("inline" ("filename" "../logo.png")) NIL NIL) "mixed" ("boundary" "outer b") NIL NIL NIL)"#;

#[test]
fn plans_fetch_text_partially_and_attachments_only_where_the_bodies_leave_room() {
    let structure = parse(MIXED);
    // The bodies take the whole 4000: the small PDF would only be dropped again.
    let decisions = plan(&structure, LIMITS);
    assert_eq!(
        decisions,
        vec![
            ("1".to_string(), Decision::Partial(4000)),
            ("2".to_string(), Decision::Whole(300)),
            ("3".to_string(), Decision::Cut(570, CutReason::Budget)),
            ("4".to_string(), Decision::Cut(5700, CutReason::Limit)),
        ]
    );
    let items = fetch_items(&decisions, LIMITS);
    assert_eq!(
        items.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        ["(UID BODY.PEEK[HEADER]<0.1024> BODY.PEEK[1]<0.4000> BODY.PEEK[2])"]
    );
    // The server may send what the plan asks for and a little more, never what a lying
    // structure would make of it.
    let slack = crate::imap::structure::SECTION_SLACK;
    assert_eq!(items[0].1.literal, 4000 + slack);
    assert_eq!(
        items[0].1.bytes,
        (1024 + 4000 + 300) + 3 * (slack + 1024) + crate::imap::guard::SLACK
    );
    let roomy = Limits {
        max_response_bytes: 40_000,
        ..LIMITS
    };
    let decisions = plan(&structure, roomy);
    assert_eq!(decisions[0].1, Decision::Whole(20000));
    assert_eq!(decisions[2].1, Decision::Whole(780));
    assert_eq!(decisions[3].1, Decision::Cut(5700, CutReason::Limit));
    let single = parse(r#"("text" "plain" NIL NIL NIL "7bit" 10 1 NIL NIL NIL NIL)"#);
    assert_eq!(
        plan(&single, LIMITS),
        vec![("TEXT".to_string(), Decision::Whole(10))]
    );
}

#[test]
fn skeletons_read_back_with_names_sizes_and_prefixes() {
    let structure = parse(MIXED);
    let plan = vec![
        ("1".to_string(), Decision::Partial(4000)),
        ("2".to_string(), Decision::Whole(300)),
        ("3".to_string(), Decision::Whole(780)),
        ("4".to_string(), Decision::Cut(5700, CutReason::Limit)),
    ];
    let plain: String = (0..400)
        .map(|i| format!("line {i:04} of plain text\r\n"))
        .collect();
    let sections = vec![
        ("1".to_string(), plain.as_bytes()[..4000].to_vec()),
        ("2".to_string(), b"<p>caf=C3=A9</p>".to_vec()),
        ("3".to_string(), b"JVBERi0xLjQ=".to_vec()),
    ];
    let header = b"Message-ID: <s@x>\r\nSubject: skeleton\r\nContent-Type: multipart/mixed;\r\n boundary=\"outer b\"\r\nFrom: a@example.test\r\n\r\n";
    let (raw, cut) = Assembly::new(&plan, &sections).build(&structure, header, 1024);
    assert!(cut);
    // Read with room to spare, so that what the skeleton kept is all returned.
    let roomy = Limits {
        max_response_bytes: 10_000,
        ..LIMITS
    };
    let mut pruned = prune(&raw, roomy);
    pruned.budget_cut |= cut;
    let v = respond(pruned, &Envelope::default(), roomy);
    assert_eq!(v["subject"], "skeleton");
    assert_eq!(v["fromAddress"], "a@example.test");
    assert_eq!(v["truncated"], true);
    let got = v["plainTextBody"].as_str().unwrap();
    assert!(got.len() > 3000 && plain.starts_with(got), "{got:?}");
    assert_eq!(v["htmlBody"], "<p>café</p>");
    assert_eq!(v["attachments"][0]["fileName"], "Résumé.pdf");
    assert_eq!(v["attachments"][0]["content"], "JVBERi0xLjQ=");
    assert_eq!(v["attachments"][1]["fileName"], "logo.png");
    assert_eq!(v["attachments"][1]["size"], 5700);
    assert_eq!(v["attachments"][1]["truncated"], true);
    assert_eq!(v["attachments"][1]["contentId"], "logo@x");
    let headers: Vec<&str> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["header"].as_str().unwrap())
        .collect();
    assert!(!headers.iter().any(|h| h.starts_with("X-Email-Connector")));
}

#[test]
fn a_cut_top_header_keeps_whole_lines() {
    let structure = parse(r#"("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL)"#);
    let plan = plan(&structure, LIMITS);
    let sections = vec![("TEXT".to_string(), b"hello".to_vec())];
    let header = b"Subject: cut\r\nX-Long: aaaaaaaaaa\r\nX-Cut-He";
    let (raw, cut) = Assembly::new(&plan, &sections).build(&structure, header, header.len());
    assert!(cut);
    let v = respond(prune(&raw, LIMITS), &Envelope::default(), LIMITS);
    assert_eq!(v["subject"], "cut");
    assert_eq!(v["plainTextBody"], "hello");
    let headers = v["headers"].as_array().unwrap();
    assert_eq!(headers.len(), 4, "{headers:?}");
    assert!(!headers.iter().any(|h| h["header"] == "X-Cut-He"));
}

#[test]
fn a_leading_mbox_from_line_is_skipped_as_python_does() {
    // Python's email package takes a first line `From ...` for the mbox separator and reads
    // the header after it: subject "mbox line", from Ann, plain body "hello\r\n".
    let structure = parse(r#"("text" "plain" NIL NIL NIL "7bit" 7 1 NIL NIL NIL NIL)"#);
    let plan = plan(&structure, LIMITS);
    let sections = vec![("TEXT".to_string(), b"hello\r\n".to_vec())];
    let header = b"From sender@example.test Thu Feb  1 10:00:00 2024\r\nMessage-ID: <mbox@example.test>\r\nFrom: Ann <ann@example.test>\r\nSubject: mbox line\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n";
    let (raw, _) = Assembly::new(&plan, &sections).build(&structure, header, 1024);
    let v = respond(prune(&raw, LIMITS), &Envelope::default(), LIMITS);
    assert_eq!(v["subject"], "mbox line", "{v}");
    assert_eq!(v["fromAddress"], "ann@example.test");
    assert_eq!(v["messageId"], "<mbox@example.test>");
    assert_eq!(v["plainTextBody"], "hello\r\n");
}

#[test]
fn section_names() {
    assert_eq!(section_name(&None), "");
    assert_eq!(
        section_name(&Some(SectionPath::Full(MessageSection::Header))),
        "HEADER"
    );
    assert_eq!(
        section_name(&Some(SectionPath::Part(vec![1, 2], None))),
        "1.2"
    );
    assert_eq!(
        section_name(&Some(SectionPath::Part(
            vec![3],
            Some(MessageSection::Mime)
        ))),
        "3.MIME"
    );
}

#[test]
fn a_header_block_running_into_text_starts_the_body_there() {
    let structure = parse(r#"("text" "plain" NIL NIL NIL "7bit" 0 0 NIL NIL NIL NIL)"#);
    let plan = plan(&structure, LIMITS);
    let sections = vec![("TEXT".to_string(), Vec::new())];
    let header = b"Subject: s\r\nThis is the body\r\nsecond: line?\r\n\r\n";
    let (raw, _) = Assembly::new(&plan, &sections).build(&structure, header, 1024);
    let v = respond(prune(&raw, LIMITS), &Envelope::default(), LIMITS);
    assert_eq!(v["subject"], "s");
    assert_eq!(v["headers"][0]["header"], "Subject");
    assert!(
        v["plainTextBody"]
            .as_str()
            .unwrap()
            .starts_with("This is the body\r\nsecond: line?\r\n"),
        "{v}"
    );
}

#[test]
fn many_parts_are_fetched_in_several_commands_and_a_spent_text_pool_cuts() {
    let part = r#"("text" "plain" NIL NIL NIL "7bit" 9000 100 NIL NIL NIL NIL)"#;
    let structure = parse(&format!(
        "({} \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)",
        part.repeat(250)
    ));
    let decisions = plan(&structure, LIMITS);
    // 4000 per body from a pool of 8000: two partial fetches, then nothing left to fetch.
    assert_eq!(decisions[1].1, Decision::Partial(4000));
    assert_eq!(decisions[2].1, Decision::Cut(9000, CutReason::Budget));
    let small = r#"("image" "gif" NIL NIL NIL "base64" 4 NIL NIL NIL NIL)"#;
    let structure = parse(&format!(
        "({} \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)",
        small.repeat(250)
    ));
    let roomy = Limits {
        max_attachment_bytes: 1000,
        max_response_bytes: 1_000_000,
    };
    let commands = fetch_items(&plan(&structure, roomy), roomy);
    assert_eq!(commands.len(), 3);
    assert!(commands.iter().all(|(c, _)| c.len() < 4096));
    assert_eq!(
        commands
            .iter()
            .map(|(c, _)| c.matches("BODY.PEEK[").count())
            .sum::<usize>(),
        251
    );
}

/// A BODYSTRUCTURE with `depth` multiparts one inside the other around a text part.
fn nested(depth: usize) -> String {
    let mut s = String::new();
    for _ in 0..depth {
        s.push('(');
    }
    s.push_str(r#"("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 1 NIL NIL NIL NIL)"#);
    for _ in 0..depth {
        s.push_str(r#" "mixed" ("boundary" "b") NIL NIL NIL)"#);
    }
    s
}

fn depth_of(structure: &Structure) -> usize {
    let mut depth = 0;
    let mut node = structure;
    while let Structure::Multipart { parts, .. } = node {
        depth += 1;
        match parts.first() {
            Some(part) => node = part,
            None => break,
        }
    }
    depth
}

#[test]
fn parts_nested_past_the_limit_are_listed_unread() {
    // imap-proto itself recurses; run it where a deep structure has the stack it needs, as
    // the worker's larger thread stack gives it.
    let structure = std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(|| parse(&nested(300)))
        .expect("a thread")
        .join()
        .expect("parsed");
    assert_eq!(depth_of(&structure), MAX_NESTING);
    let decisions = plan(&structure, LIMITS);
    assert_eq!(decisions.len(), 1);
    assert!(
        matches!(decisions[0].1, Decision::Cut(_, CutReason::Budget)),
        "{decisions:?}"
    );
    let (skeleton, cut) =
        Assembly::new(&decisions, &[]).build(&structure, b"Subject: deep\r\n", 1000);
    assert!(cut);
    let v = respond(prune(&skeleton, LIMITS), &Envelope::default(), LIMITS);
    assert_eq!(v["subject"], "deep");
    assert_eq!(v["truncated"], true);

    let shallow = parse(&nested(3));
    assert_eq!(depth_of(&shallow), 3);
    assert_eq!(plan(&shallow, LIMITS)[0].1, Decision::Whole(5));
}

#[test]
fn leaves_past_the_part_cap_are_not_fetched() {
    let mut s = String::from("(");
    for _ in 0..(MAX_PARTS + 10) {
        s.push_str(r#"("application" "x" NIL NIL NIL "7bit" 0 NIL NIL NIL NIL)"#);
    }
    s.push_str(r#" "mixed" ("boundary" "b") NIL NIL NIL)"#);
    let structure = parse(&s);
    let decisions = plan(&structure, LIMITS);
    assert_eq!(decisions.len(), MAX_PARTS + 10);
    let fetched = decisions
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Whole(_)))
        .count();
    assert_eq!(fetched, MAX_PARTS);
    assert!(matches!(
        decisions[MAX_PARTS + 5].1,
        Decision::Cut(_, CutReason::Budget)
    ));
}

#[test]
fn the_largest_budget_does_not_overflow() {
    let limits = Limits {
        max_attachment_bytes: usize::MAX,
        max_response_bytes: usize::MAX,
    };
    let structure = parse(MIXED);
    let decisions = plan(&structure, limits);
    assert!(
        decisions
            .iter()
            .all(|(_, d)| matches!(d, Decision::Whole(_))),
        "{decisions:?}"
    );
    let items = fetch_items(&decisions, limits);
    // IMAP numbers are 32-bit: a larger partial length is a syntax error on the server.
    assert!(
        items[0]
            .0
            .contains(&format!("BODY.PEEK[HEADER]<0.{}>", u32::MAX)),
        "{items:?}"
    );
}
