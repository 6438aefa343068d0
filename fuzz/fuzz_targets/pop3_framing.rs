//! POP3 multi-line framing: see `fuzz/checks/pop3_framing.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/runtime.rs"]
mod runtime;
use runtime::runtime;

#[path = "../checks/pop3_framing.rs"]
mod checks;

fuzz_target!(|input: &[u8]| runtime().block_on(checks::check(input)));
