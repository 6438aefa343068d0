use super::*;
use crate::secrets::SecretMask;

#[test]
fn every_kind_has_its_contract_code() {
    use Pop3ErrorKind::*;
    let table = [
        (Timeout, ErrorCode::Timeout),
        (Tls, ErrorCode::TlsError),
        (Connection, ErrorCode::ConnectionFailed),
        (Protocol, ErrorCode::ConnectionFailed),
        (Refused, ErrorCode::ConnectionFailed),
        (LoginRefused, ErrorCode::AuthenticationFailed),
        (LoginUnavailable, ErrorCode::TemporaryFailure),
        (Input, ErrorCode::InvalidInput),
        (MessageMissing, ErrorCode::EmailNotFound),
        (Unconfirmed, ErrorCode::TemporaryFailure),
        (Internal, ErrorCode::Internal),
    ];
    // A kind added later fails to compile here until it is given a row.
    for (kind, _) in table {
        match kind {
            Timeout | Tls | Connection | Protocol | Refused | LoginRefused | LoginUnavailable
            | Input | MessageMissing | Unconfirmed | Internal => {}
        }
    }
    crate::error::assert_each_kind_maps(&table, |kind| Pop3Error::new(kind, "words").into());
    let error: EmailError = Pop3Error::new(Pop3ErrorKind::Refused, "words").into();
    assert_eq!(error.retry_after, None);
}

#[test]
fn the_servers_wait_survives_the_mapping_capped() {
    let wait = Duration::from_secs(60);
    let error: EmailError = Pop3Error::new(Pop3ErrorKind::LoginUnavailable, "later")
        .retry_after(wait)
        .into();
    assert_eq!(error.retry_after, Some(wait));
    let error: EmailError = Pop3Error::new(Pop3ErrorKind::LoginUnavailable, "later")
        .retry_after(Duration::from_secs(86_400))
        .into();
    assert_eq!(error.retry_after, Some(crate::error::MAX_RETRY_AFTER));
}

#[test]
fn a_refusal_keeps_the_reply_and_its_response_code() {
    let reply = ServerReply::new("[IN-USE] Mailbox is locked".into());
    assert_eq!(reply.code.as_deref(), Some("IN-USE"));
    let error = Pop3Error::refused("RETR", reply.clone(), Pop3ErrorKind::MessageMissing);
    assert_eq!(
        error.to_string(),
        "RETR refused: [IN-USE] Mailbox is locked"
    );
    assert_eq!(error.reply(), Some(&reply));
    assert_eq!(EmailError::from(error).code, ErrorCode::EmailNotFound);
    assert_eq!(ServerReply::new("no code".into()).code, None);
    assert_eq!(ServerReply::new("[unclosed".into()).code, None);
}

#[test]
fn io_failures_are_a_timeout_or_a_broken_connection() {
    use std::io::{Error, ErrorKind};
    let timed_out = Pop3Error::io("RETR", Error::new(ErrorKind::TimedOut, "slow"));
    assert_eq!(timed_out.kind(), Pop3ErrorKind::Timeout);
    assert_eq!(timed_out.to_string(), "RETR: slow");
    let reset = Pop3Error::io("LIST", Error::new(ErrorKind::ConnectionReset, "reset"));
    assert_eq!(reset.kind(), Pop3ErrorKind::Connection);
}

#[test]
fn a_server_quoting_the_password_is_masked_in_the_message() {
    let password = "hunter2\"pw";
    let reply = ServerReply::new(format!("[AUTH] wrong password {password} for alice"));
    let error = Pop3Error::new(
        reply.login_kind(),
        format!("login as alice refused: {reply}"),
    )
    .with_source(reply);
    let email = EmailError::from(error);
    assert_eq!(email.code, ErrorCode::AuthenticationFailed);
    let shown = SecretMask::new(vec![password.to_string().into()]).apply(&email.message);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("wrong password *** for alice"), "{shown}");
}
