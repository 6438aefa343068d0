//! Any bytes as a message: the pruner and the response builder produce JSON within the
//! response budget, without a panic.
#![no_main]

use email_connector::mail::cut::Limits;
use email_connector::mail::message::{Envelope, respond};
use email_connector::mail::prune::prune;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_attachment_bytes: 2048,
        max_response_bytes: 16 * 1024,
    };
    let pruned = prune(data, limits);
    let envelope = Envelope {
        size: data.len() as u64,
        received: None,
        identity: serde_json::Map::new(),
    };
    let response = respond(pruned, &envelope, limits);
    let text = serde_json::to_string(&response).expect("a response serializes");
    assert!(
        text.len() <= limits.max_response_bytes,
        "{} bytes over a {} byte budget",
        text.len(),
        limits.max_response_bytes
    );
});
