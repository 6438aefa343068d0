//! Search criteria (shared, [`crate::mail::criteria`]) as one IMAP SEARCH program: the part
//! after `UID SEARCH [CHARSET UTF-8]`. Values travel as quoted strings or literals through
//! [`Command`], never spliced into the command text.

use super::wire::Command;
use crate::mail::criteria::{Criterion, Date};

/// Builds the program in a single pass: recursion follows the tree's depth (bounded by the
/// criteria parser) and, for OR, the logarithm of a list's length, never the length itself.
pub fn search_program(criterion: &Criterion) -> Command {
    let mut program = Command::default();
    match criterion {
        // A top-level AND is the program itself: IMAP ANDs the keys it is given.
        Criterion::And(items) => {
            for item in items {
                push_key(item, &mut program);
            }
        }
        other => push_key(other, &mut program),
    }
    program
}

/// Appends one search key: an AND inside another key needs parentheses, written without
/// spaces inside them as RFC 3501's grammar has it (`OR (SUBJECT "a" FROM "b") TO "c"`).
fn push_key(criterion: &Criterion, program: &mut Command) {
    match criterion {
        Criterion::Text { field, value } => {
            program.push_raw(field.name());
            program.push_value(value.clone());
        }
        Criterion::Header { name, value } => {
            program.push_raw("HEADER");
            program.push_value(name.clone());
            program.push_value(value.clone());
        }
        Criterion::Since(date) => program.push_raw(format!("SINCE {}", imap_date(*date))),
        Criterion::Before(date) => program.push_raw(format!("BEFORE {}", imap_date(*date))),
        Criterion::Seen => program.push_raw("SEEN"),
        Criterion::Unseen => program.push_raw("UNSEEN"),
        Criterion::Not(inner) => {
            program.push_raw("NOT");
            push_key(inner, program);
        }
        Criterion::And(items) if items.len() == 1 => push_key(&items[0], program),
        Criterion::And(items) => {
            program.push_open();
            for item in items {
                push_key(item, program);
            }
            program.push_close();
        }
        Criterion::Or(items) => push_or(items, program),
    }
}

/// IMAP's OR takes two keys. A longer list becomes a balanced tree of ORs, so neither this
/// code nor the server's parser nests deeper than log2 of the list's length.
fn push_or(items: &[Criterion], program: &mut Command) {
    match items {
        [] => program.push_raw("ALL"),
        [only] => push_key(only, program),
        _ => {
            // The left half no larger than the right keeps three items as `OR a OR b c`.
            let (left, right) = items.split_at(items.len() / 2);
            program.push_raw("OR");
            push_or(left, program);
            push_or(right, program);
        }
    }
}

/// `1-Feb-2024`, the date form of RFC 3501.
fn imap_date(date: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS
        .get(usize::from(date.month).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!("{}-{month}-{}", date.day, date.year)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::criteria::MAX_NODES;
    use serde_json::{Value, json};

    fn program(criteria: Value) -> Vec<String> {
        search_program(&Criterion::parse(&criteria, "/criteria").unwrap()).segments(false)
    }

    fn leaves(count: usize) -> Vec<Value> {
        (0..count)
            .map(|i| json!({ "field": "SUBJECT", "value": format!("s{i}") }))
            .collect()
    }

    #[test]
    fn nested_and_or_becomes_one_program() {
        let criteria = json!({
            "operator": "AND",
            "criteria": [
                { "field": "FROM", "value": "boss@example.com" },
                { "operator": "OR", "criteria": [
                    { "field": "SUBJECT", "value": "invoice" },
                    { "field": "SUBJECT", "value": "bill" },
                    { "operator": "AND", "criteria": [
                        { "field": "BODY", "value": "urgent" },
                        { "operator": "NOT", "criteria": [{ "field": "SEEN" }] }
                    ]}
                ]},
                { "field": "SINCE", "value": "2024-02-01" }
            ]
        });
        assert_eq!(
            program(criteria),
            [
                r#"FROM "boss@example.com" OR SUBJECT "invoice" OR SUBJECT "bill" (BODY "urgent" NOT SEEN) SINCE 1-Feb-2024"#
            ]
        );
    }

    #[test]
    fn a_single_leaf_and_a_string_form() {
        assert_eq!(
            program(json!({ "field": "subject", "value": "hi" })),
            [r#"SUBJECT "hi""#]
        );
        let text = json!(
            r#"{"operator":"OR","criteria":[{"field":"FROM","value":"a"},{"field":"TO","value":"b"}]}"#
        );
        assert_eq!(program(text), [r#"OR FROM "a" TO "b""#]);
        assert_eq!(
            program(json!({ "field": "HEADER", "name": "X-Prio", "value": "1" })),
            [r#"HEADER "X-Prio" "1""#]
        );
    }

    #[test]
    fn a_long_or_is_a_balanced_program() {
        let tree = json!({ "operator": "OR", "criteria": leaves(MAX_NODES - 1) });
        let text = program(tree).join("");
        assert_eq!(text.matches("OR ").count(), MAX_NODES - 2);
        assert_eq!(text.matches("SUBJECT ").count(), MAX_NODES - 1);
        assert_eq!(
            program(json!({ "operator": "OR", "criteria": leaves(4) })).join(""),
            r#"OR OR SUBJECT "s0" SUBJECT "s1" OR SUBJECT "s2" SUBJECT "s3""#
        );
    }
}
