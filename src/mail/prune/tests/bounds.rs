//! The pruner's output against the budget: floods of parts, containers, bodies that decode
//! to nothing, random structure, and budgets near the largest number.

use super::*;

/// What a pruned message may hold whatever came in: the skeleton allowance, one part header
/// past it, the text and attachment pools at their worst encoding, and the closing lines.
fn output_bound(limits: Limits) -> usize {
    let budget = limits.max_response_bytes;
    let header = 64 * 1024 + 3 * 16 * 1024;
    budget * 24 + 4 * header + 8 * 1024
}

#[test]
fn part_floods_are_bounded_by_the_budget() {
    // Parts with no header at all: 7 bytes each, which the skeleton never counted.
    let flood = |parts: usize| {
        let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..parts {
            raw.extend_from_slice(b"--b\r\n\r\n");
        }
        raw
    };
    // Linear, not quadratic, in the flood: ten times the parts may take about ten times as
    // long, never a hundred. A ratio, not a wall-clock limit, so a loaded machine cannot fail
    // it (the time itself is a benchmark's business).
    let small = flood(200_000);
    let started = std::time::Instant::now();
    prune(&small, LIMITS);
    let small_time = started.elapsed();
    let raw = flood(2_000_000);
    let started = std::time::Instant::now();
    let pruned = prune(&raw, LIMITS);
    let large_time = started.elapsed();
    assert!(
        large_time < small_time * 40 + std::time::Duration::from_millis(200),
        "10x the parts took {large_time:?} against {small_time:?}"
    );
    assert!(pruned.budget_cut);
    assert!(
        pruned.raw.len() <= 2 * LIMITS.max_response_bytes + 1024,
        "{}",
        pruned.raw.len()
    );
    let streamed = streamed(&raw, LIMITS);
    assert_eq!(streamed.raw, pruned.raw);
    let v = respond(pruned, &Envelope::default(), LIMITS);
    assert_eq!(v["truncated"], true);

    // Empty multiparts side by side: containers only, never a leaf.
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..200_000 {
        raw.extend_from_slice(b"--b\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y--\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let pruned = prune(&raw, LIMITS);
    assert!(pruned.budget_cut);
    assert!(
        pruned.raw.len() <= 2 * LIMITS.max_response_bytes + 1024,
        "{}",
        pruned.raw.len()
    );
}

#[test]
fn the_part_count_is_capped_whatever_the_budget() {
    let limits = Limits {
        max_attachment_bytes: 1 << 20,
        max_response_bytes: 1 << 30,
    };
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..(MAX_PARTS + 500) {
        raw.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let pruned = prune(&raw, limits);
    assert!(pruned.budget_cut);
    let delimiters = pruned
        .raw
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"--b\r"))
        .count();
    assert_eq!(delimiters, MAX_PARTS);
}

#[test]
fn encoded_bodies_that_decode_to_nothing_are_bounded() {
    // Soft line breaks and base64 junk decode to no bytes, so the decoded pools never fill.
    for (encoding, line) in [("quoted-printable", "="), ("base64", "!!!!")] {
        let mut raw =
            format!("Content-Type: text/plain\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n")
                .into_bytes();
        for _ in 0..500_000 {
            raw.extend_from_slice(line.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
        let pruned = prune(&raw, LIMITS);
        assert!(
            pruned.raw.len() <= output_bound(LIMITS),
            "{encoding}: {}",
            pruned.raw.len()
        );
        assert!(
            pruned.raw.len() <= 6 * LIMITS.max_response_bytes,
            "{encoding}: {}",
            pruned.raw.len()
        );
    }
}

#[test]
fn random_structure_floods_are_bounded_by_the_budget() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // No closing delimiter of the outer multipart (the rest would be its epilogue), and
    // mostly lines that are structure only: parts with no header, empty containers.
    let lines: [&[u8]; 12] = [
        b"--b",
        b"--b",
        b"",
        b"",
        b"--y",
        b"--y--",
        b"Content-Type: multipart/mixed; boundary=y",
        b"Content-Type: text/plain",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: quoted-printable",
        b"=",
        b"QUJD\xff",
    ];
    for round in 0..4 {
        let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..300_000 {
            raw.extend_from_slice(lines[next() as usize % lines.len()]);
            raw.extend_from_slice(b"\r\n");
        }
        let limits = Limits {
            max_attachment_bytes: next() as usize % 5000,
            max_response_bytes: next() as usize % 20_000,
        };
        let pruned = prune(&raw, limits);
        assert!(
            pruned.raw.len() <= 8 * limits.max_response_bytes + 16 * 1024,
            "round {round}: {} for {limits:?}",
            pruned.raw.len()
        );
        let pieces = in_pieces(&raw, limits, 7);
        assert!(pieces.raw.len() <= output_bound(limits), "round {round}");
        assert!(pieces.raw.len() <= 8 * limits.max_response_bytes + 16 * 1024);
    }
}

#[test]
fn the_largest_budget_does_not_overflow() {
    let limits = Limits {
        max_attachment_bytes: usize::MAX,
        max_response_bytes: usize::MAX,
    };
    let raw = format!(
        "Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n",
        b64_lines(b"hello"),
        b64_lines(b"%PDF")
    );
    let pruned = prune(raw.as_bytes(), limits);
    assert!(!pruned.budget_cut);
    let v = respond(pruned, &Envelope::default(), limits);
    assert_eq!(v["plainTextBody"], "hello");
    assert_eq!(v["attachments"][0]["size"], 4);
}
