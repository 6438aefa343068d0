//! Criteria from a job: any JSON (or JSON text in a string, as a FEEL field gives) is either
//! refused with INVALID_INPUT or becomes a server-side search program and a local evaluator,
//! without a panic, and within the node and depth limits.
#![no_main]

use email_connector::imap::program::search_program;
use email_connector::mail::criteria::Criterion;
use email_connector::mail::criteria::MessageView;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MESSAGE: &[u8] = b"From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: Invoice 42\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\n\r\nPlease pay.\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let as_string = Value::String(text.to_string());
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    for value in [Some(&as_string), parsed.as_ref()].into_iter().flatten() {
        if let Ok(criterion) = Criterion::parse(value, "/criteria") {
            let program = search_program(&criterion);
            let _ = program.segments(true);
            let _ = program.segments(false);
            let _ = program.redacted();
            let view = MessageView::new(MESSAGE, criterion.needs_body());
            let _ = criterion.evaluate(&view);
        }
    }
});
