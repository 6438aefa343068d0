use super::*;
use crate::secrets::SecretMask;

#[test]
fn every_kind_has_its_contract_code() {
    use SmtpErrorKind::*;
    let table = [
        (Timeout, ErrorCode::Timeout),
        (Tls, ErrorCode::TlsError),
        (Connection, ErrorCode::ConnectionFailed),
        (LoginRefused, ErrorCode::AuthenticationFailed),
        (Transient, ErrorCode::TemporaryFailure),
        (RecipientsRejected, ErrorCode::RecipientsRejected),
        (MessageRejected, ErrorCode::MessageRejected),
        (Internal, ErrorCode::Internal),
    ];
    // A kind added later fails to compile here until it is given a row.
    for (kind, _) in table {
        match kind {
            Timeout | Tls | Connection | LoginRefused | Transient | RecipientsRejected
            | MessageRejected | Internal => {}
        }
    }
    crate::error::assert_each_kind_maps(&table, |kind| SmtpError::new(kind, "words").into());
}

#[test]
fn replies_map_to_kinds() {
    let c = |code, text| SmtpErrorKind::of_reply(code, text);
    assert_eq!(
        c(
            "535",
            "permanent error (535): 5.7.8 Error: authentication failed"
        ),
        SmtpErrorKind::LoginRefused
    );
    assert_eq!(
        c(
            "550",
            "permanent error (550): 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown"
        ),
        SmtpErrorKind::RecipientsRejected
    );
    assert_eq!(
        c("554", "permanent error (554): 5.7.1 Client host rejected"),
        SmtpErrorKind::MessageRejected
    );
    assert_eq!(
        c(
            "552",
            "permanent error (552): 5.3.4 Message size exceeds fixed limit"
        ),
        SmtpErrorKind::MessageRejected
    );
    assert_eq!(
        c("451", "transient error (451): 4.3.0 try again"),
        SmtpErrorKind::Transient
    );
    assert_eq!(
        c("454", "transient error (454): 4.7.0 TLS not available"),
        SmtpErrorKind::Transient
    );
    // The sender's address (5.1.7, 5.1.8) is not the recipients' problem.
    assert_eq!(
        c(
            "553",
            "permanent error (553): 5.1.8 <a@b>: Sender address rejected"
        ),
        SmtpErrorKind::MessageRejected
    );
    assert_eq!(c("999", "odd"), SmtpErrorKind::Connection);
}

#[test]
fn a_server_quoting_the_password_is_masked_in_the_message() {
    let password = "s3cr3t pw";
    let error = SmtpError::new(
        SmtpErrorKind::of_reply("535", "5.7.8 bad credentials s3cr3t pw"),
        format!("permanent error (535): 5.7.8 bad credentials {password}"),
    );
    let email = EmailError::from(error);
    assert_eq!(email.code, ErrorCode::AuthenticationFailed);
    let shown = SecretMask::new(vec![password.to_string().into()]).apply(&email.message);
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.ends_with("bad credentials ***"), "{shown}");
}
