//! What a hostile POP3 server sends, through our line reader: status lines, multi-line
//! answers with dot-stuffing, over-long lines and missing terminators end in a result or an
//! error, never a panic, and what is read never exceeds the cap.
#![no_main]

use std::time::Duration;

use email_connector::pop3::client::parse_pairs;
use email_connector::pop3::lines::{read_line, read_multiline, read_multiline_each};
use libfuzzer_sys::fuzz_target;

#[path = "../checks/runtime.rs"]
mod runtime;
use runtime::runtime;

const CAP: usize = 4096;

fn reader(data: &[u8]) -> tokio::io::BufReader<&[u8]> {
    tokio::io::BufReader::with_capacity(64, data)
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut line = Vec::new();
        let _ = read_line(&mut reader(data), &mut line).await;
        if let Ok(body) = read_multiline(&mut reader(data), CAP, Duration::from_secs(1)).await {
            assert!(body.len() <= CAP);
            let _ = parse_pairs(&body);
        }
        let mut seen = 0usize;
        let _ = read_multiline_each(
            &mut reader(data),
            u64::MAX,
            Duration::from_secs(1),
            |piece, _| {
                seen += piece.len();
            },
        )
        .await;
        assert!(seen <= data.len());
    });
});
