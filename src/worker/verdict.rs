//! The verdict: what a job's result becomes at the gateway (complete, fail with retries and
//! backoff by error code, or throw a BPMN error), and the final error message. The pipeline
//! (`pipeline`) reaches a verdict and reports it.

use std::time::Duration;

use crate::error::{EmailError, truncate_message};
use crate::gateway::proto::ActivatedJob;
use crate::job::JobHeaders;
use crate::operation::AfterCompletion;
use crate::secrets::SecretMask;

/// How a job ended, before it is reported.
pub(super) enum Verdict {
    Complete {
        variables: String,
        after: Option<Box<dyn AfterCompletion>>,
        /// What the job becomes if the gateway refuses the completion as too large: the
        /// headers (bpmnErrors may catch the code) and where it ran, for the message.
        headers: Option<JobHeaders>,
        context: String,
    },
    Fail {
        /// The metrics label: our error code, or what an error expression chose.
        label: &'static str,
        message: String,
        retries: i32,
        backoff: Duration,
        variables: String,
    },
    Throw {
        label: &'static str,
        code: String,
        message: String,
        variables: String,
    },
    /// The gateway no longer knows the job: there is no one to report to.
    Lost,
}

/// The final error message: code first, then where it happened, secrets masked, length capped.
pub fn error_message(error: &EmailError, context: &str, mask: &SecretMask) -> String {
    let text = if context.is_empty() {
        format!("{}: {}", error.code, error.message)
    } else {
        format!("{}: {context}: {}", error.code, error.message)
    };
    truncate_message(&mask.apply(&text))
}

pub(super) fn fail_verdict(
    error: EmailError,
    job: &ActivatedJob,
    headers: Option<&JobHeaders>,
    context: &str,
    mask: &SecretMask,
) -> Verdict {
    let message = error_message(&error, context, mask);
    if headers.is_some_and(|h| h.bpmn_errors.throws(error.code)) {
        return Verdict::Throw {
            label: error.code.as_str(),
            code: error.code.as_str().to_string(),
            message,
            variables: String::new(),
        };
    }
    let (retries, backoff) = if error.code.is_retryable() {
        let configured = headers.map_or(crate::job::DEFAULT_RETRY_BACKOFF, |h| h.retry_backoff);
        (
            (job.retries - 1).max(0),
            error
                .retry_after
                .map_or(configured, |wait| wait.max(configured)),
        )
    } else {
        (0, Duration::ZERO)
    };
    Verdict::Fail {
        label: error.code.as_str(),
        message,
        retries,
        backoff,
        variables: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn job(retries: i32) -> ActivatedJob {
        ActivatedJob {
            key: 1,
            retries,
            ..Default::default()
        }
    }

    #[test]
    fn retryable_errors_decrement_and_back_off() {
        let headers = JobHeaders::parse(r#"{"retryBackoff":"PT7S"}"#).unwrap();
        let v = fail_verdict(
            EmailError::new(ErrorCode::ConnectionFailed, "refused"),
            &job(3),
            Some(&headers),
            "smtp:send on h:1",
            &SecretMask::default(),
        );
        match v {
            Verdict::Fail {
                retries,
                backoff,
                message,
                ..
            } => {
                assert_eq!(retries, 2);
                assert_eq!(backoff, Duration::from_secs(7));
                assert_eq!(message, "CONNECTION_FAILED: smtp:send on h:1: refused");
            }
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn a_servers_wait_lengthens_the_backoff_never_shortens_it() {
        let headers = JobHeaders::parse(r#"{"retryBackoff":"PT7S"}"#).unwrap();
        let backoff = |wait: u64| {
            let error = EmailError::new(ErrorCode::TemporaryFailure, "[LOGIN-DELAY] later")
                .retry_after(Duration::from_secs(wait));
            match fail_verdict(error, &job(3), Some(&headers), "", &SecretMask::default()) {
                Verdict::Fail { backoff, .. } => backoff,
                _ => panic!("expected a failure"),
            }
        };
        assert_eq!(backoff(60), Duration::from_secs(60));
        assert_eq!(backoff(2), Duration::from_secs(7));
        assert_eq!(backoff(u64::MAX), crate::error::MAX_RETRY_AFTER);
    }

    #[test]
    fn terminal_errors_raise_an_incident_and_bpmn_errors_throw() {
        let v = fail_verdict(
            EmailError::invalid_input("/x: bad"),
            &job(3),
            None,
            "",
            &SecretMask::default(),
        );
        assert!(matches!(v, Verdict::Fail { retries: 0, .. }));
        let headers = JobHeaders::parse(r#"{"bpmnErrors":"AUTHENTICATION_FAILED"}"#).unwrap();
        let v = fail_verdict(
            EmailError::new(ErrorCode::AuthenticationFailed, "no"),
            &job(3),
            Some(&headers),
            "",
            &SecretMask::default(),
        );
        assert!(matches!(
            v,
            Verdict::Throw { label: "AUTHENTICATION_FAILED", ref code, .. }
                if code == "AUTHENTICATION_FAILED"
        ));
    }
}
