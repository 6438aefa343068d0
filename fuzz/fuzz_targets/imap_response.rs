//! What a hostile IMAP server sends, through our handling: the nesting guard, imap-proto, and
//! our reading of SEARCH/SORT ids, ESEARCH's PARTIAL list (never longer than asked), COPYUID,
//! FETCH items and BODYSTRUCTURE; plus modified UTF-7 folder names, which must round-trip.
#![no_main]

use email_connector::imap::response::interpret;
use email_connector::imap::wire::{decode_mailbox, encode_mailbox};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = interpret(data).ids();
    if let Some(uids) = email_connector::imap::esearch::partial_uids(data, 10) {
        assert!(uids.len() <= 10, "more UIDs than the limit");
    }
    let reply = interpret(data);
    let _ = reply.copy_uid();
    for item in reply.fetches() {
        let _ = item.body.map(|b| b.len());
    }
    let text = String::from_utf8_lossy(data);
    let _ = decode_mailbox(&text);
    let encoded = encode_mailbox(&text);
    assert_eq!(decode_mailbox(&encoded), text, "modified UTF-7 round trip");
});
