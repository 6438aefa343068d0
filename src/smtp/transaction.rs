//! One message on an open session: the envelope (MAIL, RCPT for each recipient, DATA), the
//! body, the server's verdict.
//!
//! When the server offers PIPELINING (RFC 2920; Postfix, Exchange and Gmail do), the envelope
//! goes in one write (a hundred commands at most) and its replies are read afterwards: two round
//! trips per message instead of three plus one per recipient. A refused sender or recipient
//! still fails the job, as it does one command at a time; if the server has already said 354 to
//! DATA by then, the session is shut without the final dot, so nothing is delivered to the
//! recipients it did accept.

use lettre::address::Envelope;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use tokio::io::AsyncWriteExt;

use super::data::Outgoing;
use super::error::{SmtpError, SmtpErrorKind};
use super::transport::Session;

/// Why a transaction failed.
pub(super) struct Failed {
    pub(super) error: SmtpError,
    /// The session failed at the first reply of the envelope (none came, it was no reply,
    /// or 421 "closing") or in writing the first commands: it was closed, or is of no use. No
    /// part of the message had been sent, and a server delivers nothing before the final dot,
    /// so sending again on a new session cannot duplicate the message.
    pub(super) closed_before_mail: bool,
}

impl From<SmtpError> for Failed {
    fn from(error: SmtpError) -> Self {
        Failed {
            error,
            closed_before_mail: false,
        }
    }
}

fn failed(error: lettre::transport::smtp::Error) -> Failed {
    Failed::from(SmtpError::lettre(error))
}

/// The reply to MAIL, or the write before it, failed in a way that says the session was
/// already closed.
fn closed_before_mail(error: lettre::transport::smtp::Error) -> Failed {
    Failed {
        closed_before_mail: !error.is_timeout()
            && error.status().is_none_or(|code| code.to_string() == "421"),
        error: SmtpError::lettre(error),
    }
}

/// Writing the envelope failed; `first` when it was the first write of it.
fn broken_off(error: std::io::Error, first: bool) -> Failed {
    Failed {
        error: SmtpError::new(
            SmtpErrorKind::Connection,
            format!("the connection broke off: {error}"),
        )
        .with_source(error),
        closed_before_mail: first,
    }
}

/// Sends `message` to the envelope's recipients on `session`. On failure the session is in no
/// state to be reused: the caller closes it.
pub(super) async fn transaction(
    session: &mut Session,
    envelope: &Envelope,
    message: &Outgoing,
) -> Result<(), Failed> {
    let mail = Mail::new(
        envelope.from().cloned(),
        parameters(session, envelope, message)?,
    );
    if session.stream.offers_pipelining() {
        pipelined_envelope(session, envelope, mail).await?;
    } else {
        stepwise_envelope(session, envelope, mail).await?;
    }
    message.write_to(&mut session.stream).await?;
    session.connection.read_response().await.map_err(failed)?;
    Ok(())
}

/// MAIL's parameters: SMTPUTF8 for addresses beyond ASCII, 8BITMIME for a body beyond it,
/// each only if the server offers it.
fn parameters(
    session: &Session,
    envelope: &Envelope,
    message: &Outgoing,
) -> Result<Vec<MailParameter>, Failed> {
    let offers = |extension| session.connection.server_info().supports_feature(extension);
    let mut parameters = Vec::new();
    let addresses = envelope.from().into_iter().chain(envelope.to());
    if addresses.map(AsRef::<str>::as_ref).any(|a| !a.is_ascii()) {
        if !offers(Extension::SmtpUtfEight) {
            return Err(SmtpError::new(
                SmtpErrorKind::MessageRejected,
                "an address is not ASCII and the server does not offer SMTPUTF8",
            )
            .into());
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !offers(Extension::EightBitMime) {
            // A forwarded 8-bit original cannot be made 7-bit without changing its bytes.
            let what = if message.forwards_eight_bit() {
                "the forwarded message is 8-bit (a message/rfc822 part cannot be base64) and \
                 the server does not offer 8BITMIME; forward it with asAttachment: false"
            } else {
                "the message is not ASCII and the server does not offer 8BITMIME"
            };
            return Err(SmtpError::new(SmtpErrorKind::MessageRejected, what).into());
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(parameters)
}

/// One command, one reply, for a server without PIPELINING.
async fn stepwise_envelope(
    session: &mut Session,
    envelope: &Envelope,
    mail: Mail,
) -> Result<(), Failed> {
    let connection = &mut session.connection;
    connection.command(mail).await.map_err(closed_before_mail)?;
    for recipient in envelope.to() {
        connection
            .command(Rcpt::new(recipient.clone(), Vec::new()))
            .await
            .map_err(failed)?;
    }
    connection.command(Data).await.map_err(failed)?;
    Ok(())
}

/// Commands written before their replies are read. A job may name thousands of recipients:
/// writing them all first while the server's replies pile up unread can fill both sides'
/// buffers, each waiting for the other to read (RFC 2920 section 3.1). A hundred replies fit in
/// any buffer.
const PIPELINED_COMMANDS: usize = 100;

/// The envelope in writes of up to [`PIPELINED_COMMANDS`] commands, each followed by its
/// replies, in order. Every reply is read, so a refusal is reported by the command it answers;
/// the first refusal is the job's error, and one found before DATA was written ends the
/// envelope there.
async fn pipelined_envelope(
    session: &mut Session,
    envelope: &Envelope,
    mail: Mail,
) -> Result<(), Failed> {
    let mut commands = vec![mail.to_string()];
    commands.extend(
        envelope
            .to()
            .iter()
            .map(|recipient| Rcpt::new(recipient.clone(), Vec::new()).to_string()),
    );
    commands.push(Data.to_string());
    let last = commands.len() - 1;
    let mut refusal: Option<Failed> = None;
    let mut data = None;
    for (batch, chunk) in commands.chunks(PIPELINED_COMMANDS).enumerate() {
        if refusal.is_some() {
            // Nothing of the message was written: the session stays in step, its caller closes it.
            break;
        }
        session
            .stream
            .write_all(chunk.concat().as_bytes())
            .await
            .map_err(|e| broken_off(e, batch == 0))?;
        session
            .stream
            .flush()
            .await
            .map_err(|e| broken_off(e, batch == 0))?;
        for offset in 0..chunk.len() {
            let index = batch * PIPELINED_COMMANDS + offset;
            let reply = session.connection.read_response().await;
            if index == last {
                data = Some(reply);
                break;
            }
            let Err(error) = reply else { continue };
            // No reply at all (or 421 to MAIL): nothing more will come.
            let failed = if index == 0 {
                let failed = closed_before_mail(error);
                if failed.closed_before_mail {
                    return Err(failed);
                }
                failed
            } else if error.status().is_none() {
                return Err(failed(error));
            } else {
                failed(error)
            };
            refusal.get_or_insert(failed);
        }
    }
    match (refusal, data) {
        (None, Some(Ok(_))) => Ok(()),
        (None, Some(Err(error))) => Err(failed(error)),
        (None, None) => Err(SmtpError::new(
            SmtpErrorKind::Connection,
            "the envelope ended without a reply to DATA",
        )
        .into()),
        (Some(refusal), Some(Ok(_))) => {
            // The server waits for a message the job will not send: ending the connection
            // before the final dot makes it drop the transaction (RFC 5321 4.1.1.4).
            let _ = session.stream.shutdown().await;
            Err(refusal)
        }
        (Some(refusal), _) => Err(refusal),
    }
}
