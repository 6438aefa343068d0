use super::*;
use crate::secrets::SecretMask;

fn reply(line: &str) -> ServerReply {
    ServerReply::from_line(line.as_bytes()).expect("a NO or BAD completion")
}

#[test]
fn every_kind_has_its_contract_code() {
    use ImapErrorKind::*;
    let table = [
        (Timeout, ErrorCode::Timeout),
        (Tls, ErrorCode::TlsError),
        (Connection, ErrorCode::ConnectionFailed),
        (Protocol, ErrorCode::ConnectionFailed),
        (Refused, ErrorCode::ConnectionFailed),
        (LoginRefused, ErrorCode::AuthenticationFailed),
        (LoginUnavailable, ErrorCode::TemporaryFailure),
        (Input, ErrorCode::InvalidInput),
        (FolderMissing, ErrorCode::FolderNotFound),
        (MessageMissing, ErrorCode::EmailNotFound),
        (Busy, ErrorCode::TemporaryFailure),
        (Internal, ErrorCode::Internal),
    ];
    // A kind added later fails to compile here until it is given a row.
    for (kind, _) in table {
        match kind {
            Timeout | Tls | Connection | Protocol | Refused | LoginRefused | LoginUnavailable
            | Input | FolderMissing | MessageMissing | Busy | Internal => {}
        }
    }
    crate::error::assert_each_kind_maps(&table, |kind| ImapError::new(kind, "words").into());
}

#[test]
fn a_no_with_an_rfc5530_code_is_read_from_the_completion() {
    let refused = reply("A0001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    assert_eq!(refused.status, ReplyStatus::No);
    assert_eq!(refused.code, Some(ReplyCode::AuthenticationFailed));
    assert_eq!(
        refused.text,
        "[AUTHENTICATIONFAILED] Authentication failed."
    );
    assert!(!refused.malformed());
    for (line, code) in [
        (
            "a1 no [UNAVAILABLE] Temporary failure\r\n",
            ReplyCode::Unavailable,
        ),
        (
            "a1 NO [NONEXISTENT] Unknown Mailbox: Nope\r\n",
            ReplyCode::Nonexistent,
        ),
        ("a1 NO [inuse] Mailbox is locked\r\n", ReplyCode::InUse),
        ("a1 NO [OVERQUOTA] Quota exceeded\r\n", ReplyCode::OverQuota),
        (
            "a1 NO [X-DOVECOT 7] odd\r\n",
            ReplyCode::Other("X-DOVECOT".into()),
        ),
    ] {
        assert_eq!(reply(line).code, Some(code), "{line}");
    }
    // Without a code, or with an unfinished one, there is none to read.
    assert_eq!(reply("a1 NO Authentication failed.\r\n").code, None);
    assert_eq!(reply("a1 NO [ unclosed words\r\n").code, None);
}

#[test]
fn codes_imap_proto_parses_are_read_from_its_response() {
    let create = reply("a2 NO [TRYCREATE] Mailbox doesn't exist: Archive\r\n");
    assert_eq!(create.code, Some(ReplyCode::TryCreate));
    assert_eq!(create.text, "Mailbox doesn't exist: Archive");
    assert_eq!(
        reply("a2 NO [ALERT] Your account is locked\r\n").code,
        Some(ReplyCode::Alert)
    );
    let charset = reply("a3 NO [BADCHARSET (UTF-8)] unsupported charset\r\n");
    assert_eq!(charset.code, Some(ReplyCode::BadCharset));
    assert!(charset.malformed());
}

#[test]
fn a_bad_is_malformed_and_ok_or_untagged_lines_are_no_refusal() {
    let bad = reply("a4 BAD Error in IMAP command UID: Invalid arguments.\r\n");
    assert_eq!(bad.status, ReplyStatus::Bad);
    assert!(bad.malformed());
    assert_eq!(bad.text, "Error in IMAP command UID: Invalid arguments.");
    assert_eq!(ServerReply::from_line(b"a5 OK Logged in\r\n"), None);
    assert_eq!(ServerReply::from_line(b"* NO [ALERT] disk full\r\n"), None);
    assert_eq!(ServerReply::from_line(b"a6 NO unfinished"), None);
    assert_eq!(ServerReply::from_line(b"garbage\r\n"), None);
}

#[test]
fn a_refused_command_takes_the_kind_its_caller_gave_a_no_or_a_bad() {
    let no = ImapError::refused(
        "SELECT \"Nope\"",
        reply("a1 NO [NONEXISTENT] Unknown Mailbox\r\n"),
        ImapErrorKind::FolderMissing,
        ImapErrorKind::Input,
    );
    assert_eq!(no.kind(), ImapErrorKind::FolderMissing);
    assert_eq!(
        no.to_string(),
        "SELECT \"Nope\" refused: [NONEXISTENT] Unknown Mailbox"
    );
    assert_eq!(
        no.reply().and_then(|r| r.code.clone()),
        Some(ReplyCode::Nonexistent)
    );
    let bad = ImapError::refused(
        "UID SEARCH",
        reply("a1 BAD Unknown search key\r\n"),
        ImapErrorKind::Busy,
        ImapErrorKind::Input,
    );
    assert_eq!(EmailError::from(bad).code, ErrorCode::InvalidInput);
}

#[test]
fn library_errors_keep_their_codes_and_a_no_quotes_the_completion() {
    use async_imap::error::Error;
    use std::io;
    let kind = |e: Error| ImapError::library(e, "login", None).kind();
    assert_eq!(
        kind(Error::Io(io::Error::new(io::ErrorKind::TimedOut, "slow"))),
        ImapErrorKind::Timeout
    );
    assert_eq!(
        kind(Error::Io(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "reset"
        ))),
        ImapErrorKind::Connection
    );
    assert_eq!(kind(Error::ConnectionLost), ImapErrorKind::Connection);
    assert_eq!(
        kind(Error::Validate(async_imap::error::ValidateError('\n'))),
        ImapErrorKind::Input
    );
    // The library's debug text is never what the message quotes.
    let debug = "code: None, info: Some(\"[AUTHENTICATIONFAILED] nope\")".to_string();
    let quoted = ImapError::library(
        Error::No(debug.clone()),
        "CAPABILITY",
        Some(reply("a1 NO [AUTHENTICATIONFAILED] nope\r\n")),
    );
    assert_eq!(quoted.kind(), ImapErrorKind::Refused);
    assert_eq!(
        quoted.to_string(),
        "CAPABILITY refused: [AUTHENTICATIONFAILED] nope"
    );
    let unread = ImapError::library(Error::Bad(debug), "CAPABILITY", None);
    assert!(!unread.to_string().contains("info: Some"), "{unread}");
}

#[test]
fn a_server_quoting_the_password_is_masked_in_the_message() {
    // A password with the characters debug text used to escape, echoed by a careless server.
    let password = "pa\"ss\\word";
    let line = format!("a1 NO [AUTHENTICATIONFAILED] Bad password {password} for alice\r\n");
    let error = ImapError::refused(
        "LOGIN",
        reply(&line),
        ImapErrorKind::LoginRefused,
        ImapErrorKind::LoginRefused,
    );
    let email = EmailError::from(error);
    assert_eq!(email.code, ErrorCode::AuthenticationFailed);
    assert!(
        email.message.contains(password),
        "the server's words, unescaped"
    );
    let mask = SecretMask::new(vec![password.to_string().into()]);
    let shown = mask.apply(&email.message);
    assert!(
        !shown.contains("ss\\word") && !shown.contains("pa\"ss"),
        "{shown}"
    );
    assert!(shown.contains("Bad password *** for alice"), "{shown}");
}
