//! Any text as a FEEL expression (and any JSON after a NUL byte as its scope): parsing and
//! evaluating never panic, overflow the stack or run away, and the result serializes within
//! the size bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    feel::check_any_input(data);
});
