//! IMAP response framing under the stream guard: see `fuzz/checks/imap_framing.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/imap_framing.rs"]
mod checks;

fuzz_target!(|input: &[u8]| checks::check(input));
