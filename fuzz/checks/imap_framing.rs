//! The checks of the `imap_framing` fuzz target, shared with `tests/faults/fuzz_regressions.rs`: a
//! hostile IMAP server's bytes as a session reads them (the stream guard under an allowance,
//! then the framing that cuts whole responses for imap-proto). Whatever the bytes and however
//! they are split into reads: no panic, the same verdict and the same responses, nothing held
//! past the allowance, no literal past its cap, and the responses imap-proto reads from the
//! whole stream at once. (Read whole, the guard sees every byte before any response is cut;
//! in pieces, a response that is not IMAP may end the stream before the guard would refuse.) The first four bytes choose the allowance and the read sizes.

use email_connector::imap::frames::read_in_pieces;
use email_connector::imap::guard::Allowance;
use email_connector::imap::response::{Event, Untagged, interpret};

pub fn check(input: &[u8]) {
    let Some((head, data)) = input.split_first_chunk::<4>() else {
        return;
    };
    let allowance = Allowance {
        literal: 1 << (head[0] % 20),
        bytes: 1 << (head[1] % 24),
    };
    let pieces = [usize::from(head[2]) + 1, usize::from(head[3] % 7) + 1];
    let whole = read_in_pieces(data, allowance, &[data.len()]);
    let split = read_in_pieces(data, allowance, &pieces);
    // Read whole, the guard sees every byte before a response is cut; read in pieces, a
    // response that is not IMAP may end the stream first. Otherwise the verdict is the same:
    // what the guard lets through whole it lets through in any pieces, and the reverse.
    if whole.refused {
        assert!(
            split.refused || split.malformed,
            "refused whole, let through in pieces"
        );
        return;
    }
    assert!(!split.refused, "let through whole, refused in pieces");
    assert_eq!(
        whole.events, split.events,
        "the responses depend on the reads"
    );
    assert_eq!(whole.malformed, split.malformed);
    assert!(data.len() as u64 <= allowance.bytes);
    assert!(split.peak_held <= data.len());
    for event in &whole.events {
        if let Event::Untagged(Untagged::Fetch(item)) = event {
            let longest = item
                .sections
                .iter()
                .map(|(_, data)| data.len())
                .chain(item.body.as_ref().map(Vec::len))
                .max()
                .unwrap_or(0);
            assert!(
                longest as u64 <= allowance.literal,
                "a literal past the cap"
            );
        }
    }
    // Cut where responses end, the stream reads as imap-proto reads it whole: the same
    // responses, but for those the framing has not finished (more bytes would end them) or
    // refuses (a text line ending in what the guard took for a literal).
    let untagged: Vec<Untagged> = whole
        .events
        .into_iter()
        .filter_map(|event| match event {
            Event::Untagged(untagged) => Some(untagged),
            _ => None,
        })
        .collect();
    let reference = interpret(data).data;
    assert!(
        reference.starts_with(&untagged),
        "framing and imap-proto disagree"
    );
    if !whole.malformed && whole.held == 0 {
        assert_eq!(untagged, reference, "framing left responses out");
    }
}
