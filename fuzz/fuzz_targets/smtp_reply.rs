//! What a hostile SMTP server sends, through the reply bound every session reads through: the
//! clear-text reply reader (greeting, EHLO, STARTTLS), and lines read as lettre reads them
//! (everything after). Over-long lines, endless continuations, garbage and cut replies end in a reply or an
//! error, never a panic, and no reply read exceeds the bound.
#![no_main]

use std::sync::OnceLock;

use email_connector::smtp::starttls::read_reply;
use email_connector::smtp::wire::{Bounded, MAX_LINE_BYTES, MAX_REPLY_BYTES, MAX_REPLY_LINES};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncBufReadExt, BufReader};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        // Our reader: replies one after another until the data ends or is refused.
        let mut reader = BufReader::with_capacity(64, Bounded::new(data));
        loop {
            let mut raw = Vec::new();
            match read_reply(&mut reader, &mut raw).await {
                Ok(reply) => {
                    assert!(reply.lines.len() <= MAX_REPLY_LINES);
                    assert!(raw.len() <= MAX_REPLY_BYTES + MAX_LINE_BYTES);
                    assert!((100..=559).contains(&reply.code));
                }
                Err(_) => break,
            }
        }
        // lettre's way: lines appended to one buffer until a reply's last line.
        let mut reader = BufReader::with_capacity(64, Bounded::new(data));
        let mut buffer = Vec::new();
        let mut line_start = 0;
        while let Ok(n) = reader.read_until(b'\n', &mut buffer).await {
            if n == 0 {
                break;
            }
            assert!(buffer.len() - line_start <= MAX_LINE_BYTES + 1);
            assert!(buffer.len() <= MAX_REPLY_BYTES + MAX_LINE_BYTES);
            if buffer.get(line_start + 3) == Some(&b'-') {
                line_start = buffer.len();
            } else {
                buffer.clear();
                line_start = 0;
            }
        }
    });
});
